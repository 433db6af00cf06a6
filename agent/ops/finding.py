"""Finding a patient's documents, showing one, and the record of who saw what.

A person looks for documents by patient (a name compared as matching compares names, a
directory id or a birth date: `agent.patients.search`, the search of `docagent patients list`),
by words of the text (the find index, `agent.spool.index`), by type and by a range of the
document's date; the shell (`docagent find`, `docagent show`) and the bot (`/find`, Open) ask
here. Every access is an audit line, written by the front end once it knows what it showed:
`searched` (what was looked for, which patients and documents were shown), `shown`,
`opened` (a document sent into a chat), `downloaded` (its PDF written out by the shell);
`accesses` lists them for one patient (`docagent audit access --patient ID`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent import audit, spool
from agent.audit import AuditLog
from agent.config import Settings
from agent.errors import UsageError
from agent.i18n import N_
from agent.patients import Patient, by_ids, search
from agent.spool import Document
from agent.spool import index as find_index
from agent.spool.index import Indexed
from agent.stages.doctype import TYPES
from agent.store import Store

SEARCHED, SHOWN, OPENED, DOWNLOADED = "searched", "shown", "opened", "downloaded"
ACCESS_EVENTS = (SEARCHED, SHOWN, OPENED, DOWNLOADED)
SHELL, TELEGRAM = "shell", "telegram"
PATIENT_WORDS = 4  # the most words of a phone's /find taken as a patient's name


@dataclass(frozen=True)
class Ask:
    """What a person looks for; every criterion given must hold."""

    patient: str | None = None  # a name, a directory id or a birth date
    words: str | None = None  # words of the text
    document_type: str | None = None  # a type code (lab-result...)
    since: str | None = None  # the document's date, ISO, inclusive
    until: str | None = None
    limit: int = 20

    def __post_init__(self) -> None:
        if self.document_type is not None and self.document_type not in TYPES:
            raise UsageError(N_("unknown document type %(type)s: one of %(types)s"),
                             type=self.document_type, types=", ".join(TYPES))
        if not any((self.patient, self.words, self.document_type, self.since, self.until)):
            raise UsageError(N_("say what to look for: a patient (name, directory id or birth "
                                "date), words of the text, a type or dates"))

    def as_audit(self) -> dict[str, Any]:
        """What was looked for, as the audit line keeps it (only what was given)."""
        given = {"patient": self.patient, "words": self.words, "type": self.document_type,
                 "from": self.since, "to": self.until}
        return {k: v for k, v in given.items() if v is not None}


@dataclass(frozen=True)
class Hit:
    entry: Indexed
    patient: Patient | None  # as the directory has it now; None: in review, or unassigned


@dataclass(frozen=True)
class Answer:
    ask: Ask
    patients: tuple[Patient, ...]  # those the patient query found (empty without one)
    documents: tuple[Hit, ...]  # newest first, at most ask.limit
    total: int  # documents that fit in all
    listed: bool = True  # False: too many patients fit, their documents were not looked up
    incomplete: bool = False  # documents placed before the index are still being indexed


def find(store: Store, ask: Ask, *, max_patients: int | None = None) -> Answer:
    """The patients and documents that fit `ask`. With more than `max_patients` patients
    fitting the name, only the patients are given (a phone's screen: narrow it down)."""
    patients: tuple[Patient, ...] = ()
    patient_ids: list[str] | None = None
    if ask.patient:
        patients = tuple(search(store, ask.patient))
        if max_patients is not None and len(patients) > max_patients:
            return Answer(ask, patients, (), 0, listed=False,
                          incomplete=not find_index.complete(store))
        patient_ids = [p.id for p in patients]
    entries, total = find_index.search(
        store, patient_ids=patient_ids, words=ask.words, document_type=ask.document_type,
        since=ask.since, until=ask.until, limit=ask.limit)
    known = {p.id: p for p in patients}
    missing = {e.patient_id for e in entries if e.patient_id and e.patient_id not in known}
    known.update((p.id, p) for p in by_ids(store, missing))
    hits = tuple(Hit(e, known.get(e.patient_id or "")) for e in entries)
    return Answer(ask, patients, hits, total, incomplete=not find_index.complete(store))


def split_words(store: Store, text: str) -> tuple[str | None, str | None]:
    """A phone's /find: its first words that name patients (the most of them that do, up to
    PATIENT_WORDS), and the rest as words of the text ("dupont jean irm genou"); when no first
    word names anyone, all of it is words of the text ("irm genou")."""
    words = text.split()
    for count in range(min(len(words), PATIENT_WORDS), 0, -1):
        name = " ".join(words[:count])
        if search(store, name):
            return name, " ".join(words[count:]) or None
    return None, " ".join(words) or None


def shown_documents(hits: Sequence[Hit]) -> list[dict[str, str | None]]:
    return [{"document_id": h.entry.document_id, "patient_id": h.entry.patient_id}
            for h in hits]


def record_search(settings: Settings, who: str, answer: Answer, *, channel: str,
                  shown: Sequence[Hit] | None = None, patients: Sequence[Patient] | None = None,
                  **where: Any) -> None:
    """The audit line of a search: who, what was looked for, what was shown (by default all
    the answer holds)."""
    hits = answer.documents if shown is None else shown
    people = answer.patients if patients is None else patients
    AuditLog.of(settings).record(
        SEARCHED, actor=who, channel=channel, query=answer.ask.as_audit(),
        patients=[p.id for p in people], documents=shown_documents(hits),
        total=answer.total, **where)


def record_access(settings: Settings, event: str, who: str, entry_or_doc: Indexed | Document,
                  **details: Any) -> None:
    """The audit line of one document seen, sent or written out."""
    AuditLog.of(settings).record(event, document_id=entry_or_doc.document_id
                                 if isinstance(entry_or_doc, Indexed) else entry_or_doc.id,
                                 actor=who, patient_id=entry_or_doc.patient_id, **details)


# --- one document ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    doc: Document
    entry: Indexed | None  # None: not filed nor in review (failed, queued...)
    patient: Patient | None  # the directory's record of the patient it is filed under
    files: tuple[Path, ...]  # the PDF and what is beside it, as they are on disk
    history: tuple[dict[str, Any], ...] = field(default=())


def show(settings: Settings, store: Store, prefix: str) -> Shown:
    """A document by its id (or first characters), with its history from the audit log."""
    from agent.ops.decisions import find_one  # the stages it loads: for show only, not find

    doc = find_one(store, prefix)
    records = by_ids(store, [doc.patient_id]) if doc.patient_id else []
    return Shown(doc, find_index.get(store, doc.id), records[0] if records else None,
                 tuple(p for p in spool.companion_files(settings, doc) if p.exists()),
                 tuple(history(settings, doc.id)))


def history(settings: Settings, document_id: str) -> Iterator[dict[str, Any]]:
    """Every audit line about a document, oldest first: what was decided, and who saw it
    (a search that listed it included)."""
    for entry in audit.entries(settings.log_dir, mentioning=(document_id,)):
        listed = entry.get("documents") or []
        if entry.get("document_id") == document_id or any(
                isinstance(d, dict) and d.get("document_id") == document_id for d in listed):
            yield entry


def accesses(settings: Settings, store: Store, patient_id: str) -> list[dict[str, Any]]:
    """Every access to a patient's documents, oldest first: the searches that showed the
    patient or one of their documents, and each document of theirs shown, sent or written
    out. Their documents are those filed under them now, and those the line itself says were
    theirs when it was written."""
    theirs = set(find_index.document_ids_of(store, patient_id))
    found = []
    for entry in audit.entries(settings.log_dir, mentioning=(patient_id, *theirs)):
        if entry.get("event") not in ACCESS_EVENTS:
            continue
        listed = [d for d in entry.get("documents") or [] if isinstance(d, dict)]
        if entry.get("document_id"):
            listed.append({"document_id": entry["document_id"],
                           "patient_id": entry.get("patient_id")})
        mine = [str(d["document_id"]) for d in listed
                if d.get("patient_id") == patient_id or d.get("document_id") in theirs]
        if mine or patient_id in (entry.get("patients") or []):
            found.append({**entry, "documents_of_patient": list(dict.fromkeys(mine))})
    return found


__all__ = ["ACCESS_EVENTS", "DOWNLOADED", "OPENED", "SEARCHED", "SHELL", "SHOWN", "TELEGRAM",
           "Answer", "Ask", "Hit", "Shown", "accesses", "find", "history", "record_access",
           "record_search", "show", "shown_documents", "split_words"]
