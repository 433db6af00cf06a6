"""A real `docagent run` process for tests, and the helpers that drive and read a spool."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests import pdfgen
from tests.conftest import DOCAGENT, Spool


class Running:
    def __init__(self, spool: Spool, *, wait: bool = True, **env: str) -> None:
        self.spool = spool
        out = spool.root / "daemon.out"
        # Every daemon of a test appends to one file: wait for *this* one's "watching" line,
        # written after its recovery, not an earlier daemon's.
        self.start_offset = out.stat().st_size if out.exists() else 0
        self.log = open(out, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([DOCAGENT, "run"], env={**spool.env, **env},
                                     cwd=spool.root, stdout=self.log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_started()

    def wait_started(self) -> None:
        self.wait_for(lambda: "watching" in self.output()[self.start_offset:], 30,
                      "the daemon to start")

    def output(self) -> str:
        return (self.spool.root / "daemon.out").read_text(errors="replace")

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.output()[-3000:]}")

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


def states(spool: Spool) -> dict[str, str]:
    with sqlite3.connect(spool.home / "state.db") as db:
        return dict(db.execute("SELECT original_name, state FROM documents").fetchall())


def in_progress(spool: Spool) -> int:
    with sqlite3.connect(spool.home / "state.db") as db:
        return int(db.execute("SELECT COUNT(*) FROM documents WHERE state IN "
                              "('processing', 'filing', 'claiming')").fetchone()[0])


def report(last: str, first: str, birth: str, tag: str = "") -> list[str]:
    lines = pdfgen.lab_report_lines(last=last, first=first, birth=birth, doc_date="05/11/2026")
    return [*lines, tag] if tag else lines
