"""One document, start to end: (convert) -> inspect -> text -> parse -> match -> file (or
quarantine). `convert` runs for an image only: the PDF made from it is what the rest reads.

Each stage is a plain function; this module only runs them in order and owns the one
try/finally that decides where the file goes. Whatever happens, the file leaves processing/:
filed, in review, failed with a reason — or, when the fault is ours or the machine's, back in
the queue with a later retry time, never quarantined for something it did not do.
"""

from __future__ import annotations

import dataclasses
import errno
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from agent import metrics, reasons, spool
from agent.config import Settings
from agent.errors import DiskFull, DocumentError, MachineError, PoisonPill, Unreadable
from agent.i18n import N_, _
from agent.ledger import Ledger, prices_from
from agent.logs import document_context, get_logger
from agent.patients import get as get_patient
from agent.spool import FAILED, FILED, REVIEW, Document, Placement, kept_name, pdf_stem
from agent.stages import images, inspection, ocr
from agent.stages.fields import ParsedFields
from agent.stages.identify import read_fields
from agent.stages.match import match
from agent.stages.record import (
    PAGE_BREAK,
    Original,
    PageSource,
    Record,
    date_confidence,
    identity_confidence,
    name_confidence,
)
from agent.store import Store, now_iso

log = get_logger("pipeline")
MIN_DOCUMENT_LETTERS = 10
DEFER_BASE_SECONDS = 30.0
DEFER_MAX_SECONDS = 3600.0


@dataclass(frozen=True)
class Outcome:
    """What `docagent process --json` prints for one document."""

    file: str
    document_id: str
    outcome: str  # filed | review | duplicate | failed | deferred
    reason: str | None
    patient_id: str | None
    pages: int | None
    text_source: str | None
    duration_ms: int
    path: str | None = None
    said: str | None = None  # the reason in the staff's language, for the human line only

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "said"}


def defer_delay(deferrals: int) -> float:
    """Seconds before retrying a deferred document: 30 s, doubling, at most an hour.

    The schedule lives in the database (next_attempt_at), so it survives restarts; that is why
    it is a formula here and not an in-process retry loop.
    """
    return float(min(DEFER_MAX_SECONDS, DEFER_BASE_SECONDS * 2 ** max(deferrals - 1, 0)))


def _options(settings: Settings) -> ocr.OcrOptions:
    return ocr.OcrOptions(langs=settings.ocr_langs, dpi=settings.ocr_dpi,
                          timeout=settings.ocr_timeout, max_pixels=settings.max_pixels)


def _base_result(doc: Document) -> dict[str, Any]:
    return {"document_id": doc.id, "sha256": doc.sha256, "original_name": doc.original_name,
            "received_at": doc.received_at, "attempts": doc.attempts,
            "origin": doc.origin.to_json()}


def _convert(settings: Settings, doc: Document) -> Original | None:
    """An image: the PDF made from it replaces the claimed copy, which stays as the original
    (the order is the spool's: see `agent.spool`). None for anything else, left to inspect.

    Started again from the original after a crash or on a retry: the conversion is the same."""
    kept = spool.original_path(settings, doc.id)
    source = kept if kept.exists() else spool.processing_path(settings, doc.id)
    with open(source, "rb") as handle:
        head = handle.read(1024)
    kind = images.identify(head, doc.original_name)
    if kind is None:
        return None
    original = spool.keep_original(settings, doc.id)
    made = spool.conversion_path(settings, doc.id)
    made.unlink(missing_ok=True)
    try:
        converted = images.convert(original, made, kind, max_bytes=settings.max_bytes,
                                   max_pixels=settings.max_pixels,
                                   max_pages=settings.max_pages, timeout=settings.ocr_timeout)
        spool.swap_in_pdf(settings, doc.id, made)
    finally:
        made.unlink(missing_ok=True)
    log.info("converted the %s image into a PDF of %d page(s) (%s)", kind.name,
             converted.pages, converted.embedded)
    return converted


