"""What a document's text says: whose it is, when it was written, what kind of document it is.

A misread name can file a document under the wrong person, so every rule here only reads what
the text states outright: a value after a label ("Nom :", "DOB"), or a name after a title
("Mme", "Mr") that a birth date follows. A value that does not look right is dropped, never
repaired, and readings that disagree cancel out (two different patients in one PDF read as
no patient). None is always an acceptable answer; the matcher and a person deal with it.

Labels, month names and keywords are written once, in lower case without accents, and matched
against a "folded" copy of each line: same length, one character for one character, lower case,
accents removed. A position in the folded copy is therefore a position in the original line,
whose letters (accents and case as printed) are what gets returned.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import date
from typing import NamedTuple

from agent.names import FIRST_NAME_PARTICLES, PARTICLES
from agent.stages import roles
from agent.stages.lines import Line, clean, fold_aligned, letters_key, snippet, split_lines
from agent.stages.roles import STAFF_WORD

DOCUMENT_TYPES = (
    "lab-result",
    "imaging-report",
    "referral-letter",
    "prescription",
    "insurance-form",
    "other",
)

MIN_YEAR = 1880
MAX_YEAR = 2100
MAX_NAME_WORDS = 8


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



# --------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------

_MONTHS = {
    "janvier": 1, "janv": 1, "jan": 1, "january": 1,
    "fevrier": 2, "fevr": 2, "fev": 2, "february": 2, "feb": 2,
    "mars": 3, "mar": 3, "march": 3,
    "avril": 4, "avr": 4, "april": 4, "apr": 4,
    "mai": 5, "may": 5,
    "juin": 6, "june": 6, "jun": 6,
    "juillet": 7, "juil": 7, "july": 7, "jul": 7,
    "aout": 8, "august": 8, "aug": 8,
    "septembre": 9, "september": 9, "sept": 9, "sep": 9,
    "octobre": 10, "october": 10, "oct": 10,
    "novembre": 11, "november": 11, "nov": 11,
    "decembre": 12, "december": 12, "dec": 12,
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE_RE = re.compile(
    r"(?<![0-9])(?:"
    # 12/03/1961, 12-03-1961, 12.03.61 (day first: French and European practice); the two
    # separators must agree, so "12/03.1961" is not a date but an OCR accident.
    r"(?P<d1>[0-9]{1,2}) ?(?P<s1>[/.\-]) ?(?P<m1>[0-9]{1,2}) ?(?P=s1) ?(?P<y1>[0-9]{4}|[0-9]{2})"
    # 1961-03-12
    r"|(?P<y2>[0-9]{4})(?P<s2>[-/.])(?P<m2>[0-9]{1,2})(?P=s2)(?P<d2>[0-9]{1,2})"
    # 12 mars 1961, 1er mars 1961, 12 March 1961, 12-Mar-1961, 1st of March 1961
    rf"|(?P<d3>[0-9]{{1,2}})(?:er|st|nd|rd|th)?[ \-]+(?:de |of )?(?P<n3>{_MONTH})(?![a-z])\.?"
    r"[ \-]+(?P<y3>[0-9]{4}|[0-9]{2})"
    # March 12, 1961
    rf"|(?P<n4>{_MONTH})(?![a-z])\.? +(?P<d4>[0-9]{{1,2}})(?:st|nd|rd|th)?,? +(?P<y4>[0-9]{{4}})"
    r")(?![0-9])"
)


# The day parsing is done on: two-digit years and birth dates are judged against it. Tests
# set it for one call (parse_document(..., today=...)); nothing else does.
_TODAY: ContextVar[date | None] = ContextVar("docagent_parse_today", default=None)


def _today() -> date:
    return _TODAY.get() or date.today()


def two_digit_year(yy: int, month: int, day: int, today: date) -> int:
    """The only century in which this date is not in the future: "27.05.01" is 2001, and a
    birth date "05/12/26" read on 2026-12-02 is 1926 (5 December 2026 has not come yet).

    The whole date is judged, not the year alone: a date this century that is still to come
    belongs to the last one. A document dated ahead of today is rare; a birth date never is.
    """
    year = today.year - today.year % 100 + yy
    return year - 100 if (year, month, day) > (today.year, today.month, today.day) else year


def _make_date(day: int, month: int, year_text: str) -> date | None:
    year = int(year_text)
    if len(year_text) == 2:
        year = two_digit_year(year, month, day, _today())
    if not MIN_YEAR <= year <= MAX_YEAR:
        return None
    try:
        return date(year, month, day)
    except ValueError:  # 31/02, 00/13: not a date, and never "the nearest" date
        return None


def _to_date(m: re.Match[str]) -> date | None:
    g = m.groupdict()
    if g["d1"] is not None:
        return _make_date(int(g["d1"]), int(g["m1"]), g["y1"])
    if g["y2"] is not None:
        return _make_date(int(g["d2"]), int(g["m2"]), g["y2"])
    if g["d3"] is not None:
        return _make_date(int(g["d3"]), _MONTHS[g["n3"]], g["y3"])
    return _make_date(int(g["d4"]), _MONTHS[g["n4"]], g["y4"])


def _month_first(m: re.Match[str]) -> date | None:
    """The other way a numeric date reads when day and month could be either: "12/03/1961"
    is 3 December month first (the US). None for "25/03/1961", "03/03/1961", "12 mars"."""
    g = m.groupdict()
    if g["d1"] is None:
        return None
    day, month = int(g["d1"]), int(g["m1"])
    if day == month or day > 12 or month > 12:
        return None
    return _make_date(month, day, g["y1"])


def parse_date(text: str, today: date | None = None) -> date | None:
    """One date expression ("12/03/1961", "1er mars 1961", "March 12, 1961"...) or None.

    The whole text must be the date (surrounding spaces, brackets and punctuation aside):
    "né le 12/03/1961" is a sentence, not a date expression. `today` (default: the clock)
    decides the century of a two-digit year.
    """
    folded = fold_aligned(clean(text)).strip(" .,;:()[]")
    m = _DATE_RE.fullmatch(folded)
    if m is None:
        return None
    token = _TODAY.set(today or _TODAY.get())
    try:
        return _to_date(m)
    finally:
        _TODAY.reset(token)


_DATE_LEAD = re.compile(r"[\s:;=.,\-]*(?:(?:le|du|on|the)\s+)?")


class _DateAt(NamedTuple):
    value: date  # day first, as France and the UK write it
    at: int  # where the date starts on the line
    other: date | None  # month first, when the numbers read that way too (see _month_first)


def _date_at(fold: str, start: int, end: int) -> _DateAt | None:
    """The date a label's value starts with, and where it starts; None if it starts otherwise."""
    lead = _DATE_LEAD.match(fold, start, end)
    pos = lead.end() if lead else start
    m = _DATE_RE.match(fold, pos, end)
    if m is None:
        return None
    found = _to_date(m)
    return _DateAt(found, m.start(), _month_first(m)) if found else None


