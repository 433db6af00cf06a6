"""The spool: the folders a document moves through, and the order of every move.

A document's state is the folder it is in plus its row in state.db. Each move is ordered so
that a `kill -9` between any two steps leaves something `recover()` can finish:

claim   1. hash the file where it lies            (nothing changed yet)
        2. row `claiming` + receipt, committed    (crash: recover() drops the row; the file is
                                                   still in incoming/ and is taken again)
        3. rename into processing/<id>.pdf, fsync (crash: recover() sees the file -> queued)
        4. row `queued`, committed
place   1. row `filing` with the chosen destination and the whole result, committed
        2. hard-link the PDF to its destination   (link() never overwrites: a name clash
                                                   gets a suffix), then the sidecars
        3. row final + outbox message, one commit (crash before: recover() redoes 2 and 3)
        4. unlink processing/<id>.pdf             (crash before: recover() unlinks it)

Nothing is ever overwritten, and the PDF's bytes are never changed: the archive holds the
original file.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.audit import AuditLog
from agent.config import Settings
from agent.errors import DiskFull
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
_CONTROL = re.compile(r"[\x00-\x1f\x7f/\\]+")
_PDF_SUFFIX = re.compile(r"\.pdf$", re.IGNORECASE)


def ensure_folders(settings: Settings) -> None:
    for name in FOLDERS:
        (settings.home / name).mkdir(parents=True, exist_ok=True)


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


def hash_file(path: Path) -> tuple[str, int]:
    """sha256 and size, reading through a descriptor that refuses to follow a symlink."""
    digest = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _copy_durably(src: Path, dest: Path) -> None:
    """Copy to a temporary name, fsync, then rename: a reader never sees half a file."""
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as source, open(tmp, "xb") as target:
            shutil.copyfileobj(source, target, 1024 * 1024)
            target.flush()
            os.fsync(target.fileno())
        os.rename(tmp, dest)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise _disk_error(error) from error


def write_file(path: Path, data: bytes) -> None:
    """Write a whole file atomically (temporary name, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise _disk_error(error) from error


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    write_file(path, (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))


# --- claim: incoming -> processing -------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    document_id: str
    duplicate_of: Document | None  # set when the same bytes were taken in before
    original_name: str


def processing_path(settings: Settings, document_id: str) -> Path:
    return settings.processing / f"{document_id}.pdf"


def claim(settings: Settings, store: Store, source: Path, *, keep_source: bool = False,
          hold: bool = False) -> Claim:
    """Take one file into the spool (see the module docstring for the order of steps).

    `keep_source` copies instead of moving (for `docagent process`, which never touches the
    original). `hold` leaves the document `processing` for the caller instead of queueing it,
    so no worker can take it in between (the intake uses it to quarantine a file at once).
    A file with other hard links is copied too: moving it would leave our archived bytes
    shared with a path outside the spool, where anyone could change them.
    """
    info = os.lstat(source)
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"not a regular file: {source}")
    sha256, size = hash_file(source)
    document_id = sha256[:16]
    name = display_name(source.name)
    source_key = f"{name}|{info.st_size}|{info.st_mtime_ns}|{info.st_ino}|{info.st_dev}"
    target = processing_path(settings, document_id)

    with store.write() as conn:
        row = conn.execute(
            "SELECT id, state FROM documents WHERE sha256 = ?", (sha256,)
        ).fetchone()
        if row is not None and row["state"] != CLAIMING:
            _record_duplicate(conn, store, row["id"], name, source_key)
            duplicate = True
        else:
            duplicate = False
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
                (document_id, name, now_iso(), source_key),
            )

    if duplicate:
        earlier = store.get(document_id)
        if not keep_source:
            source.unlink(missing_ok=True)
            fsync_dir(source.parent)
        AuditLog.of(settings).record("duplicate", document_id=document_id, name=name,
                                      actor="docagent")
        log.info("duplicate of %s (%s): %s", document_id,
                 earlier.original_name if earlier else "?", name)
        return Claim(document_id, earlier, name)

    try:
        if keep_source or info.st_nlink > 1:
            _copy_durably(source, target)
            if not keep_source:
                source.unlink()
        else:
            os.rename(source, target)
        fsync_dir(target.parent)
        if not keep_source:
            fsync_dir(source.parent)
    except OSError as error:
        raise _disk_error(error) from error

    with store.write() as conn:
        if hold:
            store.update(conn, document_id, state=PROCESSING, attempts=1, next_attempt_at=0)
        else:
            store.update(conn, document_id, state=QUEUED, next_attempt_at=0)
    AuditLog.of(settings).record("taken", document_id=document_id, name=name, size=size,
                                  sha256=sha256, actor="docagent")
    log.info("taken in %s as %s", name, document_id, extra={"doc": document_id})
    return Claim(document_id, None, name)


def _record_duplicate(
    conn: sqlite3.Connection, store: Store, earlier_id: str, name: str, source_key: str
) -> None:
    cur = conn.execute(
        "INSERT OR IGNORE INTO receipts (document_id, original_name, received_at, kind,"
        " source_key) VALUES (?, ?, ?, 'duplicate', ?)",
        (earlier_id, name, now_iso(), source_key),
    )
    if cur.rowcount:
        earlier = conn.execute(
            "SELECT original_name, state, path FROM documents WHERE id = ?", (earlier_id,)
        ).fetchone()
        store.enqueue(conn, "duplicate", earlier_id, {
            "name": name,
            "earlier_name": earlier["original_name"],
            "earlier_state": earlier["state"],
            "earlier_path": earlier["path"],
        })


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
    placement.folder.mkdir(parents=True, exist_ok=True)
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
