"""The spool: the folders a document moves through, and the order of every move.

A document's state is the folder it is in plus its row in state.db. Each move is ordered so
that a `kill -9` between any two steps leaves something `recover()` can finish:

claim   1. open the dropped file once (O_NOFOLLOW | O_NONBLOCK), fstat: a regular file
        2. copy it from that descriptor into processing/.claim-*.tmp, hashing as it goes,
           fsync                                  (crash: recover() removes the .tmp; the
                                                   dropped file is still in incoming/)
        3. row `claiming` + receipt, committed    (crash: recover() drops the row)
        4. rename the copy to processing/<id>.pdf, fsync
                                                  (crash: recover() sees the file -> queued)
        5. row `queued`, committed
        6. unlink the dropped file                (crash before: it is seen again, and its
                                                   receipt says it was taken: it is removed
                                                   without a second document or message)
place   1. row `filing` with the chosen destination and the whole result, committed
        2. hard-link the PDF to its destination   (link() never overwrites: a name clash
                                                   gets a suffix), then the sidecars
        3. row final + outbox message, one commit (crash before: recover() redoes 2 and 3)
        4. unlink processing/<id>.pdf             (crash before: recover() unlinks it)

Why a copy and never a rename or link of the dropped file: that inode belongs to whoever
dropped it. Kept, it would let them write into the archive through a descriptor opened
before the drop, and Debian's fs.protected_hardlinks refuses link() on another user's file
the daemon cannot write. A check of the name followed by a rename of the name is also a race
(a symlink or a FIFO swapped in between); every check and every byte here come from the one
descriptor. So every file under processing/, done/, review/ and failed/ is docagent's own,
created with modes.FILE, and the bytes archived are the bytes hashed.

Nothing is ever overwritten, and the PDF's bytes are never changed: the archive holds the
original content.
"""

from __future__ import annotations

import errno
import glob
import grp
import hashlib
import json
import os
import pwd
import re
import sqlite3
import stat
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import modes, reasons
from agent.audit import AuditLog
from agent.config import Settings
from agent.errors import DiskFull, DocagentError, NoAccess
from agent.logs import get_logger
from agent.store import (
    CLAIMING,
    FAILED,
    FILED,
    FILING,
    PROCESSING,
    QUEUED,
    REVIEW,
    Document,
    Store,
    now_iso,
)

log = get_logger("spool")

FOLDERS = ("incoming", "processing", "done", "review", "failed")
MAX_NAME_BYTES = 150
# Opening a dropped file: never through a symlink, never blocking on a FIFO swapped in.
OPEN_DROPPED = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
CHUNK = 1024 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f/\\]+")
_PDF_SUFFIX = re.compile(r"\.pdf$", re.IGNORECASE)


def ensure_folders(settings: Settings) -> None:
    """Create what is missing; an existing folder keeps its mode (install.sh sets incoming/'s)."""
    for name in FOLDERS:
        modes.make_folder(settings.home / name)


def display_name(raw: str) -> str:
    """A name that can be stored, logged and shown: undecodable bytes become U+FFFD."""
    return os.fsencode(raw).decode("utf-8", "replace")


def safe_name(raw: str) -> str:
    """A single, harmless path component: no separators, control characters or leading dots."""
    name = _CONTROL.sub("_", display_name(raw)).strip().lstrip(".").strip()
    if not name:
        name = "document"
    while len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        keep_extension = dot and 0 < len(ext) <= 10 and len(stem) > 1
        name = f"{stem[:-1]}.{ext}" if keep_extension else name[:-1]
    return name


def pdf_stem(original_name: str) -> str:
    return _PDF_SUFFIX.sub("", safe_name(original_name)) or "document"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _disk_error(error: OSError) -> Exception:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull("the disk is full", detail=str(error))
    return error


def _temporary(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")


def _copy_fd(source_fd: int, tmp: Path) -> tuple[str, int]:
    """Copy everything `source_fd` holds into a new file `tmp` of ours, fsync'd; returns the
    sha256 and size of the bytes copied. pread: the descriptor's offset is not ours to move."""
    digest = hashlib.sha256()
    offset = 0
    try:
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, modes.FILE)
        with os.fdopen(out, "wb") as target:
            while chunk := os.pread(source_fd, CHUNK, offset):
                digest.update(chunk)
                target.write(chunk)
                offset += len(chunk)
            target.flush()
            os.fsync(target.fileno())
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise _disk_error(error) from error
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest.hexdigest(), offset