# --------------------------------------------------------------------------------------------
# Ages
# --------------------------------------------------------------------------------------------

MAX_AGE = 125
_N = r"(?P<n>[0-9]{1,3})(?![0-9])"
# An age in months, weeks or days is not one in years: "Âge : 18 mois", "aged 6 months".
_NOT_YEARS = r"(?!\s*(?:mois|months?|mo|semaines?|sem|weeks?|wks?|jours?|days?|j|d|m)(?![a-z]))"
_YEARS = r"(?:\s*(?:ans?|years?|yrs?))?"
# (rule, pattern on folded text). A number followed by "ans" alone is an age only where a
# sentence sets it apart ("Mme X, 43 ans, pour avis"), never after "depuis", "il y a", "à".
# "(43 a)" is not read: an "a" after a number is as often a fraction or an arm as a year.
_AGE_SPECS: tuple[tuple[str, str], ...] = (
    # Not "à l'âge de 20 ans": that dates an event of the patient's past.
    ("age:age-de", rf"(?<!l')age(?:e?e?s?|\s*\(\s*e\s*\))\s+de\s+{_N}\s*ans?"),
    ("age:label", rf"(?<!l')age\s*[:=]?\s*{_N}{_NOT_YEARS}{_YEARS}"),
    ("age:aged", rf"aged\s+{_N}{_NOT_YEARS}{_YEARS}"),
    ("age:year-old", rf"{_N}\s*-?\s*(?:years?|yrs?)\s*-?\s*old"),
    ("age:yo", rf"{_N}\s*(?:yo|y/o|y\.o\.?)"),
    ("age:ans", rf"(?<=[,(])\s*{_N}\s*ans?(?=\s*(?:[,;.)]|$))"),
    ("age:person-de", rf"(?:homme|femme|patiente?|enfant|garcon|fillette|fille|nourrisson"
                      rf"|bebe)\s+de\s+{_N}\s*ans?"),
)
_AGE_RES = tuple((rule, re.compile(rf"(?<![a-z0-9]){pattern}(?![a-z0-9/])"))
                 for rule, pattern in _AGE_SPECS)
# Someone with the patient, named on the same line before the age ("accompagnée de sa mère,
# 68 ans"), or right after it ("his 80-year-old mother"): the age is theirs. Lines that are
# about someone else altogether (_STAFF_LINE, staff blocks, _OTHER_PERSON_LINE) are not read.
_COMPANION_CUE = re.compile(
    r"(?<![a-z0-9])(?:mere|pere|fils|sa\s+fille|mari|conjointe?|epou(?:se|x)\s+de|tut(?:eur|rice)"
    r"|accompagnee?(?:\s*\(\s*e\s*\))?\s+(?:de|par)|parents?|mother|father|daughter"
    r"|(?:his|her)\s+son|husband|wife|accompanied\s+by|guardian)(?![a-z0-9])"
)
_COMPANION_AFTER = re.compile(
    r"\s*(?:son|daughter|brother|sister|husband|wife|mother|father|grand(?:son|daughter))"
    r"(?![a-z])"
)


def _ages(line: Line) -> list[Found]:
    """The ages in years stated on a line that is about the patient (not staff, not a
    relative: the caller knows), less those a companion named before them is owed."""
    out: list[Found] = []
    for rule, pattern in _AGE_RES:
        for m in pattern.finditer(line.fold):
            years = int(m.group("n"))
            # Up to the age's end: "sa fille de 6 ans" is a daughter's age, "fille de 6 ans" not.
            if not 0 < years <= MAX_AGE or _COMPANION_CUE.search(line.fold, 0, m.end()) \
                    or _COMPANION_AFTER.match(line.fold, m.end()):
                continue
            out.append(_found(str(years), line, m.start("n"), rule))
    return out


def _age(reading: _Reading) -> Found | None:
    """The patient's age: one, however often stated; two different ages are no answer."""
    if len({f.value for f in reading.ages}) != 1:
        return None
    return reading.ages[0]


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------

# (kind, rule, readable anywhere on a line, pattern on folded text). Order matters: at one
# position the first pattern that fits wins, so longer labels come before their prefixes
# ("date de naissance" before "date", "nom de naissance" before "nom").
_LABEL_SPECS: tuple[tuple[str, str, bool, str], ...] = (
    ("dob", "label:date-naissance", True,
     r"date\s*de\s+naissance|date\s+de\s+naiss\.?|date\s+naissance|date\s+naiss\.?"),
    ("dob", "label:dob", True, r"date\s+of\s+birth|birth\s*date|d\.\s?o\.\s?b\.?|dob"),
    ("dob", "label:ddn", True, r"d\.\s?d\.\s?n\.?|ddn|d\.\s?n\."),
    ("dob", "label:born", True, r"born(?:\s+on)?"),
    ("dob", "label:ne-le", True,
     r"nee?\s*[(\[{]\s*e\s*[)\]}]\s*le|nee?\s+le"
     r"|nee?(?:\s*[(\[{]\s*e\s*[)\]}])?\s+(?:a|au|en)\s+[a-z' \-]{1,40}?,?\s+le"),
    # "née MARTIN le 03.04.1975": a birth date and, in passing, the maiden name.
    ("dob-nee", "label:nee", True,
     r"nee\s+(?P<neename>(?!(?:a|au|en|le)\s)[a-z][a-z' \-]{0,40}?),?\s+le"),
    ("dob", "label:ne-le", True, r"nee?\s*[(\[{]\s*e\s*[)\]}]"),
    ("nee", "label:nee", True, r"nee?"),
    # Not a bare "EP": in a report that is far more often "embolie pulmonaire".
    ("epouse", "label:epouse", True, r"epouse|epse|ep\."),
    ("usage", "label:nom-usage", False,
     r"nom\s+d'\s?usage|nom\s+usuel|nom\s+marital|nom\s+d'\s?epouse|nom\s+epouse"
     r"|nom\s+utilise|married\s+name"),
    ("birthname", "label:nom-naissance", False,
     r"nom\s+de\s+naissance|nom\s+de\s+naiss\.?|nom\s+de\s+jeune\s+fille|nom\s+patronymique"
     r"|birth\s+name|maiden\s+name"),
    ("full-lf", "label:nom-prenom", False,
     r"nom\s*(?:,|/|-|et|&)?\s*prenoms?(?:\s*\(\s*s\s*\))?"
     r"(?:\s+(?:du|de\s+la)\s+patiente?)?"),
    ("full-fl", "label:prenom-nom", False, r"prenoms?\s*(?:,|/|-|et|&)?\s*nom"),
    ("full", "label:patient", False,
     r"nom\s+(?:du|de\s+la)\s+patiente?|nom\s+patiente?"
     r"|identite\s+(?:du|de\s+la)\s+patiente?|identite"
     r"|patient\s*\(\s*e\s*\)|patient\s*/\s*e|patiente?(?:'s)?\s+name|patiente?"),
    ("full", "label:name", False, r"full\s+name|name\s+of\s+(?:the\s+)?patient|name"),
    ("last", "label:nom", False, r"nom\s+de\s+famille|nom|last\s*name|surname|family\s+name"),
    ("first", "label:prenom", False,
     r"prenoms?(?:\s*\(\s*s\s*\))?|first\s*names?|given\s+names?|forenames?"),
    ("doc1", "label:prelevement", True,
     r"date\s+(?:du|de)\s+prelevement|date\s+prelevement|prelevee?s?\s+le|prelevement\s+du"),
    ("doc1", "label:examen", True,
     r"date\s+de\s+l'\s?examen|date\s+d'\s?examen|date\s+examen|examen\s+du"
     r"|date\s+of\s+(?:exam(?:ination)?|service|visit|procedure)|exam(?:ination)?\s+date"),
    ("doc1", "label:compte-rendu", True,
     r"date\s+du\s+(?:compte[\s-]rendu|cr)|date\s+de\s+(?:la\s+)?consultation"
     r"|consultation\s+du"),
    ("doc1", "label:report-date", True,
     r"date\s+of\s+report|report(?:ed)?\s+date|date\s+reported|reported(?:\s+on)?"),
    ("doc1", "label:collected", True,
     r"collect(?:ed|ion)\s+(?:on|date)|date\s+collected|collected|specimen\s+date"
     r"|sample\s+date"),
    ("doc2", "label:edite-le", True, r"(?:edite|imprime|valide|signe|redige|etabli)e?s?\s+le"),
    ("doc2", "label:fait-le", True, r"fait\s+a\s+[a-z' \-]{1,30}?,?\s+le|fait\s+le"),
    ("doc2", "label:date", False, r"dated|date\s+d'\s?edition|date"),
)
_LABEL_RE = re.compile(
    r"(?<![a-z0-9'])(?:"
    + "|".join(f"(?P<L{i}>{spec[3]})" for i, spec in enumerate(_LABEL_SPECS))
    + r")(?![a-z0-9])"
)
_SEPARATOR = re.compile(r"\s*(?:\.?\s*[:;=]+|\.(?=\s|$)|-(?=\s))")
_NAME_KINDS = frozenset({"usage", "birthname", "full-lf", "full-fl", "full", "last", "first"})

