"""A real `docagent run` process for tests, and the helpers that drive and read a spool."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
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
        self.wait_for(lambda: "watching" in self.own_output(), 30, "the daemon to start")

    def output(self) -> str:
        return (self.spool.root / "daemon.out").read_text(errors="replace")

    def own_output(self) -> str:
        # The offset counts bytes: slicing the decoded text by it would skip past the start
        # of this daemon's lines once earlier ones held accented letters.
        raw = (self.spool.root / "daemon.out").read_bytes()[self.start_offset:]
        return raw.decode(errors="replace")

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


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants, read from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
        except OSError:
            continue  # gone meanwhile
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        kb = next((line.split()[1] for line in status.splitlines()
                   if line.startswith("VmRSS:")), "0")
        rss[int(entry.name)] = int(kb) * 1024
    tree, todo = set(), [pid]
    while todo:
        current = todo.pop()
        tree.add(current)
        todo += [child for child, parent in parents.items()
                 if parent == current and child not in tree]
    return sum(rss.get(p, 0) for p in tree)


class PeakMemory:
    """Samples `tree_rss(pid)` in a thread until stopped; `peak` is the largest seen."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid, self.interval, self.peak, self.samples = pid, interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, tree_rss(self.pid))
            self.samples += 1

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak
