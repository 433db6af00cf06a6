"""A grey page image as pdftoppm writes it (binary PGM, 8 bits): the little the OCR stage
does to one without an image library.

Two things, both on the bytes and exact: cut out a band of the page at half resolution, for
tesseract to tell which way up the text stands at a fraction of a reading's cost; and turn a
page by a quarter, a half or three quarters (half round is the pixels in reverse order; a
quarter is each column read as a row, a strided slice of the bytes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_HEADER = re.compile(rb"\AP5\s+(\d+)\s+(\d+)\s+(\d+)\s")
BANDS = 8  # the page is cut in this many horizontal bands; the one with the most ink is read
SAMPLE_STEP = 16  # every 16th pixel of every 16th row tells a band's ink well enough
INK = 128  # a grey level under this is ink


class NotPgm(ValueError):
    """The file is not an 8-bit binary PGM."""


@dataclass(frozen=True)
class Pgm:
    width: int
    height: int
    pixels: bytes  # row after row, one byte a pixel

    @classmethod
    def read(cls, path: Path) -> Pgm:
        data = path.read_bytes()
        header = _HEADER.match(data)
        if header is None or int(header.group(3)) != 255:
            raise NotPgm(f"{path} is not an 8-bit binary PGM")
        width, height = int(header.group(1)), int(header.group(2))
        pixels = data[header.end():header.end() + width * height]
        if len(pixels) != width * height:
            raise NotPgm(f"{path} is shorter than its header says")
        return cls(width, height, pixels)

    def write(self, path: Path) -> Path:
        path.write_bytes(b"P5\n%d %d\n255\n" % (self.width, self.height) + self.pixels)
        return path

    def turned(self, clockwise: int) -> Pgm:
        """The page turned by 90, 180 or 270 degrees clockwise (0: itself)."""
        w, h, px = self.width, self.height, self.pixels
        if clockwise % 360 == 180:
            return Pgm(w, h, px[::-1])
        if clockwise % 360 == 90:  # each row of the result is a column, read bottom to top
            return Pgm(h, w, b"".join(px[c::w][::-1] for c in range(w)))
        if clockwise % 360 == 270:  # each row of the result is a column, right to left
            return Pgm(h, w, b"".join(px[c::w] for c in range(w - 1, -1, -1)))
        return self

    def inkiest_band(self) -> Pgm:
        """The horizontal band (one of BANDS) with the most ink, at half resolution."""
        rows = self.height // BANDS
        if rows < 2 or self.width < 2:
            return self

        def ink(band: int) -> int:
            first = band * rows
            return sum(1 for r in range(first, first + rows, SAMPLE_STEP)
                       for v in self.pixels[r * self.width:(r + 1) * self.width:SAMPLE_STEP]
                       if v < INK)

        best = max(range(BANDS), key=ink)
        first, w = best * rows, self.width
        half = b"".join(self.pixels[r * w:(r + 1) * w:2] for r in range(first, first + rows, 2))
        return Pgm(len(range(0, w, 2)), len(range(first, first + rows, 2)), half)
