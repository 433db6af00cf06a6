"""Text of each page: its text layer where it has a real one, OCR where it does not.

One `pdftotext` run gives every page's text layer (pages end with a form feed). A page whose
layer has too few letters — a scan, or invisible junk — is rasterised alone with pdftoppm
(through pdf2image, written to a grey PGM file and never loaded into Python) and read by
tesseract from that file, so memory stays flat whatever the page count.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from math import floor, sqrt
from pathlib import Path
from statistics import fmean
from typing import Any, Literal

import pdf2image
import pdf2image.exceptions
import pytesseract

from agent.errors import (
    CorruptPdf,
    DiskFull,
    OcrEngineMissing,
    OcrTimeout,
    PopplerMissing,
    ToolFailed,
)
from agent.logs import get_logger

STAGE = "text"
MIN_LETTERS = 25  # fewer letters than this on a page: the text layer is not worth trusting
PDFTOTEXT_TIMEOUT = 120.0
TextSource = Literal["text-layer", "ocr", "mixed"]
log = get_logger("ocr")


@dataclass(frozen=True)
class PageText:
    number: int
    text: str
    source: Literal["text-layer", "ocr"]
    confidence: float | None = None  # mean word confidence 0-100, OCR pages only
    dpi: int | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class OcrOptions:
    langs: str = "fra+eng"
    dpi: int = 300
    timeout: float = 180.0
    max_pixels: int = 50_000_000


def limit_threads() -> None:
    """One thread per tesseract: several tesseracts each spawning threads crawl."""
    os.environ["OMP_THREAD_LIMIT"] = "1"


def letters(text: str) -> int:
    return sum(1 for ch in text if ch.isalpha())


def has_text_layer(text: str) -> bool:
    return letters(text) >= MIN_LETTERS


def text_layers(pdf: Path, pages: int) -> list[str]:
    """Each page's text layer ('' where there is none)."""
    try:
        done = subprocess.run(
            ["pdftotext", "-layout", "-enc", "UTF-8", "--", str(pdf), "-"],
            capture_output=True, timeout=PDFTOTEXT_TIMEOUT, check=False,
        )
    except FileNotFoundError:
        raise PopplerMissing("pdftotext (poppler) is not installed", stage=STAGE) from None
    except subprocess.TimeoutExpired:
        log.warning("pdftotext ran over %.0f s; reading every page by OCR", PDFTOTEXT_TIMEOUT)
        return [""] * pages
    if done.returncode != 0:
        return [""] * pages
    chunks = done.stdout.decode("utf-8", "replace").split("\f")
    return [(chunks[i] if i < len(chunks) else "") for i in range(pages)]


def dpi_for(page_size_pt: tuple[float, float], options: OcrOptions) -> int:
    """The configured DPI, lowered so the page stays under the pixel cap."""
    width_in, height_in = page_size_pt[0] / 72, page_size_pt[1] / 72
    area = max(width_in * height_in, 1e-6)
    capped = floor(sqrt(options.max_pixels / area))
    return max(36, min(options.dpi, capped))


def _tesseract_error(error: Exception, page: int) -> Exception:
    if isinstance(error, pytesseract.TesseractNotFoundError):
        return OcrEngineMissing("tesseract is not installed", stage=STAGE)
    text = str(error)
    if isinstance(error, RuntimeError) and "timeout" in text.lower():
        return OcrTimeout(f"page {page} took too long to read", stage=STAGE, detail=text)
    if "language" in text.lower() or "tessdata" in text.lower() or "data file" in text.lower():
        return OcrEngineMissing("tesseract lacks a configured language", stage=STAGE,
                                detail=text[:500])
    return ToolFailed(f"tesseract failed on page {page}", stage=STAGE, detail=text[:500])


def _assemble(data: dict[str, list[Any]]) -> tuple[str, float | None]:
    """Words back into lines, in tesseract's reading order, plus the mean word confidence."""
    lines: dict[tuple[int, int, int], list[str]] = {}
    confidences: list[float] = []
    for i, word in enumerate(data["text"]):
        word = str(word).strip()
        if not word:
            continue
        key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
        lines.setdefault(key, []).append(word)
        conf = float(data["conf"][i])
        if conf >= 0:
            confidences.append(conf)
    out: list[str] = []
    previous_block = None
    for (block, _par, _line), words in lines.items():
        if previous_block is not None and block != previous_block:
            out.append("")
        out.append(" ".join(words))
        previous_block = block
    return "\n".join(out), (round(fmean(confidences), 1) if confidences else None)


def ocr_page(pdf: Path, number: int, page_size_pt: tuple[float, float], options: OcrOptions,
             workdir: Path) -> PageText:
    started = time.monotonic()
    dpi = dpi_for(page_size_pt, options)
    try:
        paths = pdf2image.convert_from_path(
            pdf, dpi=dpi, output_folder=workdir, first_page=number, last_page=number,
            fmt="ppm", grayscale=True, single_file=True, paths_only=True,
            output_file=f"page-{number}", timeout=int(options.timeout),
        )
    except pdf2image.exceptions.PDFInfoNotInstalledError:
        raise PopplerMissing("pdftoppm (poppler) is not installed", stage=STAGE) from None
    except pdf2image.exceptions.PDFPopplerTimeoutError:
        raise OcrTimeout(f"page {number} took too long to render", stage=STAGE) from None
    except pdf2image.exceptions.PDFPageCountError as error:
        raise CorruptPdf("the PDF is damaged and its pages cannot be read", stage=STAGE,
                         detail=str(error)[:500]) from None
    except OSError as error:
        if error.errno == 28:
            raise DiskFull("no disk space left to render a page", stage=STAGE) from None
        raise
    image = Path(str(paths[0])) if paths else None
    if image is None or not image.exists() or image.stat().st_size == 0:
        raise CorruptPdf(f"page {number} of the PDF is damaged and cannot be rendered",
                         stage=STAGE)
    try:
        data = pytesseract.image_to_data(
            str(image), lang=options.langs, output_type=pytesseract.Output.DICT,
            timeout=options.timeout,
        )
    except (pytesseract.TesseractError, pytesseract.TesseractNotFoundError,
            RuntimeError) as error:
        raise _tesseract_error(error, number) from error
    finally:
        image.unlink(missing_ok=True)
    text, confidence = _assemble(data)
    return PageText(number, text, "ocr", confidence, dpi, round(time.monotonic() - started, 3))


def read_pages(pdf: Path, page_sizes_pt: tuple[tuple[float, float], ...],
               options: OcrOptions) -> list[PageText]:
    """Every page's text, from its layer or by OCR, in page order."""
    layers = text_layers(pdf, len(page_sizes_pt))
    result: list[PageText] = []
    with tempfile.TemporaryDirectory(prefix="docagent-ocr-") as tmp:
        for index, layer in enumerate(layers):
            number = index + 1
            if has_text_layer(layer):
                result.append(PageText(number, layer, "text-layer"))
            else:
                result.append(ocr_page(pdf, number, page_sizes_pt[index], options, Path(tmp)))
    return result


def text_source(pages: list[PageText]) -> TextSource:
    sources = {p.source for p in pages}
    if sources == {"text-layer"}:
        return "text-layer"
    if sources == {"ocr"}:
        return "ocr"
    return "mixed"
