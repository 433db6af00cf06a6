"""docagent's image-to-PDF converter: the program `agent.tools.imagepdf` runs as a child.

Run as a script by the environment's own Python (`python -I imagepdf_main.py ...`), never
imported by the daemon, and importing nothing of docagent's: the image decoders (libjpeg,
zlib, libtiff, libheif) read bytes someone dropped, so they run as poppler and tesseract do,
behind prlimit's memory and CPU limits, in a process whose crash is not the daemon's.

    imagepdf_main.py --format JPEG|PNG|TIFF|HEIC --max-pixels N --max-pages N SOURCE DEST

writes DEST, a PDF with one page per image (every page of a TIFF), and prints one JSON line
saying what it did; exit 0. A fault of the file prints `{"fault": ...}` and exits FAULT (3):
"damaged" (cannot be decoded whole: cut short, a checksum that does not match, not the image
it was said to be), "too-many-pixels", "too-many-pages". A library missing exits MISSING (4);
memory refused under the child's limit says "Out of memory" (exit 1); anything else is a bug
of ours: a traceback, exit 1.

The image data goes into the PDF whole (img2pdf):
- JPEG: its bytes as they are (DCTDecode); the EXIF orientation becomes the page's /Rotate
  (`rotation=ifvalid`: a mirrored orientation, which /Rotate cannot say, is left as stored).
  The primary image only: a phone's second image in the same file (MPO, an HDR gain map) is
  no page. Decoded once at 1/8 scale, only to prove it whole (img2pdf never decodes it).
- PNG: its compressed data copied as it is; with transparency (an alpha channel, or a palette
  or grey level marked transparent), first flattened onto white paper: each pixel becomes
  alpha x colour + (1 - alpha) x white, as a viewer shows it on a white page and as pdftoppm
  would render it, then stored as PNG (Flate, lossless). The alpha itself is not kept in the
  PDF: the original beside it has it.
- TIFF: every page; bilevel CCITT G4 pages copied as they are, others decoded and stored with
  Flate (lossless); the TIFF orientation tag as /Rotate; pages with transparency flattened.
- HEIC: decoded by libheif (pillow-heif), its rotation and mirroring applied, and stored as PNG
  (Flate): lossless from the decoded pixels. HEIC is itself lossy; a JPEG of it would lose a
  second time, and the PDF's larger size is the only cost, the original HEIC being kept beside.
  The primary image only, as for JPEG.

The page size: the image at the resolution it states when that makes a page no larger than
A3 (a scanner's image at 150-600 dpi is its paper size); otherwise the image fitted into A4
in its own orientation (a phone's photo states 72 dpi, or nothing, which would make a poster).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import warnings
import zlib
from pathlib import Path
from typing import Any, NoReturn

FAULT = 3
MISSING = 4  # a library is not installed: the machine's fault, not the file's

try:
    import img2pdf  # type: ignore[import-untyped]
    import pillow_heif
    from PIL import Image, ImageFile, UnidentifiedImageError
except ImportError as missing:
    print(f"imagepdf: cannot start: {missing}", file=sys.stderr)
    sys.exit(MISSING)

MM = 72 / 25.4
A4 = (210 * MM, 297 * MM)
A3 = (297 * MM, 420 * MM)
PLAUSIBLE_DPI = (100.0, 1200.0)  # a stated resolution outside this is not a scanner's
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PILLOW_FORMAT = {"JPEG": ("JPEG", "MPO"), "PNG": ("PNG",), "TIFF": ("TIFF",), "HEIC": ("HEIF",)}


class Fault(Exception):
    """The file is at fault: what the parent is told, as JSON."""

    def __init__(self, fault: str, **said: Any) -> None:
        super().__init__(fault)
        self.said = {"fault": fault, **said}


def fail(fault: str, **said: Any) -> NoReturn:
    raise Fault(fault, **said)


# --- proving the file whole ----------------------------------------------------------------


def check_png_chunks(data: bytes) -> None:
    """Every chunk's CRC, and an IEND at the end: neither Pillow nor img2pdf checks the CRC of
    the image data, which a damaged copy breaks first."""
    if not data.startswith(PNG_SIGNATURE):
        fail("damaged", why="no PNG signature")
    at = len(PNG_SIGNATURE)
    while at + 12 <= len(data):
        length = int.from_bytes(data[at:at + 4], "big")
        kind = data[at + 4:at + 8]
        end = at + 12 + length
        if end > len(data):
            fail("damaged", why=f"cut short inside its {kind.decode('latin-1')} chunk",
                 truncated=True)
        body = data[at + 4:at + 8 + length]
        if zlib.crc32(body) != int.from_bytes(data[at + 8 + length:end], "big"):
            fail("damaged", why=f"its {kind.decode('latin-1')} chunk fails its checksum (CRC)")
        if kind == b"IEND":
            return
        at = end
    fail("damaged", why="cut short: no IEND chunk", truncated=True)


def open_image(data: bytes, fmt: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        fail("damaged", why=f"it does not open as a {fmt} image")
    except (OSError, ValueError, SyntaxError) as error:
        fail("damaged", why=f"it does not open as a {fmt} image: {error}")
    if image.format not in PILLOW_FORMAT[fmt]:
        fail("damaged", why=f"it opens as {image.format}, not {fmt}")
    return image


def frames(image: Image.Image, fmt: str) -> int:
    return int(getattr(image, "n_frames", 1)) if fmt == "TIFF" else 1


def check_bounds(image: Image.Image, fmt: str, *, max_pixels: int, max_pages: int) -> int:
    """The page count, every page's pixels within the bound; nothing decoded yet."""
    count = frames(image, fmt)
    if count > max_pages:
        fail("too-many-pages", pages=count, limit=max_pages)
    for index in range(count):
        image.seek(index)
        width, height = image.size
        if width * height > max_pixels:
            fail("too-many-pixels", page=index + 1, pixels=width * height, limit=max_pixels,
                 width=width, height=height)
    image.seek(0)
    return count


