"""Noticing files in incoming/, and deciding when one is whole enough to take.

Events come from a watchdog observer (inotify, or polling for network shares where inotify
sees nothing); a periodic full listing backs them up, so a missed event only delays a file.
A file is taken once its size and mtime have not changed for `stable_seconds` *and* it opens
as a PDF with a page count; a file that never becomes whole is taken after
`incomplete_seconds` and quarantined as incomplete. Not a PDF at all (wrong magic bytes) is
taken as soon as it is stable: waiting would not make it one.

A file whose writer said it is done -- renamed into incoming/, or closed after writing
(inotify IN_MOVED_TO / IN_CLOSE_WRITE) -- skips the stability wait when it also ends with
`%%EOF` and opens: that is how a born-digital document goes from drop to filed in tens of
milliseconds. An image does the same when its bytes say it ended (a JPEG's end-of-image
marker, a PNG's IEND chunk: `agent.stages.images.whole`); a TIFF or a HEIC, which say nothing
at their end, and a JPEG with data after its marker (a motion photo) wait for their size to
settle, and the conversion then finds one cut short. Any later write takes the fast path away
again.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import inotify_move_event_grouper
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyObserver
from watchdog.observers.polling import PollingObserver

from agent.errors import MachineError
from agent.logs import get_logger
from agent.spool import NotRegular, display_name, files_under, ignored, open_dropped
from agent.stages import images
from agent.stages.inspection import looks_like_pdf, opens

log = get_logger("watcher")
PROBE_INTERVAL = 2.0  # seconds between pdfinfo probes of a stable file that does not open yet
EOF_TAIL = 1024  # writers may put a newline or a little padding after %%EOF

# watchdog holds every IN_MOVED_FROM for half a second to pair it with its IN_MOVED_TO, and
# its queue is first-in first-out: each claim (a rename out of incoming/) then delayed the
# *next* file's event by up to 0.5 s. Pairs come from one rename() and arrive together, and
# we do not need them paired anyway (the rescan backs up every event), so wait far less.
inotify_move_event_grouper.InotifyMoveEventGrouper.delay = 0.02

Verdict = Literal["take", "incomplete", "no-access"]


@dataclass
class _Candidate:
    first_seen: float
    size: int
    mtime_ns: int
    stable_since: float
    last_probe: float = 0.0
    settled: bool = False  # the last event said the writer is done (rename in, close)


class Stabilizer:
    """Tracks files seen in incoming/ until each is complete.

    `note` runs on the event loop (file events); `scan` and `ready` run in a worker thread,
    because judging a file runs pdfinfo, which must never stall the loop. The lock guards
    the table only: nobody holds it across a probe.
    """

    def __init__(self, stable_seconds: float, incomplete_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stable_seconds = stable_seconds
        self.incomplete_seconds = incomplete_seconds
        self.clock = clock
        self.candidates: dict[Path, _Candidate] = {}
        self._warned: set[Path] = set()
        self._passed: dict[Path, tuple[int, ...]] = {}
        self._lock = threading.Lock()

    def note(self, path: Path, *, settled: bool | None = False) -> None:
        """A file event (`settled`: did the writer say it is done?), or a listing that saw the
        file (`settled=None`: no news about its writer)."""
        if ignored(path.name):
            return
        with self._lock:
            known = self.candidates.get(path)
            if known is not None:
                if settled is not None:
                    known.settled = settled
                return
        try:
            info = os.lstat(path)
        except OSError:
            return
        if stat.S_ISLNK(info.st_mode):
            self._warn_once(path, f"ignoring symlink {display_name(path.name)!r} in incoming/: "
                                  "symlinks are never followed")
            return
        if not stat.S_ISREG(info.st_mode):
            return
        now = self.clock()
        with self._lock:
            passed = self._passed.get(path)
            if passed is not None:
                if passed == _identity(info):
                    return
                del self._passed[path]
            self.candidates.setdefault(path, _Candidate(now, info.st_size, info.st_mtime_ns,
                                                        now, settled=bool(settled)))

    def scan(self, folder: Path) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError as error:
            log.error("cannot list %s: %s", folder, error)
            return
        present = {Path(e.path) for e in entries}
        with self._lock:
            self._warned &= present
            self._passed = {p: i for p, i in self._passed.items() if p in present}
        for entry in entries:
            if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
                self._folder(Path(entry.path))
                continue
            self.note(Path(entry.path), settled=None)

    def _folder(self, path: Path) -> None:
        """A folder inside incoming/ is not looked into: say so once while it holds files
        (again if it is emptied and filled anew); `docagent health` shows it too."""
        count = files_under(path)
        if not count:
            with self._lock:
                self._warned.discard(path)
            return
        self._warn_once(path, f"{count}{'+' if count >= 1000 else ''} file(s) in the folder "
                              f"{display_name(path.name)!r} inside incoming/ are not taken: "
                              "only files directly in incoming/ are; move them up into it")

    def ready(self, limit: int | None = None) -> list[tuple[Path, Verdict]]:
        """Files to take now, oldest first, at most `limit` of them (so that the first of a
        thousand dropped at once is taken without waiting for all to be probed); forgets
        those that vanished."""
        now = self.clock()
        out: list[tuple[Path, Verdict]] = []
        with self._lock:
            queue = sorted(self.candidates.items(), key=lambda kv: kv[1].first_seen)
        for path, cand in queue:
            if limit is not None and len(out) >= limit:
                break
            try:
                info = os.lstat(path)
            except OSError:
                self.forget(path)
                continue
            if not stat.S_ISREG(info.st_mode):
                self.forget(path)
                continue
            if (info.st_size, info.st_mtime_ns) != (cand.size, cand.mtime_ns):
                cand.size, cand.mtime_ns, cand.stable_since = info.st_size, info.st_mtime_ns, now
                if not cand.settled:
                    continue
            overdue = now - cand.first_seen >= self.incomplete_seconds
            waited = now - cand.stable_since >= self.stable_seconds
            if not (waited or overdue or cand.settled):
                continue
            verdict = self._judge(path, cand, now, overdue=overdue, waited=waited)
            if verdict is not None:
                self.forget(path)
                out.append((path, verdict))
        return out

    def _judge(self, path: Path, cand: _Candidate, now: float, *, overdue: bool,
               waited: bool) -> Verdict | None:
        """Everything here is read from one descriptor: the name may be swapped for a symlink
        or a FIFO at any moment, and what was judged must be what is then taken."""
        try:
            fd = open_dropped(path)
        except PermissionError:
            # A writer may create a file private and open it up when done: wait first.
            return "no-access" if waited or overdue else None
        except NotRegular as error:
            self.skip(path, str(error))
            return None
        except OSError:
            self.forget(path)
            return None
        try:
            size = os.fstat(fd).st_size
            fast = cand.settled and _ends_whole(fd, size)
            if not (waited or overdue or fast):
                return None
            if size == 0:
                # Scanners often create the file first and write it later: wait for content.
                return "take" if overdue else None
            if not looks_like_pdf(os.pread(fd, 1024, 0)):
                return "take"
            if now - cand.last_probe < PROBE_INTERVAL and not overdue:
                return None
            cand.last_probe = now
            try:
                whole = opens(Path(f"/proc/self/fd/{fd}"), pass_fds=(fd,))
            except MachineError as error:
                # Nothing known of the file: it waits (health says why), never "incomplete".
                self._warn_once(path, f"cannot judge {display_name(path.name)!r} yet: "
                                      f"{error.message}")
                return None
            if whole:
                return "take"
            return "incomplete" if overdue else None
        finally:
            os.close(fd)

    def skip(self, path: Path, why: str) -> None:
        """A name that is not a regular file (swapped in after it was listed): never taken."""
        self.forget(path)
        self._warn_once(path, f"ignoring {why} in incoming/: only regular files are taken")

    def _warn_once(self, path: Path, text: str) -> None:
        """One warning per file while it stays in incoming/."""
        with self._lock:
            first_time = path not in self._warned
            self._warned.add(path)
        if first_time:
            log.warning("%s", text)

    def pass_over(self, path: Path) -> None:
        """Leave this file alone until it changes (its owner, mode or content): it was refused
        as unreadable, or taken but could not be removed."""
        try:
            info = os.lstat(path)
        except OSError:
            return
        with self._lock:
            self._passed[path] = _identity(info)

    def forget(self, path: Path) -> None:
        with self._lock:
            self.candidates.pop(path, None)


def _identity(info: os.stat_result) -> tuple[int, ...]:
    # ctime moves with chmod and chown: a file made readable is looked at again.
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class _Handler(FileSystemEventHandler):
    def __init__(self, folder: Path, notify: Callable[[Path, bool], None]) -> None:
        self.folder = folder
        self.notify = notify

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("deleted", "opened", "closed_no_write"):
            return
        raw = event.dest_path if event.event_type == "moved" else event.src_path
        if not raw:
            return  # moved out of the folder to somewhere unwatched
        path = Path(os.fsdecode(raw))
        if path.parent == self.folder:
            self.notify(path, event.event_type in ("moved", "closed"))


def start_observer(folder: Path, mode: str, notify: Callable[[Path, bool], None],
                   poll_seconds: float = 2.0) -> BaseObserver:
    """Start watching `folder` (not its subfolders); `notify(path, settled)` is called on
    watchdog's thread, `settled` when the event says the writer is done with the file."""
    # Full events: a rename in from outside the folder arrives as a move (the writer is done),
    # not as a creation (the writer may have just begun).
    observer: BaseObserver = (PollingObserver(timeout=poll_seconds) if mode == "polling"
                              else InotifyObserver(generate_full_events=True))
    observer.schedule(_Handler(folder, notify), str(folder), recursive=False)
    observer.daemon = True
    observer.start()
    return observer


def _ends_whole(fd: int, size: int) -> bool:
    """True when the file's last bytes hold `%%EOF`, or an image's end (see above): a copy cut
    short almost never does."""
    try:
        tail = os.pread(fd, EOF_TAIL, max(0, size - EOF_TAIL))
        return b"%%EOF" in tail or images.whole(os.pread(fd, images.HEAD, 0), tail)
    except OSError:
        return False
