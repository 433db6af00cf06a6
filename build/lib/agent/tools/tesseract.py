"""tesseract: the words on an image with their place and confidence, and the languages it has."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agent.errors import OcrEngineMissing
from agent.tools import runner

PROGRAM = runner.Program("tesseract", OcrEngineMissing)
# How tesseract says a language it was asked for is not installed.
_NO_LANGUAGE = ("language", "tessdata", "data file")


@dataclass(frozen=True)
class Word:
    page: int
    block: int
    paragraph: int
    line: int
    text: str
    confidence: float  # 0-100; negative where tesseract gives none


@dataclass(frozen=True)
class Words:
    words: tuple[Word, ...]  # in tesseract's reading order
    cpu_seconds: float


def argv(image: Path, *, langs: str, psm: int) -> list[str]:
    """The command line that prints the words of `image` as TSV on stdout."""
    return [PROGRAM.name, str(image), "stdout", "-l", langs, "--psm", str(psm), "tsv"]


def read(image: Path, *, langs: str, psm: int, timeout: float, stage: str = "") -> Words:
    """The words tesseract reads on `image` in languages `langs` ("fra+eng"), page
    segmentation mode `psm`.

    Raises OcrEngineMissing when tesseract or one of the languages is not installed,
    runner.Failed when it fails otherwise, and whatever `runner.Program.run` raises
    (ChildTimeout, OverLimit, ToolFailed).
    """
    done = PROGRAM.run(argv(image, langs=langs, psm=psm), timeout=timeout, stage=stage)
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace")
        if any(sign in said.lower() for sign in _NO_LANGUAGE):
            raise OcrEngineMissing("tesseract lacks a configured language", stage=stage,
                                   detail=said[:500])
        raise runner.Failed(PROGRAM.name, said, done.cpu_seconds)
    return Words(words(done.stdout.decode("utf-8", "replace")), done.cpu_seconds)


@dataclass(frozen=True)
class Orientation:
    rotate: int  # degrees clockwise to turn the image so its text stands upright: 0, 90, 180, 270
    confidence: float  # tesseract's orientation confidence; 0 when it could not tell
    cpu_seconds: float


_ROTATE = re.compile(r"^Rotate:\s*(\d+)", re.MULTILINE)
_CONFIDENCE = re.compile(r"^Orientation confidence:\s*([0-9.]+)", re.MULTILINE)


def orientation(image: Path, *, timeout: float, stage: str = "") -> Orientation:
    """Which way up the text of `image` stands (orientation and script detection, `--psm 0`).

    A page with too few characters to tell is orientation 0 with confidence 0, not an error.
    Raises whatever `runner.Program.run` raises (ChildTimeout, OverLimit, ToolFailed).
    """
    done = PROGRAM.run([PROGRAM.name, str(image), "stdout", "--psm", "0"], timeout=timeout,
                       stage=stage)
    said = done.stdout.decode("utf-8", "replace")
    rotate, confidence = _ROTATE.search(said), _CONFIDENCE.search(said)
    if done.returncode != 0 or rotate is None or confidence is None:
        return Orientation(0, 0.0, done.cpu_seconds)
    return Orientation(int(rotate.group(1)) % 360, float(confidence.group(1)), done.cpu_seconds)


def words(tsv: str) -> tuple[Word, ...]:
    """The words of tesseract's TSV output, blank ones left out."""
    found = []
    for row in csv.reader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if len(row) < 12 or row[0] != "5":
            continue  # the header, and page/block/paragraph/line rows: words are level 5
        text = row[11].strip()
        if text:
            found.append(Word(int(row[1]), int(row[2]), int(row[3]), int(row[4]), text,
                              float(row[10])))
    return tuple(found)


def languages(*, timeout: float = 20.0) -> frozenset[str]:
    """The languages tesseract has (`--list-langs`).

    Raises runner.Failed when it exits with an error, and whatever `runner.Program.run` raises
    (OcrEngineMissing when tesseract is not installed).
    """
    done = PROGRAM.run([PROGRAM.name, "--list-langs"], timeout=timeout)
    # Versions differ in the stream they list on; the first line is a heading.
    said = (done.stdout + done.stderr).decode("utf-8", "replace")
    if done.returncode != 0:
        raise runner.Failed(PROGRAM.name, said, done.cpu_seconds)
    return frozenset(line.strip() for line in said.splitlines()[1:])


def install_languages(langs: Iterable[str]) -> str:
    """The command that installs tesseract's data for `langs` (Debian's packages)."""
    return "apt-get install " + " ".join(f"tesseract-ocr-{lang}" for lang in langs)
