"""External tools as child processes: a deadline, the CPU each one used, and a shared cap.

Why not `subprocess.run`: it reaps the child with waitpid(), which throws away the child's
resource usage, and the CPU cost ledger needs the exact user+system seconds of each page's
children. Here the child is awaited through a pidfd (so a deadline costs no polling) and reaped
with wait4(), which returns that usage.

`slot()` is one process-wide cap on concurrent OCR work (default: the CPUs this process may
use), shared by every worker and every page: N workers times M pages never start more
tesseracts than there are cores, and each tesseract runs with OMP_THREAD_LIMIT=1.
"""

from __future__ import annotations

import os
import select
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_slots = threading.BoundedSemaphore(cpu_count())
_slot_count = cpu_count()


def slot_count() -> int:
    return _slot_count


@contextmanager
def slot() -> Iterator[None]:
    """Hold one of the process-wide OCR slots for the duration of the block."""
    with _slots:
        yield


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: bytes
    stderr: bytes
    cpu_seconds: float  # user + system CPU of the child, from wait4()


class ChildTimeout(Exception):
    """The child ran past its deadline and was killed; `cpu_seconds` is what it had used."""

    def __init__(self, argv: Sequence[str], timeout: float, cpu_seconds: float) -> None:
        super().__init__(f"{argv[0]} ran over {timeout:.1f} s")
        self.cpu_seconds = cpu_seconds


def _reap(pid: int) -> tuple[int, float]:
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime


def run(argv: Sequence[str], *, timeout: float, env: dict[str, str] | None = None) -> Finished:
    """Run `argv` to completion or until `timeout` seconds; stdout and stderr are captured.

    Raises FileNotFoundError when the tool is not installed, ChildTimeout on the deadline.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        # Files, not pipes: nothing to drain while waiting, so the wait can be a plain poll.
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=env)
        pidfd = os.pidfd_open(proc.pid)
        try:
            ready, _, _ = select.select([pidfd], [], [], max(timeout, 0.0))
        finally:
            os.close(pidfd)
        if not ready:
            proc.kill()
        code, cpu = _reap(proc.pid)
        proc.returncode = code  # reaped here: keep subprocess from waiting on it again
        if not ready:
            raise ChildTimeout(argv, timeout, cpu)
        out.seek(0)
        err.seek(0)
        return Finished(code, out.read(), err.read(), cpu)
