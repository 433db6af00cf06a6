"""A person's decisions: file a review document under a patient (or none), retry a failure.

The shell and (later) the Telegram buttons go through these same functions, so a decision is
made, moved and recorded the same way whoever makes it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from agent import errors, reasons, spool
from agent.config import Settings
from agent.errors import UsageError
from agent.i18n import N_
from agent.logs import document_context, get_logger
from agent.patients import UNASSIGNED, Patient
from agent.patients import get as get_patient
from agent.reasons import Reason
from agent.spool import FAILED, FILED, QUEUED, REVIEW, Document, Placement
from agent.stages.match import MatchResult, compare
from agent.stages.record import Record, parsed_fields
from agent.store import Store, now_iso

log = get_logger("decisions")


@dataclass(frozen=True)
class Decision:
    document_id: str
    outcome: str
    patient_id: str | None
    path: str


def find_one(store: Store, prefix: str) -> Document:
    """The document a person means by an id or its first characters."""
    prefix = prefix.strip().lower()
    if len(prefix) < 4:
        raise UsageError(N_("give at least the first 4 characters of the document id"))
    matches = spool.find(store, prefix)
    if not matches:
        raise UsageError(N_("no document with id %(id)s"), id=prefix)
    if len(matches) > 1:
        raise UsageError(N_("%(count)d documents start with %(id)s: give more characters"),
                         count=len(matches), id=prefix)
    return matches[0]


def resolve(settings: Settings, store: Store, prefix: str, patient_id: str | None,
            *, who: str) -> Decision:
    """File a document waiting in review under `patient_id`, or under done/unassigned/."""
    doc = find_one(store, prefix)
    with document_context(doc.id):
        if doc.state != REVIEW:
            raise UsageError(N_("document %(id)s is not waiting for review (it is %(state)s)"),
                             id=doc.id, state=spool.state_term(doc.state))
        patient = None
        if patient_id is not None:
            patient = get_patient(store, patient_id)
            if patient is None:
                raise UsageError(N_("no patient with id %(id)s in the directory"),
                                 id=patient_id)
        why = Reason.of("filed-by" if patient else "unassigned-by", who=who)
        return file_from_review(settings, store, doc, patient, who=who, why=why,
                                message_kind="resolved", match=_with_chosen(doc, patient))


def _with_chosen(doc: Document, patient: Patient | None) -> MatchResult | None:
    """The document's match with the chosen patient among its candidates, compared with what
    was read, when a person chose someone it had not put forward (found by a search, or typed
    in the shell): the audit line and the announcement then say what agreed and what did not,
    as they do for a candidate."""
    record = Record.from_json(doc.result)
    if patient is None or record.match is None or record.match.evidence(patient.id):
        return None
    chosen = compare(patient, record.fields or parsed_fields({}))
    return replace(record.match, candidates=(*record.match.candidates, chosen))


def file_from_review(settings: Settings, store: Store, doc: Document, patient: Patient | None,
                     *, who: str, why: Reason, message_kind: str,
                     match: MatchResult | None = None) -> Decision:
    """Move a review document under `patient` (or done/unassigned/): one placement path for a
    person's decision and for a re-match (with its new `match`), audited and announced the
    same way."""
    record = Record.from_json(doc.result).decided(patient=patient, why=why, by=who,
                                                  at=now_iso(), match=match)
    pdf = settings.home / (doc.path or "")
    text = spool.text_of(settings, doc)
    spool.take_back(settings, doc)
    placement = Placement(
        state=FILED, folder=settings.done / (patient.id if patient else UNASSIGNED),
        stem=pdf.name[: -len(pdf.suffix) or None], suffix=".pdf", result=record.to_json(),
        text=text, patient_id=record.patient_id, reason=record.reason,
        message_kind=message_kind, audit=record.audit_details(),
        original=record.original.extension if record.original else None,
    )
    dest = spool.place(settings, store, doc, placement)
    log.info("%s (%s): %s", record.reason, who, dest.relative_to(settings.home))
    return Decision(doc.id, FILED, placement.patient_id, str(dest.relative_to(settings.home)))


def retry(settings: Settings, store: Store, prefix: str, *, who: str) -> Decision:
    """Put a failed document back in the queue, with its crash count cleared."""
    doc = find_one(store, prefix)
    with document_context(doc.id):
        if doc.state != FAILED:
            raise UsageError(N_("document %(id)s has not failed (it is %(state)s)"), id=doc.id,
                             state=spool.state_term(doc.state))
        if spool.is_not_downloaded(doc):
            # Its bytes are where they came from (the message, the chat): only they can come
            # again, as the failure's own action says.
            kind = errors.kind_class(doc.reason_kind or "")
            raise UsageError(N_("document %(id)s was never downloaded: %(reason)s. %(action)s"),
                             id=doc.id, reason=reasons.of_payload(doc.result).text(),
                             action=errors.advice(kind) if kind else "")
        if spool.is_refusal(doc):
            raise UsageError(N_("document %(id)s was never taken: %(reason)s. Once docagent may "
                                "read %(path)s, it is taken by itself"), id=doc.id,
                             reason=reasons.of_payload(doc.result).text(), path=doc.path)
        source = spool.requeue(settings, store, doc, who=who)
        log.info("retry asked by %s", who)
        return Decision(doc.id, QUEUED, None, str(source.relative_to(settings.home)))


def review_waiting(store: Store) -> list[Document]:
    return spool.by_state(store, REVIEW)


def failed_documents(store: Store) -> list[Document]:
    return spool.by_state(store, FAILED)


__all__ = ["Decision", "failed_documents", "file_from_review", "find_one", "resolve", "retry",
           "review_waiting"]
