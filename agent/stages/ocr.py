"""Text of each page: its text layer where it has a real one, OCR where it does not.

One `pdftotext` run gives every page's text layer (pages end with a form feed). A page whose
layer is not real text — a scan, or invisible junk left by a bad OCR — is rasterised alone by
`pdftoppm -gray` to a PGM file and read by tesseract from that file; Python never holds a
page's pixels (`agent.stages.pgm` works file to file), so memory stays flat whatever the page
count. Pages of one document are read in parallel, each
holding one of the process-wide slots of `agent.tools.runner`.

Choices, measured by `python -m bench.reading` (figures in README "Performance"):
- PGM, grey, 300 dpi: PNG costs an encode in pdftoppm and a decode in tesseract; colour input
  makes tesseract slower for no gain; 200 dpi loses characters on small print.
- Orientation is told before the page is read, by tesseract's orientation detection on the
  page's inkiest eighth at half resolution (a fraction of a reading's cost): a page upside down
  or on its side is turned back on its bytes (`agent.stages.pgm`) and read once with the
  default layout mode. Reading first and retrying on low confidence, as
  before, read every turned page twice (the first time slower than an upright page) and every
  poor upright scan twice for nothing. A page is read again with `--psm 1` only when its
  orientation could not be told and it reads under ORIENTATION_RETRY_CONFIDENCE, or when it
  reads like junk (JUNK_CONFIDENCE) however it was told. Always using
  `--psm 1` costs about a quarter more time on every upright page.
- pdftoppm and tesseract are run directly, not through pdf2image/pytesseract: those reap the
  child with waitpid() and lose its CPU usage, which the cost ledger needs exactly per page; and
  pdf2image runs an extra pdfinfo before every page.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from math import floor, sqrt
from pathlib import Path
from statistics import fmean
from typing import Literal, Protocol, TypeVar

from agent.errors import CorruptPdf, OcrTimeout, PageTooLarge, TooComplex, ToolFailed
from agent.i18n import N_
from agent.logs import get_logger
from agent.stages import pgm
from agent.tools import pdftoppm, pdftotext, runner, tesseract

STAGE = "text"
MIN_WORDS = 5  # fewer real words than this on a page: the text layer is not worth trusting
MIN_WORD_SHARE = 0.3  # real words must make this share of the layer's non-blank characters
MIN_DPI = 36
# A page whose orientation could not be told and that reads under this mean word confidence is
# read again with `--psm 1`, which finds its orientation (see above). Tesseract's scale, hence
# the same figure as the name rule's default (DOCAGENT_MIN_NAME_CONFIDENCE), but another rule:
# that one decides what may file by itself, this one what is worth a second reading, and
# raising the first must not slow every page.
ORIENTATION_RETRY_CONFIDENCE = 70.0
# Tesseract's orientation confidence on a page's inkiest band above which the page is turned
# before its one reading; under it, the page is read as it stands.
MIN_ORIENTATION_CONFIDENCE = 2.0
# A page read the wrong way up reads at 35-50 % (junk), a poor upright scan at 55-65 %: under
# this, a page whose orientation was told is read again all the same, in case it was told wrong.
JUNK_CONFIDENCE = 50.0
PDFTOTEXT_TIMEOUT = 120.0
TextSource = Literal["text-layer", "ocr", "mixed"]
log = get_logger("ocr")
_WORD = re.compile(r"[^\W\d_]{2,}(?:['’-][^\W\d_]+)*")
_VOWELS = set("aeiouyàâäéèêëîïôöùûüÿæœAEIOUYÀÂÄÉÈÊËÎÏÔÖÙÛÜŸÆŒ")


@dataclass(frozen=True)
class PageText:
    number: int
    text: str
    source: Literal["text-layer", "ocr"]
    confidence: float | None = None  # mean word confidence 0-100, OCR pages only
    dpi: int | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # user+sys CPU of the child processes that rendered/read it


@dataclass(frozen=True)
class OcrOptions:
    langs: str = "fra+eng"
    dpi: int = 300
    timeout: float = 180.0
    max_pixels: int = 50_000_000


def letters(text: str) -> int:
    return sum(1 for ch in text if ch.isalpha())


def real_words(text: str) -> list[str]:
    """Words a person wrote: two letters or more, with a vowel, not one letter repeated."""
    return [w for w in _WORD.findall(text)
            if any(ch in _VOWELS for ch in w) and len(set(w.lower())) > 1]


def has_text_layer(text: str) -> bool:
    """A layer of real text, not a scan's empty layer nor the junk of a failed OCR."""
    words = real_words(text)
    if len(words) < MIN_WORDS:
        return False
    visible = sum(1 for ch in text if not ch.isspace())
    return sum(len(w) for w in words) >= MIN_WORD_SHARE * visible


