"""Place: a document leaves processing/ for done/, review/ or failed/, with its companions;
and the way back (take_back, requeue) for a person's decision.

Beside a placed PDF: `<stem>.json` (what was read and decided) and `<stem>.txt` (the text), or
for a failure `<name>.reason.json` (why). `companion_paths` is the one rule for those names.
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


@dataclass(frozen=True)
class Plan:
    """Where a placement is going, kept in the row (`dest_path`) from the `filing` commit until
    the final one, so that recovery can finish it."""

    folder: str  # relative to the home
    stem: str
    suffix: str
    message_kind: str

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, raw: str) -> Plan:
        data = json.loads(raw)  # a plan written by an older version may hold more keys
        return cls(data["folder"], data["stem"], data["suffix"], data.get("message_kind", ""))


def companion_paths(pdf: Path, *, failed: bool) -> list[Path]:
    """The files beside a placed PDF: the sidecar then the text, or a failure's reason file."""
    if failed:
        return [pdf.with_name(f"{pdf.name}.reason.json")]
    stem = pdf.name[: -len(pdf.suffix) or None]
    return [pdf.with_name(f"{stem}.json"), pdf.with_name(f"{stem}.txt")]


def companion_files(settings: Settings, doc: Document) -> list[Path]:
    """The PDF of a placed document and the files written beside it."""
    if not doc.path:
        return []
    pdf = settings.home / doc.path
    return [pdf, *companion_paths(pdf, failed=doc.state == FAILED)]


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
    """Each file to write beside `dest`, with its content."""
    paths = companion_paths(dest, failed=placement.state == FAILED)
    contents = [files.sidecar(placement.result), placement.text]
    return [(path, content) for path, content in zip(paths, contents, strict=False)
            if content is not None]


def link_unique(src: Path, placement: Placement) -> Path:
    folder = placement.folder
    for name in candidate_names(placement.stem, placement.suffix):
        dest = folder / name
        if any(path.exists() for path, _ in _companions(placement, dest)):
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
    source = files.processing_path(settings, document.id)
    if placement.text is not None:
        files.write_file(source.with_suffix(".txt"), placement.text)
    # Audited before the commit that makes the decision: a crash in between repeats the line
    # when the document is processed again (at least once), it never loses it.
    _audit_decision(settings, document, placement)
    plan = Plan(str(placement.folder.relative_to(settings.home)), placement.stem,
                placement.suffix, placement.message_kind)
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
    processing copy goes (recovery redoes this when a crash comes in the middle)."""
    files.fsync_dir(placement.folder)
    for path, content in _companions(placement, dest):
        files.write_file(path, content)
    files.fsync_dir(placement.folder)
    relative = str(dest.relative_to(settings.home))
    with store.write() as conn:
        rows.update(conn, document_id, state=placement.state, path=relative,
                    dest_path=None, finished_at=now_iso())
        _index(conn, document_id, relative, placement)
        if placement.message_kind:
            store.enqueue(conn, placement.message_kind, document_id,
                          {**placement.result, "path": relative})
        if placement.message_kind in DECIDING_KINDS:
            store.enqueue(conn, DECIDED, document_id,
                          {k: placement.result.get(k) for k in ("patient", "decision")})
    source.unlink(missing_ok=True)
    source.with_suffix(".txt").unlink(missing_ok=True)
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
