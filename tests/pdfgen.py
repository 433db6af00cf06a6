"""Build test fixtures at run time: rendered pages, poor scans and PDFs of every awkward kind.

Nothing here is committed as a binary: tests and benchmarks call these helpers into ``tmp_path``.

* :func:`render_page` / :func:`degrade` make a page image that looks like a poor office scan.
* :func:`image_pdf`, :func:`text_pdf`, :func:`mixed_pdf` make scanned, born-digital and mixed PDFs.
* :func:`encrypted_pdf`, :func:`truncated`, :func:`corrupt`, :func:`empty_pages_pdf`,
  :func:`zero_pages_pdf` make the hostile ones.
* :func:`lab_report_lines` is the text of a realistic French (or English) lab report and
  :func:`write_sample_scan` turns one into a scanned PDF (also ``python -m tests.pdfgen sample``).

Only Pillow and the standard library are used; ``qpdf`` is called for joining and encrypting.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import subprocess
import tempfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

__all__ = [
    "corrupt",
    "degrade",
    "empty_pages_pdf",
    "encrypted_pdf",
    "image_pdf",
    "lab_report_lines",
    "mixed_pdf",
    "overlay_pdf",
    "render_page",
    "text_pdf",
    "truncated",
    "write_sample_scan",
    "zero_pages_pdf",
]

StrPath = str | os.PathLike[str]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

DEJAVU_DIR = Path("/usr/share/fonts/truetype/dejavu")
_MM_PER_INCH = 25.4
_PT_PER_INCH = 72.0
# A4 in PDF points, as every A4 PDF writes it.
_A4_PT = (595.276, 841.89)

# --------------------------------------------------------------------------------------------
# Page images
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _font(size_px: int, bold: bool) -> Font:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    try:
        return ImageFont.truetype(str(DEJAVU_DIR / name), size_px)
    except OSError:
        return ImageFont.load_default(size=size_px)


def render_page(
    lines: Sequence[str],
    *,
    dpi: int = 300,
    font_size_pt: float = 11,
    page_size_mm: tuple[float, float] = (210, 297),
) -> Image.Image:
    """A clean white page (mode ``"L"``) with ``lines`` in black from a 20 mm top-left margin.

    Lines starting with ``"# "`` are drawn in bold, without the marker. Empty strings are blank
    lines. Lines that run past the page bottom are clipped, not wrapped. A run of two or more
    spaces starts a column: the text after it is placed at its character index times the
    width of a digit, so tables written with spaces line up as they do in the source string.
    """
    width = round(page_size_mm[0] / _MM_PER_INCH * dpi)
    height = round(page_size_mm[1] / _MM_PER_INCH * dpi)
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    size_px = max(1, round(font_size_pt / _PT_PER_INCH * dpi))
    margin = round(20 / _MM_PER_INCH * dpi)
    leading = round(size_px * 1.45)
    y = margin
    for line in lines:
        bold = line.startswith("# ")
        text = line[2:] if bold else line
        if text.strip():
            font = _font(size_px, bold)
            cell = font.getlength("0")
            space = font.getlength(" ")
            x_end = float(margin)
            for start, chunk in _columns(text):
                x = max(margin + start * cell, x_end + space if start else margin)
                draw.text((x, y), chunk, fill=0, font=font)
                x_end = x + font.getlength(chunk)
        y += leading
        if y > height:
            break
    return img


_COLUMN_START = re.compile(r"(?:^ ?|(?<=  ))\S")


def _columns(text: str) -> list[tuple[int, str]]:
    """``(char index, chunk)`` for each piece of ``text`` separated by two or more spaces."""
    starts = [m.end() - 1 for m in _COLUMN_START.finditer(text)]
    return [
        (start, text[start:end].rstrip())
        for start, end in zip(starts, [*starts[1:], len(text)], strict=True)
    ]


def _noise_layer(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """Uniform random bytes as an ``"L"`` image (fast: no per-pixel Python loop)."""
    return Image.frombytes("L", size, rng.randbytes(size[0] * size[1]))


def degrade(
    img: Image.Image,
    *,
    seed: int,
    skew_deg: float = 1.5,
    noise: float = 0.06,
    blur: float = 0.8,
    jpeg_quality: int = 35,
    rotate180: bool = False,
    colour: bool = False,
) -> Image.Image:
    """Make ``img`` look like a poor scan; the same ``seed`` gives the same bytes.

    * ``skew_deg``: rotation in degrees (counter-clockwise, page size kept, white fill);
    * ``blur``: Gaussian blur radius in pixels;
    * ``noise``: strength in [0, 1]: grey paper + grain of about ±``noise``·255 levels, and
      salt-and-pepper specks on ``noise``/6 of the pixels (1 % at the default);
    * ``jpeg_quality``: JPEG round trip at this quality (0 or less skips it);
    * ``rotate180``: the page was fed upside down;
    * ``colour``: return ``"RGB"`` with a slight yellow paper tint instead of ``"L"``.
    """
    rng = random.Random(seed)
    page = img.convert("L")
    if skew_deg:
        page = page.rotate(
            skew_deg, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255
        )
    if rotate180:
        page = page.rotate(180)
    if blur > 0:
        page = page.filter(ImageFilter.GaussianBlur(blur))
    if noise > 0:
        # Scanner paper is never quite white nor the toner quite black.
        page = page.point(lambda v: 28 + v * 218 // 255)
        amp = max(1, round(noise * 255))
        # Two uniform layers summed: a triangular (roughly Gaussian) grain of ±amp levels.
        grain_a = _noise_layer(page.size, rng).point(lambda v: v * amp // 255)
        grain_b = _noise_layer(page.size, rng).point(lambda v: v * amp // 255)
        page = ImageChops.add(page, grain_a)
        page = ImageChops.subtract(page, grain_b)
        # Salt and pepper: dark specks (dust) and light drop-outs (toner misses).
        half = round(noise / 6 / 2 * 256)
        if half:
            draw_layer = _noise_layer(page.size, rng)
            pepper = draw_layer.point(lambda v: 255 if v < half else 0)
            salt = draw_layer.point(lambda v: 255 if v >= 256 - half else 0)
            page.paste(rng.randint(20, 70), mask=pepper)
            page.paste(rng.randint(215, 245), mask=salt)
    if colour:
        r = page.point(lambda v: min(255, v + 6))
        g = page.point(lambda v: v * 250 // 255)
        b = page.point(lambda v: v * 236 // 255)
        page = Image.merge("RGB", (r, g, b))
    if jpeg_quality > 0:
        buf = io.BytesIO()
        page.save(buf, format="JPEG", quality=jpeg_quality)
        buf.seek(0)
        with Image.open(buf) as jpeg:
            page = jpeg.convert("RGB" if colour else "L")
    return page


# --------------------------------------------------------------------------------------------
# PDF writing
# --------------------------------------------------------------------------------------------


def _write_pdf(objects: Sequence[bytes], path: StrPath, *, root: int = 1) -> Path:
    """Write objects 1..n (bodies without ``obj``/``endobj``) with a correct xref and trailer."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for num, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % num
        out += body
        out += b"\nendobj\n"
    xref_at = len(out)
    size = len(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        size,
        root,
        xref_at,
    )
    dest = Path(path)
    dest.write_bytes(bytes(out))
    return dest


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d%s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def _pdf_string(text: str) -> bytes:
    """A PDF literal string in WinAnsi (cp1252), ASCII-only on disk: octal for other bytes."""
    raw = text.encode("cp1252", errors="replace")
    out = bytearray(b"(")
    for byte in raw:
        if byte in b"()\\":
            out += b"\\" + bytes([byte])
        elif 0x20 <= byte < 0x7F:
            out.append(byte)
        else:
            out += b"\\%03o" % byte
    out += b")"
    return bytes(out)


