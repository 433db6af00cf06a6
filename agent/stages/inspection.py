"""The inspect stage: is this file a PDF we can read, within the limits? Decided before any OCR.

Cheap checks first (size, magic bytes), then `pdfinfo` for the page count, encryption and page
sizes. Every refusal is a `DocumentError` whose message a receptionist can act on.

The questions the intake asks pdfinfo before it takes a file (`opens`: is it whole yet?;
`page_count`) live here too, beside the one pdfinfo runner; they judge no document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.errors import (
    CorruptPdf,
    DocagentError,
    EmptyFile,
    Encrypted,
    MachineError,
    NoPages,
    NotPdf,
    TooComplex,
    TooLarge,
    TooManyPages,
)
from agent.i18n import N_
from agent.tools import pdfinfo, runner

STAGE = "inspect"
PDFINFO_TIMEOUT = 60.0
A4_PT = (595.0, 842.0)  # the size of a page pdfinfo printed none for


@dataclass(frozen=True)
class PdfInfo:
    pages: int
    encrypted: bool
    page_sizes_pt: tuple[tuple[float, float], ...]  # (width, height) per page, in points


def looks_like_pdf(head: bytes) -> bool:
    # The spec allows junk before the header; readers accept it within the first 1 KiB.
    return b"%PDF-" in head[:1024]


def _pdfinfo(path: Path, *, first: int | None = None, last: int | None = None,
             timeout: float = PDFINFO_TIMEOUT, pass_fds: Sequence[int] = ()) -> pdfinfo.Info:
    """pdfinfo's reading of `path` (which may be `/proc/self/fd/N` of a descriptor in
    `pass_fds`).

    Raises pdfinfo.Refused, PopplerMissing, CorruptPdf when it runs out of time, TooComplex
    when its memory or CPU limit stopped it, ToolFailed when something else killed it.
    """
    try:
        return pdfinfo.info(path, first=first, last=last, timeout=timeout, stage=STAGE,
                            pass_fds=pass_fds)
    except runner.ChildTimeout:
        raise CorruptPdf(N_("the PDF could not be opened in time: it is probably damaged"),
                         stage=STAGE, detail=f"pdfinfo ran over {timeout:.0f} s") from None
    except runner.OverLimit as over:
        raise TooComplex(over.choose(
            N_("the PDF is too complex to open: its structure needs more than the %(mib)d MiB "
               "of memory allowed"),
            N_("the PDF is too complex to open: its structure needs more than the processor "
               "time allowed")), mib=over.mib, stage=STAGE, detail=over.complaint) from None


def page_count(path: Path, *, pass_fds: Sequence[int] = ()) -> int | None:
    """The page count if the file opens as a PDF now, else None (used to wait for copies)."""
    try:
        return _pdfinfo(path, timeout=15, pass_fds=pass_fds).pages
    except (MachineError, CorruptPdf, TooComplex, pdfinfo.Refused):
        return None


def opens(path: Path, *, pass_fds: Sequence[int] = ()) -> bool:
    """The file is a whole PDF now: it has a page count, or it is locked with a password, or
    it is too complex to open within the limits.

    A locked PDF never yields a page count without its password, nor does an over-limit one
    fit in its limits later; waiting would not change that, and `inspect` then fails it as
    encrypted or too complex, which is the reason a person can act on. A fault of the machine
    (pdfinfo missing, killed from outside) raises its MachineError: it says nothing of the
    file, which must not be judged incomplete for it.
    """
    try:
        _pdfinfo(path, timeout=15, pass_fds=pass_fds)
    except TooComplex:
        return True
    except CorruptPdf:
        return False
    except pdfinfo.Refused as refused:
        return refused.why == "password"
    return True


def inspect(path: Path, *, max_bytes: int | None, max_pages: int) -> PdfInfo:
    """`max_bytes` None: no byte limit (a PDF made from an image, whose limit was the image's)."""
    size = path.stat().st_size
    if size == 0:
        raise EmptyFile(N_("the file is empty (0 bytes)"), stage=STAGE)
    if max_bytes is not None and size > max_bytes:
        raise TooLarge(N_("the file is %(size).1f MB, over the limit of %(limit).1f MB"),
                       size=size / 1024**2, limit=max_bytes / 1024**2, stage=STAGE)
    with open(path, "rb") as handle:
        head = handle.read(1024)
    if not looks_like_pdf(head):
        raise NotPdf(_sniff(head), stage=STAGE)

    # One run for the counts, the encryption and every page's size: -l beyond the last page is
    # clamped by pdfinfo, and a file over the limit prints no more sizes than the limit.
    try:
        info = _pdfinfo(path, first=1, last=max_pages)
    except pdfinfo.Refused as refused:
        raise _refusal(refused) from None
    if info.pages == 0:
        raise NoPages(N_("the PDF has no pages"), stage=STAGE)
    if info.pages > max_pages:
        raise TooManyPages(N_("the PDF has %(pages)d pages, over the limit of %(limit)d"),
                           pages=info.pages, limit=max_pages, stage=STAGE)
    page_sizes = tuple(info.page_sizes_pt.get(n, A4_PT) for n in range(1, info.pages + 1))
    return PdfInfo(pages=info.pages, encrypted=info.encrypted, page_sizes_pt=page_sizes)


def _refusal(refused: pdfinfo.Refused) -> DocagentError:
    """What pdfinfo's refusal means for the person who dropped the file."""
    if refused.why == "password":
        return Encrypted(N_("the PDF is password-protected"), stage=STAGE,
                         detail=refused.said)
    if refused.why == "no-pages":
        return NoPages(N_("the PDF has no pages"), stage=STAGE, detail=refused.said[:500])
    if refused.why == "no-page-count":
        return CorruptPdf(N_("the PDF is damaged: its page count cannot be read"), stage=STAGE,
                          detail=refused.said[:500])
    return CorruptPdf(N_("the PDF is damaged and cannot be opened"), stage=STAGE,
                      detail=refused.said[:500])


def _sniff(head: bytes) -> str:
    """Why a file is not a document docagent reads, saying what it looks like when that can be
    told (a sentence each, for the staff's language). An image it converts (JPEG, PNG, TIFF,
    HEIC) never gets here: `agent.stages.images` took it."""
    signatures = {
        b"PK\x03\x04": N_("the file is not a document docagent reads (it looks like a ZIP "
                           "archive or an Office document)"),
        b"\xd0\xcf\x11\xe0": N_("the file is not a document docagent reads (it looks like an "
                                "old Office document)"),
        b"GIF8": N_("the file is not a document docagent reads (it looks like a GIF image)"),
    }
    for magic, said in signatures.items():
        if head.startswith(magic):
            return said
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html")):
        return N_("the file is not a document docagent reads (it looks like a web page)")
    return N_("the file is not a document docagent reads")


# What this refusal said before images were taken: records kept from then are still said in
# the staff's language (their message is kept, and looked up in the catalogue).
FORMER_SENTENCES = (
    N_("the file is not a PDF"),
    N_("the file is not a PDF (it looks like a JPEG image)"),
    N_("the file is not a PDF (it looks like a PNG image)"),
    N_("the file is not a PDF (it looks like a TIFF image)"),
    N_("the file is not a PDF (it looks like a ZIP or Office document)"),
    N_("the file is not a PDF (it looks like an old Office document)"),
    N_("the file is not a PDF (it looks like a GIF image)"),
    N_("the file is not a PDF (it looks like a web page)"),
)
