"""A real `docagent run` process for tests, and the helpers that drive and read a spool."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from agent.spool import CLAIMING, FILING, PROCESSING, Document
from agent.spool import rows as spool_rows
from agent.store import Store
from tests import pdfgen
from tests.conftest import DOCAGENT, Spool
from tests.watch import until

T = TypeVar("T")


class Place(Protocol):
    """Where a daemon runs: its folder (the daemon's output goes to daemon.out there) and its
    environment. The `spool` fixture is one; so is a spool laid out for other users."""

    @property
    def root(self) -> Path: ...

    @property
    def env(self) -> dict[str, str]: ...


class Running:
    """`docagent run` on `spool` (or `command`, the same run as another user), its output
    appended to daemon.out; with `wait`, returns once it is watching."""

    def __init__(self, spool: Place, *, wait: bool = True, command: Sequence[str] = (),
                 **env: str) -> None:
        self.spool = spool
        out = spool.root / "daemon.out"
        # Every daemon of a test appends to one file: wait for *this* one's "watching" line,
        # written after its recovery, not an earlier daemon's.
        self.start_offset = out.stat().st_size if out.exists() else 0
        self.log = open(out, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(list(command or [DOCAGENT, "run"]),
                                     env={**spool.env, **env}, cwd=spool.root, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        if wait:
            self.wait_started()

    def wait_started(self, timeout: float = 30) -> None:
        self.wait_for(lambda: "watching" in self.own_output(), timeout, "the daemon to start")

    def output(self) -> str:
        return (self.spool.root / "daemon.out").read_text(errors="replace")

    def own_output(self) -> str:
        # The offset counts bytes: slicing the decoded text by it would skip past the start
        # of this daemon's lines once earlier ones held accented letters.
        raw = (self.spool.root / "daemon.out").read_bytes()[self.start_offset:]
        return raw.decode(errors="replace")

    def wait_for(self, condition: Callable[[], T], timeout: float, what: str) -> T:
        """`condition`'s first true value; fails at once if the daemon exits meanwhile."""
        return until(condition, timeout, what, process=self.proc, output=self.output)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        self.log.close()
        return code


def drop(pdf: Path, incoming: Path, name: str | None = None) -> Path:
    """Copy beside the folder, then rename in: how a careful scanner delivers."""
    target = incoming / (name or pdf.name)
    tmp = incoming.parent / f".{target.name}.part"
    tmp.write_bytes(pdf.read_bytes())
    tmp.rename(target)
    return target


def one_of_each(spool: Spool, folder: Path) -> dict[str, str]:
    """One document of each outcome through `docagent process`, made in `folder`: MARTIN
    Hélène filed under P002, an exact copy of it, a stranger for review, broken.pdf failed.
    Returns outcome -> document id."""
    good = pdfgen.text_pdf([pdfgen.report("MARTIN", "Hélène", "03/04/1975")],
                           folder / "good.pdf")
    copy = folder / "copy.pdf"
    copy.write_bytes(good.read_bytes())
    unknown = pdfgen.text_pdf([pdfgen.report("NOBODY", "Alice", "01/01/1990")],
                              folder / "who.pdf")
    bad = folder / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 nothing else")
    return {str(out["outcome"]): str(out["document_id"])
            for out in spool.process_json(good, copy, unknown, bad)}


def documents(home: Path) -> dict[str, Document]:
    """Every document's row by file name, read through the spool as docagent reads it (a
    running daemon writes the same database meanwhile: WAL lets both)."""
    if not (home / "state.db").exists():
        return {}  # nothing taken yet; opening a Store would create the database
    store = Store(home / "state.db")
    try:
        return {doc.original_name: doc for doc in spool_rows.documents(store)}
    finally:
        store.close()


def states(spool: Spool) -> dict[str, str]:
    return {name: doc.state for name, doc in documents(spool.home).items()}


def in_progress(spool: Spool) -> int:
    return sum(doc.state in (PROCESSING, FILING, CLAIMING)
               for doc in documents(spool.home).values())