def _read(settings: Settings, store: Store, doc: Document) -> Placement:
    pdf = spool.processing_path(settings, doc.id)
    timer = metrics.StageTimer()
    original = _convert(settings, doc)
    if original is not None:
        timer.lap("convert")
    # The byte limit is the received file's, checked by convert for an image: the PDF made
    # from it is docagent's own.
    info = inspection.inspect(pdf, max_bytes=None if original else settings.max_bytes,
                              max_pages=settings.max_pages)
    timer.lap("inspect")
    pages = ocr.read_pages(pdf, info.page_sizes_pt, _options(settings))
    timer.lap("text")
    if sum(ocr.letters(p.text) for p in pages) < MIN_DOCUMENT_LETTERS:
        raise Unreadable(N_("no text could be read on any page"), stage="text")
    fields = read_fields(store, [p.text for p in pages])
    timer.lap("parse")
    sources = tuple(PageSource(p.number, p.source, p.confidence, p.dpi, p.seconds,
                               p.cpu_seconds) for p in pages)
    decision = match(store, fields, name_confidence=name_confidence(fields, sources),
                     min_name_confidence=settings.min_name_confidence)
    timer.lap("match")
    record = Record(
        document_id=doc.id, sha256=doc.sha256, original_name=doc.original_name,
        received_at=doc.received_at, attempts=doc.attempts, outcome=decision.outcome,
        why=decision.why, reason=decision.reason, patient_id=decision.patient_id,
        patient=get_patient(store, decision.patient_id) if decision.patient_id else None,
        document_type=fields.document_type,
        document_date=fields.document_date.value if fields.document_date else None,
        fields=fields, match=decision, pages=info.pages, encrypted=info.encrypted,
        text_source=ocr.text_source(pages), page_sources=sources,
        identity_confidence=identity_confidence(fields, sources), original=original,
        origin=doc.origin,
    )
    text = PAGE_BREAK.join(p.text for p in pages)
    dated = _date_part(fields, doc, date_confidence(fields, sources),
                       settings.min_name_confidence)
    name = pdf_stem(doc.original_name)
    if original is not None:
        name = images.without_suffix(name)
    stem = f"{dated}_{fields.document_type}_{name}"
    if decision.outcome == FILED and decision.patient_id:
        folder = settings.done / decision.patient_id
        state: str = FILED
        kind = "filed"
    else:
        folder = settings.review
        state, kind = REVIEW, "review"
    return Placement(
        state=state, folder=folder, stem=stem, suffix=".pdf", result=record.to_json(),
        text=text.encode("utf-8"), patient_id=decision.patient_id, reason=decision.reason,
        message_kind=kind, audit=record.audit_details(),
        original=original.extension if original else None,
    )


UNSURE = "unsure"  # the date read is doubtful: check it against the scan
RECEIVED = "received"  # no date read: the day the document came in stands in for it


def _date_part(fields: ParsedFields, doc: Document, confidence: float | None,
               min_confidence: float) -> str:
    """The date a filed name starts with: the document's own, as read; with `-unsure` when it
    was read on a page OCR read poorly (under the confidence that names need) or lies after
    the day it came in; the day it came in, with `-received`, when none was read. The date
    stays first, so a patient's folder still sorts by date."""
    received = doc.received_at[:10] if doc.received_at else date.today().isoformat()
    found = fields.document_date
    if found is None:
        return f"{received}-{RECEIVED}"
    # A day of slack: the document's date is local, the day received a UTC one.
    ahead = date.fromisoformat(found.value) - date.fromisoformat(received)
    if (confidence is not None and confidence < min_confidence) or ahead.days > 1:
        return f"{found.value}-{UNSURE}"
    return str(found.value)


def _failed_placement(settings: Settings, doc: Document, error: DocumentError,
                      duration_ms: int) -> Placement:
    result = spool.failure_result(_base_result(doc), error, duration_ms)
    stem, suffix = kept_name(doc.original_name)
    return Placement(
        state=FAILED, folder=settings.failed, stem=stem, suffix=suffix,
        result=result, reason_kind=error.kind, reason=error.message, message_kind="failed",
    )


def _timed(placement: Placement, duration_ms: int) -> Placement:
    """The result with how long the reading took, known only once it is done."""
    return dataclasses.replace(placement, result=dict(placement.result) | {
        "duration_ms": duration_ms, "processed_at": now_iso()})


def _defer(store: Store, doc: Document, error: MachineError) -> float:
    delay = defer_delay(doc.deferrals + 1)
    spool.defer(store, doc, delay=delay, kind=error.kind, reason=error.message)
    return delay


