"""Hostile and broken PDFs, generated at run time (nothing binary is committed).

Each builder writes one file and returns its path. Built by hand on pdfgen's writer where a
library would refuse to make something this bad, and repaired through qpdf where an edit would
break the cross-reference table.
"""

from __future__ import annotations

import io
import random
import zlib
from pathlib import Path

from PIL import Image, ImageCms

from tests import pdfgen

_PAGE_TREE = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"]


def variants(sources: list[Path], folder: Path, *, count: int, seed: int) -> list[Path]:
    """`count` seeded damaged copies of the sources: cut short at a random point, or with a
    few random bytes flipped (a bad disk, a bad transfer)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        src = sources[i % len(sources)]
        dest = folder / f"damaged-{i:02d}.pdf"
        if i % 2:
            pdfgen.corrupt(src, dest, seed=rng.randrange(1 << 30), flips=rng.randint(1, 6))
        else:
            pdfgen.truncated(src, dest, keep=rng.uniform(0.3, 0.999))
        out.append(dest)
    return out


def bomb(path: Path, *, gib: int = 2) -> Path:
    """One page whose FlateDecode content stream inflates to `gib` GiB of blanks (a few MB on
    disk): whoever inflates it into memory dies."""
    packer = zlib.compressobj(1)
    blank = b" " * (1 << 20)
    data = b"".join(packer.compress(blank) for _ in range(gib * 1024)) + packer.flush()
    return pdfgen._write_pdf([
        *_PAGE_TREE,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        pdfgen._stream(data, b" /Filter /FlateDecode"),
    ], path)


def text_bomb(path: Path, *, mib: int = 32) -> Path:
    """One page whose FlateDecode content stream inflates to `mib` MiB of text drawing (about
    1/130 of that on disk): 130 lines of a 200-letter word, repeated with the page shifted a
    little each time so no two draw the same place. pdftotext keeps every character with its
    position: about 35 MiB of memory per MiB of text (6 GiB for 64 MiB, unbounded)."""
    word = (b"loremipsumdolorsitametconsecteturadipiscingelit" * 5)[:200]
    # One block fits zlib's 32 KiB window: each repeat compresses to a few hundred bytes.
    block = b"BT /F1 4 Tf\n" + b"".join(
        b"1 0 0 1 20 %.1f Tm (%s) Tj\n" % (20 + i * 800 / 130, word) for i in range(130)
    ) + b"ET Q\n"
    packer = zlib.compressobj(9)
    parts, size, k = [], 0, 0
    while size < mib << 20:
        shift = b"q 1 0 0 1 %.2f %.2f cm\n" % (k % 17 * 0.31, k // 17 % 19 * 0.29)
        parts.append(packer.compress(shift + block))
        size, k = size + len(shift) + len(block), k + 1
    data = b"".join(parts) + packer.flush()
    return pdfgen._write_pdf([
        *_PAGE_TREE,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842]"
        b" /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        pdfgen._stream(data, b" /Filter /FlateDecode"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ], path)


def huge_image(path: Path, *, pixels: int = 20_000, dpi: int = 72) -> Path:
    """A page holding one white image of `pixels` x `pixels` (1 bit, 48 KB compressed), the
    page sized so the image is at `dpi`: 72 gives a 7 m square page, 300 a 1.7 m one."""
    row = b"\xff" * (pixels // 8)
    data = zlib.compress(row * pixels, 9)
    side = pixels * 72 / dpi
    return pdfgen._write_pdf([
        *_PAGE_TREE,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f]"
        b" /Resources << /XObject << /Im0 5 0 R >> >> /Contents 4 0 R >>" % (side, side),
        pdfgen._stream(b"q %.2f 0 0 %.2f 0 0 cm /Im0 Do Q" % (side, side)),
        pdfgen._stream(data, b" /Type /XObject /Subtype /Image /Width %d /Height %d"
                       b" /BitsPerComponent 1 /ColorSpace /DeviceGray /Filter /FlateDecode"
                       % (pixels, pixels)),
    ], path)


def _with_catalog(src: Path, path: Path, extra: bytes, objects: list[bytes]) -> Path:
    """`src` (a pdfgen.text_pdf) with `extra` entries in its catalog and `objects` appended,
    the cross-reference table rebuilt by qpdf."""
    data = src.read_bytes()
    catalog = b"<< /Type /Catalog /Pages 2 0 R >>"
    assert catalog in data
    data = data.replace(catalog, b"<< /Type /Catalog /Pages 2 0 R " + extra + b" >>", 1)
    if objects:
        first = data.count(b" 0 obj\n") + 1
        body = b"".join(b"%d 0 obj\n%s\nendobj\n" % (first + i, obj)
                        for i, obj in enumerate(objects))
        data = data.replace(b"xref\n", body + b"xref\n", 1)
    broken = path.with_name(path.name + ".raw")
    broken.write_bytes(data)
    pdfgen._qpdf(str(broken), str(path))
    broken.unlink()
    return path


def with_javascript_and_attachment(src: Path, path: Path) -> Path:
    """Opens by running JavaScript, and carries an embedded executable-looking file."""
    attachment = b"#!/bin/sh\necho pwned\n"
    n = src.read_bytes().count(b" 0 obj\n")
    extra = (b"/OpenAction << /S /JavaScript /JS (app.alert\\('hello'\\); this.print\\(\\);) >>"
             b" /Names << /EmbeddedFiles << /Names [(run.sh) %d 0 R] >> >>" % (n + 1))
    return _with_catalog(src, path, extra, [
        b"<< /Type /Filespec /F (run.sh) /EF << /F %d 0 R >> >>" % (n + 2),
        pdfgen._stream(attachment, b" /Type /EmbeddedFile"),
    ])


def pdfa(src: Path, path: Path) -> Path:
    """`src` marked as PDF/A-2b: XMP identification and an sRGB output intent. (Not checked by a
    validator: none is installed; it has the parts a PDF/A reader looks at.)"""
    n = src.read_bytes().count(b" 0 obj\n")
    xmp = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
           b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
           b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">'
           b"<pdfaid:part>2</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance>"
           b'</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    extra = (b"/Metadata %d 0 R /OutputIntents [<< /Type /OutputIntent /S /GTS_PDFA1"
             b" /OutputConditionIdentifier (sRGB) /DestOutputProfile %d 0 R >>]" % (n + 1, n + 2))
    return _with_catalog(src, path, extra, [
        pdfgen._stream(xmp, b" /Type /Metadata /Subtype /XML"),
        pdfgen._stream(icc, b" /N 3"),
    ])


def jpeg(path: Path) -> Path:
    """A real JPEG photo, named .pdf by whoever saved it."""
    buffer = io.BytesIO()
    Image.new("RGB", (320, 200), (200, 120, 40)).save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue())
    return path
