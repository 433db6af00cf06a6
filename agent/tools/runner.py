"""External tools as child processes: a deadline, limits, a bare environment, the CPU each used.

Why not `subprocess.run`: it reaps the child with waitpid(), which throws away the child's
resource usage, and the CPU cost ledger needs the exact user+system seconds of each page's
children. Here the child is awaited through a pidfd (so a deadline costs no polling) and reaped
with wait4(), which returns that usage.

Every child is bounded: an address-space limit (RLIMIT_AS, DOCAGENT_CHILD_MEMORY) and a CPU-time
limit (RLIMIT_CPU, a little over its deadline, so a child left behind by a killed daemon still
stops). They are set by util-linux's `prlimit`, which lowers its own limits and then execs the
tool: the pid stays the same, so the pidfd and wait4() see the tool itself. Not `preexec_fn`:
the daemon is threaded, and running Python between fork and exec there can deadlock. Lowering
one's own limits needs no privilege and goes through prlimit64(), which systemd's
`@system-service` filter allows (only the older setrlimit() is in `@resources`).

A child gets a minimal environment, never the daemon's: PATH, the locale, OMP_THREAD_LIMIT=1,
TESSDATA_PREFIX when set. A bot token in the daemon's environment reaches no tool.

A `Program` is how each tool's module runs its program: it tells what the machine and the limits
did (not installed, out of time, over a limit, killed from outside) from what the program
answered, which is the module's to read. Who ran out of what is said to a person by the caller.

`slot()` is one process-wide cap on concurrent OCR work (default: the CPUs this process may
use), shared by every worker and every page: N workers times M pages never start more
tesseracts than there are cores, and each tesseract runs with OMP_THREAD_LIMIT=1.
"""

from __future__ import annotations

import math
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from agent.errors import LimiterMissing, MachineError, ToolFailed

# Sized from `python -m bench.children` (README "Performance"): the hungriest legitimate page
# measured (pdftoppm on an A3 colour JPEG 2000 scan at 600 dpi, 880 MiB) with a margin; three
# times what tesseract needs at the 50-megapixel cap.
DEFAULT_MEMORY = 1024**3
MIN_MEMORY = 256 * 1024**2  # below this, tesseract cannot even load its languages
# RLIMIT_CPU: SIGXCPU this many CPU seconds after the deadline (a child never reaches it while
# the deadline holds: it is single-threaded), SIGKILL a few seconds later if it survives that.
CPU_MARGIN = 5
CPU_GRACE = 5
# Where prlimit is looked for: the system's folders, whatever PATH the daemon was given.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PASSED = ("LANG", "LC_ALL", "TESSDATA_PREFIX")  # copied to a child when set, nothing else
# What the tools print when an allocation fails (poppler's gmalloc, C++ new, leptonica, glibc,
# the dynamic loader, libgomp). With RLIMIT_AS set, that is our limit, not a full machine: the
# kernel's OOM killer sends SIGKILL instead, and with overcommit malloc itself does not fail.
# Counted whatever the exit code: pdftoppm and tesseract often carry on and exit 0 with a
# blank or partial page after such a failure.
_OUT_OF_MEMORY = (b"Out of memory", b"out of memory", b"std::bad_alloc",
                  b"Cannot allocate memory", b"malloc fail", b"failed to map segment",
                  b"Thread creation failed")
Limit = Literal["", "memory", "cpu"]  # which of our limits a child ran into, if any


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_slots = threading.BoundedSemaphore(cpu_count())
_slot_count = cpu_count()
_memory = DEFAULT_MEMORY


def slot_count() -> int:
    return _slot_count


@contextmanager
def slot() -> Iterator[None]:
    """Hold one of the process-wide OCR slots for the duration of the block."""
    with _slots:
        yield


def configure(*, memory: int) -> None:
    """Set the address-space limit of every child started from now on (DOCAGENT_CHILD_MEMORY)."""
    global _memory
    _memory = memory


def memory_limit() -> int:
    return _memory


def describe_limit(over: Limit) -> str:
    """The limit that stopped a child, for a person: "1024 MiB of memory"."""
    return f"{_memory / 2**20:.0f} MiB of memory" if over == "memory" else "processor time"


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: bytes
    stderr: bytes
    cpu_seconds: float  # user + system CPU of the child, from wait4()
    over_limit: Limit = ""  # "memory" or "cpu": our limit stopped it or spoilt its output

    def complaint(self) -> str:
        """The end of what the tool printed on stderr: where it says what ran out."""
        return self.stderr.decode("utf-8", "replace")[-500:]

    @property
    def killed(self) -> bool:
        """SIGKILLed by someone else: the kernel's OOM killer (the unit's MemoryMax=), a person."""
        return self.returncode == -signal.SIGKILL and not self.over_limit


class NoResult(Exception):
    """The child ran but left nothing to use; `cpu_seconds` is what it had used."""

    def __init__(self, message: str, cpu_seconds: float) -> None:
        super().__init__(message)
        self.cpu_seconds = cpu_seconds


class ChildTimeout(NoResult):
    """The child ran past its deadline and was killed."""

    def __init__(self, argv: Sequence[str], timeout: float, cpu_seconds: float) -> None:
        super().__init__(f"{argv[0]} ran over {timeout:.1f} s", cpu_seconds)


