"""A person looks for the patient of a document waiting in review, who is not among the
candidates docagent put forward: by directory id, by name, by birth date, or a name and a birth
date together.

Names are compared as the matcher compares them (`agent.names`: accents, case, hyphens and
spaces do not count) and found through the same directory keys and the same fuzzy gathering as
the suggestions (`agent.stages.suggest`), so one mistyped letter still finds the patient. Every
patient found comes with the evidence against what the document read (`match.compare`), the
same words a candidate has. Finding decides nothing: a person picks, and the pick goes through
`agent.ops.decisions.resolve` like any other decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agent.names import name_key
from agent.patients import Patient, by_birth_dates, by_keys
from agent.patients import get as get_patient
from agent.stages import suggest
from agent.stages.dates import DATE_RE, month_first, to_date
from agent.stages.fields import ParsedFields
from agent.stages.lines import clean, fold_aligned
from agent.stages.match import Candidate, compare
from agent.store import Store

MAX_HITS = 5  # buttons under one answer: a phone's screen
MAX_WORDS = 6  # of a name typed: more is not a name
MIN_LETTERS = 2  # "LY", "NG" are last names
By = Literal["id", "name", "birth", "refused", "nothing"]


@dataclass(frozen=True)
class Query:
    """What a person typed: the name words, and the birth date readings (day first, then
    month first when it reads both ways)."""

    name: str
    births: tuple[str, ...]

    @classmethod
    def read(cls, text: str) -> Query:
        cleaned = clean(text)
        found = DATE_RE.search(fold_aligned(cleaned))
        births: list[str] = []
        if found is not None:
            births = [d.isoformat() for d in (to_date(found), month_first(found)) if d]
            cleaned = cleaned[:found.start()] + " " + cleaned[found.end():]
        name = " ".join(w for w in cleaned.replace(",", " ").split() if name_key(w))
        return cls(name, tuple(dict.fromkeys(births)))


@dataclass(frozen=True)
class Lookup:
    by: By
    hits: tuple[Candidate, ...] = ()
    more: int = 0  # found beyond the hits shown


def patient_by_id(store: Store, text: str) -> Patient | None:
    """The patient whose directory id this is ("P0042", "#P0042", "p0042")."""
    wanted = text.strip().lstrip("#").strip()
    if not wanted or len(wanted) > 64:
        return None
    for form in dict.fromkeys((wanted, wanted.upper(), wanted.lower())):
        patient = get_patient(store, form)
        if patient is not None:
            return patient
    return None


def find(store: Store, text: str, fields: ParsedFields, *, names: bool = True,
         limit: int = MAX_HITS) -> Lookup:
    """The directory's patients for what a person typed, best first, with their evidence
    against `fields` (what the document read). `names=False` (DOCAGENT_PHI=minimal): only a
    directory id is looked up; anything else is refused, not searched."""
    patient = patient_by_id(store, text)
    if patient is not None:
        return Lookup("id", (compare(patient, fields),))
    if not names:
        return Lookup("refused")
    query = Query.read(text)
    by: By
    if len(name_key(query.name)) >= MIN_LETTERS:
        found, by = _by_name(store, query), "name"
    elif query.births:
        # Day first (as French is written) before the other reading of a two-way date.
        found = sorted(by_birth_dates(store, query.births, limit=200),
                       key=lambda p: (p.birth_date != query.births[0], p.id))
        by = "birth"
    else:
        return Lookup("nothing")
    return Lookup(by, tuple(compare(p, fields) for p in found[:limit]),
                  max(0, len(found) - limit))


def _cuts(name: str) -> list[tuple[str, str]]:
    """Each way of reading the words as a last name then a first name, and all as a last
    name ("DUPONT Jean", "Jean DUPONT", "EL AMRANI", "BEN ALI Mohamed")."""
    words = name.split()[:MAX_WORDS]
    return [(" ".join(words[:cut]), " ".join(words[cut:])) for cut in range(1, len(words))] \
        + [(" ".join(words), "")]


def _by_name(store: Store, query: Query) -> list[Patient]:
    """Patients every typed word of whose names is one of theirs (or it misread by a letter
    or two), ranked by the suggestions' score; a birth date typed too ranks, never excludes."""
    words = query.name.split()[:MAX_WORDS]
    runs = {name_key(" ".join(words[i:j])) for i in range(len(words))
            for j in range(i + 1, len(words) + 1)}
    pool = {pid: hit.patient for pid, hit in by_keys(store, runs).items()}
    birth = query.births[0] if query.births else None
    cuts = _cuts(query.name)
    for last, first in cuts:
        pool.update((p.id, p) for p in suggest.gather(store, last, first, birth))
    kept = [p for p in pool.values() if suggest.same_words(
        query.name, [n for n in (p.last_name, p.first_name, p.birth_name, p.usage_name) if n])]

    def rank(patient: Patient) -> tuple[float, str]:
        best = max(suggest.score(patient, last, first, birth) for last, first in cuts)
        if patient.birth_date in query.births:  # the other reading of a two-way date too
            best += 100
        return -best, patient.id

    return sorted(kept, key=rank)
