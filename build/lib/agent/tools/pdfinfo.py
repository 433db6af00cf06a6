"""pdfinfo (poppler): a PDF's page count, encryption and page sizes, or why it will not open."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agent.errors import PopplerMissing
from agent.tools import runner

PROGRAM = runner.Program("pdfinfo", PopplerMissing, "poppler")
_PAGES = re.compile(r"^Pages:\s+(\d+)", re.MULTILINE)
_ENCRYPTED = re.compile(r"^Encrypted:\s+yes", re.MULTILINE)
_PAGE_SIZE = re.compile(r"^Page\s+(\d+)\s+size:\s+([\d.]+)\s+x\s+([\d.]+)\s+pts", re.MULTILINE)
# Why pdfinfo gave no page count: the file wants a password, says it has no pages, is
# damaged past opening, or opened and printed no count.
Refusal = Literal["password", "no-pages", "damaged", "no-page-count"]


@dataclass(frozen=True)
class Info:
    pages: int
    encrypted: bool
    page_sizes_pt: Mapping[int, tuple[float, float]]  # page number -> (width, height) in points


class Refused(runner.Failed):
    """pdfinfo gave no page count; `why` says which way, `said` what it printed."""

    def __init__(self, why: Refusal, said: str, cpu_seconds: float) -> None:
        super().__init__(PROGRAM.name, said, cpu_seconds)
        self.why = why


def argv(path: Path, *, first: int | None = None, last: int | None = None) -> list[str]:
    """The command line; with `first` and `last`, the sizes of those pages are printed too."""
    pages = ["-f", str(first), "-l", str(last)] if first is not None and last is not None else []
    return [PROGRAM.name, *pages, "--", str(path)]


def info(path: Path, *, first: int | None = None, last: int | None = None, timeout: float,
         stage: str = "", pass_fds: Sequence[int] = ()) -> Info:
    """What pdfinfo reads of `path`, which may be `/proc/self/fd/N` of a descriptor in
    `pass_fds`. A `last` beyond the last page is clamped by pdfinfo itself.

    Raises Refused, and whatever `runner.Program.run` raises (PopplerMissing, ChildTimeout,
    OverLimit, ToolFailed).
    """
    done = PROGRAM.run(argv(path, first=first, last=last), timeout=timeout, stage=stage,
                       pass_fds=pass_fds)
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip()
        lowered = said.lower()
        why: Refusal = ("password" if "password" in lowered
                        else "no-pages" if "invalid page count 0" in lowered else "damaged")
        raise Refused(why, said, done.cpu_seconds)
    out = done.stdout.decode("utf-8", "replace")
    pages = _PAGES.search(out)
    if pages is None:
        raise Refused("no-page-count", out, done.cpu_seconds)
    return Info(pages=int(pages.group(1)), encrypted=_ENCRYPTED.search(out) is not None,
                page_sizes_pt={int(n): (float(w), float(h))
                               for n, w, h in _PAGE_SIZE.findall(out)})


def version(*, timeout: float = 20.0) -> str:
    """The first line `pdfinfo -v` prints ("pdfinfo version 22.12.0"), "" if it prints none.

    Raises runner.Failed when it exits with an error, and whatever `runner.Program.run` raises.
    """
    done = PROGRAM.run([PROGRAM.name, "-v"], timeout=timeout)
    said = done.stderr or done.stdout  # poppler prints its version on stderr
    if done.returncode != 0:
        raise runner.Failed(PROGRAM.name, said.decode("utf-8", "replace"), done.cpu_seconds)
    lines = said.decode("utf-8", "replace").splitlines()
    return lines[0].strip() if lines else ""