def _copy_durably(src: Path, dest: Path) -> None:
    """Copy one of our own files to a temporary name, fsync, then rename: a reader never sees
    half a file."""
    tmp = _temporary(dest)
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        _copy_fd(fd, tmp)
    finally:
        os.close(fd)
    try:
        os.rename(tmp, dest)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise _disk_error(error) from error


def write_file(path: Path, data: bytes) -> None:
    """Write a whole file atomically (temporary name, fsync, rename), mode modes.FILE."""
    tmp = _temporary(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, modes.FILE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise _disk_error(error) from error


# --- claim: incoming -> processing -------------------------------------------------------


class NotTaken(Exception):
    """The file cannot be taken now, and nothing was recorded: it is looked at again later
    (or, for a symlink or a FIFO, never)."""


class NotRegular(NotTaken):
    """The name no longer refers to a regular file (a symlink or a FIFO swapped in)."""


class StillChanging(NotTaken):
    """The file changed while it was copied: its writer is not done."""


@dataclass(frozen=True)
class Claim:
    document_id: str
    duplicate_of: Document | None  # set when the same bytes were taken in before
    original_name: str
    # This very file (same name, inode, size and time) was taken before: a crash came between
    # its claim and the unlink, or it could not be removed. Nothing new happened.
    again: bool = False
    # Why the dropped file is still in incoming/ (it could not be removed), or None.
    left: str | None = None
    # The file could not be read at all: recorded as failed (`no-access`), left where it is.
    refused: bool = False


def processing_path(settings: Settings, document_id: str) -> Path:
    return settings.processing / f"{document_id}.pdf"


def source_key(name: str, info: os.stat_result) -> str:
    """Which file this was, as dropped: a second look at the same file finds the same key."""
    return f"{name}|{info.st_size}|{info.st_mtime_ns}|{info.st_ino}|{info.st_dev}"


def open_dropped(path: Path) -> int:
    """A descriptor on a dropped regular file. Raises NotRegular for a symlink, a FIFO or
    anything else, PermissionError when docagent may not read it, FileNotFoundError."""
    try:
        fd = os.open(path, OPEN_DROPPED)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise NotRegular(f"{display_name(path.name)!r} is a symlink") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegular(f"{display_name(path.name)!r} is not a regular file")
    return fd


def claim(settings: Settings, store: Store, source: Path, *, keep_source: bool = False,
          hold: bool = False, fd: int | None = None) -> Claim:
    """Take one file into the spool (see the module docstring for the order of steps).

    `keep_source` leaves the original where it is (`docagent process` never touches it).
    `hold` leaves the document `processing` for the caller instead of queueing it, so no
    worker can take it in between (the intake uses it to quarantine a file at once). `fd`, an
    already opened descriptor on the file (the CLI opens its inputs as the caller before it
    gives up root), is read from and not closed.
    """
    name = display_name(source.name)
    if fd is None:
        try:
            own_fd = open_dropped(source)
        except PermissionError as error:
            if keep_source:
                raise
            return _refuse(settings, store, source, error)
    else:
        own_fd = fd
    try:
        info = os.fstat(own_fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegular(f"{name!r} is not a regular file")
        tmp = settings.processing / f".claim-{uuid.uuid4().hex[:12]}.tmp"
        sha256, size = _copy_fd(own_fd, tmp)
        after = os.fstat(own_fd)
    finally:
        if fd is None:
            os.close(own_fd)
    try:
        if (after.st_size, after.st_mtime_ns) != (info.st_size, info.st_mtime_ns) \
                or size != info.st_size:
            raise StillChanging(f"{name!r} changed while it was copied")
        return _claim_copy(settings, store, source, name, info, tmp, sha256, size,
                           keep_source=keep_source, hold=hold)
    finally:
        tmp.unlink(missing_ok=True)


def _claim_copy(settings: Settings, store: Store, source: Path, name: str,
                info: os.stat_result, tmp: Path, sha256: str, size: int, *,
                keep_source: bool, hold: bool) -> Claim:
    document_id = sha256[:16]
    key = source_key(name, info)
    target = processing_path(settings, document_id)

    with store.write() as conn:
        replaced = _forget_refusal(conn, key)
        row = conn.execute(
            "SELECT id, state FROM documents WHERE sha256 = ?", (sha256,)
        ).fetchone()
        if row is not None and row["state"] != CLAIMING:
            seen = conn.execute("SELECT 1 FROM receipts WHERE source_key = ?", (key,)).fetchone()
            if seen is None:
                _record_duplicate(conn, store, row["id"], name, key)
            again = seen is not None
            duplicate = True
        else:
            duplicate = again = False
            if row is None:
                conn.execute(
                    "INSERT INTO documents (id, sha256, original_name, size, state, received_at,"
                    " updated_at, path) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (document_id, sha256, name, size, CLAIMING, now_iso(), now_iso(),
                     str(target.relative_to(settings.home))),
                )
            conn.execute(
                "INSERT OR IGNORE INTO receipts (document_id, original_name, received_at, kind,"
                " source_key) VALUES (?, ?, ?, 'new', ?)",
                (document_id, name, now_iso(), key),
            )

    if duplicate:
        earlier = store.get(document_id)
        left = None if keep_source else _remove_source(source, info)
        if not again:
            AuditLog.of(settings).record("duplicate", document_id=document_id, name=name,
                                          actor="docagent")
            log.info("duplicate of %s (%s): %s", document_id,
                     earlier.original_name if earlier else "?", name)
        return Claim(document_id, earlier, name, again=again, left=left)

    try:
        os.rename(tmp, target)
        fsync_dir(target.parent)
    except OSError as error:
        raise _disk_error(error) from error

    with store.write() as conn:
        if hold:
            store.update(conn, document_id, state=PROCESSING, attempts=1, next_attempt_at=0)
        else:
            store.update(conn, document_id, state=QUEUED, next_attempt_at=0)
    AuditLog.of(settings).record("taken", document_id=document_id, name=name, size=size,
                                  sha256=sha256, actor="docagent", replaces=replaced)
    log.info("taken in %s as %s", name, document_id, extra={"doc": document_id})
    left = None if keep_source else _remove_source(source, info)
    if left is not None:
        log.warning("took a copy of %r: the original cannot be removed from %s (%s); it is "
                    "left there and not taken again", name, source.parent, left,
                    extra={"doc": document_id})
    return Claim(document_id, None, name, left=left)


def _remove_source(source: Path, taken: os.stat_result) -> str | None:
    """Unlink the dropped file if its name still refers to the file copied; else say why not.

    A name that now refers to another file (replaced by its owner since the copy) is left for
    the next look rather than removed unread.
    """
    try:
        now = os.lstat(source)
    except FileNotFoundError:
        return None
    if (now.st_dev, now.st_ino) != (taken.st_dev, taken.st_ino):
        return "the name now refers to another file, which is taken on its own"
    try:
        os.unlink(source)
        fsync_dir(source.parent)
    except FileNotFoundError:
        return None
    except OSError as error:
        return error.strerror or str(error)
    return None


def _record_duplicate(
    conn: sqlite3.Connection, store: Store, earlier_id: str, name: str, key: str
) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO receipts (document_id, original_name, received_at, kind,"
        " source_key) VALUES (?, ?, ?, 'duplicate', ?)",
        (earlier_id, name, now_iso(), key),
    )
    earlier = conn.execute(
        "SELECT original_name, state, path, deferrals, reason FROM documents WHERE id = ?",
        (earlier_id,),
    ).fetchone()
    # A copy dropped again while the first still waits (deferred by a fault of the machine)
    # is a person asking to try now: the bytes are safe in processing/, so the copy goes,
    # and the document waiting is tried again at once.
    retried = earlier["state"] == QUEUED and earlier["deferrals"] > 0
    if retried:
        store.update(conn, earlier_id, next_attempt_at=0)
    store.enqueue(conn, "duplicate", earlier_id, {
        "name": name,
        "earlier_name": earlier["original_name"],
        "earlier_state": earlier["state"],
        "earlier_path": earlier["path"],
        "earlier_reason": earlier["reason"] if retried else None,
        "retried_now": retried,
    })


# --- a file docagent may not read ----------------------------------------------------------


def failure_result(base: Mapping[str, Any], error: DocagentError,
                   duration_ms: int) -> dict[str, Any]:
    """What is kept about a failure (reason file, database, outbox): the same for every one."""
    return {**base, "outcome": FAILED, "reason": error.message,
            "reason_code": reasons.failure(error.kind, error.message).as_dict(),
            "patient_id": None, "time": now_iso(), "duration_ms": duration_ms, "pages": None,
            "text_source": None, **error.as_dict()}

_NO_ACCESS_PREFIX = "no-access:"


def owner_of(info: os.stat_result) -> str:
    """`user:group` of a file, numbers where the names are unknown."""
    try:
        user = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        user = str(info.st_uid)
    try:
        group = grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        group = str(info.st_gid)
    return f"{user}:{group}"


def _refuse(settings: Settings, store: Store, source: Path, error: OSError) -> Claim:
    """Record, once, that a dropped file cannot be read: failed (`no-access`), with the owner,
    the mode and the fix; the file stays where it was dropped, since its bytes cannot be
    copied, and is taken normally once someone makes it readable."""
    name = display_name(source.name)
    info = os.lstat(source)
    key = source_key(name, info)
    digest = hashlib.sha256((_NO_ACCESS_PREFIX + key).encode("utf-8")).hexdigest()
    document_id = digest[:16]
    mode = stat.S_IMODE(info.st_mode)
    reason = NoAccess(f"docagent may not read this file (owner {owner_of(info)}, mode {mode:04o})",
                      stage="intake", detail=error.strerror or str(error))
    relative = str(source.relative_to(settings.home)) if source.is_relative_to(settings.home) \
        else str(source)
    result = failure_result({"document_id": document_id, "sha256": None, "original_name": name,
                             "received_at": now_iso(), "attempts": 0}, reason, 0)
    with store.write() as conn:
        if conn.execute("SELECT 1 FROM receipts WHERE source_key = ?", (key,)).fetchone():
            return Claim(document_id, None, name, again=True, refused=True)
        conn.execute(
            "INSERT INTO documents (id, sha256, original_name, size, state, received_at,"
            " updated_at, path, outcome, reason_kind, reason, result_json, finished_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (document_id, _NO_ACCESS_PREFIX + digest, name, info.st_size, FAILED, now_iso(),
             now_iso(), relative, FAILED, reason.kind, reason.message,
             json.dumps(result, ensure_ascii=False), now_iso()),
        )
        conn.execute(
            "INSERT INTO receipts (document_id, original_name, received_at, kind, source_key)"
            " VALUES (?, ?, ?, 'new', ?)", (document_id, name, now_iso(), key),
        )
        store.enqueue(conn, "failed", document_id, {**result, "path": relative})
    AuditLog.of(settings).record("failed", document_id=document_id, actor="docagent",
                                 outcome=FAILED, kind=reason.kind, reason=reason.message,
                                 name=name, path=relative)
    log.error("cannot read %r in %s (owner %s, mode %04o): %s %s", name, source.parent,
              owner_of(info), mode, reason.message, reason.action, extra={"doc": document_id})
    return Claim(document_id, None, name, refused=True)


