"""Place: a document leaves processing/ for done/, review/ or failed/, with its companions;
and the way back (take_back, requeue) for a person's decision.

Beside a placed PDF: `<stem>.json` (what was read and decided) and `<stem>.txt` (the text), and
when the PDF was made from an image, `<stem>.original<ext>` (the bytes received, a link to the
claimed copy); or for a failure `<name>.reason.json` (why). A failed document is kept as it
was received: for an image, the original, not the PDF made from it. `companion_paths` is the
one rule for those names.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import modes, reasons
from agent.audit import AuditLog
from agent.config import Settings
from agent.errors import DocagentError
from agent.spool import files, index, rows
from agent.spool.rows import FAILED, FILING, QUEUED, Document
from agent.store import Store, now_iso

# A person's decision, or a re-match, is followed by a `decided` row in the same transaction:
# the daemon then edits every Telegram message about the document that still has buttons
# (agent.notify.telegram.follow), whoever decided and from wherever.
DECIDED = "decided"
DECIDING_KINDS = frozenset({"resolved", "rematched"})

@dataclass(frozen=True)
class Placement:
    """Where a document goes and what is written beside it."""

    state: str                      # filed | review | failed
    folder: Path                    # absolute destination folder
    stem: str                       # file name without extension
    suffix: str                     # ".pdf", or the original suffix for failed files
    result: Mapping[str, Any]       # the sidecar's content, also kept in the database
    # The document's text, written as `<stem>.txt`; None for a failure, which has no text.
    # Kept in processing/ until the final commit, so that recovery can write it again.
    text: bytes | None = None
    patient_id: str | None = None
    reason_kind: str | None = None
    reason: str | None = None
    message_kind: str = ""          # outbox message kind; "" sends none
    # What the audit line says of the decision besides its outcome (actor, evidence,
    # candidates, name_confidence): the caller knows what was read, the spool does not.
    audit: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # The extension (".jpg") of the original kept in processing/ (`files.original_path`) when
    # the PDF was made from an image: placed beside the PDF, and named in the sidecar's
    # `original.file`. None for a PDF, and for a failure (which places the original itself).
    original: str | None = None


@dataclass(frozen=True)
class Plan:
    """Where a placement is going, kept in the row (`dest_path`) from the `filing` commit until
    the final one, so that recovery can finish it."""

    folder: str  # relative to the home
    stem: str
    suffix: str
    message_kind: str
    original: str | None = None

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, raw: str) -> Plan:
        data = json.loads(raw)  # a plan written by an older version may hold more keys
        return cls(data["folder"], data["stem"], data["suffix"], data.get("message_kind", ""),
                   data.get("original"))


def companion_paths(pdf: Path, *, failed: bool, original: str | None = None) -> list[Path]:
    """The files beside a placed PDF: the sidecar, the text, then the original it was made
    from (an image whose extension is `original`), or a failure's reason file."""
    if failed:
        return [pdf.with_name(f"{pdf.name}.reason.json")]
    stem = pdf.name[: -len(pdf.suffix) or None]
    paths = [pdf.with_name(f"{stem}.json"), pdf.with_name(f"{stem}.txt")]
    if original:
        paths.append(original_beside(pdf, original))
    return paths


def original_beside(pdf: Path, extension: str) -> Path:
    """Where the original an image's PDF was made from is kept: `<stem>.original<ext>`."""
    stem = pdf.name[: -len(pdf.suffix) or None]
    return pdf.with_name(f"{stem}.original{extension}")


def original_extension(result: Mapping[str, Any]) -> str | None:
    """The extension of the original kept beside a placed document's PDF, if it has one."""
    original = result.get("original")
    extension = original.get("extension") if isinstance(original, Mapping) else None
    return str(extension) if extension else None


def companion_files(settings: Settings, doc: Document) -> list[Path]:
    """The PDF of a placed document and the files written beside it."""
    if not doc.path:
        return []
    pdf = settings.home / doc.path
    failed = doc.state == FAILED
    return [pdf, *companion_paths(pdf, failed=failed,
                                  original=None if failed else original_extension(doc.result))]


def text_of(settings: Settings, doc: Document) -> bytes:
    """The text kept beside a placed document (empty if there is none)."""
    text = [p for p in companion_files(settings, doc) if p.suffix == ".txt" and p.exists()]
    return text[0].read_bytes() if text else b""


