"""When the directory changes, documents waiting in review are matched again.

A document that went to review because its patient was not in the directory yet ("no patient
named ...") files itself once an import adds that patient. Only the stored fields are used (the
text is never read again), with the same rule and the same OCR-confidence threshold as the
pipeline; a document that still does not have exactly one agreeing record stays in review.
Filing goes through the same placement path as a person's decision, audited and announced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent import spool
from agent.config import Settings
from agent.decisions import Decision, file_from_review
from agent.logs import document_context, get_logger
from agent.match import match
from agent.parse import Found, ParsedFields
from agent.patients import get as get_patient
from agent.reasons import Reason
from agent.spool import REVIEW, Document
from agent.store import Store

log = get_logger("rematch")
ACTOR = "rematch after import"


@dataclass
class RematchReport:
    examined: int = 0
    filed: list[Decision] = field(default_factory=list)


def _found(raw: Any) -> Found | None:
    if not isinstance(raw, dict) or not raw.get("value"):
        return None
    return Found(str(raw["value"]), int(raw.get("page") or 1), str(raw.get("snippet") or ""),
                 str(raw.get("rule") or ""))


def stored_fields(result: dict[str, Any]) -> ParsedFields:
    """The fields as the pipeline read them, back from a sidecar / result_json."""
    raw = result.get("fields") or {}
    return ParsedFields(
        last_name=_found(raw.get("last_name")), first_name=_found(raw.get("first_name")),
        birth_date=_found(raw.get("birth_date")), document_date=_found(raw.get("document_date")),
        document_type=str(raw.get("document_type") or "other"),
        document_type_evidence=str(raw.get("document_type_evidence") or ""),
        birth_name=_found(raw.get("birth_name")),
    )


def stored_name_confidence(result: dict[str, Any], fields: ParsedFields) -> float | None:
    """The confidence the pipeline used: recomputed from the pages' confidences, so that a
    document stored before the threshold existed is held to it too."""
    by_page = {p.get("page"): p.get("confidence") for p in result.get("page_sources") or []}
    readings = [by_page.get(f.page) for f in (fields.last_name, fields.first_name,
                                              fields.birth_name) if f is not None]
    known = [float(c) for c in readings if c is not None]
    return min(known) if known else None


def rematch_review(settings: Settings, store: Store) -> RematchReport:
    report = RematchReport()
    for doc in spool.by_state(store, REVIEW):
        report.examined += 1
        with document_context(doc.id):
            decision = _rematch_one(settings, store, doc)
        if decision is not None:
            report.filed.append(decision)
    return report


def _rematch_one(settings: Settings, store: Store, doc: Document) -> Decision | None:
    result = doc.result
    fields = stored_fields(result)
    outcome = match(store, fields, name_confidence=stored_name_confidence(result, fields),
                    min_name_confidence=settings.min_name_confidence)
    if outcome.outcome != "filed" or outcome.patient_id is None:
        return None
    patient = get_patient(store, outcome.patient_id)
    current = spool.get(store, doc.id)
    if patient is None or current is None or current.state != REVIEW:
        return None  # decided by someone else meanwhile
    return file_from_review(
        settings, store, current, patient, who=ACTOR,
        why=Reason.of("rematched", match=outcome.why.as_dict()),
        message_kind="rematched", updates={"match": outcome.as_dict()})