def _forget_refusal(conn: sqlite3.Connection, key: str) -> str | None:
    """The file refused as unreadable is readable now: its `no-access` record gives way to the
    document about to be taken (returns the id it had)."""
    row = conn.execute(
        "SELECT d.id FROM receipts r JOIN documents d ON d.id = r.document_id "
        "WHERE r.source_key = ? AND d.sha256 LIKE ?", (key, _NO_ACCESS_PREFIX + "%"),
    ).fetchone()
    if row is None:
        return None
    conn.execute("DELETE FROM receipts WHERE document_id = ?", (row["id"],))
    conn.execute("DELETE FROM documents WHERE id = ?", (row["id"],))
    return str(row["id"])


def taken_before(store: Store, path: Path) -> Document | None:
    """The document this very file (same name, inode, size and time) became when it was taken
    or refused before, if it was: a file still in incoming/ that is not waiting to be taken."""
    key = source_key(display_name(path.name), os.lstat(path))
    rows = store.read("SELECT d.* FROM receipts r JOIN documents d ON d.id = r.document_id "
                      "WHERE r.source_key = ?", (key,))
    return Document.from_row(rows[0]) if rows else None


def is_refusal(doc: Document) -> bool:
    """A `no-access` record: no bytes were ever taken, the file is where it was dropped."""
    return doc.sha256.startswith(_NO_ACCESS_PREFIX)