def text_pdf(pages: Sequence[Sequence[str]], path: StrPath, *, invisible: bool = False) -> Path:
    """A born-digital A4 PDF with a real text layer: one page per list of lines.

    Helvetica 11 pt (Helvetica-Bold for ``"# "`` lines, marker stripped), WinAnsiEncoding so
    French accents survive ``pdftotext``; characters outside cp1252 become ``?``.
    ``invisible=True`` draws the text in render mode 3 (an OCR layer: extracted, never seen).
    """
    n = len(pages)
    # 1 catalog, 2 pages, 3 Helvetica, 4 Helvetica-Bold, then (page, content) pairs.
    kids = [5 + 2 * i for i in range(n)]
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % k for k in kids), n),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold"
        b" /Encoding /WinAnsiEncoding >>",
    ]
    width, height = _A4_PT
    for i, lines in enumerate(pages):
        ops = [b"BT", b"/F1 11 Tf", b"14 TL", b"57 %.2f Td" % (height - 57 - 11)]
        if invisible:
            ops.append(b"3 Tr")
        current = b"/F1"
        for line in lines:
            bold = line.startswith("# ")
            text = line[2:] if bold else line
            font = b"/F2" if bold else b"/F1"
            if font != current:
                ops.append(font + b" 11 Tf")
                current = font
            ops.append(_pdf_string(text) + b" Tj T*")
        ops.append(b"ET")
        content = b"\n".join(ops)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.3f %.3f]"
            b" /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents %d 0 R >>"
            % (width, height, kids[i] + 1)
        )
        objects.append(_stream(content))
    return _write_pdf(objects, path)


