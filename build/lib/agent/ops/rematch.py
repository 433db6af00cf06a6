"""When the directory changes, documents waiting in review are matched again.

A document that went to review because its patient was not in the directory yet ("no patient
named ...") files itself once an import adds that patient. The text kept beside it is searched
again for the directory's people (a name in a letter is only found once its person is in the
directory); the PDF is never read again. The same rule and the same OCR-confidence threshold as
the pipeline apply; a document that still does not have exactly one agreeing record stays in
review.
Filing goes through the same placement path as a person's decision, audited and announced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent import spool
from agent.config import Settings
from agent.logs import document_context, get_logger
from agent.ops.decisions import Decision, file_from_review
from agent.patients import get as get_patient
from agent.reasons import Reason
from agent.spool import REVIEW, Document
from agent.stages.identify import read_fields
from agent.stages.match import match
from agent.stages.record import PAGE_BREAK, Record, name_confidence, parsed_fields
from agent.store import Store

log = get_logger("rematch")
ACTOR = "rematch after import"


@dataclass
class RematchReport:
    examined: int = 0
    filed: list[Decision] = field(default_factory=list)


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
    record = Record.from_json(doc.result)
    text = spool.text_of(settings, doc).decode("utf-8", "replace")
    fields = read_fields(store, text.split(PAGE_BREAK)) if text else \
        record.fields or parsed_fields({})
    # The confidence the names were read with, from the pages as kept: a record stored
    # before the threshold existed is held to it too.
    outcome = match(store, fields, name_confidence=name_confidence(fields, record.page_sources),
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
        message_kind="rematched", match=outcome)