# --- place: processing -> done / review / failed -----------------------------------------


@dataclass(frozen=True)
class Placement:
    """Where a document goes and what is written beside it."""

    state: str                      # filed | review | failed
    folder: Path                    # absolute destination folder
    stem: str                       # file name without extension
    suffix: str                     # ".pdf", or the original suffix for failed files
    # Files written beside the PDF: a name template ("{stem}.json", "{name}.reason.json")
    # -> content. "{stem}.txt" is special: its content is the document's text, kept in
    # processing/ until the commit so that recovery can write it again.
    companions: Mapping[str, bytes]
    result: Mapping[str, Any]       # the sidecar content, also kept in the database
    patient_id: str | None = None
    reason_kind: str | None = None
    reason: str | None = None
    message_kind: str = ""          # outbox message kind; "" sends none


def _candidate_names(stem: str, suffix: str) -> Iterator[str]:
    yield f"{stem}{suffix}"
    for n in range(2, 10_000):
        yield f"{stem} ({n}){suffix}"


def _companion_path(folder: Path, template: str, dest: Path) -> Path:
    return folder / template.format(stem=dest.name[: -len(dest.suffix) or None], name=dest.name)


def _link_unique(src: Path, placement: Placement) -> Path:
    folder = placement.folder
    for name in _candidate_names(placement.stem, placement.suffix):
        dest = folder / name
        if any(_companion_path(folder, t, dest).exists() for t in placement.companions):
            continue
        try:
            os.link(src, dest)
        except FileExistsError:
            continue
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise _disk_error(error) from error
            # Another filesystem: copy under a temporary name, then claim the name with link().
            tmp = folder / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
            _copy_durably(src, tmp)
            try:
                os.link(tmp, dest)
            except FileExistsError:
                continue
            finally:
                tmp.unlink(missing_ok=True)
        return dest
    raise RuntimeError(f"no free name for {placement.stem}{placement.suffix} in {folder}")


