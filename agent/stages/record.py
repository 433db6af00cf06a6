"""What was read and decided about one document: one typed record, serialised once.

The pipeline builds a `Record`; the spool keeps its JSON form (the sidecar beside the PDF, the
row's `result_json`, the outbox payload) without reading it; rematch, a person's decision, the
command line and the notifications read it back with `Record.from_json`. What is derived from
it (the name confidence, the evidence of the chosen patient, what the audit line says) is
computed here, once.

The JSON is the sidecar's documented shape: `to_json` writes the keys it always had, and
`from_json` reads records written by older versions (a missing key is taken as absent).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.origin import Origin
from agent.patients import Patient
from agent.reasons import Reason, of_payload
from agent.stages.fields import Found, NamedPerson, ParsedFields
from agent.stages.match import Candidate, MatchResult

FAILED = "failed"
PAGE_BREAK = "\n\f"  # between pages in the text kept beside a document


@dataclass(frozen=True)
class PageSource:
    """How one page's text was had: its text layer, or OCR with this confidence and cost."""

    page: int
    source: str  # "text-layer" | "ocr"
    confidence: float | None = None  # mean word confidence 0-100, OCR pages only
    dpi: int | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PageSource:
        return cls(int(raw.get("page") or 0), str(raw.get("source") or ""),
                   raw.get("confidence"), raw.get("dpi"), float(raw.get("seconds") or 0.0),
                   float(raw.get("cpu_seconds") or 0.0))


def name_confidence(fields: ParsedFields, pages: Iterable[PageSource]) -> float | None:
    """The lowest mean OCR confidence of the pages the patient's names were read from; None
    when they came from a text layer (the PDF states them exactly)."""
    by_page = {p.page: p.confidence for p in pages}
    readings = [by_page.get(f.page) for f in (fields.last_name, fields.first_name,
                                              fields.birth_name) if f is not None]
    known = [float(c) for c in readings if c is not None]
    return min(known) if known else None


def identity_confidence(fields: ParsedFields, pages: Iterable[PageSource]) -> float | None:
    """The lowest OCR confidence of the pages the name and birth date were read on; None when
    they came from text layers (or were not read): there is nothing to doubt."""
    read_on = {f.page for f in (fields.last_name, fields.first_name, fields.birth_date) if f}
    scores = [p.confidence for p in pages if p.page in read_on and p.confidence is not None]
    return min(scores) if scores else None


def date_confidence(fields: ParsedFields, pages: Iterable[PageSource]) -> float | None:
    """The OCR confidence of the page the document's date was read on; None when it came
    from a text layer (or no date was read)."""
    found = fields.document_date
    if found is None:
        return None
    return next((float(p.confidence) for p in pages
                 if p.page == found.page and p.confidence is not None), None)


@dataclass(frozen=True)
class Original:
    """The file as it was received, when docagent made the PDF it reads and files from it (an
    image): kept beside that PDF, byte for byte, as `file` (named once it is placed). The
    record's `sha256` is this file's: duplicates are judged on what was received."""

    format: str  # JPEG | PNG | TIFF | HEIC
    media_type: str
    extension: str  # of the file kept beside the PDF: ".jpg"
    size: int
    pages: int
    rotations: tuple[int, ...] = ()  # each page's turn, clockwise, from its EXIF orientation
    flattened: bool = False  # transparency flattened onto white
    embedded: str = ""  # how the pixels went into the PDF: as-is, lossless, decoded-lossless...
    file: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["rotations"] = list(self.rotations)
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Original:
        return cls(str(raw.get("format") or ""), str(raw.get("media_type") or ""),
                   str(raw.get("extension") or ""), int(raw.get("size") or 0),
                   int(raw.get("pages") or 0),
                   tuple(int(r) for r in raw.get("rotations") or []),
                   bool(raw.get("flattened")), str(raw.get("embedded") or ""),
                   str(raw["file"]) if raw.get("file") else None)


