"""The spool's lock file, `.docagent.lock` in DOCAGENT_HOME: whether someone holds it, who,
and for how long.

The daemon holds an exclusive flock on it for as long as it runs: one daemon per spool, and a
`docagent process` beside it lets it do the work. The holder writes its pid on the first line;
a holder that will let go soon (`docagent health` sending its own alert while the daemon is
down) adds `until <unix time>` on a second line, so that a daemon starting meanwhile waits for
it instead of refusing to start.

Whether anyone holds it is asked of the lock itself: a non-blocking shared flock on a fresh
descriptor fails exactly when someone holds it. /proc/locks is not read: it names the device
as the kernel's lock sees it, which on an overlay root (or a btrfs subvolume) is not the
device stat() gives for the same file. The probe holds the shared lock for microseconds, which
is why `acquire` tries again for a moment before it concludes that someone else holds it.

The file is 0640: staff in the docagent group may probe it (a read-only descriptor is enough
for flock); only its owner writes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agent import modes
from agent.config import Settings
from agent.errors import UsageError
from agent.logs import get_logger

NAME = ".docagent.lock"
MODE = 0o640
GRACE = 0.5  # seconds: a probe's shared lock is gone long before this
HOLD_MAX = 120.0  # no declared hold is believed beyond this (a clock jump, a garbled file)
RETRY = 0.02

log = get_logger("lock")


@dataclass(frozen=True)
class Holder:
    pid: int | None  # None: the file names nobody yet (the holder is about to write it)
    until: float | None = None  # unix time it promised to let go by; None: while it runs


def path_in(home: Path) -> Path:
    return home / NAME


def _parse(raw: bytes) -> Holder:
    pid: int | None = None
    until: float | None = None
    for number, line in enumerate(raw.decode("ascii", "replace").splitlines()):
        word, _, value = line.strip().partition(" ")
        with contextlib.suppress(ValueError):
            if number == 0:
                pid = int(word)
            elif word == "until":
                until = float(value)
    return Holder(pid, until)


def _read(fd: int) -> Holder:
    return _parse(os.pread(fd, 256, 0))


def probe(path: Path) -> Holder | None:
    """Who holds the lock, or None when nobody does (or the file does not exist).

    Raises PermissionError when this user may not open the file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd)
        return None  # nobody holds it; closing lets go of our shared lock at once
    finally:
        os.close(fd)


def daemon(home: Path) -> Holder | None:
    """The running daemon of the spool at `home`, asked of its lock; None if none runs.

    A holder that declared when it lets go is `docagent health` sending its alert: no daemon.
    Raises PermissionError when this user may not open the lock file.
    """
    holder = probe(path_in(home))
    return holder if holder is not None and holder.until is None else None


def open_for_holding(path: Path) -> int:
    """The descriptor a holder locks (created 0640; an older 0600 file is opened up to 0640)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, MODE)
    with contextlib.suppress(PermissionError):  # not ours (root's file, say): leave its mode
        os.fchmod(fd, MODE)
    return fd


def _promised(holder: Holder) -> float:
    """Seconds the holder promised to let go within (0 when it promised nothing)."""
    if holder.until is None:
        return 0.0
    return min(max(holder.until - time.time(), 0.0), HOLD_MAX)


def acquire(fd: int) -> bool:
    """Take the exclusive lock on `fd`: True if we got it, False if someone else holds it.

    A probe's momentary shared lock is waited out (GRACE); a holder that declared when it lets
    go is waited for until then. Anyone else (a running daemon) is not waited for.
    """
    deadline = time.monotonic() + GRACE
    said = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        holder = _read(fd)
        promised = _promised(holder)
        if promised:
            deadline = max(deadline, time.monotonic() + promised + GRACE)
            if not said:
                log.info("waiting up to %.0f s for pid %s to let go of the spool's lock "
                         "(docagent health sending its alert)", promised, holder.pid)
                said = True
        if time.monotonic() >= deadline:
            return False
        time.sleep(RETRY)


def declare(fd: int, hold: float | None = None) -> None:
    """Write our pid, and when `hold` is given the time by which we let go."""
    text = f"{os.getpid()}\n" + (f"until {time.time() + hold:.3f}\n" if hold else "")
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode("ascii"), 0)


@contextlib.contextmanager
def exclusive(settings: Settings, *, hold: float | None = None) -> Iterator[bool]:
    """Hold the spool's lock: True if we got it (no daemon running), else False.

    `hold`: we let go within that many seconds and the lock file says so, so a daemon starting
    meanwhile waits for us rather than refuse to start.
    """
    modes.make_folder(settings.home)
    path = path_in(settings.home)
    try:
        fd = open_for_holding(path)
    except OSError as error:
        fix = ("; run docagent as the user that owns the spool"
               if isinstance(error, PermissionError) else "")
        raise UsageError(f"cannot open the spool's lock {path}: {error.strerror or error}{fix}"
                         ) from None
    try:
        if not acquire(fd):
            yield False
            return
        declare(fd, hold)
        yield True
    finally:
        os.close(fd)