def _plan_json(settings: Settings, placement: Placement) -> str:
    return json.dumps({
        "folder": str(placement.folder.relative_to(settings.home)),
        "stem": placement.stem,
        "suffix": placement.suffix,
        "companions": sorted(placement.companions),
        "message_kind": placement.message_kind,
    })


def place(settings: Settings, store: Store, document: Document, placement: Placement) -> Path:
    """Move a processed document to its final folder; returns the PDF's new path."""
    modes.make_folder(placement.folder)
    source = processing_path(settings, document.id)
    text = placement.companions.get("{stem}.txt")
    if text is not None:
        write_file(source.with_suffix(".txt"), text)
    # Audited before the commit that makes the decision: a crash in between repeats the line
    # when the document is processed again (at least once), it never loses it.
    _audit_decision(settings, document, placement)
    with store.write() as conn:
        store.update(
            conn, document.id, state=FILING, outcome=placement.state,
            patient_id=placement.patient_id, reason_kind=placement.reason_kind,
            reason=placement.reason,
            result_json=json.dumps(placement.result, ensure_ascii=False),
            pages=placement.result.get("pages"), text_source=placement.result.get("text_source"),
            duration_ms=placement.result.get("duration_ms"),
            dest_path=_plan_json(settings, placement),
        )
    dest = _link_unique(source, placement)
    return _finish(settings, store, document.id, source, dest, placement)