# "Nom du médecin", "Name of referring physician": someone else's name field.
_OTHER_NAME_FIELD = re.compile(r"\s+(?:du|de|des|d'|of)\s*(?:la\s+|l'\s?|the\s+)?(?P<w>\w)")
# "Test name:", "Doctor's name:", "Type de patient :": a field about something else.
_OTHER_NAME_BEFORE = re.compile(
    r"(?:^|[^a-z0-9])(?:test|drug|product|brand|file|user|company|practice|hospital|doctor"
    r"|gp|consultant|clinic|lab|laboratory|specimen|sample|exam|examination|procedure|study"
    r"|physician|provider|facility|insurer|insurance|plan|employer|school|contact|kin"
    r"|emergency|father|mother|spouse|partner|parent|sender|recipient|medication|medicine"
    r"|type|categorie|category|statut|status|n°|no|numero|number|num|code|id|etiquette"
    r"|dossier|transport|regime|mode|classe|groupe)(?:'s)?(?:\s+(?:de|du|des|d'|of))?\s*$"
)



@dataclass(frozen=True)
class _Label:
    kind: str
    rule: str
    start: int
    end: int
    value_start: int
    value_end: int
    has_separator: bool
    nee_name: tuple[int, int] | None  # span of the maiden name inside "née X le"


def _labels(line: Line, staff_context: bool, other_person: bool = False) -> list[_Label]:
    """The labels on a line that are taken as labels, each with the span of its value.

    A name label with no colon counts only at the start of the line (or of a column), or after
    another label: "NOM DUPONT Prénom Jean" is a form, "au nom de" in a sentence is not.
    """
    fold = line.fold
    first_word = re.search(r"[^\W_]", fold)
    first_at = first_word.start() if first_word else len(fold)
    found: list[tuple[str, str, int, int, int, bool, tuple[int, int] | None]] = []
    patient_seen = False
    for m in _LABEL_RE.finditer(fold):
        # The spec groups are named L<i>; the inner "neename" group is not one of them.
        index = int(next(k for k, v in m.groupdict().items()
                         if v is not None and k.startswith("L"))[1:])
        kind, rule, anywhere, _pattern = _LABEL_SPECS[index]
        sep = _SEPARATOR.match(fold, m.end())
        has_sep = sep is not None
        value_start = sep.end() if sep else m.end()
        if not anywhere and not has_sep:
            at_start = m.start() <= first_at or fold[max(0, m.start() - 2):m.start()] == "  "
            if not (at_start or found):
                continue
        if kind == "full" and _OTHER_NAME_BEFORE.search(fold, max(0, m.start() - 60),
                                                         m.start()):
            kind, rule = "other", ""
        if kind in ("last", "full") and m.group().strip() in ("nom", "name"):
            other = _OTHER_NAME_FIELD.match(line.text, m.end())
            if other and (other.group("w").islower()
                          or STAFF_WORD.match(fold, other.start("w"))):
                kind, rule = "other", ""
        if rule == "label:patient":
            patient_seen = True
        # On a line about a doctor, a lab or a relative, names and birth dates are theirs;
        # only what follows an explicit "Patient :" on that line is the patient's.
        if ((staff_context and not patient_seen) or other_person) \
                and kind in _NAME_KINDS | {"nee", "epouse", "dob-nee", "dob"}:
            kind, rule = ("other-dob" if kind.startswith("dob") else "other"), ""
        nee = m.span("neename") if m.group("neename") is not None else None
        found.append((kind, rule, m.start(), m.end(), value_start, has_sep, nee))
    labels: list[_Label] = []
    for i, (kind, rule, start, end, value_start, has_sep, nee) in enumerate(found):
        value_end = found[i + 1][2] if i + 1 < len(found) else len(fold)
        labels.append(_Label(kind, rule, start, end, min(value_start, value_end), value_end,
                             has_sep, nee))
    return labels


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------