def text_layers(pdf: Path, pages: int) -> tuple[list[str], float]:
    """Each page's text layer ('' where there is none), and the CPU seconds it took.

    A PDF whose text cannot be extracted within pdftotext's time or memory is failed, not read
    by OCR: what overwhelmed pdftotext (a text bomb) would overwhelm pdftoppm the same way.
    """
    try:
        found = pdftotext.layers(pdf, pages=pages, timeout=PDFTOTEXT_TIMEOUT, stage=STAGE)
    except runner.ChildTimeout:
        raise TooComplex(N_("the PDF holds far more text than a document: extracting it took "
                            "more than %(seconds).0f s"), seconds=PDFTOTEXT_TIMEOUT, stage=STAGE,
                         detail=f"pdftotext ran over {PDFTOTEXT_TIMEOUT:.0f} s") from None
    except runner.OverLimit as over:
        raise TooComplex(over.choose(
            N_("the PDF holds far more text than a document: extracting it needed more than "
               "the %(mib)d MiB of memory allowed"),
            N_("the PDF holds far more text than a document: extracting it needed more than "
               "the processor time allowed")), mib=over.mib, stage=STAGE,
            detail=over.complaint) from None
    except runner.Failed as failed:
        return [""] * pages, failed.cpu_seconds  # no layer it can read: every page is OCR'd
    return list(found.pages), found.cpu_seconds


def dpi_for(page_size_pt: tuple[float, float], options: OcrOptions) -> int:
    """The configured DPI, lowered so the page stays under the pixel cap."""
    width_in, height_in = page_size_pt[0] / 72, page_size_pt[1] / 72
    area = max(width_in * height_in, 1e-6)
    capped = floor(sqrt(options.max_pixels / area))
    return max(MIN_DPI, min(options.dpi, capped))


def check_size(number: int, page_size_pt: tuple[float, float], options: OcrOptions) -> int:
    """The DPI to render at; a page too large for the pixel cap even at MIN_DPI fails."""
    dpi = dpi_for(page_size_pt, options)
    pixels = (page_size_pt[0] / 72 * dpi) * (page_size_pt[1] / 72 * dpi)
    if pixels > options.max_pixels:
        w_cm, h_cm = (round(x / 72 * 2.54) for x in page_size_pt)
        raise PageTooLarge(
            N_("page %(page)d is too large to read (%(width)d x %(height)d cm: over the pixel "
               "cap of %(cap)s even at %(dpi)d dpi)"), page=number, width=w_cm, height=h_cm,
            cap=f"{options.max_pixels:,}", dpi=MIN_DPI, stage=STAGE)
    return dpi


def _assemble(words: Sequence[tesseract.Word]) -> tuple[str, float | None]:
    """Words back into lines, in tesseract's reading order, plus the mean word confidence."""
    lines: dict[tuple[int, int, int, int], list[str]] = {}
    for word in words:
        lines.setdefault((word.page, word.block, word.paragraph, word.line), []).append(word.text)
    confidences = [word.confidence for word in words if word.confidence >= 0]
    out: list[str] = []
    previous_block = None
    for (_page, block, _par, _line), texts in lines.items():
        if previous_block is not None and block != previous_block:
            out.append("")
        out.append(" ".join(texts))
        previous_block = block
    return "\n".join(out), (round(fmean(confidences), 1) if confidences else None)


class _Spent(Protocol):
    @property
    def cpu_seconds(self) -> float: ...


_Result = TypeVar("_Result", bound=_Spent)


class _Budget:
    """One page's time limit, shared by the children that render and read it."""

    def __init__(self, number: int, timeout: float) -> None:
        self.number = number
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.cpu = 0.0

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def spend(self, step: Callable[[float], _Result], what: str) -> _Result:
        """`step` given the time left, its CPU counted; out of time or over a limit, the
        page fails."""
        try:
            done = step(self.left())
        except runner.ChildTimeout as error:
            self.cpu += error.cpu_seconds
            template = N_("page %(page)d took more than %(seconds)g s to render (the per-page "
                          "OCR time limit)") if what == "render" else \
                N_("page %(page)d took more than %(seconds)g s to read (the per-page OCR time "
                   "limit)")
            raise OcrTimeout(template, page=self.number, seconds=self.timeout,
                             stage=STAGE) from None
        except runner.OverLimit as over:
            self.cpu += over.cpu_seconds
            template = over.choose(
                N_("page %(page)d is too complex to render: it needed more than the %(mib)d "
                   "MiB of memory allowed"),
                N_("page %(page)d is too complex to render: it needed more than the processor "
                   "time allowed")) if what == "render" else over.choose(
                N_("page %(page)d is too complex to read: it needed more than the %(mib)d MiB "
                   "of memory allowed"),
                N_("page %(page)d is too complex to read: it needed more than the processor "
                   "time allowed"))
            raise TooComplex(template, page=self.number, mib=over.mib, stage=STAGE,
                             detail=over.complaint) from None
        self.cpu += done.cpu_seconds
        return done


def _render(pdf: Path, number: int, dpi: int, budget: _Budget, workdir: Path) -> Path:
    try:
        return budget.spend(lambda left: pdftoppm.render(
            pdf, number, dpi=dpi, base=workdir / f"page-{number}", fmt="pgm", timeout=left,
            stage=STAGE), "render").path
    except runner.Failed as failed:
        raise CorruptPdf(N_("page %(page)d of the PDF is damaged and cannot be rendered"),
                         page=number,
                         stage=STAGE, detail=failed.said[:500]) from None