def failure_result(base: Mapping[str, Any], error: DocagentError,
                   duration_ms: int | None, time: str | None = None) -> dict[str, Any]:
    """A failure's JSON form (the reason file, the row, the outbox), the one for every failure:
    `base` says which document; the error gives its kind, stage, message, action and detail.
    `message` and `action` are in the staff's language (the reason file is read by people);
    `reason` is the English sentence the database and the audit line keep, and `reason_code`
    says it again in any language."""
    return {**base, "outcome": FAILED, "reason": error.message,
            "reason_code": reasons.of_error(error).as_dict(),
            "patient_id": None, "time": time or now_iso(), "duration_ms": duration_ms,
            "pages": None, "text_source": None, **error.as_dict()}


def candidate_names(stem: str, suffix: str) -> Iterator[str]:
    yield f"{stem}{suffix}"
    for n in range(2, 10_000):
        yield f"{stem} ({n}){suffix}"


def _companions(placement: Placement, dest: Path) -> list[tuple[Path, bytes]]:
    """Each file to write beside `dest`, with its content (the original, linked, is not one)."""
    paths = companion_paths(dest, failed=placement.state == FAILED)
    contents = [files.sidecar(_result_at(placement, dest)), placement.text]
    return [(path, content) for path, content in zip(paths, contents, strict=False)
            if content is not None]


def _original_at(placement: Placement, dest: Path) -> Path | None:
    if placement.original is None or placement.state == FAILED:
        return None
    return original_beside(dest, placement.original)


def _result_at(placement: Placement, dest: Path) -> Mapping[str, Any]:
    """The result as kept once `dest` is known: the sidecar says where the original is."""
    beside = _original_at(placement, dest)
    original = placement.result.get("original")
    if beside is None or not isinstance(original, Mapping):
        return placement.result
    return {**placement.result, "original": {**original, "file": beside.name}}


def placed_source(settings: Settings, document_id: str, state: str) -> Path:
    """What goes into the folder: the document's PDF in processing/, or for a failure the
    bytes received when a PDF was made from them (an image is failed as it came)."""
    original = files.original_path(settings, document_id)
    if state == FAILED and original.exists():
        return original
    return files.processing_path(settings, document_id)


def _link_original(settings: Settings, document_id: str, placement: Placement,
                   dest: Path) -> None:
    """The original beside the PDF: a link to the claimed copy (a copy on another
    filesystem); one already there from before a crash is that same link."""
    beside = _original_at(placement, dest)
    if beside is None:
        return
    original = files.original_path(settings, document_id)
    if beside.exists() and (not original.exists() or os.path.samefile(original, beside)):
        return
    try:
        os.link(original, beside)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise files.disk_error(error) from error
        files.copy_durably(original, beside)


def link_unique(src: Path, placement: Placement) -> Path:
    folder = placement.folder
    for name in candidate_names(placement.stem, placement.suffix):
        dest = folder / name
        beside = _original_at(placement, dest)
        if any(path.exists() for path, _ in _companions(placement, dest)) or (
                beside is not None and beside.exists()):
            continue
        try:
            os.link(src, dest)
        except FileExistsError:
            continue
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise files.disk_error(error) from error
            # Another filesystem: copy under a temporary name, then claim the name with link().
            tmp = folder / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
            files.copy_durably(src, tmp)
            try:
                os.link(tmp, dest)
            except FileExistsError:
                continue
            finally:
                tmp.unlink(missing_ok=True)
        return dest
    raise RuntimeError(f"no free name for {placement.stem}{placement.suffix} in {folder}")


def place(settings: Settings, store: Store, document: Document, placement: Placement) -> Path:
    """Move a processed document to its final folder; returns the PDF's new path."""
    modes.make_folder(placement.folder)
    source = placed_source(settings, document.id, placement.state)
    if placement.text is not None:
        files.write_file(files.processing_path(settings, document.id).with_suffix(".txt"),
                         placement.text)
    # Audited before the commit that makes the decision: a crash in between repeats the line
    # when the document is processed again (at least once), it never loses it.
    _audit_decision(settings, document, placement)
    plan = Plan(str(placement.folder.relative_to(settings.home)), placement.stem,
                placement.suffix, placement.message_kind, placement.original)
    with store.write() as conn:
        rows.update(
            conn, document.id, state=FILING, outcome=placement.state,
            patient_id=placement.patient_id, reason_kind=placement.reason_kind,
            reason=placement.reason,
            result_json=json.dumps(placement.result, ensure_ascii=False),
            pages=placement.result.get("pages"), text_source=placement.result.get("text_source"),
            duration_ms=placement.result.get("duration_ms"), dest_path=plan.to_json(),
        )
        if document.state in index.INDEXED_STATES:  # a decision's: it has left review/
            index.moving(conn, document.id)
    dest = link_unique(source, placement)
    return finish(settings, store, document.id, source, dest, placement)


