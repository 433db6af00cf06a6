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

A chain alone cannot tell that its last lines were cut, nor that the whole file was written
again with every hash recomputed. So the chain's head (the last entry's seq and hash, the file
and the line it is on, and when) is kept outside the file, by the writer, under the same lock:

- in `state.db`, table `audit_head` (one row), which this module writes itself through
  sqlite3 given the database's path: the audit stays a leaf that anyone may use, and this
  module is the table's one owner (the store never touches it). `verify()` compares the files
  with it and names what is wrong: entries missing at the end, an entry that is not the one
  the head recorded (rewritten), lines removed before it;
- in the journal (when there is one), one entry per head, `SYSLOG_IDENTIFIER=docagent-audit`
  with the fields `DOCAGENT_AUDIT_SEQ`, `_HASH`, `_LINES`, `_FILE`: a witness the service
  user cannot edit (`journalctl -t docagent-audit -o verbose`).

Before each append the writer checks that the file still ends where the head says; if not,
it records the damage in `audit_damage` (and logs it at error priority) before chaining on, so
that a cut followed by new entries is still reported by `verify()`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from agent import modes
from agent.logs import get_logger

FILE_NAME = "audit.jsonl"
GENESIS = "0" * 64
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
_TAIL = 64 * 1024
JOURNAL_SOCKET = "/run/systemd/journal/socket"
BUSY_SECONDS = 10.0

log = get_logger("audit")

_HEAD_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS audit_head (one INTEGER PRIMARY KEY CHECK (one = 1), "
    "seq INTEGER NOT NULL, hash TEXT NOT NULL, file TEXT NOT NULL, lines INTEGER NOT NULL, "
    "size INTEGER NOT NULL, at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_damage (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "at TEXT NOT NULL, found TEXT NOT NULL)",
)

