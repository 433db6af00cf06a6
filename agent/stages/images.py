"""The convert stage: an image (JPEG, PNG, TIFF, HEIC) becomes the PDF that is read and filed.

A phone's photo, a scanner's TIFF or PNG are taken like PDFs: converted without loss of their
image data into a PDF (`agent.tools.imagepdf`, a child process under the runner's limits; how
each format goes in is said in `imagepdf_main.py`), which every later stage reads as any
other PDF. The original bytes stay beside the filed PDF (the spool places them), and the
document's sha256, hence its duplicates, is the original's.

What an image is, is told by its bytes, not its name (a JPEG saved as `scan.pdf` is a JPEG); a
file named as an image whose bytes are no image it knows is a damaged image (`corrupt-image`),
not "not a PDF". Here too: when an image dropped in incoming/ is whole enough to take
(`whole`, for the watcher).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent.errors import CorruptImage, PageTooLarge, TooComplex, TooLarge, TooManyPages
from agent.i18n import N_
from agent.stages.record import Original
from agent.tools import imagepdf, runner

STAGE = "convert"
HEAD = 64  # bytes enough to tell each format


@dataclass(frozen=True)
class Kind:
    name: str  # as the converter and the staff call it: JPEG, PNG, TIFF, HEIC
    media_type: str
    extension: str  # of the original kept beside the PDF
    suffixes: tuple[str, ...]  # names it goes by


JPEG = Kind("JPEG", "image/jpeg", ".jpg", (".jpg", ".jpeg", ".jpe", ".jfif"))
PNG = Kind("PNG", "image/png", ".png", (".png",))
TIFF = Kind("TIFF", "image/tiff", ".tif", (".tif", ".tiff"))
HEIC = Kind("HEIC", "image/heic", ".heic", (".heic", ".heif", ".hif"))
KINDS = (JPEG, PNG, TIFF, HEIC)
SUFFIXES = tuple(suffix for kind in KINDS for suffix in kind.suffixes)
# ISO-BMFF brands of HEVC-coded HEIF (a phone's HEIC); AVIF, also HEIF, is not taken.
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_PNG_END = b"IEND\xaeB`\x82"


def sniff(head: bytes) -> Kind | None:
    """The image format of a file's first bytes, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return TIFF
    if head[4:8] == b"ftyp":
        size = int.from_bytes(head[:4], "big")
        brands = {head[at:at + 4] for at in range(8, min(size, len(head)), 4)} - {b"\0\0\0\0"}
        if brands & _HEIC_BRANDS:
            return HEIC
    return None


def named(name: str) -> Kind | None:
    """The image format a file's name says it is, or None."""
    lowered = name.lower()
    return next((kind for kind in KINDS if lowered.endswith(kind.suffixes)), None)


def without_suffix(name: str) -> str:
    """`name` without an image's suffix: `photo.jpg` is filed as `..._photo.pdf`, beside
    `..._photo.original.jpg`."""
    lowered = name.lower()
    for suffix in SUFFIXES:
        if lowered.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def identify(head: bytes, name: str) -> Kind | None:
    """The image this file is, or None when it is no image (a PDF, or what inspect refuses).

    Raises CorruptImage when its name says it is an image and its bytes are not one.
    """
    found = sniff(head)
    if found is not None or not head:
        return found
    claimed = named(name)
    if claimed is not None and b"%PDF-" not in head[:1024]:
        raise CorruptImage(N_("the file is named as a %(format)s image but is not one"),
                           format=claimed.name, stage=STAGE,
                           detail=f"first bytes: {head[:16]!r}")
    return None


def whole(head: bytes, tail: bytes) -> bool:
    """The image's writer is done, as far as its bytes tell: a JPEG ends with its end-of-image
    marker, a PNG with its IEND chunk. A TIFF or a HEIC says nothing at its end: it is taken
    once its size stops changing. (A phone's JPEG may carry data after its end marker, a
    motion photo's video: that too waits for its size to settle, never longer.)"""
    kind = sniff(head)
    if kind is JPEG:
        return tail.endswith(b"\xff\xd9")
    if kind is PNG:
        return tail.endswith(_PNG_END)
    return False


def convert(source: Path, dest: Path, kind: Kind, *, max_bytes: int, max_pixels: int,
            max_pages: int, timeout: float) -> Original:
    """Write the PDF of `source` (an image of `kind`) at `dest`; what it was, for the record.

    Raises TooLarge (the received file over DOCAGENT_MAX_BYTES), CorruptImage, TooManyPages,
    PageTooLarge (a page over DOCAGENT_MAX_PIXELS), TooComplex (over the converter's time or
    memory), and the runner's machine faults (ToolFailed). A converter that fails in any other
    way is a bug of ours: runner.Failed goes up as it is.
    """
    size = source.stat().st_size
    if size > max_bytes:
        raise TooLarge(N_("the file is %(size).1f MB, over the limit of %(limit).1f MB"),
                       size=size / 1024**2, limit=max_bytes / 1024**2, stage=STAGE)
    try:
        made = imagepdf.convert(source, dest, fmt=kind.name, max_pixels=max_pixels,
                                max_pages=max_pages, timeout=timeout, stage=STAGE)
    except imagepdf.Refused as refused:
        raise _refusal(kind, refused) from None
    except imagepdf.Crashed as crashed:
        raise CorruptImage(N_("the %(format)s image is damaged and cannot be read"),
                           format=kind.name, stage=STAGE, detail=crashed.said) from None
    except runner.ChildTimeout:
        raise TooComplex(N_("the image could not be converted in time: it took more than "
                            "%(seconds).0f s"), seconds=timeout, stage=STAGE) from None
    except runner.OverLimit as over:
        raise TooComplex(over.choose(
            N_("the image is too complex to convert: it needed more than the %(mib)d MiB of "
               "memory allowed"),
            N_("the image is too complex to convert: it needed more than the processor time "
               "allowed")), mib=over.mib, stage=STAGE, detail=over.complaint) from None
    return Original(format=kind.name, media_type=kind.media_type, extension=kind.extension,
                    size=size, pages=made.pages, rotations=made.rotations,
                    flattened=made.flattened, embedded=made.embedded)


def _refusal(kind: Kind, refused: imagepdf.Refused) -> TooManyPages | PageTooLarge | CorruptImage:
    facts = refused.facts
    if refused.fault == "too-many-pages":
        return TooManyPages(N_("the %(format)s image has %(pages)d pages, over the limit of "
                               "%(limit)d"), format=kind.name, pages=int(facts["pages"]),
                            limit=int(facts["limit"]), stage=STAGE)
    if refused.fault == "too-many-pixels":
        return PageTooLarge(N_("the %(format)s image is %(megapixels).1f megapixels, over the "
                               "limit of %(limit).1f"), format=kind.name,
                            megapixels=int(facts.get("pixels") or 0) / 1e6,
                            limit=int(facts["limit"]) / 1e6, stage=STAGE,
                            detail=str(facts.get("why") or f"page {facts.get('page')}"))
    if facts.get("truncated"):
        return CorruptImage(N_("the %(format)s image is cut short: its end is missing"),
                            format=kind.name, stage=STAGE, detail=refused.said)
    return CorruptImage(N_("the %(format)s image is damaged and cannot be read"),
                        format=kind.name, stage=STAGE, detail=refused.said)