def _finish(
    settings: Settings, store: Store, document_id: str, source: Path, dest: Path,
    placement: Placement,
) -> Path:
    fsync_dir(placement.folder)
    for template, content in placement.companions.items():
        write_file(_companion_path(placement.folder, template, dest), content)
    fsync_dir(placement.folder)
    relative = str(dest.relative_to(settings.home))
    with store.write() as conn:
        store.update(conn, document_id, state=placement.state, path=relative,
                     dest_path=None, finished_at=now_iso())
        if placement.message_kind:
            store.enqueue(conn, placement.message_kind, document_id,
                          {**placement.result, "path": relative})
    source.unlink(missing_ok=True)
    source.with_suffix(".txt").unlink(missing_ok=True)
    fsync_dir(source.parent)
    return dest


def _audit_decision(settings: Settings, document: Document, placement: Placement) -> None:
    result = placement.result
    decision = result.get("decision") or {}
    evidence = None
    matched = result.get("match") or {}
    keys = ("agree", "disagree", "missing", "notes")
    for candidate in matched.get("candidates", []):
        if candidate.get("id") == placement.patient_id:
            evidence = {k: candidate.get(k) for k in keys}
    # A document left for a person: the audit says which records were put to them, and why.
    candidates = None
    if placement.state == REVIEW:
        candidates = [{"id": c.get("id"), "score": c.get("score"), **{k: c.get(k) for k in keys}}
                      for c in matched.get("candidates", [])]
    AuditLog.of(settings).record(
        placement.message_kind or placement.state, document_id=document.id,
        actor=decision.get("by", "docagent"), outcome=placement.state,
        patient_id=placement.patient_id, reason=placement.reason, kind=placement.reason_kind,
        evidence=evidence, candidates=candidates,
        name_confidence=matched.get("name_confidence"),
        path=str(placement.folder.relative_to(settings.home)),
    )


