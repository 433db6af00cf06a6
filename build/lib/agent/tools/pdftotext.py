"""pdftotext (poppler): every page's text layer in one run (pages end with a form feed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent.errors import PopplerMissing
from agent.tools import runner

PROGRAM = runner.Program("pdftotext", PopplerMissing, "poppler")


@dataclass(frozen=True)
class Layers:
    pages: tuple[str, ...]  # each page's text layer, "" where it has none
    cpu_seconds: float


def argv(pdf: Path) -> list[str]:
    return [PROGRAM.name, "-layout", "-enc", "UTF-8", "--", str(pdf), "-"]


def layers(pdf: Path, *, pages: int, timeout: float, stage: str = "") -> Layers:
    """The text layer of each of the first `pages` pages of `pdf`.

    Raises runner.Failed when pdftotext cannot read the file, and whatever
    `runner.Program.run` raises (PopplerMissing, ChildTimeout, OverLimit, ToolFailed).
    """
    done = PROGRAM.run(argv(pdf), timeout=timeout, stage=stage)
    if done.returncode != 0:
        raise runner.Failed(PROGRAM.name, done.stderr.decode("utf-8", "replace"),
                            done.cpu_seconds)
    chunks = done.stdout.decode("utf-8", "replace").split("\f")
    return Layers(tuple(chunks[i] if i < len(chunks) else "" for i in range(pages)),
                  done.cpu_seconds)