# Words that end a name: field labels, titles, staff and places, and the little words of the
# sentences around a name.
NAME_STOPS = frozenset({
    "ne", "nee", "epouse", "epse", "ep", "date", "dob", "ddn", "born", "sexe", "sex", "age",
    "ans", "years", "yo", "tel", "telephone", "phone", "adresse", "address", "ipp",
    "nip", "id", "ins", "nir", "nss", "dossier", "file", "ref", "n", "no", "num", "numero",
    "chambre", "room", "lit", "bed", "service", "dr", "docteur", "doctor", "pr",
    "professeur", "prof", "prescripteur", "prescriber", "medecin", "physician", "laboratoire",
    "laboratory", "lab", "labo", "hopital", "hospital", "clinique", "clinic", "centre",
    "center", "cabinet", "biologiste", "radiologue", "nom", "prenom", "prenoms", "name",
    "surname", "patient", "patiente", "mr", "mrs", "ms", "mme", "mlle", "melle", "monsieur",
    "madame", "mademoiselle", "miss", "m", "et", "and", "pour", "for", "a", "au", "en", "par",
    "by", "sur", "on", "in", "at", "of", "the", "qui", "who", "est", "is", "was", "seen",
    "information", "informations", "details", "identification", "mutuelle", "securite",
})
_TITLE = re.compile(rf"(?<![a-z0-9])(?P<t>{roles.CIVILITY})(?:\.|(?=\s))\s*")
_DOCTOR_TITLE = re.compile(r"(?:dr|docteur|doctor|pr|professeur|prof)(?![a-z])")
_TOKEN = re.compile(r"(?:[dl]'\s?)?[^\W\d_]+(?:['\-][^\W\d_]+)*\.?", re.IGNORECASE)
_VALUE_LEAD = re.compile(r"[\s:;.,=_\-|>*•·]*")


@dataclass(frozen=True)
class _Tok:
    text: str
    start: int

    @property
    def fold(self) -> str:
        return fold_aligned(self.text).rstrip(".")

    @property
    def particle(self) -> bool:
        return self.fold in PARTICLES

    @property
    def kind(self) -> str:
        word = self.text
        if len(word) > 2 and word[1] == "'" and word[0].lower() in "dl":
            word = word[2:].lstrip()
        letters = [ch for ch in word if ch.isalpha()]
        if len(letters) <= 1:
            return "initial"
        if all(ch.isupper() for ch in letters):
            return "caps"
        if letters[0].islower():
            return "lower"
        return "cap"  # Capitalised, or a script without case


@dataclass(frozen=True)
class _NameRead:
    tokens: tuple[_Tok, ...]
    comma_tokens: tuple[_Tok, ...]  # "Smith, John": the part after the comma
    title: str  # "mme", "mr"... or ""


def _tokens(line: Line, pos: int, end: int, strict: bool) -> tuple[list[_Tok], int, bool]:
    """Name words from pos; (words, where they stop, True if prose followed them)."""
    text, fold = line.text, line.fold
    tokens: list[_Tok] = []
    while len(tokens) <= MAX_NAME_WORDS:
        gap = len(fold[pos:end]) - len(fold[pos:end].lstrip(" "))
        if tokens and gap >= 3:  # a column gap in a text layer: the next cell is not the name
            break
        m = _TOKEN.match(text, pos + gap, end)
        if m is None:
            break
        tok = _Tok(text[m.start():m.end()], m.start())
        if tok.fold in NAME_STOPS:
            break
        if re.match(r"\s*:", text[m.end():end]):  # "Number:" is the next field's label
            break
        kind = tok.kind
        if kind == "lower" and not tok.particle:
            capitalised = any(t.kind != "lower" for t in tokens if not t.particle)
            if strict or capitalised:
                return tokens, m.start(), True
        tokens.append(tok)
        pos = m.end()
    return tokens, pos, False


def _read_name(line: Line, start: int, end: int, strict: bool) -> _NameRead | None:
    """The name written from start to end, as words; None if it is not a name."""
    fold = line.fold
    lead = _VALUE_LEAD.match(fold, start, end)
    pos = lead.end() if lead else start
    title = ""
    tm = _TITLE.match(fold, pos, end)
    if tm is not None:
        after = line.text[tm.end():end].lstrip()
        # A bare "M" is a title only before a capital ("M DUPONT"), not an initial.
        if tm.group("t") != "m" or tm.group().endswith(".") or (after[:1].isupper()):
            title, pos = tm.group("t"), tm.end()
    if _DOCTOR_TITLE.match(fold, pos, end):
        return None
    tokens, stop, prose = _tokens(line, pos, end, strict)
    if prose and strict:
        return None
    while tokens and tokens[-1].particle:
        tokens.pop()
    if not tokens or len(tokens) > MAX_NAME_WORDS:
        return None
    # A name in lower case is only believed when nothing but the name follows its label.
    if all(t.kind == "lower" for t in tokens) and (
            strict or any(ch.isalnum() for ch in fold[stop:end]) or len(tokens) > 4):
        return None
    comma: list[_Tok] = []
    rest = line.text[stop:end]
    if rest.lstrip().startswith(","):
        comma_at = stop + rest.index(",") + 1
        more, more_stop, more_prose = _tokens(line, comma_at, end, strict)
        while more and more[-1].particle:
            more.pop()
        tail = fold[more_stop:end]
        if more and not more_prose and not re.search(r"[a-z0-9]", tail):
            comma = more
    return _NameRead(tuple(tokens), tuple(comma), title)


def _words(tokens: Sequence[_Tok]) -> str:
    words = [t.text if t.kind == "initial" else t.text.rstrip(".") for t in tokens]
    return " ".join(" ".join(words).split())


def _caps_split(tokens: Sequence[_Tok]) -> tuple[list[_Tok], list[_Tok]] | None:
    """(last, first) when the surname is the part in capitals: "DUPONT Jean", "Jean DUPONT"."""
    core = [i for i, t in enumerate(tokens) if not t.particle]
    caps = [i for i in core if tokens[i].kind == "caps"]
    other = [i for i in core if tokens[i].kind != "caps"]
    if not caps or not other:
        return None
    if max(caps) < min(other):  # NOM Prénom
        cut = max(caps) + 1
        return list(tokens[:cut]), list(tokens[cut:])
    if max(other) < min(caps):  # Prénom NOM; particles just before the capitals are the surname's
        cut = min(caps)
        while cut - 1 > max(other) and tokens[cut - 1].particle:
            cut -= 1
        return list(tokens[cut:]), list(tokens[:cut])
    return None  # capitals in the middle: no way to tell