@dataclass(frozen=True)
class Failure:
    """Why a document could not be read (a fault of the document, see agent.errors)."""

    kind: str
    stage: str
    message: str
    action: str
    detail: str
    time: str


@dataclass(frozen=True)
class PersonDecision:
    """Who decided a document's patient, when, and what the reason was before."""

    by: str
    at: str
    patient_id: str | None
    previous_reason: str | None


@dataclass(frozen=True)
class Record:
    document_id: str
    sha256: str | None
    original_name: str
    received_at: str
    attempts: int
    outcome: str  # filed | review | failed
    why: Reason
    reason: str  # the sentence, as stored (the shell and the sidecar show it whole)
    patient_id: str | None = None
    patient: Patient | None = None
    document_type: str | None = None
    document_date: str | None = None
    fields: ParsedFields | None = None
    match: MatchResult | None = None
    pages: int | None = None
    encrypted: bool | None = None
    text_source: str | None = None
    page_sources: tuple[PageSource, ...] = ()
    identity_confidence: float | None = None
    failure: Failure | None = None
    decision: PersonDecision | None = None
    duration_ms: int | None = None
    processed_at: str | None = None
    original: Original | None = None  # the image the PDF was made from, kept beside it
    origin: Origin = dataclasses.field(default_factory=Origin)  # a folder, a mail, Telegram

    # --- derived, once -----------------------------------------------------------------

    @property
    def name_confidence(self) -> float | None:
        """The confidence the names were read with, from the pages as kept: a record stored
        before the threshold existed is held to it too."""
        return name_confidence(self.fields, self.page_sources) if self.fields else None

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        return self.match.candidates if self.match else ()

    def evidence(self) -> dict[str, list[str]] | None:
        """What agreed, differed and was missing for the patient it is filed under."""
        if self.match is None or self.patient_id is None:
            return None
        return self.match.evidence(self.patient_id)

    def audit_details(self) -> dict[str, Any]:
        """What the audit line of this decision says besides its outcome."""
        candidates = None
        if self.outcome == "review":  # which records were put to a person, and why
            candidates = [{"id": c.patient.id, "score": c.score, **c.evidence()}
                          for c in self.candidates]
        return {"actor": self.decision.by if self.decision else "docagent",
                "evidence": self.evidence(), "candidates": candidates,
                "name_confidence": self.match.name_confidence if self.match else None}

    def decided(self, *, patient: Patient | None, why: Reason, by: str, at: str,
                match: MatchResult | None = None) -> Record:
        """This record filed by a person (or a re-match) under `patient`, or under none."""
        return dataclasses.replace(
            self, outcome="filed", why=why, reason=why.kept(),
            patient_id=patient.id if patient else None, patient=patient,
            match=match or self.match,
            decision=PersonDecision(by, at, patient.id if patient else None, self.reason))

    # --- the JSON form -----------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "document_id": self.document_id, "sha256": self.sha256,
            "original_name": self.original_name, "received_at": self.received_at,
            "attempts": self.attempts, "outcome": self.outcome, "reason": self.reason,
            "reason_code": self.why.as_dict(), "patient_id": self.patient_id,
            "origin": self.origin.to_json(),
        }
        if self.failure is not None:
            out.update({"time": self.failure.time, "duration_ms": self.duration_ms,
                        "pages": self.pages, "text_source": self.text_source,
                        "kind": self.failure.kind, "stage": self.failure.stage,
                        "message": self.failure.message, "action": self.failure.action,
                        "detail": self.failure.detail})
        else:
            out.update({
                "patient": self.patient.as_dict() if self.patient else None,
                "document_type": self.document_type, "document_date": self.document_date,
                "fields": self.fields.as_dict() if self.fields else {},
                "match": self.match.as_dict() if self.match else {},
                "pages": self.pages, "encrypted": self.encrypted,
                "text_source": self.text_source,
                "page_sources": [p.to_json() for p in self.page_sources],
                "identity_confidence": self.identity_confidence,
            })
            if self.duration_ms is not None:
                out["duration_ms"] = self.duration_ms
            if self.processed_at is not None:
                out["processed_at"] = self.processed_at
        if self.decision is not None:
            out["decision"] = dataclasses.asdict(self.decision)
        if self.original is not None:
            out["original"] = self.original.to_json()
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Record:
        failure = None
        if raw.get("outcome") == FAILED and raw.get("kind"):
            failure = Failure(str(raw["kind"]), str(raw.get("stage") or ""),
                              str(raw.get("message") or ""), str(raw.get("action") or ""),
                              str(raw.get("detail") or ""), str(raw.get("time") or ""))
        decision = raw.get("decision")
        original = raw.get("original")
        patient = raw.get("patient")
        fields = raw.get("fields")
        matched = raw.get("match")
        return cls(
            document_id=str(raw.get("document_id") or ""), sha256=raw.get("sha256"),
            original_name=str(raw.get("original_name") or ""),
            received_at=str(raw.get("received_at") or ""),
            attempts=int(raw.get("attempts") or 0), outcome=str(raw.get("outcome") or ""),
            why=of_payload(raw), reason=str(raw.get("reason") or ""),
            patient_id=raw.get("patient_id"),
            patient=Patient.from_dict(patient) if isinstance(patient, Mapping) else None,
            document_type=raw.get("document_type"), document_date=raw.get("document_date"),
            fields=parsed_fields(fields) if isinstance(fields, Mapping) and fields else None,
            match=MatchResult.from_dict(matched) if isinstance(matched, Mapping) and matched
            else None,
            pages=raw.get("pages"), encrypted=raw.get("encrypted"),
            text_source=raw.get("text_source"),
            page_sources=tuple(PageSource.from_json(p) for p in raw.get("page_sources") or []
                               if isinstance(p, Mapping)),
            identity_confidence=raw.get("identity_confidence"), failure=failure,
            decision=PersonDecision(str(decision.get("by") or ""), str(decision.get("at") or ""),
                                    decision.get("patient_id"), decision.get("previous_reason"))
            if isinstance(decision, Mapping) else None,
            duration_ms=raw.get("duration_ms"), processed_at=raw.get("processed_at"),
            original=Original.from_json(original) if isinstance(original, Mapping) else None,
            origin=Origin.from_json(raw.get("origin")),
        )


