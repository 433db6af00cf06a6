"""Claim: a dropped file becomes a document of the spool (incoming/ -> processing/).

See the package's docstring for the order of the steps and why a dropped file is copied from
one descriptor and never renamed or linked. A file docagent may not read at all is recorded
once as failed (`no-access`) where it lies, and gives way to the real document once readable.

Bytes that come by another channel (a mail attachment; later a Telegram upload) take the same
path from step 2 on (`claim_stream`): written into docagent's own file as they arrive, hashed,
fsync'd, then the same commit, rename and queueing, with where they came from (`Origin`) in
the row and the receipt. Each arrival is named by a key (a dropped file's name, inode, size and
time; a message's place in its mailbox and the attachment's part): the same arrival looked at
again (a crash before the mail was marked taken) is recognised and nothing new happens, while
the same bytes by another arrival are a `duplicate`. An attachment docagent will not download
(over the size limit) is recorded once as failed where it lies (`refuse_unread`), as an
unreadable dropped file is.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.audit import AuditLog
from agent.config import Settings
from agent.errors import DocumentError, NoAccess
from agent.i18n import N_
from agent.logs import get_logger
from agent.origin import Origin
from agent.spool import files, placing, rows
from agent.spool.files import NotTaken
from agent.spool.rows import CLAIMING, FAILED, PROCESSING, QUEUED, Document
from agent.store import Store, now_iso

log = get_logger("spool")


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


def source_key(name: str, info: os.stat_result) -> str:
    """Which file this was, as dropped: a second look at the same file finds the same key."""
    return f"{name}|{info.st_size}|{info.st_mtime_ns}|{info.st_ino}|{info.st_dev}"


def claim(settings: Settings, store: Store, source: Path, *, keep_source: bool = False,
          hold: bool = False, fd: int | None = None) -> Claim:
    """Take one file into the spool (see the module docstring for the order of steps).

    `keep_source` leaves the original where it is (`docagent process` never touches it).
    `hold` leaves the document `processing` for the caller instead of queueing it, so no
    worker can take it in between (the intake uses it to quarantine a file at once). `fd`, an
    already opened descriptor on the file (the CLI opens its inputs as the caller before it
    gives up root), is read from and not closed.
    """
    name = files.display_name(source.name)
    if fd is None:
        try:
            own_fd = files.open_dropped(source)
        except PermissionError as error:
            if keep_source:
                raise
            return _refuse(settings, store, source, error)
    else:
        own_fd = fd
    try:
        info = os.fstat(own_fd)
        if not stat.S_ISREG(info.st_mode):
            raise files.NotRegular(f"{name!r} is not a regular file")
        tmp = settings.processing / f".claim-{uuid.uuid4().hex[:12]}.tmp"
        sha256, size = files.copy_fd(own_fd, tmp)
        after = os.fstat(own_fd)
    finally:
        if fd is None:
            os.close(own_fd)
    try:
        if (after.st_size, after.st_mtime_ns) != (info.st_size, info.st_mtime_ns) \
                or size != info.st_size:
            raise StillChanging(f"{name!r} changed while it was copied")
        remove = None if keep_source else (lambda: _remove_source(source, info))
        claimed = _claim_copy(settings, store, name, source_key(name, info), tmp, sha256, size,
                              hold=hold, origin=Origin(), remove=remove)
    finally:
        tmp.unlink(missing_ok=True)
    if claimed.left is not None and claimed.duplicate_of is None:
        log.warning("took a copy of %r: the original cannot be removed from %s (%s); it is "
                    "left there and not taken again", name, source.parent, claimed.left,
                    extra={"doc": claimed.document_id})
    return claimed


def claim_stream(settings: Settings, store: Store, chunks: Iterable[bytes], name: str, *,
                 key: str, origin: Origin, limit: int | None = None) -> Claim:
    """Take bytes arriving by another channel into the spool, through the same claim as a
    dropped file: written into a file of docagent's own as they come, hashed and fsync'd, then
    committed, renamed into processing/ and queued. `key` names this arrival (see the module's
    docstring). Raises files.OverLimit, with nothing recorded, once more than `limit` bytes
    came; whatever `chunks` raises (a network cut) comes through the same way."""
    name = files.display_name(name)
    tmp = settings.processing / f".claim-{uuid.uuid4().hex[:12]}.tmp"
    try:
        sha256, size = files.write_chunks(chunks, tmp, limit)
        return _claim_copy(settings, store, name, key, tmp, sha256, size, hold=False,
                           origin=origin, remove=None)
    finally:
        tmp.unlink(missing_ok=True)


def received(store: Store, key: str) -> Document | None:
    """The document an arrival named `key` became, if it was taken (or refused) before."""
    found = store.read("SELECT d.* FROM receipts r JOIN documents d ON d.id = r.document_id "
                       "WHERE r.source_key = ?", (key,))
    return Document.from_row(found[0]) if found else None


def _claim_copy(settings: Settings, store: Store, name: str, key: str, tmp: Path, sha256: str,
                size: int, *, hold: bool, origin: Origin,
                remove: Callable[[], str | None] | None) -> Claim:
    document_id = sha256[:16]
    target = files.processing_path(settings, document_id)

    with store.write() as conn:
        replaced = _forget_refusal(conn, key)
        row = conn.execute(
            "SELECT id, state FROM documents WHERE sha256 = ?", (sha256,)
        ).fetchone()
        if row is not None and row["state"] != CLAIMING:
            seen = conn.execute("SELECT 1 FROM receipts WHERE source_key = ?", (key,)).fetchone()
            if seen is None:
                _record_duplicate(conn, store, row["id"], name, key, origin)
            again = seen is not None
            duplicate = True
        else:
            duplicate = again = False
            if row is None:
                conn.execute(
                    "INSERT INTO documents (id, sha256, original_name, size, state, received_at,"
                    " updated_at, path, channel, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (document_id, sha256, name, size, CLAIMING, now_iso(), now_iso(),
                     str(target.relative_to(settings.home)), origin.channel, origin.dumps()),
                )
            conn.execute(
                "INSERT OR IGNORE INTO receipts (document_id, original_name, received_at, kind,"
                " source_key, channel, origin) VALUES (?, ?, ?, 'new', ?, ?, ?)",
                (document_id, name, now_iso(), key, origin.channel, origin.dumps()),
            )

    if duplicate:
        earlier = rows.get(store, document_id)
        left = remove() if remove is not None else None
        if not again:
            AuditLog.of(settings).record("duplicate", document_id=document_id, name=name,
                                          actor="docagent", **origin.audit())
            log.info("duplicate of %s (%s): %s%s", document_id,
                     earlier.original_name if earlier else "?", name, _from(origin))
        return Claim(document_id, earlier, name, again=again, left=left)

    try:
        os.rename(tmp, target)
        files.fsync_dir(target.parent)
    except OSError as error:
        raise files.disk_error(error) from error

    with store.write() as conn:
        if hold:
            rows.update(conn, document_id, state=PROCESSING, attempts=1, next_attempt_at=0)
        else:
            rows.update(conn, document_id, state=QUEUED, next_attempt_at=0)
    AuditLog.of(settings).record("taken", document_id=document_id, name=name, size=size,
                                  sha256=sha256, actor="docagent", replaces=replaced,
                                  **origin.audit())
    log.info("taken in %s as %s%s", name, document_id, _from(origin),
             extra={"doc": document_id})
    left = remove() if remove is not None else None
    return Claim(document_id, None, name, left=left)


def _from(origin: Origin) -> str:
    """Where bytes came from, for a log line (nothing for a dropped file)."""
    sender = origin.get("sender")
    return f" (mail from {sender})" if origin.channel == "mail" and sender else (
        "" if origin.channel == "folder" else f" ({origin.channel})")


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
        files.fsync_dir(source.parent)
    except FileNotFoundError:
        return None
    except OSError as error:
        return error.strerror or str(error)
    return None


def _record_duplicate(conn: sqlite3.Connection, store: Store, earlier_id: str, name: str,
                      key: str, origin: Origin) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO receipts (document_id, original_name, received_at, kind,"
        " source_key, channel, origin) VALUES (?, ?, ?, 'duplicate', ?, ?, ?)",
        (earlier_id, name, now_iso(), key, origin.channel, origin.dumps()),
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
        rows.update(conn, earlier_id, next_attempt_at=0)
    store.enqueue(conn, "duplicate", earlier_id, {
        "name": name,
        "earlier_name": earlier["original_name"],
        "earlier_state": earlier["state"],
        "earlier_path": earlier["path"],
        "earlier_reason": earlier["reason"] if retried else None,
        "retried_now": retried,
        # Where the copy came from (a Telegram message: the notice replies to it).
        "origin": origin.to_json(),
    })


# --- a file docagent may not read ----------------------------------------------------------


_NO_ACCESS_PREFIX = "no-access:"
# An attachment left where it lies (in its mailbox), not downloaded: over the size limit.
_NOT_DOWNLOADED_PREFIX = "not-downloaded:"
_UNREAD_PREFIXES = (_NO_ACCESS_PREFIX, _NOT_DOWNLOADED_PREFIX)


def _refuse(settings: Settings, store: Store, source: Path, error: OSError) -> Claim:
    """Record, once, that a dropped file cannot be read: failed (`no-access`), with the owner,
    the mode and the fix; the file stays where it was dropped, since its bytes cannot be
    copied, and is taken normally once someone makes it readable."""
    name = files.display_name(source.name)
    info = os.lstat(source)
    mode = stat.S_IMODE(info.st_mode)
    reason = NoAccess(N_("docagent may not read this file (owner %(owner)s, mode %(mode)s)"),
                      owner=files.owner_of(info), mode=f"{mode:04o}", stage="intake",
                      detail=error.strerror or str(error))
    relative = str(source.relative_to(settings.home)) if source.is_relative_to(settings.home) \
        else str(source)
    claim = _record_unread(settings, store, name, key=source_key(name, info), size=info.st_size,
                           reason=reason, path=relative, origin=Origin(),
                           prefix=_NO_ACCESS_PREFIX)
    if not claim.again:
        log.error("cannot read %r in %s (owner %s, mode %04o): %s %s", name, source.parent,
                  files.owner_of(info), mode, reason.message, reason.advice_in_english,
                  extra={"doc": claim.document_id})
    return claim


def refuse_unread(settings: Settings, store: Store, name: str, *, key: str, size: int,
                  reason: DocumentError, origin: Origin) -> Claim:
    """Record, once, an arrival docagent does not download (a mail attachment or a file sent
    to the bot over a size limit): failed with `reason`, announced and audited like any
    failure, its reason file in failed/ as a dropped file's (`<name>.reason.json`, with no
    file beside it); its bytes stay where they are (the message, the chat). `again` when this
    arrival was recorded before."""
    name = files.display_name(name)
    claim = _record_unread(settings, store, name, key=key, size=size, reason=reason, path=None,
                           origin=origin, prefix=_NOT_DOWNLOADED_PREFIX,
                           reason_file=settings.failed)
    if not claim.again:
        log.error("not downloaded: %r%s: %s %s", name, _from(origin), reason.message,
                  reason.advice_in_english, extra={"doc": claim.document_id})
    return claim


def _record_unread(settings: Settings, store: Store, name: str, *, key: str, size: int,
                   reason: DocumentError, path: str | None, origin: Origin,
                   prefix: str, reason_file: Path | None = None) -> Claim:
    digest = hashlib.sha256((prefix + key).encode("utf-8")).hexdigest()
    document_id = digest[:16]
    result = placing.failure_result({"document_id": document_id, "sha256": None,
                                     "original_name": name, "received_at": now_iso(),
                                     "attempts": 0, "origin": origin.to_json()}, reason, 0)
    with store.write() as conn:
        if conn.execute("SELECT 1 FROM receipts WHERE source_key = ?", (key,)).fetchone():
            return Claim(document_id, None, name, again=True, refused=True)
        if reason_file is not None:
            _write_reason(reason_file, settings.home, name, document_id, result)
        conn.execute(
            "INSERT INTO documents (id, sha256, original_name, size, state, received_at,"
            " updated_at, path, outcome, reason_kind, reason, result_json, finished_at,"
            " channel, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (document_id, prefix + digest, name, size, FAILED, now_iso(), now_iso(), path,
             FAILED, reason.kind, reason.message, json.dumps(result, ensure_ascii=False),
             now_iso(), origin.channel, origin.dumps()),
        )
        conn.execute(
            "INSERT INTO receipts (document_id, original_name, received_at, kind, source_key,"
            " channel, origin) VALUES (?, ?, ?, 'new', ?, ?, ?)",
            (document_id, name, now_iso(), key, origin.channel, origin.dumps()),
        )
        store.enqueue(conn, "failed", document_id, {**result, "path": path})
    AuditLog.of(settings).record("failed", document_id=document_id, actor="docagent",
                                 outcome=FAILED, kind=reason.kind, reason=reason.message,
                                 name=name, path=path, **origin.audit())
    return Claim(document_id, None, name, refused=True)


def _write_reason(folder: Path, home: Path, name: str, document_id: str,
                  result: dict[str, Any]) -> None:
    """`<name>.reason.json` in `folder` (`<name> (2).reason.json`... when taken), its path
    added to `result` as `reason_file`; written before the row that keeps `result`: one a
    crash left without its row is this document's own, and is written over, not doubled."""
    stem, suffix = files.kept_name(name)  # a sender's name for it: "../x", "a/b" included
    for candidate in placing.candidate_names(stem, suffix):
        dest = folder / f"{candidate}.reason.json"
        if dest.exists() and _reason_of(dest) != document_id:
            continue
        result["reason_file"] = str(dest.relative_to(home))
        files.write_file(dest, files.sidecar(result))
        files.fsync_dir(folder)
        return
    raise FileExistsError(f"{folder}: every name for the reason file of {name} is taken")


def _reason_of(path: Path) -> str | None:
    try:
        return str(json.loads(path.read_bytes()).get("document_id"))
    except (OSError, ValueError, AttributeError):
        return None


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
    return received(store, source_key(files.display_name(path.name), os.lstat(path)))


def is_refusal(doc: Document) -> bool:
    """A record of bytes never taken: a `no-access` file where it was dropped, or an attachment
    not downloaded, in its mailbox."""
    return doc.sha256.startswith(_UNREAD_PREFIXES)


def is_not_downloaded(doc: Document) -> bool:
    """An attachment left in its mailbox (over the size limit), recorded as failed."""
    return doc.sha256.startswith(_NOT_DOWNLOADED_PREFIX)