def _split_full(read: _NameRead, order: str, french: bool) -> tuple[list[_Tok], list[_Tok],
                                                                      bool] | None:
    """(last, first, certain) for a whole name; None when its parts cannot be told apart."""
    tokens = list(read.tokens)
    if read.comma_tokens:
        # "Smith, John" is surname first; "Jean Dupont, Paris" is a name and a town.
        plain = [t for t in tokens if not t.particle]
        if len(plain) == 1 or all(t.kind == "caps" for t in plain):
            return tokens, list(read.comma_tokens), True
    split = _caps_split(tokens)
    if split is not None:
        return split[0], split[1], True
    core = [t for t in tokens if not t.particle]
    if len(core) == 1:
        return tokens, [], False
    particles = [i for i, t in enumerate(tokens) if t.particle]
    if particles and particles[0] == 0 and tokens[0].fold in FIRST_NAME_PARTICLES:
        particles = particles[1:]
    if particles:
        p = particles[0]
        if p > 0:  # "Mohamed Ben Ali", "Jean de la Fontaine"
            return tokens[p:], tokens[:p], False
        j = p
        while j < len(tokens) and tokens[j].particle:
            j += 1
        return tokens[:j + 1], tokens[j + 1:], False  # "de la Fontaine Jean"
    all_caps = all(t.kind == "caps" for t in core)
    if all_caps and len(core) > 2:
        return None
    if not order:
        # Two words in one case: mixed case is Prénom Nom in both languages; all capitals is
        # NOM PRÉNOM on French forms and FIRST LAST on English ones. A wrong order is caught by
        # the matcher, which tries both and then wants the birth date to agree.
        order = "lf" if all_caps and french else "fl"
    if order == "lf":
        return tokens[:1], tokens[1:], False
    return tokens[-1:], tokens[:-1], False


def _split_last(read: _NameRead) -> tuple[list[_Tok], list[_Tok]]:
    """A "Nom" field: all of it is the surname ("Le Gall", "DE LA FONTAINE"), unless it plainly
    holds "DUPONT Jean", when the capitals are the surname and the rest a first name."""
    split = _caps_split(read.tokens)
    if split is not None and all(t.kind in ("cap", "initial") for t in split[1]):
        return split
    return list(read.tokens), []


# --------------------------------------------------------------------------------------------
# Document reading
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    last: Found
    first: Found | None
    birth: Found | None
    lines: frozenset[int]
    certain: bool


@dataclass
class _Reading:
    """Everything read, before the readings are weighed against each other."""

    # Labelled name fields, with the line each was read on.
    usage: list[tuple[Found, int]] = field(default_factory=list)
    last: list[tuple[Found, int]] = field(default_factory=list)
    birthname: list[tuple[Found, int]] = field(default_factory=list)
    first: list[Found] = field(default_factory=list)
    extra_first: list[Found] = field(default_factory=list)  # "Nom : DUPONT Jean"
    # Whole names read after "Patient :" or a title.
    persons: list[_Person] = field(default_factory=list)
    nee: list[tuple[Found, int]] = field(default_factory=list)  # "née X", next to a name
    epouse: list[tuple[Found, Found | None, int]] = field(default_factory=list)  # "épouse Y"
    births: list[Found] = field(default_factory=list)
    birth_lines: set[int] = field(default_factory=set)  # never a source of document dates
    doc_dates: list[tuple[int, Found]] = field(default_factory=list)  # (tier, found)
    ages: list[Found] = field(default_factory=list)  # ages in years, off staff and kin lines


_FRENCH_WORDS = frozenset({
    "le", "la", "les", "du", "des", "et", "pour", "avec", "nom", "prenom", "ne", "nee",
    "resultats", "examen", "madame", "monsieur", "docteur", "compte", "rendu", "date",
    "naissance", "analyses", "sur", "dans", "je", "vous", "est", "une", "ans", "avis",
    "sortie", "entree", "ordonnance", "certificat", "patiente", "medecin",
})
_ENGLISH_WORDS = frozenset({
    "the", "and", "of", "for", "with", "name", "born", "report", "results", "dear", "mr",
    "mrs", "ms", "birth", "date", "test", "on", "in", "dob", "admitted", "discharged",
    "discharge", "summary", "diagnosis", "history", "was", "is", "his", "her", "years", "old",
    "yours", "sincerely", "regards", "clinic", "consultant",
})


def _word_counts(lines: Sequence[Line]) -> tuple[int, int]:
    words = re.findall(r"[a-z]+", " ".join(line.fold for line in lines))
    return (sum(1 for w in words if w in _FRENCH_WORDS),
            sum(1 for w in words if w in _ENGLISH_WORDS))


def _looks_french(lines: Sequence[Line]) -> bool:
    """For the order of names: French unless English words outnumber French ones."""
    french, english = _word_counts(lines)
    return french >= english


def surely_french(lines: Sequence[Line]) -> bool:
    """For dates: only a document that is plainly French writes its dates day first for sure;
    one with no telling words at all may be English, and a date there reads two ways."""
    french, english = _word_counts(lines)
    return french > english


def _found(value: str, line: Line, at: int, rule: str) -> Found:
    return Found(value, line.page, snippet(line, at), rule)


def _name_found(tokens: Sequence[_Tok], line: Line, rule: str, surname: bool = False
                ) -> Found | None:
    value = _words(tokens)
    # A surname of one letter is an initial or an OCR speck; it identifies nobody.
    if not value or (surname and len(letters_key(value)) < 2):
        return None
    return _found(value, line, tokens[0].start, rule)


def _value_line(lines: Sequence[Line], line: Line) -> Line | None:
    """The next non-empty line on the page, when a bare label's value went there."""
    for nxt in lines[line.index + 1:line.index + 3]:
        if nxt.page != line.page:
            return None
        if nxt.text.strip():
            return nxt
    return None


