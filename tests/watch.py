"""Time and processes as the tests and the bench watch them: waiting until a condition holds,
something done again and again in a thread, a clock moved by hand, the memory of a process tree.
No pytest here: bench/ uses it too.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def until(condition: Callable[[], T], timeout: float, what: str, *,
          process: subprocess.Popen[Any] | None = None,
          output: Callable[[], str] | None = None, interval: float = 0.1) -> T:
    """Call `condition` every `interval` seconds until it returns something true, and return
    that. Fails after `timeout` seconds, or as soon as `process` has exited (waiting longer
    could only time out); the message ends with the last 3,000 characters of `output()`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            problem = f"exited {process.returncode} while waiting for {what}"
            break
        if time.monotonic() >= deadline:
            problem = f"timed out after {timeout:g} s waiting for {what}"
            break
        time.sleep(interval)
    tail = output()[-3000:] if output is not None else ""
    raise AssertionError(f"{problem}:\n{tail}" if tail else problem)


class Repeating:
    """Calls `tick()` every `interval` seconds in a thread of its own, from construction until
    `stop()`: a subclass sets what `tick` needs before calling this `__init__`."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def tick(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Clock:
    """A clock for code that takes one (`now()` as a callable): it moves when the test sets
    `now`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- memory ----------------------------------------------------------------------------------

# Each thread's children file is where a tool started from a worker thread is found (its
# parent is that thread); a kernel without CONFIG_PROC_CHILDREN has none, and the walk would
# count the root process alone without a word.
_CHILDREN = Path("/proc/thread-self/children")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and every descendant alive now: the sum of their VmRSS (the
    resident pages of /proc/PID/statm). Pages two processes share count twice, as `ps` and
    `top` count them."""
    if not _CHILDREN.exists():
        raise RuntimeError(f"{_CHILDREN} is missing (a kernel without CONFIG_PROC_CHILDREN): "
                           "the process tree cannot be walked")
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += int(Path(f"/proc/{current}/statm").read_text().split()[1]) * _PAGE
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except (FileNotFoundError, ProcessLookupError):
            continue  # gone since its parent listed it
        for task in tasks:
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue  # that thread ended meanwhile; its siblings still count
    return total


class PeakMemory(Repeating):
    """The largest `tree_rss(pid)` seen (`peak`, bytes) while sampling, every `interval`
    seconds from construction until `stop()`. Every 10 ms by default: a page's pdftoppm or
    tesseract lives a fraction of a second, and one sample costs about 0.4 ms (the tree's own
    /proc files, nothing else)."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid, self.peak, self.samples = pid, 0, 0
        tree_rss(pid)  # a kernel that cannot walk the tree fails here, not in the thread
        super().__init__(interval)

    def tick(self) -> None:
        self.peak = max(self.peak, tree_rss(self.pid))
        self.samples += 1
