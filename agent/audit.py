"""The audit log: one JSON line per decision about a document, append-only and hash-chained.

Each line carries the hash of the line before it (`prev`) and its own (`hash`, the sha256 of
`prev` and the line's canonical JSON without `hash`), so an edited, deleted or reordered line
breaks the chain where it happened, and `verify()` says which line. Lines are appended under
an exclusive lock (the daemon and a shell command may write at once) and fsync'd before the
call returns.

A `kill -9` in the middle of a write leaves a torn last line. The next append notices the
missing newline, ends the torn line, and chains from the last whole line; `verify()` reports
the torn line and goes on. When the file passes `max_bytes` it is renamed with a time stamp
and a new file starts from the old one's last hash, so the chain spans every file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from agent import modes

FILE_NAME = "audit.jsonl"
GENESIS = "0" * 64
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
_TAIL = 64 * 1024

# The events, in the outcome words used everywhere else. The "quarantined" is
# `failed`, the outcome's own name (DESIGN.md: one word per outcome in CLI, JSON, DB, logs).
EVENTS = {
    "taken": "a file was taken into the spool (name, size, sha256)",
    "duplicate": "the same bytes arrived again (the earlier document's id)",
    "filed": "filed under a patient (patient_id, evidence: the fields that agreed)",
    "review": "sent to a person (reason)",
    "failed": "quarantined in failed/ (kind, reason)",
    "resolved": "a person decided (actor: shell:USER or telegram:USER_ID; patient_id)",
    "retried": "a person put a failed document back in the queue (actor, previous reason)",
    "rejected": "a command from a user who is not allowed (actor, command)",
}


def _digest(prev: str, entry: dict[str, Any]) -> str:
    body = json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev + body).encode("utf-8")).hexdigest()


def _last_entry(path: Path) -> tuple[dict[str, Any] | None, bool]:
    """The last whole entry of a file, and whether the file ends in a torn line."""
    if not path.exists():
        return None, False
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        window = _TAIL
        while True:
            # Read back further until a whole entry is in view: an entry may be longer
            # than the usual tail, and a torn one may hide the entry before it.
            start = max(0, size - window)
            handle.seek(start)
            tail = handle.read(size - start)
            torn = bool(tail) and not tail.endswith(b"\n")
            pieces = tail.split(b"\n")
            if start > 0:
                pieces = pieces[1:]  # the first piece may be the end of a longer line
            for raw in reversed(pieces):
                try:
                    entry = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(entry, dict) and "hash" in entry:
                    return entry, torn
            if start == 0:
                return None, torn
            window *= 4


def _rotated(log_dir: Path) -> list[Path]:
    return sorted(log_dir.glob("audit-*.jsonl"))


class AuditLog:
    def __init__(self, log_dir: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.log_dir = log_dir
        self.path = log_dir / FILE_NAME
        self.max_bytes = max_bytes

    def record(self, event: str, *, document_id: str | None = None, actor: str | None = None,
               **details: Any) -> dict[str, Any]:
        """Append one entry and return it (with its seq and hash)."""
        modes.make_folder(self.log_dir)
        lock_fd = os.open(self.log_dir / ".audit.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            last, torn = _last_entry(self.path)
            if last is None:
                rotated = _rotated(self.log_dir)
                if rotated:
                    last, _ = _last_entry(rotated[-1])
            if self.path.exists() and self.path.stat().st_size >= self.max_bytes:
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
                os.rename(self.path, self.log_dir / f"audit-{stamp}.jsonl")
                torn = False
            entry: dict[str, Any] = {
                "seq": (int(last["seq"]) + 1) if last else 1,
                "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "event": event,
            }
            if document_id is not None:
                entry["document_id"] = document_id
            if actor is not None:
                entry["actor"] = actor
            entry.update({k: v for k, v in details.items() if v is not None})
            entry["prev"] = str(last["hash"]) if last else GENESIS
            entry["hash"] = _digest(entry["prev"], entry)
            line = json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n"
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                # A torn line from a crash is ended first, so ours starts on a line of its own.
                os.write(fd, (("\n" if torn else "") + line).encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            return entry
        finally:
            os.close(lock_fd)


@dataclass
class Verification:
    entries: int = 0
    files: int = 0
    problems: list[str] = field(default_factory=list)  # the chain is broken
    warnings: list[str] = field(default_factory=list)  # torn lines: reported, not hidden

    @property
    def ok(self) -> bool:
        return not self.problems


def _lines(paths: list[Path]) -> Iterator[tuple[Path, int, bytes]]:
    for path in paths:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, 1):
                yield path, number, raw


def _snapshot(log_dir: Path) -> list[tuple[Path, BinaryIO, int]]:
    """Every audit file as it stands, taken under the writers' lock.

    The lock is held only to list and open the files: a rotation or an append while we read
    cannot then make a file seem missing, and the daemon is not kept waiting for the walk.
    """
    if not log_dir.exists():
        return []
    lock_fd = os.open(log_dir / ".audit.lock", os.O_RDWR | os.O_CREAT, 0o600)
    handles: list[tuple[Path, BinaryIO, int]] = []
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_SH)
        for path in [*_rotated(log_dir), log_dir / FILE_NAME]:
            if path.exists():
                handle = open(path, "rb")  # noqa: SIM115 - closed below
                handles.append((path, handle, os.fstat(handle.fileno()).st_size))
    finally:
        os.close(lock_fd)
    return handles


def _lines_upto(files: list[tuple[Path, BinaryIO, int]]) -> Iterator[tuple[Path, int, bytes]]:
    """The lines of each opened file up to the size it had in the snapshot; closes them."""
    try:
        for path, handle, size in files:
            remaining = size
            number = 0
            while remaining > 0:
                raw = handle.readline(remaining)
                if not raw:
                    break
                remaining -= len(raw)
                number += 1
                yield path, number, raw
    finally:
        for _path, handle, _size in files:
            handle.close()


def verify(log_dir: Path) -> Verification:
    """Walk every audit file, oldest first, and check each link of the chain."""
    files = _snapshot(log_dir)
    result = Verification(files=len(files))
    prev, seq = GENESIS, 0
    for path, number, raw in _lines_upto(files):
        where = f"{path.name} line {number}"
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
            if not isinstance(entry, dict):
                raise ValueError("not an object")
        except ValueError:
            # A write cut short never reached its closing brace; an edit that breaks the JSON
            # but keeps the brace is not a torn write. Either way the next line's `prev`
            # still has to chain to the last whole entry.
            if not raw.rstrip().endswith(b"}"):
                result.warnings.append(f"{where}: torn (an interrupted write); the chain "
                                       "continues after it")
            else:
                result.problems.append(f"{where}: not a valid entry (edited?)")
            continue
        claimed = entry.pop("hash", None)
        if entry.get("prev") != prev:
            result.problems.append(
                f"{where}: does not follow the entry before it (seq {entry.get('seq')} after "
                f"{seq}): a line was deleted, inserted or moved")
        if claimed != _digest(str(entry.get("prev")), entry):
            result.problems.append(f"{where}: its content does not match its hash (edited)")
        prev, seq = str(claimed), int(entry.get("seq", 0))
        result.entries += 1
    return result


def entries(log_dir: Path, document_id: str | None = None) -> Iterator[dict[str, Any]]:
    """Whole entries, oldest first, optionally for one document."""
    paths = [p for p in [*_rotated(log_dir), log_dir / FILE_NAME] if p.exists()]
    for _path, _number, raw in _lines(paths):
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, dict) and (document_id is None
                                        or entry.get("document_id") == document_id):
            yield entry