def _read_labels(lines: Sequence[Line], line: Line, labels: list[_Label], french: bool,
                 reading: _Reading) -> None:
    for n, label in enumerate(labels):
        source, start, end = line, label.value_start, label.value_end
        empty = not line.fold[start:end].strip(" :;.,=-_")
        if empty and n == len(labels) - 1 and label.kind != "other":
            nxt = _value_line(lines, line)
            if nxt is not None and not _label_at_start(nxt):
                source, start, end = nxt, 0, len(nxt.text)
        kind, rule = label.kind, label.rule
        if kind == "other-dob":  # someone else's birth date: not the patient's, not a date of
            reading.birth_lines |= {line.index, source.index}  # the document either
            continue
        if kind in ("dob", "dob-nee", "nee"):
            got = _date_at(source.fold, start, end)
            if got is not None:
                reading.births.append(_birth_found(got, source,
                                                   rule if kind != "nee" else "label:ne-le"))
                reading.birth_lines |= {line.index, source.index}
                if label.nee_name is not None:
                    nee = _read_name(line, label.nee_name[0], label.nee_name[1], strict=True)
                    if nee is not None:
                        found = _name_found(nee.tokens, line, rule, surname=True)
                        if found:
                            reading.nee.append((found, line.index))
                continue
            if kind == "dob":
                reading.birth_lines |= {line.index, source.index}
        if kind in ("doc1", "doc2"):
            got = _date_at(source.fold, start, end)
            if got is not None:
                reading.doc_dates.append((1 if kind == "doc1" else 2,
                                          _found(got[0].isoformat(), source, got[1], rule)))
            continue
        if kind not in _NAME_KINDS and kind not in ("nee", "epouse"):
            continue
        if kind == "nee" and line.fold[label.start:label.end] != "nee":
            continue  # "né" (a man) has no maiden name, and "ne" is mostly "ne ... pas"
        strict = not label.has_separator
        read = _read_name(source, start, end, strict)
        if read is None:
            continue
        if kind in ("full", "full-lf", "full-fl"):
            order = {"full-lf": "lf", "full-fl": "fl"}.get(kind, "")
            split = _split_full(read, order, french)
            if split is None:
                continue
            last_toks, first_toks, certain = split
            if strict and not certain:  # "Patient Information" is a heading, not a person
                continue
            last = _name_found(last_toks, source, rule, surname=True)
            if last is not None:
                reading.persons.append(_Person(
                    last, _name_found(first_toks, source, rule), None,
                    frozenset({line.index, source.index}), certain))
        elif kind == "first":
            found = _name_found(read.tokens, source, rule)
            if found:
                reading.first.append(found)
        else:
            last_toks, first_toks = _split_last(read)
            found = _name_found(last_toks, source, rule, surname=True)
            extra = _name_found(first_toks, source, rule)
            if found is None:
                continue
            if kind == "usage":
                reading.usage.append((found, line.index))
            elif kind == "birthname":
                reading.birthname.append((found, line.index))
            elif kind == "nee":
                reading.nee.append((found, line.index))
            elif kind == "epouse":
                reading.epouse.append((found, extra, line.index))
                continue
            else:
                reading.last.append((found, line.index))
            if extra:
                reading.extra_first.append(extra)


def _label_at_start(line: Line) -> bool:
    m = _LABEL_RE.search(line.fold)
    return m is not None and not any(ch.isalnum() for ch in line.fold[:m.start()])


def _read_titles(lines: Sequence[Line], line: Line, labels: list[_Label], french: bool,
                 reading: _Reading) -> None:
    """"Mme DUPONT Marie, née le ...": a title names the patient when a birth date follows."""
    if any(label.kind in _NAME_KINDS for label in labels):
        return
    births = [label for label in labels if label.kind in ("dob", "dob-nee", "nee")
              and _date_at(line.fold, label.value_start, label.value_end) is not None]
    birth_end: int | None = births[0].value_end if births else None
    birth_start = births[0].start if births else len(line.fold)
    if birth_end is None:
        # The birth date may be the next line: "Mme DUPONT Marie" / "née le 03/04/1975".
        nxt = _value_line(lines, line)
        if nxt is None:
            return
        first = next(iter(_labels(nxt, False)), None)
        if (first is None or first.kind not in ("dob", "nee")
                or any(ch.isalnum() for ch in nxt.fold[:first.start])
                or _date_at(nxt.fold, first.value_start, first.value_end) is None):
            return
        birth_end = len(line.fold)
    # Staff words anywhere before the birth date: this line is about a doctor or a place.
    if STAFF_WORD.search(line.fold, 0, birth_end):
        return
    titles = list(_TITLE.finditer(line.fold, 0, birth_start))
    for tm in reversed(titles):  # the title nearest the birth date names the person born
        end = min([label.start for label in labels if label.start >= tm.end()] or
                  [len(line.fold)])
        read = _read_name(line, tm.start(), end, strict=True)
        if read is None or not read.title:
            continue
        split = _split_full(read, "", french)
        if split is None:
            return
        last = _name_found(split[0], line, f"title:{read.title}", surname=True)
        if last is not None:
            reading.persons.append(_Person(last, _name_found(split[1], line, last.rule), None,
                                           frozenset({line.index}), split[2]))
        return


_DATELINE_LE = re.compile(r"[^a-z0-9]*(?:[a-z][a-z' \-]{0,40},\s*)?le\s+")


def _read(lines: Sequence[Line]) -> _Reading:
    reading = _Reading()
    french = _looks_french(lines)
    for line, context in zip(lines, roles.contexts(lines), strict=True):
        if not line.text.strip():
            continue
        labels = _labels(line, context.staff_led or context.staff_block, context.other_person)
        _read_labels(lines, line, labels, french, reading)
        if not context.staff_led and not context.other_person:
            _read_titles(lines, line, labels, french, reading)
            if not context.staff_block:
                reading.ages.extend(_ages(line))
        # "Le 12/03/2024", "Paris, le 12 mars 2024": the date a letter is written.
        m = _DATELINE_LE.match(line.fold)
        if m is not None:
            got = _date_at(line.fold, m.end(), len(line.fold))
            if got is not None and got[1] == m.end():
                reading.doc_dates.append((2, _found(got[0].isoformat(), line, got[1],
                                                   "label:le")))
    for index, header in roles.table_rows(lines).items():
        if header is not None:
            _read_table_birth(lines[index], roles.date_columns(header), reading)
    return reading


def _read_table_birth(row: Line, columns: Sequence[bool], reading: _Reading) -> None:
    """The birth date in a table row, under a header "NOM  PRÉNOM  NÉ(E) LE  …": the date in
    the birth date's column, counted left to right among the header's date columns."""
    if True not in columns:
        return
    dates = [(m, value) for m in _DATE_RE.finditer(row.fold) if (value := _to_date(m))]
    if len(dates) == len(columns):
        m, value = dates[columns.index(True)]
    elif len(columns) == 1 and len(dates) == 1:
        m, value = dates[0]
    else:
        return  # a date missing or one too many: no telling which is the birth date
    reading.births.append(_found(value.isoformat(), row, m.start(), "table:dob"))
    reading.birth_lines.add(row.index)


def _distinct(found: Sequence[Found]) -> int:
    return len({letters_key(f.value) for f in found})


def _keys(person: _Person) -> set[str]:
    return {letters_key(f.value) for f in (person.last, person.first, person.birth)
            if f is not None}


def _compatible(a: _Person, b: _Person) -> bool:
    """Could these two readings be one person (same names, maybe in the other order)?"""
    ka, kb = _keys(a), _keys(b)
    if letters_key(a.last.value) not in kb and letters_key(b.last.value) not in ka:
        return False
    if a.first is not None and b.first is not None:
        return letters_key(a.first.value) in kb or letters_key(b.first.value) in ka
    return True