def finish(settings: Settings, store: Store, document_id: str, source: Path, dest: Path,
           placement: Placement) -> Path:
    """The PDF is in place: its companions, the final commit with its message, then the
    processing copies go (recovery redoes this when a crash comes in the middle)."""
    files.fsync_dir(placement.folder)
    _link_original(settings, document_id, placement, dest)
    for path, content in _companions(placement, dest):
        files.write_file(path, content)
    files.fsync_dir(placement.folder)
    relative = str(dest.relative_to(settings.home))
    result = _result_at(placement, dest)
    with store.write() as conn:
        changes: dict[str, Any] = {"result_json": json.dumps(result, ensure_ascii=False)} \
            if result is not placement.result else {}
        rows.update(conn, document_id, state=placement.state, path=relative,
                    dest_path=None, finished_at=now_iso(), **changes)
        _index(conn, document_id, relative, placement)
        if placement.message_kind:
            store.enqueue(conn, placement.message_kind, document_id,
                          {**result, "path": relative})
        if placement.message_kind in DECIDING_KINDS:
            store.enqueue(conn, DECIDED, document_id,
                          {k: result.get(k) for k in ("patient", "decision")})
    pdf = files.processing_path(settings, document_id)
    for leftover in (source, pdf, pdf.with_suffix(".txt"),
                     files.original_path(settings, document_id)):
        leftover.unlink(missing_ok=True)
    files.fsync_dir(source.parent)
    return dest


def _index(conn: sqlite3.Connection, document_id: str, relative: str,
           placement: Placement) -> None:
    """The find index follows the placement, in its commit: a filed or review document with
    its text, anything else out of it."""
    if placement.state not in index.INDEXED_STATES:
        index.drop(conn, document_id)
        return
    result = placement.result
    index.put(conn, document_id=document_id, state=placement.state, path=relative,
              patient_id=placement.patient_id, result=result,
              original_name=str(result.get("original_name") or ""),
              received_at=str(result.get("received_at") or now_iso()),
              text=(placement.text or b"").decode("utf-8", "replace"))


def _audit_decision(settings: Settings, document: Document, placement: Placement) -> None:
    details = {"actor": "docagent", **placement.audit}
    AuditLog.of(settings).record(
        placement.message_kind or placement.state, document_id=document.id,
        outcome=placement.state, patient_id=placement.patient_id, reason=placement.reason,
        kind=placement.reason_kind, path=str(placement.folder.relative_to(settings.home)),
        **details,
    )


# --- the way back, for a person's decision ---------------------------------------------------


def take_back(settings: Settings, doc: Document) -> Path:
    """Link a placed document back into processing/ and remove it from its folder.

    Used by resolve and requeue before their commit; a crash in between is rolled back by
    recover(), which finds the processing copy and the old path missing.
    """
    placed = companion_files(settings, doc)
    source = files.processing_path(settings, doc.id)
    if not source.exists():
        os.link(placed[0], source)
    text = [f for f in placed if f.suffix == ".txt" and f.exists()]
    if text:
        files.write_file(source.with_suffix(".txt"), text[0].read_bytes())
    extension = None if doc.state == FAILED else original_extension(doc.result)
    if extension is not None:
        beside = original_beside(placed[0], extension)
        original = files.original_path(settings, doc.id)
        if beside.exists() and not original.exists():
            os.link(beside, original)
    files.fsync_dir(source.parent)
    for path in placed:
        path.unlink(missing_ok=True)
    files.fsync_dir(placed[0].parent)
    return source


def requeue(settings: Settings, store: Store, doc: Document, *, who: str) -> Path:
    """A failed document back in the queue, its crash count cleared: the file back in
    processing/ first, then the commit (recover() rolls back a crash in between)."""
    source = take_back(settings, doc)
    AuditLog.of(settings).record("retried", document_id=doc.id, actor=who,
                                 previous_reason=doc.reason, kind=doc.reason_kind)
    with store.write() as conn:
        rows.update(conn, doc.id, state=QUEUED, crashes=0, deferrals=0, next_attempt_at=0,
                    outcome=None, reason_kind=None, reason=None, finished_at=None,
                    path=str(source.relative_to(settings.home)))
        index.drop(conn, doc.id)
    return source
