"""A grey page image as pdftoppm writes it (binary PGM, 8 bits): the little the OCR stage
does to one without an image library, file to file.

Two things, both on the bytes and exact: cut out a band of the page at half resolution, for
tesseract to tell which way up the text stands at a fraction of a reading's cost; and turn a
page by a quarter, a half or three quarters (half round is the pixels in reverse order; a
quarter is each column read as a row, a strided slice of the bytes).

The page is mapped, not read: choosing the band touches every sixteenth row only, and a turn
writes the result a row at a time, so a page's pixels are never copied into Python's memory
(two pages in flight at 300 dpi were 35 MiB more at the daemon's peak when they were).
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_HEADER = re.compile(rb"\AP5\s+(\d+)\s+(\d+)\s+(\d+)\s")
BANDS = 8  # the page is cut in this many horizontal bands; the one with the most ink is read
SAMPLE_STEP = 16  # every 16th pixel of every 16th row tells a band's ink well enough
INK = 128  # a grey level under this is ink


class NotPgm(ValueError):
    """The file is not an 8-bit binary PGM."""


@dataclass(frozen=True)
class _Page:
    width: int
    height: int
    start: int  # where the pixels begin, row after row, one byte a pixel
    pixels: mmap.mmap

    def row(self, r: int, step: int = 1) -> bytes:
        first = self.start + r * self.width
        return self.pixels[first:first + self.width:step]

    def column(self, c: int) -> bytes:
        """Column c, top to bottom."""
        return self.pixels[self.start + c:self.start + self.width * self.height:self.width]


@contextmanager
def _mapped(path: Path) -> Iterator[_Page]:
    with path.open("rb") as file:
        header = _HEADER.match(file.read(64))
        if header is None or int(header.group(3)) != 255:
            raise NotPgm(f"{path} is not an 8-bit binary PGM")
        width, height = int(header.group(1)), int(header.group(2))
        if width < 1 or height < 1 or \
                path.stat().st_size < header.end() + width * height:
            raise NotPgm(f"{path} is shorter than its header says")
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as pixels:
            yield _Page(width, height, header.end(), pixels)


def _write(path: Path, width: int, height: int, rows: Iterator[bytes]) -> Path:
    with path.open("wb") as out:
        out.write(b"P5\n%d %d\n255\n" % (width, height))
        for row in rows:
            out.write(row)
    return path


def turned(path: Path, clockwise: int, out: Path) -> Path:
    """The page turned by 90, 180 or 270 degrees clockwise, written to `out`."""
    with _mapped(path) as page:
        w, h = page.width, page.height
        way = clockwise % 360
        if way == 180:
            return _write(out, w, h, (page.row(r)[::-1] for r in range(h - 1, -1, -1)))
        if way == 90:  # each row of the result is a column, read bottom to top
            return _write(out, h, w, (page.column(c)[::-1] for c in range(w)))
        if way == 270:  # each row of the result is a column, right to left
            return _write(out, h, w, (page.column(c) for c in range(w - 1, -1, -1)))
        return _write(out, w, h, (page.row(r) for r in range(h)))


def inkiest_band(path: Path, out: Path) -> Path:
    """The horizontal band (one of BANDS) with the most ink, at half resolution, to `out`."""
    with _mapped(path) as page:
        rows = page.height // BANDS
        if rows < 2 or page.width < 2:
            return _write(out, page.width, page.height,
                          (page.row(r) for r in range(page.height)))

        def ink(band: int) -> int:
            first = band * rows
            return sum(1 for r in range(first, first + rows, SAMPLE_STEP)
                       for v in page.row(r, SAMPLE_STEP) if v < INK)

        first = max(range(BANDS), key=ink) * rows
        kept = range(first, first + rows, 2)
        return _write(out, len(range(0, page.width, 2)), len(kept),
                      (page.row(r, 2) for r in kept))