def sidecar(result: Mapping[str, Any]) -> bytes:
    return (json.dumps(result, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


# --- recovery ------------------------------------------------------------------------------


def recover(settings: Settings, store: Store) -> list[str]:
    """Finish or undo what a crash left half done; returns what it did, one line each."""
    actions: list[str] = []
    for leftover in settings.processing.glob(".*.tmp"):
        leftover.unlink(missing_ok=True)
        actions.append(f"removed half-copied {leftover.name}")

    for doc in store.by_state(CLAIMING):
        if processing_path(settings, doc.id).exists():
            with store.write() as conn:
                store.update(conn, doc.id, state=QUEUED, next_attempt_at=0)
            # The process died between the rename and the audit line: write it now.
            AuditLog.of(settings).record("taken", document_id=doc.id, name=doc.original_name,
                                         size=doc.size, sha256=doc.sha256, actor="docagent",
                                         recovered=True)
            actions.append(f"{doc.id}: claim finished")
        else:
            with store.write() as conn:
                conn.execute(
                    "DELETE FROM receipts WHERE document_id = ? AND kind = 'new'", (doc.id,)
                )
                conn.execute(
                    "DELETE FROM documents WHERE id = ? AND state = ?", (doc.id, CLAIMING)
                )
            actions.append(f"{doc.id}: claim undone; the file is taken again from incoming/")

    for doc in store.by_state(FILING):
        try:
            actions.append(_recover_filing(settings, store, doc))
        except Exception as error:
            # Never let one document stop the daemon from starting: it stays `filing`, is
            # counted as in progress by status and health, and is tried again next start.
            log.exception("%s: filing could not be finished", doc.id)
            actions.append(f"{doc.id}: filing could not be finished ({error})")

    for doc in store.by_state(PROCESSING):
        # Still `processing` at start-up: the process died while working on it.
        crashes = doc.crashes + 1
        with store.write() as conn:
            store.update(conn, doc.id, state=QUEUED, crashes=crashes, next_attempt_at=0)
        actions.append(f"{doc.id}: was in progress when the process stopped ({crashes} time(s))")

    for doc in store.by_state(FILED, REVIEW, FAILED):
        if processing_path(settings, doc.id).exists():
            try:
                actions.append(_roll_back(settings, doc))
            except OSError as error:
                log.exception("%s: interrupted move could not be rolled back", doc.id)
                actions.append(f"{doc.id}: interrupted move not rolled back ({error})")

    for stray in settings.processing.glob("*.txt"):
        doc_row = store.get(stray.stem)
        if doc_row is None or doc_row.state in (FILED, REVIEW, FAILED):
            stray.unlink()
    return actions


def _recover_filing(settings: Settings, store: Store, doc: Document) -> str:
    plan = json.loads(doc.dest_path or "{}")
    source = processing_path(settings, doc.id)
    # A kill in the middle of writing a sidecar leaves its temporary file beside the PDF.
    for leftover in (settings.home / plan["folder"]).glob(glob.escape(f".{plan['stem']}")
                                                         + "*.tmp"):
        leftover.unlink(missing_ok=True)
    text_file = source.with_suffix(".txt")
    companions: dict[str, bytes] = {}
    for template in plan.get("companions", []):
        if template == "{stem}.txt":
            if text_file.exists():
                companions[template] = text_file.read_bytes()
        else:
            companions[template] = sidecar(doc.result)
    placement = Placement(
        state=doc.outcome or REVIEW, folder=settings.home / plan["folder"], stem=plan["stem"],
        suffix=plan["suffix"], companions=companions, result=doc.result,
        patient_id=doc.patient_id, reason_kind=doc.reason_kind, reason=doc.reason,
        message_kind=plan.get("message_kind", ""),
    )
    if not source.exists():
        # Unreachable with the order in place(): the source is unlinked only after the commit.
        log.error("%s: in state filing with no file in processing/", doc.id)
        return f"{doc.id}: filing could not be finished (no source file)"
    # Was the PDF already linked into place? Then only the sidecars and the commit are missing.
    for name in _candidate_names(plan["stem"], plan["suffix"]):
        dest = placement.folder / name
        if not dest.exists():
            break
        if os.path.samefile(source, dest):
            _finish(settings, store, doc.id, source, dest, placement)
            return f"{doc.id}: filing finished ({dest.relative_to(settings.home)})"
    dest = _link_unique(source, placement)
    _finish(settings, store, doc.id, source, dest, placement)
    return f"{doc.id}: filing redone ({dest.relative_to(settings.home)})"


def _roll_back(settings: Settings, doc: Document) -> str:
    """A resolve or retry stopped before its commit: put the document back where it was."""
    source = processing_path(settings, doc.id)
    previous = settings.home / doc.path if doc.path else None
    if previous is None or previous.exists():
        source.unlink()
        return f"{doc.id}: removed the processing copy of an interrupted move"
    os.link(source, previous)
    stem = previous.name[: -len(previous.suffix) or None]
    if doc.state == FAILED:
        write_file(previous.with_name(f"{previous.name}.reason.json"), sidecar(doc.result))
    else:
        write_file(previous.with_name(f"{stem}.json"), sidecar(doc.result))
        text = source.with_suffix(".txt")
        if text.exists():
            write_file(previous.with_name(f"{stem}.txt"), text.read_bytes())
    fsync_dir(previous.parent)
    source.unlink()
    return f"{doc.id}: interrupted move rolled back to {doc.path}"


def companion_files(settings: Settings, doc: Document) -> list[Path]:
    """The PDF of a placed document and the files written beside it."""
    if not doc.path:
        return []
    pdf = settings.home / doc.path
    stem = pdf.name[: -len(pdf.suffix) or None]
    if doc.state == FAILED:
        return [pdf, pdf.with_name(f"{pdf.name}.reason.json")]
    return [pdf, pdf.with_name(f"{stem}.json"), pdf.with_name(f"{stem}.txt")]


def take_back(settings: Settings, doc: Document) -> Path:
    """Link a placed document back into processing/ and remove it from its folder.

    Used by resolve and retry before their commit; a crash in between is rolled back by
    recover(), which finds the processing copy and the old path missing.
    """
    files = companion_files(settings, doc)
    source = processing_path(settings, doc.id)
    if not source.exists():
        os.link(files[0], source)
    text = [f for f in files if f.suffix == ".txt" and f.exists()]
    if text:
        write_file(source.with_suffix(".txt"), text[0].read_bytes())
    fsync_dir(source.parent)
    for path in files:
        path.unlink(missing_ok=True)
    fsync_dir(files[0].parent)
    return source