def _names(reading: _Reading) -> tuple[Found | None, Found | None, Found | None] | None:
    """(last, first, birth name); None when the document names two different people."""
    groups = (reading.usage, reading.last, reading.birthname)
    if any(_distinct([f for f, _ in group]) > 1 for group in groups):
        return None
    if _distinct(reading.first) > 1:
        return None
    chosen: _Person
    if reading.usage or reading.last or reading.birthname:
        firsts = reading.first or reading.extra_first
        born = reading.birthname[0][0] if reading.birthname else None
        if born is None and reading.usage and reading.last:
            born = reading.last[0][0]  # "Nom : MARTIN  Nom d'usage : DUPONT"
        chosen = _Person((reading.usage or reading.last or reading.birthname)[0][0],
                         firsts[0] if firsts else None, born,
                         frozenset(i for group in groups for _, i in group), True)
    elif reading.persons:
        chosen = next((p for p in reading.persons if p.certain), reading.persons[0])
        if chosen.first is None and reading.first:
            chosen = _Person(chosen.last, reading.first[0], None, chosen.lines, chosen.certain)
    else:
        return None, (reading.first[0] if reading.first else None), None
    if not all(_compatible(chosen, other) for other in reading.persons):
        return None

    near = chosen.lines | {i + 1 for i in chosen.lines}
    last, first, birth = chosen.last, chosen.first, chosen.birth
    maiden = [f for f, i in reading.nee if i in near]
    married = [(f, extra) for f, extra, i in reading.epouse if i in near]
    if _distinct(maiden) > 1 or _distinct([f for f, _ in married]) > 1:
        return None
    if married and not reading.usage:
        # "MARTIN Marie épouse DUPONT": she is filed as DUPONT, born MARTIN.
        birth = birth or (maiden[0] if maiden else last)
        last = married[0][0]
        first = first or married[0][1]
    if birth is None and maiden:
        birth = maiden[0]
    return last, first, birth


def valid_birth_date(iso: str, document_date: str | None, today: date) -> bool:
    """A birth date can be neither in the future nor after the document that states it."""
    return iso <= today.isoformat() and (document_date is None or iso <= document_date)


# Between a name and the birth date written right after it: "DUPONT Jean, 12/03/1961",
# "THOMAS, Ayoub - 13 juillet 1977", a sticker's "F 20/11/1941", "(né le 03/04/1975)".
_BIRTH_AFTER_NAME = re.compile(
    r"[\s,;:\-–(]*(?:[fmh]\s+)?(?:(?:nee?\s*(?:\(\s*e\s*\))?\s+le|dob|ddn|born(?:\s+on)?)"
    r"[\s:.]*)?")


def starts_a_date(fold: str, pos: int) -> bool:
    """A date is written from `pos` ("January 5, 1979", "12 mars 1961", "12/03/1961")."""
    m = _DATE_RE.match(fold, pos)
    return m is not None and _to_date(m) is not None


def birth_after_name(line: Line, end: int, french: bool) -> Found | None:
    """The date written right after a name ending at `end` on `line` (0: the name ended the
    line above): a person named with nothing but a date after the name is born that day.
    Not "Fatima du 14/06/2026 au …", a stay's dates."""
    lead = _BIRTH_AFTER_NAME.match(line.fold, end)
    m = _DATE_RE.match(line.fold, lead.end() if lead else end)
    value = _to_date(m) if m else None
    if m is None or value is None:
        return None
    found = _birth_found(_DateAt(value, m.start(), _month_first(m)), line, "after-name")
    today = _today()
    if not valid_birth_date(found.value, None, today):
        return None
    if french or (found.other and not valid_birth_date(found.other, None, today)):
        found = replace(found, other=None)
    return found


def _birth_found(got: _DateAt, line: Line, rule: str) -> Found:
    found = _found(got.value.isoformat(), line, got.at, rule)
    return replace(found, other=got.other.isoformat()) if got.other else found


def _readings(found: Found) -> list[str]:
    """The dates a birth date read may be: one, or two ("12/03/1961" in English), day first."""
    return [found.value] if found.other is None else [found.value, found.other]


def _narrowed(found: Found, readings: Sequence[str]) -> Found | None:
    """`found` kept to the readings still possible: none, one date, or both as they were."""
    if not readings:
        return None
    if len(readings) == 1:
        return replace(found, value=readings[0], other=None)
    return found


def _birth_date(reading: _Reading, french: bool, today: date) -> Found | None:
    """The one birth date every birth date read allows.

    A reading in the future is a misread and is dropped. A French document writes day first,
    always; an English one may be from either side of the Atlantic, so "12/03/1961" keeps both
    readings and the matcher decides, against the directory, which one (if any) it can trust.
    Birth dates that share no reading are two people, or one misread: no answer.
    """
    kept: list[Found] = []
    for found in reading.births:
        if french:
            found = replace(found, other=None)
        valid = _narrowed(found, [r for r in _readings(found)
                                  if valid_birth_date(r, None, today)])
        if valid is not None:
            kept.append(valid)
    if not kept:
        return None
    common = set(_readings(kept[0])).intersection(*(_readings(f) for f in kept[1:]))
    if not common:
        return None
    plain = next((f for f in kept if set(_readings(f)) == common), None)
    return plain or _narrowed(kept[0], [r for r in _readings(kept[0]) if r in common])


def _document_date(lines: Sequence[Line], reading: _Reading,
                   birth: Found | None) -> Found | None:
    # Dates of the examination or sample (tier 1) say what the document is about; print and
    # signature dates (tier 2) only when there is none.
    for tier in (1, 2):
        for found_tier, found in reading.doc_dates:
            if found_tier == tier:
                return found
    for line in lines:
        if line.index in reading.birth_lines:
            continue
        for m in _DATE_RE.finditer(line.fold):
            value = _to_date(m)
            if value is not None and (birth is None or
                                      value.isoformat() not in _readings(birth)):
                return _found(value.isoformat(), line, m.start(), "first-date")
    return None


# --------------------------------------------------------------------------------------------
# Document type
# --------------------------------------------------------------------------------------------

_ADDRESSED = (r"(?:m'avoir|m'avez|avez|ai|a|est|ete)\s+adresse(?:e|s|es)?"
              r"|adresse(?:e|s|es)?\s+(?:par|pour)")