def decode(image: Image.Image, index: int, fmt: str, *, draft: bool = False) -> None:
    """Decode page `index` whole (a JPEG at 1/8 scale: every byte is still read), or fail."""
    try:
        image.seek(index)
        if draft:
            image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError, zlib.error) as error:
        said = str(error)
        fail("damaged", why=f"page {index + 1} cannot be decoded: {said}" if
             frames(image, fmt) > 1 else f"it cannot be decoded: {said}",
             truncated="truncated" in said or "end of file" in said.lower())


# --- flattening ----------------------------------------------------------------------------


def transparent(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info


def flattened(image: Image.Image) -> Image.Image:
    """The page as it shows on white paper: alpha x colour + (1 - alpha) x white (a paste
    through the alpha as its mask is that blend), grey kept grey. One copy of the pixels at
    most besides the page made: a 50-megapixel RGBA page stays within the child's memory."""
    grey = image.mode in ("L", "LA", "La", "I", "I;16", "1") or (
        image.mode == "P" and image.palette is not None and image.palette.mode == "L")
    mode = "L" if grey else "RGB"
    with_alpha = image if image.mode in ("LA", "RGBA") else image.convert("LA" if grey
                                                                         else "RGBA")
    flat = Image.new(mode, image.size, 255 if grey else (255, 255, 255))
    flat.paste(with_alpha, (0, 0), with_alpha)
    return flat


# zlib level 3: on a 12-megapixel photo (a HEIC decoded), 1.1 s and 14.2 MB where the default
# level 6 takes 3.0 s for 14.6 MB, and level 1 0.8 s for 15.3 MB (bench.photo's photo).
PNG_LEVEL = 3


def png_bytes(image: Image.Image, exif: Image.Exif | None = None) -> bytes:
    out = io.BytesIO()
    if exif is not None and len(exif):
        image.save(out, format="PNG", exif=exif, compress_level=PNG_LEVEL)
    else:
        image.save(out, format="PNG", compress_level=PNG_LEVEL)
    return out.getvalue()


# --- the page size -------------------------------------------------------------------------


def _fits(width: float, height: float, box: tuple[float, float]) -> bool:
    short, long = sorted((width, height))
    return short <= box[0] * 1.01 and long <= box[1] * 1.01


def layout(width_px: int, height_px: int, dpi: tuple[float, float],
           ) -> tuple[float, float, float, float]:
    """(page width, page height, image width, image height) in points: see the module's
    docstring. The page is the image's own size, so there are no margins."""
    stated = (width_px / dpi[0] * 72, height_px / dpi[1] * 72)
    believed = all(PLAUSIBLE_DPI[0] <= d <= PLAUSIBLE_DPI[1] for d in dpi)
    if believed and _fits(*stated, A3):
        return stated[0], stated[1], stated[0], stated[1]
    box = A4 if height_px >= width_px else (A4[1], A4[0])
    scale = min(box[0] / width_px, box[1] / height_px)
    width, height = width_px * scale, height_px * scale
    return width, height, width, height


# --- each format ---------------------------------------------------------------------------


ROTATE = {3: 180, 6: 90, 8: 270}  # EXIF orientation -> /Rotate, as img2pdf maps it


def turned(image: Image.Image, index: int) -> int:
    """The /Rotate img2pdf gives page `index` (mirrored orientations are left as stored)."""
    image.seek(index)
    return ROTATE.get(int(image.getexif().get(0x0112, 1) or 1), 0)


def _as_pngs(image: Image.Image, pages: int, *, flatten: bool) -> list[bytes]:
    """Each page as a PNG img2pdf takes: flattened when transparent (and `flatten`), its
    orientation kept in its EXIF; a sample format PNG cannot hold as 8 bits per sample."""
    out = []
    for index in range(pages):
        image.seek(index)
        exif = image.getexif()
        page: Image.Image = image
        if flatten and transparent(image):
            page = flattened(image)
        elif page.mode not in ("1", "L", "RGB", "P"):
            page = page.convert("L" if page.mode.startswith(("I", "F", "L")) else "RGB")
        out.append(png_bytes(page, exif))
    return out


def convert(data: bytes, fmt: str, *, max_pixels: int, max_pages: int,
            ) -> tuple[bytes, dict[str, Any]]:
    """The PDF, and what was done (pages, rotations, flattened, how the pixels went in)."""
    if fmt == "HEIC":
        pillow_heif.register_heif_opener()
    if fmt == "PNG":
        check_png_chunks(data)
    Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow refuses a bomb by itself, too
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    image = open_image(data, fmt)
    pages = check_bounds(image, fmt, max_pixels=max_pixels, max_pages=max_pages)
    kwargs: dict[str, Any] = {"layout_fun": layout, "rotation": img2pdf.Rotation.ifvalid}
    flat = False
    if fmt == "JPEG":
        decode(image, 0, fmt, draft=True)
        inputs: list[bytes] = [data]
        kwargs["first_frame_only"] = True
        embedded = "as-is"
        rotate = [turned(image, 0)]
    elif fmt == "HEIC":
        decode(image, 0, fmt)
        flat = transparent(image)
        page = flattened(image) if flat else image
        if page.mode not in ("RGB", "L"):
            page = page.convert("RGB")
        inputs = [png_bytes(page)]  # libheif turned the pixels: no orientation goes along
        kwargs["rotation"] = img2pdf.Rotation.none
        embedded = "decoded-lossless"
        rotate = [0]
    else:
        for index in range(pages):
            decode(image, index, fmt)
        rotate = [turned(image, index) for index in range(pages)]
        flat = any(_transparent_page(image, index) for index in range(pages))
        if flat:
            inputs = _as_pngs(image, pages, flatten=True)
            embedded = "flattened-lossless"
        else:
            inputs = [data]
            embedded = "as-is" if fmt == "PNG" else "lossless"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pdf = img2pdf.convert(*inputs, **kwargs)
        except (img2pdf.UnsupportedColorspaceError, ValueError) as error:
            if fmt not in ("PNG", "TIFF"):
                fail("damaged", why=f"it cannot be converted: {error}")
            # Decoded whole, in a sample format img2pdf does not embed (16-bit TIFF, a
            # colour space PDF lacks): each page as an 8-bit PNG.
            pdf = img2pdf.convert(*_as_pngs(image, pages, flatten=True), **kwargs)
            embedded = "reduced-8-bit"
        except (img2pdf.ImageOpenError, img2pdf.JpegColorspaceError, img2pdf.PdfTooLargeError,
                img2pdf.NegativeDimensionError, OSError) as error:
            fail("damaged", why=f"it cannot be converted: {error}")
    return bytes(pdf), {"format": fmt, "pages": pages, "flattened": flat,
                        "embedded": embedded, "rotations": rotate}


def _transparent_page(image: Image.Image, index: int) -> bool:
    image.seek(index)
    return transparent(image)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--format", required=True, choices=sorted(PILLOW_FORMAT))
    parser.add_argument("--max-pixels", type=int, required=True)
    parser.add_argument("--max-pages", type=int, required=True)
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    data = args.source.read_bytes()
    try:
        pdf, said = convert(data, args.format, max_pixels=args.max_pixels,
                            max_pages=args.max_pages)
    except Fault as fault:
        print(json.dumps(fault.said))
        return FAULT
    except Image.DecompressionBombError as error:
        print(json.dumps({"fault": "too-many-pixels", "why": str(error), "page": 1,
                          "pixels": 0, "limit": args.max_pixels}))
        return FAULT
    except MemoryError:
        # Under prlimit's address-space limit: said the way the runner recognises it.
        print("imagepdf: Out of memory", file=sys.stderr)
        return 1
    with open(args.dest, "xb") as out:
        out.write(pdf)
        out.flush()
        os.fsync(out.fileno())
    print(json.dumps(said))
    return 0


if __name__ == "__main__":
    sys.exit(main())