def process(settings: Settings, store: Store, doc: Document) -> Outcome:
    """Run the pipeline on a document already moved to `processing` by the store."""
    started = time.monotonic()
    with document_context(doc.id):
        try:
            if doc.crashes >= settings.max_crashes:
                raise PoisonPill(N_("the service stopped %(crashes)d times while reading this "
                                    "file"), crashes=doc.crashes, stage="recover")
            placement = _read(settings, store, doc)
            _account_ocr(settings, doc, placement.result)
            placement = _timed(placement, _elapsed(started))
        except DocumentError as error:
            metrics.failure(error.kind)
            # ERROR: a person must act on it, so `journalctl -p err` should show it.
            log.error("failed at %s: %s (%s)", error.stage or "?", error.message, error.kind)
            placement = _failed_placement(settings, doc, error, _elapsed(started))
        except MachineError as error:
            metrics.failure(error.kind)
            return _deferred(store, doc, error, started)
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                return _unexpected(settings, store, doc, error, started)
            return _deferred(store, doc, DiskFull("the disk is full", detail=str(error)),
                             started)
        except Exception as error:  # a bug of ours: never lose the file over it
            return _unexpected(settings, store, doc, error, started)

        try:
            timer = metrics.StageTimer()
            dest = spool.place(settings, store, doc, placement)
            timer.lap("file")
        except MachineError as error:
            return _deferred(store, doc, error, started)
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                return _deferred(store, doc, DiskFull("could not write the filed copy",
                                                      detail=str(error)), started)
            log.exception("could not file the document")
            return _deferred(store, doc, MachineError("could not file the document",
                                                      detail=str(error)), started)
        except Exception as error:
            # Filing is our code on our folders: a bug here is ours, never the document's.
            # Deferred without counting a crash, so it cannot turn into a poison pill loop.
            log.exception("could not file the document")
            return _deferred(store, doc, MachineError(f"internal error while filing: "
                                                      f"{type(error).__name__}",
                                                      detail=str(error)[:500]), started)
        relative = str(dest.relative_to(settings.home))
        log.info("%s -> %s (%s)", placement.state, relative, placement.reason or "")
        return Outcome(
            file=doc.original_name, document_id=doc.id, outcome=placement.state,
            reason=placement.reason, patient_id=placement.patient_id,
            pages=placement.result.get("pages"), text_source=placement.result.get("text_source"),
            duration_ms=_elapsed(started), path=relative,
            said=reasons.of_payload(placement.result).text(),
        )


def _account_ocr(settings: Settings, doc: Document, result: Mapping[str, Any]) -> None:
    """The OCR's CPU time into the cost ledger and the page counter; never fatal."""
    sources = list(result.get("page_sources") or [])
    metrics.ocr_pages(sum(1 for p in sources if p.get("source") == "ocr"))
    try:
        Ledger(settings.log_dir, prices_from(settings)).record_ocr(doc.id, sources)
    except OSError as error:
        log.warning("OCR cost not recorded in the ledger: %s", error)


def _elapsed(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _deferred(store: Store, doc: Document, error: MachineError, started: float) -> Outcome:
    try:
        delay = _defer(store, doc, error)
    except MachineError:
        delay = 0.0  # the database itself is the fault: the row stays `processing`,
        # and recovery at the next start requeues it.
    log.warning("deferred (%s): %s; retry in %.0f s — %s", error.kind, error.message, delay,
                error.advice_in_english)
    return Outcome(file=doc.original_name, document_id=doc.id, outcome="deferred",
                   reason=f"{error.message} (retried by itself)", patient_id=None, pages=None,
                   text_source=None, duration_ms=_elapsed(started),
                   said=_("%(reason)s (retried by itself)") % {"reason": error.said})


def _unexpected(settings: Settings, store: Store, doc: Document, error: BaseException,
                started: float) -> Outcome:
    """A bug: count it like a crash, so a document that keeps tripping it ends in failed/."""
    log.exception("unexpected error while processing: %s", error)
    crashes = spool.count_crash(store, doc)
    if crashes >= settings.max_crashes:
        poisoned = spool.get(store, doc.id)
        if poisoned is not None:
            return process(settings, store, poisoned)
    return _deferred(store, doc, MachineError(f"internal error: {type(error).__name__}",
                                              detail=str(error)[:500]), started)


def quarantine(settings: Settings, store: Store, doc: Document, error: DocumentError) -> Outcome:
    """Send a document straight to failed/ (the intake judged it, e.g. never completed)."""
    started = time.monotonic()
    with document_context(doc.id):
        placement = _failed_placement(settings, doc, error, 0)
        dest = spool.place(settings, store, doc, placement)
        log.error("failed at %s: %s (%s)", error.stage, error.message, error.kind)
        return Outcome(file=doc.original_name, document_id=doc.id, outcome=FAILED,
                       reason=error.message, patient_id=None, pages=None, text_source=None,
                       duration_ms=_elapsed(started), path=str(dest.relative_to(settings.home)),
                       said=error.said)
