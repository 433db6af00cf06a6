"""Noticing files in incoming/, and deciding when one is whole enough to take.

Events come from a watchdog observer (inotify, or polling for network shares where inotify
sees nothing); a periodic full listing backs them up, so a missed event only delays a file.
A file is taken once its size and mtime have not changed for `stable_seconds` *and* it opens
as a PDF with a page count; a file that never becomes whole is taken after
`incomplete_seconds` and quarantined as incomplete. Not a PDF at all (wrong magic bytes) is
taken as soon as it is stable: waiting would not make it one.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from agent.gate import looks_like_pdf, opens
from agent.logs import get_logger

log = get_logger("watcher")
IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", ".swp", "~")
PROBE_INTERVAL = 2.0  # seconds between pdfinfo probes of a stable file that does not open yet
# Seconds of pdfinfo probes in one ready() call. It runs on the daemon's loop: a thousand files
# dropped at once would otherwise block it for half a minute (no canary noticed, no watchdog
# ping); the rest are judged at the next call.
PROBE_BUDGET = 0.25

Verdict = Literal["take", "incomplete"]


def ignored(name: str) -> bool:
    lowered = name.lower()
    return name.startswith(".") or lowered.endswith(IGNORED_SUFFIXES)


@dataclass
class _Candidate:
    first_seen: float
    size: int
    mtime_ns: int
    stable_since: float
    last_probe: float = 0.0


class Stabilizer:
    """Tracks files seen in incoming/ until each is complete (runs on one thread only)."""

    def __init__(self, stable_seconds: float, incomplete_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stable_seconds = stable_seconds
        self.incomplete_seconds = incomplete_seconds
        self.clock = clock
        self.candidates: dict[Path, _Candidate] = {}
        self._warned: set[Path] = set()
        self.more = False  # the last ready() ran out of its probe budget: call again soon

    def note(self, path: Path) -> None:
        if ignored(path.name) or path in self.candidates:
            return
        try:
            info = os.lstat(path)
        except OSError:
            return
        if stat.S_ISLNK(info.st_mode):
            if path not in self._warned:
                self._warned.add(path)
                log.warning("ignoring symlink %r in incoming/: symlinks are never followed",
                            path.name)
            return
        if not stat.S_ISREG(info.st_mode):
            return
        now = self.clock()
        self.candidates[path] = _Candidate(now, info.st_size, info.st_mtime_ns, now)

    def scan(self, folder: Path) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError as error:
            log.error("cannot list %s: %s", folder, error)
            return
        present = {Path(e.path) for e in entries}
        self._warned &= present
        for entry in entries:
            self.note(Path(entry.path))

    def ready(self) -> list[tuple[Path, Verdict]]:
        """Files to take now, oldest first; forgets those that vanished."""
        now = self.clock()
        out: list[tuple[Path, Verdict]] = []
        budget_ends = time.monotonic() + PROBE_BUDGET
        self.more = False
        for path, cand in sorted(self.candidates.items(), key=lambda kv: kv[1].first_seen):
            if time.monotonic() > budget_ends:
                self.more = True
                break
            try:
                info = os.lstat(path)
            except OSError:
                del self.candidates[path]
                continue
            if not stat.S_ISREG(info.st_mode):
                del self.candidates[path]
                continue
            if (info.st_size, info.st_mtime_ns) != (cand.size, cand.mtime_ns):
                cand.size, cand.mtime_ns, cand.stable_since = info.st_size, info.st_mtime_ns, now
                continue
            overdue = now - cand.first_seen >= self.incomplete_seconds
            if now - cand.stable_since < self.stable_seconds and not overdue:
                continue
            verdict = self._judge(path, cand, now, overdue)
            if verdict is not None:
                del self.candidates[path]
                out.append((path, verdict))
        return out

    def _judge(self, path: Path, cand: _Candidate, now: float, overdue: bool) -> Verdict | None:
        if cand.size == 0:
            # Scanners often create the file first and write it later: wait for content.
            return "take" if overdue else None
        try:
            with open(path, "rb") as handle:
                head = handle.read(1024)
        except OSError:
            return None
        if not looks_like_pdf(head):
            return "take"
        if now - cand.last_probe < PROBE_INTERVAL and not overdue:
            return None
        cand.last_probe = now
        if opens(path):
            return "take"
        return "incomplete" if overdue else None

    def forget(self, path: Path) -> None:
        self.candidates.pop(path, None)


class _Handler(FileSystemEventHandler):
    def __init__(self, folder: Path, notify: Callable[[Path], None]) -> None:
        self.folder = folder
        self.notify = notify

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("deleted", "opened", "closed_no_write"):
            return
        raw = event.dest_path if event.event_type == "moved" else event.src_path
        path = Path(os.fsdecode(raw))
        if path.parent == self.folder:
            self.notify(path)


def start_observer(folder: Path, mode: str, notify: Callable[[Path], None],
                   poll_seconds: float = 2.0) -> BaseObserver:
    """Start watching `folder` (not its subfolders); `notify` is called on watchdog's thread."""
    observer: BaseObserver = (PollingObserver(timeout=poll_seconds) if mode == "polling"
                              else Observer())
    observer.schedule(_Handler(folder, notify), str(folder), recursive=False)
    observer.daemon = True
    observer.start()
    return observer
