"""The image-to-PDF converter: docagent's own program (`imagepdf_main.py`), run as a child.

It is run like pdftoppm or tesseract, on the one runner: behind prlimit's memory and CPU limits,
with a deadline and a bare environment, because the decoders it loads (libjpeg, zlib, libtiff,
libheif) read what someone dropped. The daemon never loads them itself. `-I` keeps the child
from reading PYTHON* variables or a user's site folder; the program imports nothing of
docagent's, so it needs no path to the package.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import ToolFailed
from agent.tools import runner

MAIN = Path(__file__).with_name("imagepdf_main.py")
PROGRAM = runner.Program(sys.executable)
NAME = "the image converter"
FAULT = 3  # imagepdf_main.FAULT: the file is at fault, and it says how
MISSING = 4  # imagepdf_main.MISSING: a library it needs is not installed
INSTALL = "pip install img2pdf pillow-heif (in docagent's environment: they come with it)"


@dataclass(frozen=True)
class Made:
    """What the converter did: the PDF is at the `dest` it was given."""

    pages: int
    flattened: bool  # transparency flattened onto white
    embedded: str  # how the pixels went in: as-is, lossless, decoded-lossless, ...
    rotations: tuple[int, ...]  # each page's /Rotate (EXIF or TIFF orientation)
    cpu_seconds: float


class Refused(runner.Failed):
    """The file is at fault: `fault` is damaged, too-many-pixels or too-many-pages, `facts`
    what the converter said of it."""

    def __init__(self, facts: dict[str, Any], cpu_seconds: float) -> None:
        super().__init__(NAME, str(facts.get("why") or facts.get("fault")), cpu_seconds)
        self.fault = str(facts.get("fault"))
        self.facts = facts


class Crashed(runner.Failed):
    """The converter died of a signal on this file (a decoder that crashed on its bytes)."""


def argv(source: Path, dest: Path, *, fmt: str, max_pixels: int, max_pages: int) -> list[str]:
    return [PROGRAM.name, "-I", str(MAIN), "--format", fmt, "--max-pixels", str(max_pixels),
            "--max-pages", str(max_pages), "--", str(source), str(dest)]


def convert(source: Path, dest: Path, *, fmt: str, max_pixels: int, max_pages: int,
            timeout: float, stage: str = "") -> Made:
    """`source`, an image of format `fmt` (JPEG, PNG, TIFF, HEIC), as a new PDF at `dest`.

    Raises Refused (the file's fault), Crashed, ToolFailed when a library it needs is
    missing (the machine's fault: the document waits), runner.Failed for anything else the
    program did (a bug of ours: a traceback), and whatever `runner.Program.run` raises
    (ChildTimeout, OverLimit, ToolFailed).
    """
    done = PROGRAM.run(argv(source, dest, fmt=fmt, max_pixels=max_pixels, max_pages=max_pages),
                       timeout=timeout, stage=stage)
    said = done.stdout.decode("utf-8", "replace").strip().splitlines()
    if done.returncode < 0:
        raise Crashed(NAME, f"stopped by signal {-done.returncode}", done.cpu_seconds)
    try:
        answer = json.loads(said[-1]) if said else None
    except ValueError:
        answer = None
    if done.returncode == FAULT and isinstance(answer, dict):
        raise Refused(answer, done.cpu_seconds)
    if done.returncode == MISSING:
        raise ToolFailed(f"{NAME} cannot start: {done.complaint().strip()}", stage=stage,
                         detail=INSTALL)
    if done.returncode != 0 or not isinstance(answer, dict) or not dest.exists():
        raise runner.Failed(NAME, done.complaint() or f"exit {done.returncode}",
                            done.cpu_seconds)
    return Made(pages=int(answer["pages"]), flattened=bool(answer["flattened"]),
                embedded=str(answer["embedded"]),
                rotations=tuple(int(r) for r in answer["rotations"]),
                cpu_seconds=done.cpu_seconds)