def _tesseract(image: Path, psm: int, options: OcrOptions, budget: _Budget,
               ) -> tuple[str, float | None]:
    try:
        read = budget.spend(lambda left: tesseract.read(
            image, langs=options.langs, psm=psm, timeout=left, stage=STAGE), "read")
    except runner.Failed as failed:
        raise ToolFailed(f"tesseract failed on page {budget.number}", stage=STAGE,
                         detail=failed.said[:500]) from None
    return _assemble(read.words)


def _orientation(image: Path, budget: _Budget, workdir: Path) -> tesseract.Orientation:
    """Which way up the page stands, told from its inkiest band at half resolution."""
    unknown = tesseract.Orientation(0, 0.0, 0.0)
    band = workdir / f"band-{budget.number}.pgm"
    try:
        pgm.inkiest_band(image, band)
        return budget.spend(lambda left: tesseract.orientation(band, timeout=left, stage=STAGE),
                            "tell its orientation")
    except (pgm.NotPgm, runner.Failed):
        return unknown
    finally:
        band.unlink(missing_ok=True)


def ocr_page(pdf: Path, number: int, page_size_pt: tuple[float, float], options: OcrOptions,
             workdir: Path) -> PageText:
    dpi = check_size(number, page_size_pt, options)
    with runner.slot():
        started = time.monotonic()
        budget = _Budget(number, options.timeout)
        image = _render(pdf, number, dpi, budget, workdir)
        turned: Path | None = None
        try:
            way = _orientation(image, budget, workdir)
            told = way.confidence >= MIN_ORIENTATION_CONFIDENCE
            read_from = image
            if told and way.rotate in (90, 180, 270):
                # Turned back on the bytes, exactly, and read once as an upright page.
                turned = pgm.turned(image, way.rotate, workdir / f"turned-{number}.pgm")
                read_from = turned
            text, confidence = _tesseract(read_from, 3, options, budget)
            if confidence is None or confidence < (
                    JUNK_CONFIDENCE if told else ORIENTATION_RETRY_CONFIDENCE):
                # Orientation not told and a poor reading, or told and a reading of junk (a
                # page read the wrong way up): tesseract finds the orientation on the page as
                # rendered. A page told its way up that reads poorly is a poor scan, which a
                # second reading does not mend.
                again, again_conf = _tesseract(image, 1, options, budget)
                if (again_conf or 0.0) > (confidence or 0.0):
                    text, confidence = again, again_conf
        finally:
            image.unlink(missing_ok=True)
            if turned is not None:
                turned.unlink(missing_ok=True)
    return PageText(number, text, "ocr", confidence, dpi, round(time.monotonic() - started, 3),
                    round(budget.cpu, 4))


def read_pages(pdf: Path, page_sizes_pt: tuple[tuple[float, float], ...],
               options: OcrOptions) -> list[PageText]:
    """Every page's text, from its layer or by OCR, in page order.

    The text-layer pass reads every page in one run; its CPU is shared equally among the pages,
    so the pages' cpu_seconds add up to the document's exactly.
    """
    count = len(page_sizes_pt)
    layers, layer_cpu = text_layers(pdf, count)
    share = layer_cpu / max(count, 1)
    for number, size in enumerate(page_sizes_pt, start=1):
        if not has_text_layer(layers[number - 1]):
            check_size(number, size, options)  # fail a too-large page before any OCR work
    pages: dict[int, PageText] = {}
    scanned = [n for n in range(1, count + 1) if not has_text_layer(layers[n - 1])]
    for number in range(1, count + 1):
        if number not in scanned:
            pages[number] = PageText(number, layers[number - 1], "text-layer")
    if scanned:
        with tempfile.TemporaryDirectory(prefix="docagent-ocr-") as tmp, \
                ThreadPoolExecutor(max_workers=min(len(scanned), runner.slot_count()),
                                   thread_name_prefix="page") as pool:
            futures = [pool.submit(ocr_page, pdf, n, page_sizes_pt[n - 1], options, Path(tmp))
                       for n in scanned]
            _, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()  # one page failed its document: start no more
            wait(futures)  # pages in flight finish before their folder goes
            for future in futures:
                error = None if future.cancelled() else future.exception()
                if error is not None:
                    raise error
            for future in futures:
                page = future.result()
                pages[page.number] = page
    return [_with_cpu(pages[n], share) for n in range(1, count + 1)]


def _with_cpu(page: PageText, share: float) -> PageText:
    return PageText(page.number, page.text, page.source, page.confidence, page.dpi,
                    page.seconds, round(page.cpu_seconds + share, 4))


def text_source(pages: list[PageText]) -> TextSource:
    sources = {p.source for p in pages}
    if sources == {"text-layer"}:
        return "text-layer"
    if sources == {"ocr"}:
        return "ocr"
    return "mixed"
