"""Recovery at start-up: finish or undo whatever a crash left half done, in the order the
package's docstring gives for each move."""

from __future__ import annotations

import glob
import os

from agent.audit import AuditLog
from agent.config import Settings
from agent.logs import get_logger
from agent.spool import files, placing, rows
from agent.spool.rows import CLAIMING, FAILED, FILED, FILING, PROCESSING, QUEUED, REVIEW, Document
from agent.store import Store

log = get_logger("spool")


def recover(settings: Settings, store: Store) -> list[str]:
    """Finish or undo what a crash left half done; returns what it did, one line each."""
    actions: list[str] = []
    for leftover in settings.processing.glob(".*.tmp"):
        leftover.unlink(missing_ok=True)
        actions.append(f"removed half-copied {leftover.name}")

    for doc in rows.by_state(store, CLAIMING):
        if files.processing_path(settings, doc.id).exists():
            with store.write() as conn:
                rows.update(conn, doc.id, state=QUEUED, next_attempt_at=0)
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

    for doc in rows.by_state(store, FILING):
        try:
            actions.append(_recover_filing(settings, store, doc))
        except Exception as error:
            # Never let one document stop the daemon from starting: it stays `filing`, is
            # counted as in progress by status and health, and is tried again next start.
            log.exception("%s: filing could not be finished", doc.id)
            actions.append(f"{doc.id}: filing could not be finished ({error})")

    for doc in rows.by_state(store, PROCESSING):
        # Still `processing` at start-up: the process died while working on it.
        crashes = doc.crashes + 1
        with store.write() as conn:
            rows.update(conn, doc.id, state=QUEUED, crashes=crashes, next_attempt_at=0)
        actions.append(f"{doc.id}: was in progress when the process stopped ({crashes} time(s))")

    for doc in rows.by_state(store, FILED, REVIEW, FAILED):
        if files.processing_path(settings, doc.id).exists():
            try:
                actions.append(_roll_back(settings, doc))
            except OSError as error:
                log.exception("%s: interrupted move could not be rolled back", doc.id)
                actions.append(f"{doc.id}: interrupted move not rolled back ({error})")

    for stray in [*settings.processing.glob("*.txt"), *settings.processing.glob("*.original")]:
        doc_row = rows.get(store, stray.stem)
        if doc_row is None or doc_row.state in (FILED, REVIEW, FAILED):
            stray.unlink()
    return actions


def _recover_filing(settings: Settings, store: Store, doc: Document) -> str:
    plan = placing.Plan.from_json(doc.dest_path or "{}")
    state = doc.outcome or REVIEW
    source = placing.placed_source(settings, doc.id, state)
    folder = settings.home / plan.folder
    # A kill in the middle of writing a sidecar leaves its temporary file beside the PDF.
    for leftover in folder.glob(glob.escape(f".{plan.stem}") + "*.tmp"):
        leftover.unlink(missing_ok=True)
    text_file = files.processing_path(settings, doc.id).with_suffix(".txt")
    text = text_file.read_bytes() if state != FAILED and text_file.exists() else None
    placement = placing.Placement(
        state=state, folder=folder, stem=plan.stem, suffix=plan.suffix, result=doc.result,
        text=text, patient_id=doc.patient_id, reason_kind=doc.reason_kind, reason=doc.reason,
        message_kind=plan.message_kind, original=plan.original,
    )
    if not source.exists():
        # Unreachable with the order in place(): the source is unlinked only after the commit.
        log.error("%s: in state filing with no file in processing/", doc.id)
        return f"{doc.id}: filing could not be finished (no source file)"
    # Was the PDF already linked into place? Then only the sidecars and the commit are missing.
    for name in placing.candidate_names(plan.stem, plan.suffix):
        dest = placement.folder / name
        if not dest.exists():
            break
        if os.path.samefile(source, dest):
            placing.finish(settings, store, doc.id, source, dest, placement)
            return f"{doc.id}: filing finished ({dest.relative_to(settings.home)})"
    dest = placing.link_unique(source, placement)
    placing.finish(settings, store, doc.id, source, dest, placement)
    return f"{doc.id}: filing redone ({dest.relative_to(settings.home)})"


def _roll_back(settings: Settings, doc: Document) -> str:
    """A resolve or retry stopped before its commit: put the document back where it was."""
    source = files.processing_path(settings, doc.id)
    previous = settings.home / doc.path if doc.path else None
    if previous is None or previous.exists():
        source.unlink()
        return f"{doc.id}: removed the processing copy of an interrupted move"
    os.link(source, previous)
    text = source.with_suffix(".txt")
    contents = [files.sidecar(doc.result), text.read_bytes() if text.exists() else None]
    for path, content in zip(placing.companion_paths(previous, failed=doc.state == FAILED),
                             contents, strict=False):
        if content is not None:
            files.write_file(path, content)
    original = files.original_path(settings, doc.id)
    extension = placing.original_extension(doc.result)
    if extension and doc.state != FAILED and original.exists():
        beside = placing.original_beside(previous, extension)
        if not beside.exists():
            os.link(original, beside)
    files.fsync_dir(previous.parent)
    source.unlink()
    original.unlink(missing_ok=True)
    return f"{doc.id}: interrupted move rolled back to {doc.path}"