def image_pdf(images: Sequence[Image.Image], path: StrPath, *, dpi: int = 300) -> Path:
    """An image-only PDF (no fonts, no text layer), one image per page, page size from ``dpi``."""
    if not images:
        raise ValueError("image_pdf needs at least one image")
    dest = Path(path)
    first, *rest = (im if im.mode in ("L", "RGB") else im.convert("RGB") for im in images)
    first.save(dest, format="PDF", save_all=True, append_images=rest, resolution=float(dpi))
    return dest


def _qpdf(*args: str) -> None:
    proc = subprocess.run(
        ["qpdf", "--warning-exit-0", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"qpdf {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")


def mixed_pdf(pages: Sequence[Sequence[str] | Image.Image], path: StrPath) -> Path:
    """Text pages (lists of lines) and scanned pages (images, at 300 dpi) in the given order."""
    if not pages:
        raise ValueError("mixed_pdf needs at least one page")
    dest = Path(path)
    with tempfile.TemporaryDirectory(prefix="pdfgen-") as tmp:
        parts: list[str] = []
        for i, page in enumerate(pages):
            part = Path(tmp) / f"p{i:05d}.pdf"
            if isinstance(page, Image.Image):
                image_pdf([page], part)
            else:
                text_pdf([page], part)
            parts.append(str(part))
        _qpdf("--empty", "--pages", *parts, "--", str(dest))
    return dest


def overlay_pdf(under: StrPath, over: StrPath, path: StrPath) -> Path:
    """``over``'s pages drawn on top of ``under``'s (e.g. an invisible text layer on a scan)."""
    dest = Path(path)
    _qpdf(str(under), "--overlay", str(over), "--", str(dest))
    return dest


def encrypted_pdf(src: StrPath, path: StrPath, *, user_password: str = "secret") -> Path:
    """AES-256 encrypted copy of ``src``; ``user_password=""`` opens without a password."""
    dest = Path(path)
    owner = f"owner-{user_password or 'open'}"
    _qpdf("--encrypt", user_password, owner, "256", "--", str(src), str(dest))
    return dest


def truncated(src: StrPath, path: StrPath, *, keep: float = 0.5) -> Path:
    """The first ``keep`` fraction of ``src``'s bytes (a half-uploaded or cut-off file)."""
    data = Path(src).read_bytes()
    dest = Path(path)
    dest.write_bytes(data[: int(len(data) * keep)])
    return dest


def corrupt(src: StrPath, path: StrPath, *, seed: int, flips: int = 50) -> Path:
    """``src`` with ``flips`` seeded random bytes changed, all after the ``%PDF-x.y`` line."""
    data = bytearray(Path(src).read_bytes())
    start = data.find(b"\n") + 1 if data.startswith(b"%PDF") else 0
    rng = random.Random(seed)
    if len(data) > start:
        for _ in range(flips):
            pos = rng.randrange(start, len(data))
            data[pos] ^= rng.randint(1, 255)
    dest = Path(path)
    dest.write_bytes(bytes(data))
    return dest


def empty_pages_pdf(n: int, path: StrPath) -> Path:
    """``n`` blank A4 pages (no content streams); about 70 bytes a page, fast for n=10000."""
    if n < 1:
        raise ValueError("empty_pages_pdf needs n >= 1 (see zero_pages_pdf)")
    page = b"<< /Type /Page /Parent 2 0 R >>"
    kids = b" ".join(b"%d 0 R" % (3 + i) for i in range(n))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /MediaBox [0 0 595.276 841.89] /Resources << >>"
        b" /Kids [%s] /Count %d >>" % (kids, n),
        *([page] * n),
    ]
    return _write_pdf(objects, path)


def zero_pages_pdf(path: StrPath) -> Path:
    """A syntactically valid PDF whose page tree is empty (``/Count 0``, no kids)."""
    return _write_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [] /Count 0 >>",
        ],
        path,
    )