# The events, in the outcome words the command line, the JSON, the database and the logs use
# too: a document quarantined in failed/ is `failed`, so one grep finds it everywhere.
EVENTS = {
    "taken": "a file was taken into the spool (name, size, sha256)",
    "duplicate": "the same bytes arrived again (the earlier document's id)",
    "filed": "filed under a patient (patient_id, evidence: the fields that agreed)",
    "review": "sent to a person (reason)",
    "failed": "quarantined in failed/ (kind, reason)",
    "resolved": "a person decided (actor: shell:USER or telegram:USER_ID; patient_id)",
    "rematched": "filed when matched again after a patients import (actor: rematch after "
                 "import; patient_id, evidence)",
    "retried": "a person put a failed document back in the queue (actor, previous reason)",
    "rejected": "a command from a user who is not allowed (actor, command)",
    # Who saw what (agent.ops.finding): every access to a filed document is a line too.
    "searched": "a search (actor: shell:USER or telegram:USER_ID; channel; query: what was "
                "looked for; patients: the ids shown; documents: each shown, with its patient)",
    "shown": "a document's details shown (docagent show: actor, document_id, patient_id)",
    "opened": "a document sent to a chat (actor, chat_id, document_id, patient_id; sent: pdf "
              "or first page)",
    "downloaded": "a document's PDF written out by the shell (docagent show --pdf: actor, "
                  "document_id, patient_id)",
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


# --- the head, kept outside the file ---------------------------------------------------------


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str
    file: str  # the file the entry is in (audit.jsonl: the newest entry is always there)
    lines: int  # the line it is on: the file's line count once it was written
    size: int  # the file's size then (to count the next entry's line without reading it all)
    at: str


def _connect(state_db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(state_db, timeout=BUSY_SECONDS, isolation_level=None)
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def read_head(state_db: Path) -> tuple[Head | None, list[str]]:
    """The head recorded in state.db and the damage writers found, or (None, []) if none."""
    try:
        conn = sqlite3.connect(f"{state_db.absolute().as_uri()}?mode=ro", uri=True,
                               timeout=BUSY_SECONDS)
    except sqlite3.Error:
        return None, []
    try:
        row = conn.execute("SELECT seq, hash, file, lines, size, at FROM audit_head").fetchone()
        damage = [f"{at}: {found}" for at, found in
                  conn.execute("SELECT at, found FROM audit_damage ORDER BY id")]
    except sqlite3.Error:  # no such table yet: nothing written since the head was kept
        return None, []
    finally:
        conn.close()
    return (Head(*row) if row else None), damage


def _write_head(state_db: Path, head: Head, damage: str | None) -> None:
    conn = _connect(state_db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for statement in _HEAD_SCHEMA:
            conn.execute(statement)
        if damage is not None:
            conn.execute("INSERT INTO audit_damage (at, found) VALUES (?, ?)", (head.at, damage))
        conn.execute(
            "INSERT INTO audit_head (one, seq, hash, file, lines, size, at) "
            "VALUES (1, ?, ?, ?, ?, ?, ?) ON CONFLICT(one) DO UPDATE SET seq = excluded.seq, "
            "hash = excluded.hash, file = excluded.file, lines = excluded.lines, "
            "size = excluded.size, at = excluded.at",
            (head.seq, head.hash, head.file, head.lines, head.size, head.at))
        conn.execute("COMMIT")
    finally:
        conn.close()


def _to_journal(head: Head) -> None:
    """One journal entry carrying the head; nothing when there is no journald."""
    if not os.path.exists(JOURNAL_SOCKET):
        return
    fields = {
        "MESSAGE": f"audit head: seq {head.seq}, line {head.lines} of {head.file}, "
                   f"hash {head.hash}",
        "PRIORITY": "6",
        "SYSLOG_IDENTIFIER": "docagent-audit",
        "DOCAGENT_AUDIT_SEQ": str(head.seq),
        "DOCAGENT_AUDIT_HASH": head.hash,
        "DOCAGENT_AUDIT_LINES": str(head.lines),
        "DOCAGENT_AUDIT_FILE": head.file,
    }
    datagram = "".join(f"{key}={value}\n" for key, value in fields.items())
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(datagram.encode("utf-8"), JOURNAL_SOCKET)


def _entry_ending_at(path: Path, end: int) -> dict[str, Any] | None:
    """The entry whose line ends at byte `end` of `path`, if one does."""
    try:
        with open(path, "rb") as handle:
            window = _TAIL
            while True:
                start = max(0, end - window)
                handle.seek(start)
                text = handle.read(end - start)
                if len(text) != end - start or not text.endswith(b"\n"):
                    return None
                if start == 0 or b"\n" in text[:-1]:
                    break
                window *= 4  # a long entry: read further back
    except OSError:
        return None
    try:
        entry = json.loads(text[:-1].rsplit(b"\n", 1)[-1])
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def _holds_head(log_dir: Path, head: Head) -> bool:
    """Whether the head's entry is still where it was written (its file may have rotated)."""
    for path in [log_dir / head.file, *reversed(_rotated(log_dir))]:
        entry = _entry_ending_at(path, head.size)
        if entry is not None and entry.get("seq") == head.seq and entry.get("hash") == head.hash:
            return True
    return False


def _damage(log_dir: Path, head: Head | None, last: dict[str, Any] | None) -> str | None:
    """What is wrong when the files do not end where the recorded head says, else None.

    Entries past the head are writers killed between their line and their head: fine, as
    long as the head's own entry is still there.
    """
    if head is None:
        return None
    seq = int(last["seq"]) if last else 0
    if last is not None and seq == head.seq and last.get("hash") == head.hash:
        return None
    if last is not None and seq == head.seq + 1 and last.get("prev") == head.hash:
        return None  # the usual crash: one line, no head; nothing to read
    if seq > head.seq and _holds_head(log_dir, head):
        return None
    if seq < head.seq:
        return (f"{_last(head.seq - seq, 'was', 'were')} missing (the log ended at seq {seq}, "
                f"the head recorded at {head.at} is seq {head.seq})")
    return (f"the log was rewritten: it ended at seq {seq}, which does not follow the head "
            f"recorded at {head.at} (seq {head.seq})")


def _last(count: int, one: str, many: str) -> str:
    return f"the last entry {one}" if count == 1 else f"the last {count} entries {many}"


def _count_lines(path: Path, upto: int) -> int:
    """Lines in the first `upto` bytes, an unfinished last one included."""
    count, tail = 0, b"\n"
    with open(path, "rb") as handle:
        left = upto
        while left > 0:
            chunk = handle.read(min(left, 1024 * 1024))
            if not chunk:
                break
            count += chunk.count(b"\n")
            tail = chunk[-1:]
            left -= len(chunk)
    return count + (tail != b"\n")


class Places(Protocol):
    """Where the audit files and the database are (`config.Settings` is one)."""

    @property
    def log_dir(self) -> Path: ...

    @property
    def db_path(self) -> Path: ...


class AuditLog:
    def __init__(self, log_dir: Path, *, state_db: Path,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.log_dir = log_dir
        self.path = log_dir / FILE_NAME
        self.state_db = state_db  # where the chain's head is kept
        self.max_bytes = max_bytes

    @classmethod
    def of(cls, places: Places) -> AuditLog:
        return cls(places.log_dir, state_db=places.db_path)

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
            head, _ = read_head(self.state_db)
            damage = _damage(self.log_dir, head, last)
            if damage is not None:
                log.error("the audit log does not end where its head in %s says: %s; "
                          "recorded, and the chain goes on (docagent audit verify)",
                          self.state_db, damage)
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
                before = os.fstat(fd).st_size
                # A torn line from a crash is ended first, so ours starts on a line of its own.
                os.write(fd, (("\n" if torn else "") + line).encode("utf-8"))
                os.fsync(fd)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            self._keep_head(entry, head, before, size, damage)
            return entry
        finally:
            os.close(lock_fd)

    def _keep_head(self, entry: dict[str, Any], head: Head | None, before: int, size: int,
                   damage: str | None) -> None:
        """Record the new head in state.db and the journal (under the writers' lock)."""
        if damage is None and head is not None and head.file == FILE_NAME \
                and head.size == before:
            lines = head.lines + 1  # the usual case: nothing but our line since the last head
        else:
            lines = _count_lines(self.path, before) + 1
        new = Head(int(entry["seq"]), str(entry["hash"]), FILE_NAME, lines, size,
                   str(entry["ts"]))
        try:
            _write_head(self.state_db, new, damage)
        except sqlite3.Error as error:
            # The line is written and fsync'd: the audit holds. The next entry records the head.
            log.warning("audit head not recorded in %s (%s): the next entry records it",
                        self.state_db, error)
        _to_journal(new)


@dataclass
class Verification:
    entries: int = 0
    files: int = 0
    problems: list[str] = field(default_factory=list)  # the chain is broken
    warnings: list[str] = field(default_factory=list)  # torn lines: reported, not hidden
    head: Head | None = None  # as recorded in state.db

    @property
    def ok(self) -> bool:
        return not self.problems


def _lines(paths: list[Path]) -> Iterator[tuple[Path, int, bytes]]:
    for path in paths:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, 1):
                yield path, number, raw


Snapshot = tuple[list[tuple[Path, BinaryIO, int]], Head | None, list[str]]


def _snapshot(log_dir: Path, state_db: Path | None) -> Snapshot:
    """Every audit file as it stands, and the head and damage recorded with them, taken under
    the writers' lock.

    The lock is held only to list and open the files and read the head: a rotation or an append
    while we read cannot then make a file seem missing or the head seem ahead, and the daemon is
    not kept waiting for the walk.
    """
    if not log_dir.exists():
        return ([], *read_head(state_db)) if state_db is not None else ([], None, [])
    lock_fd = os.open(log_dir / ".audit.lock", os.O_RDWR | os.O_CREAT, 0o600)
    handles: list[tuple[Path, BinaryIO, int]] = []
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_SH)
        for path in [*_rotated(log_dir), log_dir / FILE_NAME]:
            if path.exists():
                handle = open(path, "rb")  # noqa: SIM115 - closed below
                handles.append((path, handle, os.fstat(handle.fileno()).st_size))
        head, damage = read_head(state_db) if state_db is not None else (None, [])
    finally:
        os.close(lock_fd)
    return handles, head, damage


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


@dataclass(frozen=True)
class _Seen:
    """Where the walk met an entry."""

    file: str
    line: int
    seq: int
    hash: str


def verify(log_dir: Path, state_db: Path | None = None) -> Verification:
    """Walk every audit file, oldest first, and check each link of the chain; then, given
    `state_db`, check that the files end where the head recorded there says."""
    files, head, damage = _snapshot(log_dir, state_db)
    result = Verification(files=len(files), head=head)
    prev, seq = GENESIS, 0
    at_head: _Seen | None = None
    last: _Seen | None = None
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
        last = _Seen(path.name, number, seq, prev)
        if head is not None and seq == head.seq:
            at_head = last
        result.entries += 1
    result.problems += [f"found by a writer at {found}" for found in damage]
    if head is not None:
        _against_head(result, head, at_head, last)
    return result


def _against_head(result: Verification, head: Head, at_head: _Seen | None,
                  last: _Seen | None) -> None:
    """What the files say against the head recorded in state.db."""
    recorded = f"the head recorded in state.db at {head.at}"
    end = last.seq if last else 0
    if at_head is None:
        if end < head.seq:
            result.problems.append(
                f"{_last(head.seq - end, 'is', 'are')} missing: the log ends at seq {end}, "
                f"{recorded} is seq {head.seq} (lines cut from the end, or a file deleted)")
        else:
            result.problems.append(f"the file was rewritten: no entry has seq {head.seq}, "
                                   f"{recorded}")
        return
    if at_head.hash != head.hash:
        result.problems.append(
            f"the file was rewritten: entry seq {head.seq} ({at_head.file} line "
            f"{at_head.line}) does not match {recorded} (hash {head.hash[:16]}…, found "
            f"{at_head.hash[:16]}…)")
        return
    if at_head.line != head.lines:  # the file may have been rotated (renamed) since
        result.problems.append(
            f"entry seq {head.seq} is on {at_head.file} line {at_head.line}, {recorded} puts "
            f"it on {head.file} line {head.lines}: lines were removed or added before it")
    after = end - head.seq
    if after == 1:
        result.warnings.append(
            f"1 entry after {recorded}: its writer stopped before recording it (a kill or a "
            "crash); the next entry records the head")
    elif after > 1:
        # Several writers killed in a row, or state.db not writable for a while; or entries
        # added by something else: the journal's heads tell which.
        result.warnings.append(
            f"{after} entries after {recorded} (seq {head.seq}) without a head of their own: "
            "writers stopped before recording it, or state.db could not be written (see "
            "'audit head not recorded' in the log), or they were added by something else "
            "(compare with journalctl -t docagent-audit)")


def entries(log_dir: Path, document_id: str | None = None, *,
            mentioning: tuple[str, ...] = ()) -> Iterator[dict[str, Any]]:
    """Whole entries, oldest first, optionally for one document, or only those whose line
    holds one of the strings `mentioning` (a line without them is not even parsed)."""
    paths = [p for p in [*_rotated(log_dir), log_dir / FILE_NAME] if p.exists()]
    needles = [n.encode("utf-8") for n in (*mentioning, *filter(None, [document_id]))]
    for _path, _number, raw in _lines(paths):
        if needles and not any(needle in raw for needle in needles):
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, dict) and (document_id is None
                                        or entry.get("document_id") == document_id):
            yield entry