class OverLimit(NoResult):
    """Our memory or CPU limit stopped the child, or spoilt its output (see `_OUT_OF_MEMORY`)."""

    def choose(self, memory: str, cpu: str) -> str:
        """The message for the limit that stopped it: one that says the memory (%(mib)d), or
        one that says the processor time (a sentence each, for the staff's language)."""
        return memory if self.memory else cpu

    def __init__(self, program: str, done: Finished) -> None:
        self.limit = describe_limit(done.over_limit)  # the limit in force when it ran
        self.memory = done.over_limit == "memory"
        self.mib = round(_memory / 2**20)  # the memory limit, for a message's %(mib)d
        self.complaint = done.complaint()
        super().__init__(f"{program} needed more than the {self.limit} allowed",
                         done.cpu_seconds)


class Failed(NoResult):
    """The tool refused or failed (an error exit, or no output where it writes one); `said` is
    what it printed about it."""

    def __init__(self, program: str, said: str, cpu_seconds: float) -> None:
        super().__init__(f"{program} failed: {said[-300:]}", cpu_seconds)
        self.said = said


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a child: the daemon's PATH and locale, one OpenMP thread."""
    env = {"PATH": os.environ.get("PATH") or SYSTEM_PATH, "OMP_THREAD_LIMIT": "1"}
    env.update({name: os.environ[name] for name in _PASSED if name in os.environ})
    env.update(extra or {})
    return env


def cpu_limit(timeout: float) -> int:
    """The soft RLIMIT_CPU, in whole seconds, for a child given `timeout` seconds of wall time."""
    return max(1, math.ceil(timeout)) + CPU_MARGIN


def find(program: str) -> str | None:
    """Where `program` is on a child's PATH, or None: what "installed" means to docagent."""
    return shutil.which(program, path=child_env()["PATH"])


def limited(argv: Sequence[str], *, timeout: float, path: str) -> list[str]:
    """`argv` behind prlimit, the program resolved on `path` (FileNotFoundError if absent)."""
    program = shutil.which(argv[0], path=path)
    if program is None:
        raise FileNotFoundError(2, "No such file or directory", argv[0])
    prlimit = shutil.which("prlimit", path=SYSTEM_PATH)
    if prlimit is None:
        raise LimiterMissing("prlimit (util-linux) is not installed")
    cpu = cpu_limit(timeout)
    return [prlimit, f"--as={_memory}", f"--cpu={cpu}:{cpu + CPU_GRACE}", "--",
            program, *argv[1:]]


def _reap(pid: int) -> tuple[int, float]:
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime


def _over_limit(code: int, stderr: bytes, cpu: float, timeout: float) -> Limit:
    if code == -signal.SIGXCPU or (code == -signal.SIGKILL and cpu >= cpu_limit(timeout)):
        return "cpu"
    if any(marker in stderr for marker in _OUT_OF_MEMORY):
        return "memory"
    return ""


def run(argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
        pass_fds: Sequence[int] = ()) -> Finished:
    """Run `argv` to completion or until `timeout` seconds; stdout and stderr are captured.

    The child's environment is `child_env(env)`: `env` adds to the minimal one, it does not
    replace it. `pass_fds` stay open in the child (e.g. for `/proc/self/fd/N`).
    Raises FileNotFoundError when the tool is not installed, LimiterMissing without prlimit,
    ChildTimeout on the deadline. A child stopped by its memory or CPU limit is returned with
    `over_limit` set.
    """
    child = child_env(env)
    command = limited(argv, timeout=timeout, path=child["PATH"])
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        # Files, not pipes: nothing to drain while waiting, so the wait can be a plain poll.
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=child, pass_fds=tuple(pass_fds))
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
        stderr = err.read()
        return Finished(code, out.read(), stderr, cpu, _over_limit(code, stderr, cpu, timeout))


@dataclass(frozen=True)
class Program:
    """An external program as docagent runs it, and what its absence is called."""

    name: str
    missing: type[MachineError] | None = None  # raised when it is not installed
    suite: str = ""  # the package it comes in, named in that error: "pdfinfo (poppler)"

    def installed(self) -> bool:
        return find(self.name) is not None

    def run(self, argv: Sequence[str], *, timeout: float, stage: str = "",
            pass_fds: Sequence[int] = ()) -> Finished:
        """`argv`, this program's command line, on the runner, with what the machine and the
        limits did told apart from what the program answered.

        Raises this program's `missing` error when it is not installed (FileNotFoundError when
        it has none), ChildTimeout on the deadline, OverLimit when our memory or CPU limit
        stopped it or spoilt its output, and ToolFailed when something else killed it: the
        machine's fault (the kernel's OOM killer, a person), never a verdict on the file.
        Anything else, an error exit included, is returned for the program's module to read.
        """
        try:
            done = run(argv, timeout=timeout, pass_fds=pass_fds)
        except FileNotFoundError:
            if self.missing is None:
                raise
            package = f" ({self.suite})" if self.suite else ""
            raise self.missing(f"{self.name}{package} is not installed", stage=stage) from None
        if done.over_limit:
            raise OverLimit(self.name, done)
        if done.killed:
            raise ToolFailed(f"{self.name} was killed from outside (the service short of "
                             "memory, or a person)", stage=stage)
        return done