def _found(raw: Any) -> Found | None:
    if not isinstance(raw, Mapping) or not raw.get("value"):
        return None
    return Found(str(raw["value"]), int(raw.get("page") or 1), str(raw.get("snippet") or ""),
                 str(raw.get("rule") or ""), str(raw["other"]) if raw.get("other") else None)


def parsed_fields(raw: Mapping[str, Any]) -> ParsedFields:
    """The fields as the pipeline read them, back from their JSON form."""
    return ParsedFields(
        last_name=_found(raw.get("last_name")), first_name=_found(raw.get("first_name")),
        birth_date=_found(raw.get("birth_date")), document_date=_found(raw.get("document_date")),
        document_type=str(raw.get("document_type") or "other"),
        document_type_evidence=str(raw.get("document_type_evidence") or ""),
        birth_name=_found(raw.get("birth_name")), age=_found(raw.get("age")),
        people=tuple(person for p in raw.get("people") or [] if (person := _person(p))),
        hints=tuple(hint for h in raw.get("hints") or [] if (hint := _found(h))),
    )


def _person(raw: Any) -> NamedPerson | None:
    if not isinstance(raw, Mapping):
        return None
    last, first = _found(raw.get("last")), _found(raw.get("first"))
    if last is None or first is None:
        return None
    return NamedPerson(last, first, str(raw.get("role") or ""), _found(raw.get("birth_name")),
                       _found(raw.get("birth")))
