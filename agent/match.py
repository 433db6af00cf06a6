"""Who is this document about? Exactly one agreeing record files it; anything else asks.

Records are people: a wrong filing is the one failure that must never happen, so every rule
here only ever narrows. Each comparison keeps its evidence (which fields agreed, disagreed or
were missing), which goes into the sidecar and the notification.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from agent.names import is_initial, name_key
from agent.parse import ParsedFields
from agent.patients import Patient, by_last_keys
from agent.store import Store

Outcome = Literal["filed", "review"]
MAX_CANDIDATES = 5


@dataclass(frozen=True)
class Candidate:
    patient: Patient
    agree: tuple[str, ...]
    disagree: tuple[str, ...]
    missing: tuple[str, ...]
    swapped: bool = False  # matched with first and last names exchanged

    def as_dict(self) -> dict[str, Any]:
        return {**self.patient.as_dict(), "agree": list(self.agree),
                "disagree": list(self.disagree), "missing": list(self.missing),
                "swapped": self.swapped}


@dataclass(frozen=True)
class MatchResult:
    outcome: Outcome
    patient_id: str | None
    reason: str
    candidates: tuple[Candidate, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "patient_id": self.patient_id, "reason": self.reason,
                "candidates": [c.as_dict() for c in self.candidates]}


def _compare(patient: Patient, last: set[str], first: str, birth: str | None,
             swapped: bool) -> Candidate:
    agree: list[str] = []
    disagree: list[str] = []
    missing: list[str] = []
    (agree if name_key(patient.last_name) in last else disagree).append("last_name")
    if not first:
        missing.append("first_name")
    elif is_initial(first):
        missing.append("first_name (initial only)")
    elif name_key(patient.first_name) == name_key(first):
        agree.append("first_name")
    else:
        disagree.append("first_name")
    if birth is None or patient.birth_date is None:
        missing.append("birth_date")
    elif patient.birth_date == birth:
        agree.append("birth_date")
    else:
        disagree.append("birth_date")
    return Candidate(patient, tuple(agree), tuple(disagree), tuple(missing), swapped)


def match(store: Store, fields: ParsedFields) -> MatchResult:
    if fields.last_name is None:
        return MatchResult("review", None, "no patient name was found on the document")
    last = fields.last_name.value
    first = fields.first_name.value if fields.first_name else ""
    birth = fields.birth_date.value if fields.birth_date else None
    last_keys = {name_key(last)}
    if fields.birth_name is not None:
        last_keys.add(name_key(fields.birth_name.value))
    last_keys.discard("")

    found: dict[str, Candidate] = {}
    for patient in by_last_keys(store, last_keys):
        found[patient.id] = _compare(patient, last_keys, first, birth, swapped=False)
    # "NOM Prénom" read as "Prénom NOM": try the names the other way round, as evidence only.
    if first and not is_initial(first):
        for patient in by_last_keys(store, {name_key(first)}):
            if patient.id not in found:
                found[patient.id] = _compare(patient, {name_key(first)}, last, birth,
                                             swapped=True)

    ranked = sorted(found.values(),
                    key=lambda c: (-len(c.agree), len(c.disagree), c.swapped, c.patient.id))
    candidates = tuple(ranked[:MAX_CANDIDATES])
    agreeing = [c for c in ranked
                if {"last_name", "first_name"} <= set(c.agree) and not c.disagree]

    if not found:
        return MatchResult("review", None, f"no patient named {last} in the directory",
                           candidates)
    if not first:
        return MatchResult("review", None, "only a last name was read: that is not enough",
                           candidates)
    if is_initial(first):
        return MatchResult("review", None, "the first name is only an initial", candidates)
    if not agreeing:
        conflicts = sorted({f for c in ranked for f in c.disagree if f != "last_name"})
        why = ("no record agrees on both names and birth date"
               + (f" ({', '.join(conflicts)} differ)" if conflicts else ""))
        return MatchResult("review", None, why, candidates)
    if len(agreeing) > 1:
        return MatchResult("review", None,
                           f"{len(agreeing)} patients agree with what was read", candidates)
    chosen = agreeing[0]
    if chosen.swapped and "birth_date" not in chosen.agree:
        return MatchResult("review", None,
                           "the names match only in the other order, with no birth date to confirm",
                           candidates)
    homonyms = [c for c in ranked if {"last_name", "first_name"} <= set(c.agree)]
    if len(homonyms) > 1 and "birth_date" not in chosen.agree:
        return MatchResult("review", None,
                           f"{len(homonyms)} patients share this name and the birth date does "
                           "not tell them apart", candidates)
    return MatchResult("filed", chosen.patient.id,
                       "one patient agrees on " + ", ".join(chosen.agree), candidates)
