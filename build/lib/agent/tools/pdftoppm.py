"""pdftoppm (poppler): one page of a PDF rendered to an image file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agent.errors import DiskFull, PopplerMissing
from agent.tools import runner

PROGRAM = runner.Program("pdftoppm", PopplerMissing, "poppler")
# "pgm": grey, for tesseract (no encoding on either side); "png": in colour, for a person.
Format = Literal["pgm", "png"]
_FLAGS: dict[Format, str] = {"pgm": "-gray", "png": "-png"}


@dataclass(frozen=True)
class Image:
    path: Path
    cpu_seconds: float


def argv(pdf: Path, page: int, *, dpi: int, base: Path, fmt: Format) -> list[str]:
    """The command line that writes page `page` to `base` with the suffix of `fmt`."""
    return [PROGRAM.name, "-r", str(dpi), _FLAGS[fmt], "-f", str(page), "-l", str(page),
            "-singlefile", "--", str(pdf), str(base)]


def render(pdf: Path, page: int, *, dpi: int, base: Path, fmt: Format, timeout: float,
           stage: str = "") -> Image:
    """Page `page` of `pdf` as an image file: `base` with the suffix of `fmt`.

    Raises DiskFull when there was no room to write it, runner.Failed when pdftoppm could not
    render the page, and whatever `runner.Program.run` raises (PopplerMissing, ChildTimeout,
    OverLimit, ToolFailed).
    """
    done = PROGRAM.run(argv(pdf, page, dpi=dpi, base=base, fmt=fmt), timeout=timeout,
                       stage=stage)
    image = base.with_suffix(f".{fmt}")
    if done.returncode != 0 or not image.exists() or image.stat().st_size == 0:
        said = done.stderr.decode("utf-8", "replace")
        if "No space left" in said:
            raise DiskFull("no disk space left to render a page", stage=stage)
        raise runner.Failed(PROGRAM.name, said, done.cpu_seconds)
    return Image(image, done.cpu_seconds)
