"""What was read on a document, typed: each value with where it was read and by which rule.

The parser (`parse`), the spotter (`spot`), the date reader (`dates`) and the matcher share
these; the record (`record.py`) keeps and reads back their JSON form.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.stages.lines import Line, snippet

DOCUMENT_TYPES = (
    "lab-result",
    "imaging-report",
    "referral-letter",
    "prescription",
    "insurance-form",
    "other",
)

@dataclass(frozen=True)
class Found:
    value: str  # normalised value as text (dates as ISO YYYY-MM-DD)
    page: int  # 1-based
    snippet: str  # the line it was read from, whitespace collapsed, at most 120 characters
    rule: str  # which rule read it, e.g. "label:nom", "label:dob", "title:mme"
    # A birth date that reads two ways: "DOB 12/03/1961" in an English document is 12 March
    # in the UK (value, day first: 1961-03-12) and 3 December in the US (other: 1961-12-03).
    other: str | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"value": self.value, "page": self.page,
                                  "snippet": self.snippet, "rule": self.rule}
        if self.other is not None:
            out["other"] = self.other
        return out


@dataclass(frozen=True)
class NamedPerson:
    """A directory person's names standing together in the text, and the part they play."""

    last: Found
    first: Found
    role: str  # patient | clinician | companion | unknown (agent.stages.roles)
    birth_name: Found | None = None  # "Sophie BERNARD née LEFEBVRE"
    birth: Found | None = None  # the date right after the name: "THOMAS, Ayoub - 13/07/1977"

    def as_dict(self) -> dict[str, object]:
        return {"last": self.last.as_dict(), "first": self.first.as_dict(), "role": self.role,
                "birth_name": self.birth_name.as_dict() if self.birth_name else None,
                "birth": self.birth.as_dict() if self.birth else None}


@dataclass(frozen=True)
class ParsedFields:
    last_name: Found | None
    first_name: Found | None
    birth_date: Found | None
    document_date: Found | None
    document_type: str  # one of DOCUMENT_TYPES
    document_type_evidence: str  # the keyword that decided it, "" for "other"
    birth_name: Found | None = None  # maiden name ("née X") when one was read
    age: Found | None = None  # the patient's age in years as text ("43"), when stated
    # The directory's people found in the text, each with the part it plays there (see
    # agent.stages.spot); the names above are one of them when no label named the patient.
    people: tuple[NamedPerson, ...] = ()
    # Name-like words where a patient is named (after "Mme", "je vous adresse", under a
    # "NOM PRÉNOM" header) that are nobody in the directory: they rank suggestions, no more.
    hints: tuple[Found, ...] = ()

    @property
    def chosen(self) -> NamedPerson | None:
        """The person found in the text whose names these are; None when a label gave them."""
        return next((p for p in self.people
                     if p.last == self.last_name and p.first == self.first_name), None)

    def as_dict(self) -> dict[str, object]:
        def one(found: Found | None) -> dict[str, object] | None:
            return None if found is None else found.as_dict()

        return {
            "last_name": one(self.last_name),
            "first_name": one(self.first_name),
            "birth_name": one(self.birth_name),
            "birth_date": one(self.birth_date),
            "document_date": one(self.document_date),
            "document_type": self.document_type,
            "document_type_evidence": self.document_type_evidence,
            "age": one(self.age),
            "people": [p.as_dict() for p in self.people],
            "hints": [h.as_dict() for h in self.hints],
        }





def found_at(value: str, line: Line, at: int, rule: str) -> Found:
    """`value`, read at position `at` of `line` by `rule`."""
    return Found(value, line.page, snippet(line, at), rule)
