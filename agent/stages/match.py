"""Who is this document about? Exactly one agreeing record files it; anything else asks.

Records are people: a wrong filing is the one failure that must never happen, so every rule
here only ever narrows. Each comparison keeps its evidence (which fields agreed, disagreed or
were missing, and why), which goes into the sidecar, the audit log and the notification.

The rule, in order (README: "When it files by itself, and when it asks"):
1. a last name and a whole first name (not an initial) must have been read;
2. a name read by OCR from a page whose mean word confidence is under the threshold never
   files (a misread letter can turn one patient into another);
3. exactly one record agrees on last name (its last, birth or usage name, particles and all)
   and first name, and no field read disagrees with it;
4. where two or more records share that name, the birth date must agree;
5. names that agree only the other way round ("Prénom NOM") need the birth date to agree;
6. a name found in the text (`agent.stages.spot`) is held to the same rules, and besides:
   another directory person standing as the patient on the same document sends it to a person;
   the name read as the patient's also standing as a clinician or a companion does too; and a
   name found with nothing around it saying it is the patient's needs its birth date to agree.

A birth date that reads two ways (an English "DOB 12/03/1961": 12 March in the UK, 3 December
in the US) agrees only when exactly one reading is the birth date of a record whose names agree,
and never disagrees on the other reading alone (`_which_reading`). An age stated on the
document ("43 ans", "64-year-old") can rule a record out, more than a year away from the age its
birth date gives, but never agrees: namesakes still need the birth date.

Suggestions (`agent.stages.suggest`) are computed for review documents only, after the decision,
and can never change it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Literal

from agent import evidence, reasons
from agent.config import DEFAULT_MIN_NAME_CONFIDENCE
from agent.names import is_initial, loose_keys, name_key, record_keys
from agent.patients import Patient, by_keys
from agent.reasons import Reason
from agent.stages import roles, suggest
from agent.stages.dates import valid_birth_date
from agent.stages.fields import Found, NamedPerson, ParsedFields
from agent.store import Store

MatchOutcome = Literal["filed", "review"]  # the outcomes a match can decide
MAX_CANDIDATES = 5
AGE_TOLERANCE = 1  # years: "43 ans" written months before the document, or rounded


@dataclass(frozen=True)
class Candidate:
    patient: Patient
    agree: tuple[str, ...]
    disagree: tuple[str, ...]
    missing: tuple[str, ...]
    swapped: bool = False  # matched with first and last names exchanged
    notes: tuple[str, ...] = ()  # evidence in words: "last name agrees with the birth name"
    score: float | None = None  # suggestion rank (0-100); never used to decide

    @property
    def names_agree(self) -> bool:
        return {"last_name", "first_name"} <= set(self.agree)

    def evidence(self) -> dict[str, list[str]]:
        """What agreed, differed and was missing, and why, in words."""
        return {"agree": list(self.agree), "disagree": list(self.disagree),
                "missing": list(self.missing), "notes": list(self.notes)}

    def as_dict(self) -> dict[str, Any]:
        return {**self.patient.as_dict(), **self.evidence(), "swapped": self.swapped,
                "score": self.score}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Candidate:
        def words(key: str) -> tuple[str, ...]:
            return tuple(str(w) for w in raw.get(key) or ())
        return cls(Patient.from_dict(raw), words("agree"), words("disagree"), words("missing"),
                   bool(raw.get("swapped")), words("notes"), raw.get("score"))


@dataclass(frozen=True)
class MatchResult:
    outcome: MatchOutcome
    patient_id: str | None
    why: Reason  # a code and what it needs; `reason` is its sentence, names and all
    candidates: tuple[Candidate, ...] = field(default=())
    name_confidence: float | None = None
    min_name_confidence: float | None = None

    @property
    def reason(self) -> str:
        return self.why.kept()

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "patient_id": self.patient_id, "reason": self.reason,
                "reason_code": self.why.as_dict(), "name_confidence": self.name_confidence,
                "min_name_confidence": self.min_name_confidence,
                "candidates": [c.as_dict() for c in self.candidates]}

    def evidence(self, patient_id: str | None = None) -> dict[str, list[str]] | None:
        """The evidence for the record chosen (or for `patient_id`, chosen by a person), for
        the audit log and the notification; None when it was not among the candidates."""
        wanted = patient_id or self.patient_id
        chosen = [c for c in self.candidates if wanted and c.patient.id == wanted]
        return chosen[0].evidence() if chosen else None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> MatchResult:
        """A match as kept in a record; its reason from its code (or the sentence of a record
        written before codes existed)."""
        outcome: MatchOutcome = "filed" if raw.get("outcome") == "filed" else "review"
        why = reasons.from_dict(raw.get("reason_code")) or \
            Reason.of(reasons.LEGACY, text=str(raw.get("reason") or "?"))
        return cls(outcome, raw.get("patient_id"), why,
                   tuple(Candidate.from_dict(c) for c in raw.get("candidates") or ()
                         if isinstance(c, Mapping)),
                   raw.get("name_confidence"), raw.get("min_name_confidence"))


@dataclass(frozen=True)
class _Read:
    last_keys: frozenset[str]  # the last name read, and the birth name when one was read
    first: str
    birth: str | None
    birth_name: str | None
    usage_name: str | None = None  # the last name read, when a birth name was read too
    # Search keys of the names read (particles dropped, parts of compound names): made from
    # the names themselves, since a key has lost the word boundaries they need.
    last_loose: frozenset[str] = frozenset()
    birth_note: str | None = None  # which reading of a date that reads two ways, in words
    age: int | None = None  # the age in years the document states
    on: date | None = None  # the day that age was true: the document's date, or today


def _compare(patient: Patient, read: _Read, swapped: bool) -> Candidate:
    agree: list[str] = []
    disagree: list[str] = []
    missing: list[str] = []
    notes: list[str] = []
    own = {k: kind for k, kind in record_keys(patient.last_name, patient.birth_name,
                                               patient.usage_name) if kind != "loose"}
    hits = read.last_keys & own.keys()
    if not read.last_keys:  # no name read (suggested from a hint, or searched by a person)
        missing.append("last_name")
    elif hits:
        agree.append("last_name")
        kinds = {own[k] for k in hits}
        if "last" not in kinds:
            notes.append(evidence.BIRTH_NAME if "birth" in kinds else evidence.USAGE_NAME)
    else:
        disagree.append("last_name")
        loose = set().union(*(loose_keys(n) for n in (patient.last_name, patient.birth_name,
                                                       patient.usage_name) if n))
        if read.last_keys & loose or read.last_loose & (own.keys() | loose):
            notes.append(evidence.PARTICLE)
    if read.birth_name and patient.birth_name:
        if name_key(read.birth_name) == name_key(patient.birth_name):
            agree.append("birth_name")
        else:
            disagree.append("birth_name")
    if read.birth_name and read.usage_name and patient.usage_name:
        # "DUPONT née MARTIN": DUPONT is the usage name, and the record knows another one.
        if name_key(read.usage_name) == name_key(patient.usage_name):
            agree.append("usage_name")
        else:
            disagree.append("usage_name")
    if not read.first:
        missing.append("first_name")
    elif is_initial(read.first):
        missing.append("first_name (initial only)")
    elif name_key(patient.first_name) == name_key(read.first):
        agree.append("first_name")
    else:
        disagree.append("first_name")
    if read.birth is None or patient.birth_date is None:
        missing.append("birth_date")
    elif patient.birth_date == read.birth:
        agree.append("birth_date")
    else:
        disagree.append("birth_date")
        if suggest.swapped_day_month(read.birth) == patient.birth_date:
            notes.append(evidence.DAY_MONTH)
    if read.birth_note:
        notes.append(read.birth_note)
    years = _years(patient.birth_date, read.on) if read.age is not None else None
    if read.age is not None and years is not None and abs(years - read.age) > AGE_TOLERANCE:
        disagree.append("age")
        notes.append(evidence.note(evidence.AGE, age=read.age, years=years))
    if swapped:
        notes.append(evidence.SWAPPED)
    return Candidate(patient, tuple(agree), tuple(disagree), tuple(missing), swapped,
                     tuple(notes))


def _years(birth: str | None, on: date | None) -> int | None:
    """How old someone born on `birth` (ISO) was on `on`; None without both."""
    if not birth or on is None:
        return None
    try:
        born = date.fromisoformat(birth)
    except ValueError:
        return None
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _day(found: Found | None) -> date | None:
    try:
        return date.fromisoformat(found.value) if found else None
    except ValueError:
        return None


def _rank(c: Candidate) -> tuple[float, int, int, bool, str]:
    return (-(c.score or 0.0), -len(c.agree), len(c.disagree), c.swapped, c.patient.id)


def _birth_readings(birth: Found | None, document: Found | None, today: date) -> list[str]:
    """The dates the birth date read may be, day first: none, one, or two."""
    if birth is None:
        return []
    if birth.other is None:
        # One reading is compared as read: a date that cannot be a birth date disagrees
        # with every record, it does not vanish.
        return [birth.value]
    valid = [r for r in (birth.value, birth.other)
             if valid_birth_date(r, document.value if document else None, today)]
    return valid or [birth.value]


def _which_reading(readings: Sequence[str], named: Sequence[Patient]) -> tuple[str | None, str]:
    """(the birth date to compare, why in words) for a date that reads two ways, day first
    then month first, against the records whose names agree.

    Exactly one reading is such a record's birth date: that reading is compared (it agrees
    with those records and disagrees with anyone born on neither). Both are (namesakes born
    on each): it decides nothing, and the homonym rule asks a person. Neither is: it disagrees
    as a single date would, whichever way it is read.
    """
    try:
        day_first = date.fromisoformat(readings[0])
        printed = f"{day_first.day:02d}/{day_first.month:02d}/{day_first.year}"  # as written
    except ValueError:  # a sidecar edited by hand: say what it holds
        printed = readings[0]
    on_record = [r for r in readings if r in {p.birth_date for p in named}]
    if len(on_record) == 1:
        way = evidence.READ_DAY_FIRST if on_record[0] == readings[0] else \
            evidence.READ_MONTH_FIRST
        return on_record[0], evidence.note(way, date=printed)
    if on_record:
        return None, evidence.note(evidence.BOTH_READINGS, date=printed)
    return readings[0], evidence.note(evidence.NEITHER_READING, date=printed)


def _candidates(store: Store, read: _Read, last: str) -> dict[str, Candidate]:
    """The records that agree on the last name read and have the first name read, then those
    that do with the two names the other way round ("NOM Prénom" read as "Prénom NOM")."""
    # Only records that agree on both names can decide (file, or make homonyms), so only
    # they are fetched: one indexed lookup, however common the last name. Everything else a
    # person may want to see comes from the suggestions.
    found: dict[str, Candidate] = {}
    for pid, hit in by_keys(store, read.last_keys, first_key=name_key(read.first)).items():
        candidate = _compare(hit.patient, read, swapped=False)
        if "last_name" in candidate.agree:
            found[pid] = candidate
    # The names the other way round, as evidence only.
    crossed = replace(read, last_keys=frozenset({name_key(read.first)}), first=last,
                      birth_name=None, usage_name=None,
                      last_loose=frozenset(loose_keys(read.first)))
    for pid, hit in by_keys(store, crossed.last_keys, first_key=name_key(last)).items():
        candidate = _compare(hit.patient, crossed, swapped=True)
        if pid not in found and "last_name" in candidate.agree:
            found[pid] = candidate
    return found


def _reading(fields: ParsedFields, today: date) -> tuple[_Read, list[str]]:
    """What the document says of its patient, as compared; and the readings of its birth
    date (two for a date that reads both ways)."""
    last = fields.last_name.value if fields.last_name else ""
    first = fields.first_name.value if fields.first_name else ""
    births = _birth_readings(fields.birth_date, fields.document_date, today)
    birth_name = fields.birth_name.value if fields.birth_name else None
    keys = {name_key(last)} | ({name_key(birth_name)} if birth_name else set())
    age = fields.age.value if fields.age else ""
    read = _Read(frozenset(keys - {""}), first, births[0] if births else None, birth_name,
                 last if birth_name else None,
                 frozenset(loose_keys(last) | (loose_keys(birth_name) if birth_name else set())),
                 age=int(age) if age.isdigit() else None,
                 on=_day(fields.document_date) or today)
    return read, births


def compare(patient: Patient, fields: ParsedFields, *, today: date | None = None) -> Candidate:
    """The evidence for one record a person names (searched for, or given to `review
    resolve`) against what the document read: the match's own comparison, names the other
    way round when only that way they agree, a birth date that reads two ways taken the way
    this record can tell. Evidence only: it decides nothing."""
    read, births = _reading(fields, today or date.today())
    if len(births) == 2:
        birth, note = _which_reading(births, [patient])
        read = replace(read, birth=birth, birth_note=note)
    candidate = _compare(patient, read, swapped=False)
    if "last_name" not in candidate.agree and read.first and fields.last_name is not None:
        last = fields.last_name.value
        crossed = replace(read, last_keys=frozenset({name_key(read.first)}), first=last,
                          birth_name=None, usage_name=None,
                          last_loose=frozenset(loose_keys(read.first)))
        other = _compare(patient, crossed, swapped=True)
        if other.names_agree:
            candidate = other
    how = how_found(fields.last_name)
    if how and candidate.names_agree:
        candidate = replace(candidate, notes=(*candidate.notes, how))
    return candidate


def match(store: Store, fields: ParsedFields, *, name_confidence: float | None = None,
          min_name_confidence: float = DEFAULT_MIN_NAME_CONFIDENCE,
          today: date | None = None) -> MatchResult:
    """Decide, with evidence. `name_confidence` is the mean OCR word confidence (0-100) of the
    page(s) the names were read from, None when they came from a text layer. `today` (default:
    the clock) is the day a birth date must not be after, and the day an age is counted at
    when no document date was read."""
    def result(outcome: MatchOutcome, patient_id: str | None, why: Reason,
               found: dict[str, Candidate]) -> MatchResult:
        how = how_found(fields.last_name)
        found = {pid: dataclasses.replace(c, notes=(*c.notes, how)) if how and c.names_agree
                 else c for pid, c in found.items()}
        ranked = _with_suggestions(store, read, last, found, fields.hints) \
            if outcome == "review" else \
            sorted(found.values(), key=_rank)
        return MatchResult(outcome, patient_id, why, tuple(ranked[:MAX_CANDIDATES]),
                           name_confidence, min_name_confidence)

    if fields.last_name is None:
        read = _Read(frozenset(), "", None, None)
        last = ""
        return result("review", None, Reason.of("no-name"), {})
    last = fields.last_name.value
    first = fields.first_name.value if fields.first_name else ""
    read, births = _reading(fields, today or date.today())

    found: dict[str, Candidate] = {}
    if first and not is_initial(first):
        if len(births) == 2:
            # Which reading, if any, can be trusted depends on who has these names.
            namesakes = [c.patient for c in _candidates(store, replace(read, birth=None),
                                                        last).values() if c.names_agree]
            birth, note = _which_reading(births, namesakes)
            read = replace(read, birth=birth, birth_note=note)
        found = _candidates(store, read, last)

    if not first:
        return result("review", None, Reason.of("last-name-only"), found)
    if is_initial(first):
        return result("review", None, Reason.of("initial-only"), found)
    if name_confidence is not None and name_confidence < min_name_confidence:
        return result("review", None, Reason.of("low-confidence", confidence=name_confidence,
                                                threshold=min_name_confidence), found)
    rivals = _rivals(fields, found)
    if rivals:
        for person in fields.people:
            if person.role in (roles.PATIENT, roles.UNKNOWN):
                found.update(_agreeing(store, person.last.value, person.first.value,
                                       read.birth))
        return result("review", None, Reason.of("several-patients", count=len(rivals) + 1),
                      found)
    elsewhere = _named_elsewhere(fields)
    if elsewhere is not None:
        return result("review", None, Reason.of("named-as-other", role=elsewhere), found)
    if not found:
        return result("review", None, Reason.of("no-such-patient", last_name=last,
                                                first_name=first), found)
    named = [c for c in found.values() if c.names_agree]
    agreeing = [c for c in named if not c.disagree]
    if not agreeing:
        conflicts = sorted({f for c in found.values() for f in c.disagree if f != "last_name"})
        return result("review", None, Reason.of("fields-differ", fields=conflicts), found)
    if len(agreeing) > 1:
        return result("review", None, Reason.of("several-agree", count=len(agreeing)), found)
    chosen = agreeing[0]
    if chosen.swapped and "birth_date" not in chosen.agree:
        return result("review", None, Reason.of("swapped-unconfirmed"), found)
    if len(named) > 1 and "birth_date" not in chosen.agree:
        return result("review", None, Reason.of("homonyms", count=len(named)), found)
    spotted = fields.chosen
    if spotted is not None and spotted.role == roles.UNKNOWN and "birth_date" not in chosen.agree:
        return result("review", None, Reason.of("spotted-unconfirmed"), found)
    return result("filed", chosen.patient.id,
                  Reason.of("one-agrees", fields=list(chosen.agree)), found)


def how_found(name: Found | None) -> str | None:
    """How the names were found, in words for the evidence (never the names themselves)."""
    if name is None:
        return None
    how, _, rest = name.rule.partition(":")
    role, _, cue = rest.partition(":")
    template = {"label": evidence.AFTER_LABEL, "title": evidence.AFTER_TITLE,
                "table": evidence.IN_TABLE}.get(how)
    if how == "spotted":
        template = evidence.SPOTTED if role == roles.UNKNOWN else \
            evidence.AFTER_CIVILITY if cue in ("", "civility") else evidence.AFTER_CUE
    return evidence.note(template, page=name.page, cue=cue) if template else None


def _same_person(person: NamedPerson, fields: ParsedFields) -> bool:
    """The person whose names were read (the last or birth name, and the first name), in
    either order."""
    if fields.last_name is None:
        return False
    names = {name_key(person.last.value), name_key(person.first.value)}
    first = {name_key(fields.first_name.value)} if fields.first_name else set()
    lasts = [fields.last_name] + ([fields.birth_name] if fields.birth_name else [])
    return any({name_key(last.value)} | first <= names for last in lasts)


def _rivals(fields: ParsedFields, found: Mapping[str, Candidate]) -> list[str]:
    """Who else stands as the patient: directory people named as patients or with no role
    (a relative in a family letter is named with none), and name-like words standing as a
    patient's that are neither the names read, misread or not, nor another name on record of
    the person they found ("Mme LE BRIS née ZOULINPEL Khadija" found by her birth name)."""
    if fields.last_name is None:
        return []
    rivals: dict[tuple[str, str], str] = {}
    for person in fields.people:
        if person.role in (roles.PATIENT, roles.UNKNOWN) and not _same_person(person, fields):
            rivals.setdefault((name_key(person.last.value), name_key(person.first.value)),
                              f"{person.last.value} {person.first.value}")
    read = [f.value for f in (fields.last_name, fields.first_name, fields.birth_name) if f]
    records = [[n for n in (c.patient.last_name, c.patient.first_name, c.patient.birth_name,
                            c.patient.usage_name) if n]
               for c in found.values() if c.names_agree]
    for hint in fields.hints:
        if not any(suggest.same_words(hint.value, names) for names in (read, *records)):
            rivals.setdefault((name_key(hint.value), ""), hint.value)
    return list(rivals.values())


def _named_elsewhere(fields: ParsedFields) -> str | None:
    """The role in which the patient's name also stands on the document, if not a patient's:
    a referring doctor who is a patient of the practice signs his letters."""
    if fields.last_name is None:
        return None
    for person in fields.people:
        if person.role in (roles.CLINICIAN, roles.COMPANION) and _same_person(person, fields):
            return person.role
    return None


def _agreeing(store: Store, last: str, first: str, birth: str | None) -> dict[str, Candidate]:
    """The records that agree on both of these names, with their evidence."""
    read = _Read(frozenset({name_key(last)}), first, birth, None,
                 last_loose=frozenset(loose_keys(last)))
    return {pid: _compare(hit.patient, read, swapped=False)
            for pid, hit in by_keys(store, read.last_keys, first_key=name_key(first)).items()}


def _with_suggestions(store: Store, read: _Read, last: str, found: dict[str, Candidate],
                      hints: Sequence[Found] = ()) -> list[Candidate]:
    """Every record worth a person's look, best first, each with its evidence and score."""
    pool = dict(found)
    scores: dict[str, float] = {}
    # The names read, and each way of cutting a hint (name-like words where a patient is
    # named) into a last and a first name: a misread name still finds its person.
    readings = [(last, read.first)] if last or read.birth else []
    for hint in hints:
        words = hint.value.split()
        readings += [(" ".join(words[:cut]), " ".join(words[cut:]))
                     for cut in range(1, len(words))] + [(hint.value, "")]
    for name, first in readings:
        for patient in suggest.gather(store, name, first, read.birth):
            if patient.id not in pool:
                pool[patient.id] = _compare(patient, read, swapped=False)
        for pid, c in pool.items():
            score = suggest.score(c.patient, name, first, read.birth)
            scores[pid] = max(scores.get(pid, 0.0), score)
    if not readings:
        scores = {pid: suggest.score(c.patient, last, read.first, read.birth)
                  for pid, c in pool.items()}
    scored = [dataclasses.replace(c, score=scores.get(pid, 0.0)) for pid, c in pool.items()]
    return sorted(scored, key=_rank)