# --------------------------------------------------------------------------------------------
# Content
# --------------------------------------------------------------------------------------------


def lab_report_lines(
    *,
    last: str,
    first: str,
    birth: str,
    doc_date: str,
    lang: str = "fr",
    extra_names: bool = True,
) -> list[str]:
    """The lines of one page of a realistic lab report, for :func:`render_page` or text_pdf.

    ``birth`` and ``doc_date`` are printed exactly as given. ``extra_names=True`` adds the
    other people a real report names (prescriber, biologist) so matchers meet distractors;
    ``False`` leaves the patient as the only person named.
    """
    if lang == "fr":
        lines = [
            "# LABORATOIRE DE BIOLOGIE MÉDICALE DU CENTRE",
            "12 rue de la République - 69002 Lyon - Tél. 04 78 00 00 00",
            "",
            "# COMPTE RENDU D'ANALYSES",
            "",
        ]
        if extra_names:
            lines.append("Prescripteur : Dr Paul LEROY")
        lines += [
            "Dossier n° 2611-0457        Édité le : " + doc_date,
            "",
            f"Nom : {last}    Prénom : {first}",
            f"Né(e) le : {birth}",
            f"Date du prélèvement : {doc_date}",
            "",
            "# HÉMATOLOGIE",
            "Examen              Résultat      Unité          Valeurs de référence",
            "Hémoglobine         13,8          g/dL           13,0 - 17,0",
            "Leucocytes          6,4           G/L            4,0 - 10,0",
            "Plaquettes          245           G/L            150 - 400",
            "",
            "# BIOCHIMIE",
            "Glycémie à jeun     1,02          g/L            0,70 - 1,10",
            "",
            "Résultats validés biologiquement.",
        ]
        if extra_names:
            lines.append("Dr Anne ROUX, biologiste")
        else:
            lines.append("Le biologiste responsable")
        return lines
    if lang == "en":
        lines = [
            "# CENTRAL CLINICAL PATHOLOGY LABORATORY",
            "12 High Street - London W1 2AB - Tel. 020 7946 0000",
            "",
            "# LABORATORY REPORT",
            "",
            f"Patient: {first} {last}",
            f"DOB: {birth}",
            f"Date of report: {doc_date}",
        ]
        if extra_names:
            lines.append("Ordered by: Dr Paul Leroy")
        lines += [
            "",
            "# HAEMATOLOGY",
            "Test                Result        Units          Reference range",
            "Haemoglobin         138           g/L            130 - 170",
            "White cell count    6.4           x10^9/L        4.0 - 10.0",
            "Platelets           245           x10^9/L        150 - 400",
            "",
            "# BIOCHEMISTRY",
            "Fasting glucose     5.7           mmol/L         3.9 - 6.1",
            "",
        ]
        lines.append("Authorised by Dr Anne Roux, clinical scientist" if extra_names else
                     "Authorised by the duty clinical scientist")
        return lines
    raise ValueError(f"lang must be 'fr' or 'en', not {lang!r}")


def report(last: str, first: str, birth: str, tag: str = "") -> list[str]:
    """A French lab report of 05/11/2026 for one patient: the page most tests drop. `tag`, a
    last line of its own, makes two reports for the same patient different files."""
    lines = lab_report_lines(last=last, first=first, birth=birth, doc_date="05/11/2026")
    return [*lines, tag] if tag else lines


def write_sample_scan(
    path: StrPath,
    *,
    last: str = "DUPONT",
    first: str = "Jean",
    birth: str = "12/03/1961",
    seed: int = 1,
    doc_date: str = "05/11/2026",
) -> Path:
    """One degraded scanned French lab report as an image-only PDF (the dev demo's input)."""
    lines = lab_report_lines(last=last, first=first, birth=birth, doc_date=doc_date)
    return image_pdf([degrade(render_page(lines), seed=seed)], path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.pdfgen", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sample = sub.add_parser("sample", help="write one scanned French lab report PDF")
    sample.add_argument("out", type=Path)
    sample.add_argument("--last", default="DUPONT")
    sample.add_argument("--first", default="Jean")
    sample.add_argument("--birth", default="12/03/1961")
    sample.add_argument("--date", dest="doc_date", default="05/11/2026")
    sample.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    out = write_sample_scan(
        args.out,
        last=args.last,
        first=args.first,
        birth=args.birth,
        seed=args.seed,
        doc_date=args.doc_date,
    )
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