_TYPE_KEYWORDS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("lab-result", (
        ("laboratoire", r"laboratoires?"), ("biologie", r"biologie"),
        ("analyses", r"analyses"), ("hémogramme", r"hemogramme"),
        ("numération", r"numeration"), ("résultats d'analyses", r"resultats?\s+d'\s?analyses?"),
        ("lab results", r"lab\s+results?"), ("laboratory", r"laboratory"),
        ("blood count", r"blood\s+count"), ("glycémie", r"glycemie"), ("bilan", r"bilan"),
        ("biochimie", r"biochimie"), ("biochemistry", r"biochemistry"),
        ("hématologie", r"hematologie"), ("haematology", r"ha?ematology"),
        ("valeurs de référence", r"valeurs?\s+de\s+reference"),
        ("reference range", r"reference\s+ranges?"), ("prélèvement", r"prelevements?"),
    )),
    ("imaging-report", (
        ("radiologie", r"radiologie"), ("radiology", r"radiology"),
        ("imagerie", r"imagerie"), ("échographie", r"echographie"), ("scanner", r"scanner"),
        ("tomodensitométrie", r"tomodensitometrie"),
        ("IRM", r"irm"), ("radiographie", r"radiographie"),
        ("mammographie", r"mammographie"), ("mammography", r"mammography"),
        ("compte rendu d'examen", r"compte[\s-]rendu\s+d'\s?examen"), ("imaging", r"imaging"),
        ("x-ray", r"x[\s-]?rays?"), ("MRI", r"mri"), ("CT scan", r"ct[\s-]?scan"),
        ("ultrasound", r"ultrasound"),
    )),
    ("referral-letter", (
        ("lettre", r"lettre"), ("cher confrère", r"chers?\s+confreres?"),
        ("chère consœur", r"cheres?\s+consoeurs?"), ("adressé", _ADDRESSED),
        ("je vous adresse", r"je\s+vous\s+adresse"), ("courrier", r"courrier"),
        ("referral", r"referral"), ("dear colleague", r"dear\s+colleagues?"),
        ("thank you for seeing", r"thank\s+you\s+for\s+seeing"),
    )),
    ("prescription", (
        ("ordonnance", r"ordonnance"), ("prescription", r"prescription"),
        ("posologie", r"posologie"), ("renouveler", r"renouveler"), ("rx", r"rx"),
        ("qsp", r"q\.?s\.?p\.?"), ("faire pratiquer", r"faire\s+pratiquer"),
    )),
    ("insurance-form", (
        ("mutuelle", r"mutuelles?"), ("assurance", r"assurances?"), ("cerfa", r"cerfa"),
        ("sécurité sociale", r"securite\s+sociale"),
        ("feuille de soins", r"feuilles?\s+de\s+soins"),
        ("prise en charge", r"prise\s+en\s+charge"), ("insurance", r"insurance"),
        ("claim form", r"claim\s+form"),
    )),
)
_TYPE_RES = tuple(
    (kind, tuple((word, re.compile(rf"(?<![a-z0-9]){pattern}(?![a-z0-9])"))
                 for word, pattern in words))
    for kind, words in _TYPE_KEYWORDS
)
# Ties go to the type named first here. A prescription is short and names what it orders
# (an MRI, a blood count), so it wins a tie against what it orders; results and images are
# more specific than the letter that may carry them; insurance words ("sécurité sociale",
# "mutuelle") are printed on nearly every French document, so they decide only when nothing
# else does.
_TIE_ORDER = ("prescription", "lab-result", "imaging-report", "referral-letter",
              "insurance-form")
TITLE_WEIGHT = 3
EARLY_LINES = 15


def _is_title(line: Line, early: bool) -> bool:
    letters = [ch for ch in line.text if ch.isalpha()]
    if len(letters) >= 4 and not any(ch.islower() for ch in letters):
        return True  # a heading in capitals: "COMPTE RENDU D'ANALYSES", "ORDONNANCE"
    words = line.text.split()
    return early and 0 < len(words) <= 4 and not re.search(r"[0-9:]", line.text)


def _document_type(lines: Sequence[Line]) -> tuple[str, str]:
    """The type with the most distinct keywords, a keyword in a heading counting three times.

    Counting distinct keywords, not occurrences, keeps one word repeated down a page (each
    "Prescripteur", each "bilan") from outvoting the document's own heading; headings weigh
    more because a document says what it is at the top ("ORDONNANCE", "COMPTE RENDU D'IRM").
    """
    best: dict[str, dict[str, tuple[int, int]]] = {}
    early_seen = 0
    for line in lines:
        if not line.text.strip():
            continue
        early = line.page == 1 and early_seen < EARLY_LINES
        early_seen += line.page == 1
        weight = TITLE_WEIGHT if _is_title(line, early) else 1
        text = line.fold.replace("œ", "oe")
        for kind, words in _TYPE_RES:
            for word, pattern in words:
                if pattern.search(text):
                    seen = best.setdefault(kind, {})
                    old = seen.get(word)
                    if old is None or weight > old[0]:
                        seen[word] = (weight, old[1] if old else line.index)
    if not best:
        return "other", ""
    kind = max(best, key=lambda k: (sum(w for w, _ in best[k].values()),
                                    -_TIE_ORDER.index(k)))
    word = min(best[kind], key=lambda w: (-best[kind][w][0], best[kind][w][1]))
    return kind, word


# --------------------------------------------------------------------------------------------


def parse_document(pages: Sequence[str], *, today: date | None = None) -> ParsedFields:
    """Read the patient, the dates and the type from each page's text (page 1 first).

    `today` (default: the clock) is the day the dates are judged against: the century of a
    two-digit year, a birth date in the future.
    """
    return parse_lines(split_lines(pages), today=today)


def parse_lines(lines: Sequence[Line], *, today: date | None = None) -> ParsedFields:
    """What the labels and titles of these lines say (`parse_document` on split lines)."""
    token = _TODAY.set(today or date.today())
    try:
        return _parse(lines, _today())
    finally:
        _TODAY.reset(token)


def _parse(lines: Sequence[Line], today: date) -> ParsedFields:
    reading = _read(lines)
    names = _names(reading)
    last, first, birth_name = names or (None, None, None)
    # Two people named (a child and a parent, two reports in one PDF): a birth date read
    # there might be either one's.
    birth = _birth_date(reading, surely_french(lines), today) if names is not None else None
    document = _document_date(lines, reading, birth)
    if birth is not None and document is not None:
        # Born after the document was written: a misread, not a fact (or, of a date that
        # reads two ways, not the reading meant).
        birth = _narrowed(birth, [r for r in _readings(birth)
                                  if valid_birth_date(r, document.value, today)])
    kind, evidence = _document_type(lines)
    return ParsedFields(
        last_name=last,
        first_name=first,
        birth_date=birth,
        document_date=document,
        document_type=kind,
        document_type_evidence=evidence,
        birth_name=birth_name,
        # Like a birth date, an age on a document naming two people might be either's.
        age=_age(reading) if names is not None else None,
        people=() if names is not None else _page_patients(lines),
    )


def _page_patients(lines: Sequence[Line]) -> tuple[NamedPerson, ...]:
    """When the labels name different people, the patient each page names on its own (two
    reports in one PDF): the matcher then puts each to a person, instead of none."""
    pages = sorted({line.page for line in lines})
    people = []
    for page in pages if len(pages) > 1 else []:
        names = _names(_read([line for line in lines if line.page == page]))
        if names is not None and names[0] is not None and names[1] is not None:
            people.append(NamedPerson(names[0], names[1], roles.PATIENT, names[2]))
    return tuple(people)
