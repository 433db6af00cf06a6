"""Dates and ages as documents write them, in French and English, read the one way they can be.

A date is read only where it is written whole and valid ("31/02/1961" is no date, never "the
nearest" one); a two-digit year is the century that keeps the date out of the future; a numeric
date whose day and month could be exchanged keeps its other reading (`DateAt.other`) for the
matcher to decide against the directory. Ages ("43 ans", "64-year-old") are read where they are
a person's, never a relative's. Patterns are written on folded text (`agent.stages.lines`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import replace
from datetime import date
from typing import NamedTuple

from agent.stages.fields import Found, found_at
from agent.stages.lines import Line, clean, fold_aligned

MIN_YEAR = 1880
MAX_YEAR = 2100

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
DATE_RE = re.compile(
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
TODAY: ContextVar[date | None] = ContextVar("docagent_parse_today", default=None)


def judged_on() -> date:
    return TODAY.get() or date.today()


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
        year = two_digit_year(year, month, day, judged_on())
    if not MIN_YEAR <= year <= MAX_YEAR:
        return None
    try:
        return date(year, month, day)
    except ValueError:  # 31/02, 00/13: not a date, and never "the nearest" date
        return None


def to_date(m: re.Match[str]) -> date | None:
    g = m.groupdict()
    if g["d1"] is not None:
        return _make_date(int(g["d1"]), int(g["m1"]), g["y1"])
    if g["y2"] is not None:
        return _make_date(int(g["d2"]), int(g["m2"]), g["y2"])
    if g["d3"] is not None:
        return _make_date(int(g["d3"]), _MONTHS[g["n3"]], g["y3"])
    return _make_date(int(g["d4"]), _MONTHS[g["n4"]], g["y4"])


def month_first(m: re.Match[str]) -> date | None:
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
    m = DATE_RE.fullmatch(folded)
    if m is None:
        return None
    token = TODAY.set(today or TODAY.get())
    try:
        return to_date(m)
    finally:
        TODAY.reset(token)


_DATE_LEAD = re.compile(r"[\s:;=.,\-]*(?:(?:le|du|on|the)\s+)?")


class DateAt(NamedTuple):
    value: date  # day first, as France and the UK write it
    at: int  # where the date starts on the line
    other: date | None  # month first, when the numbers read that way too (see month_first)


def date_at(fold: str, start: int, end: int) -> DateAt | None:
    """The date a label's value starts with, and where it starts; None if it starts otherwise."""
    lead = _DATE_LEAD.match(fold, start, end)
    pos = lead.end() if lead else start
    m = DATE_RE.match(fold, pos, end)
    if m is None:
        return None
    found = to_date(m)
    return DateAt(found, m.start(), month_first(m)) if found else None


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


def ages_on(line: Line) -> list[Found]:
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
            out.append(found_at(str(years), line, m.start("n"), rule))
    return out


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
    m = DATE_RE.match(fold, pos)
    return m is not None and to_date(m) is not None


def birth_after_name(line: Line, end: int, french: bool) -> Found | None:
    """The date written right after a name ending at `end` on `line` (0: the name ended the
    line above): a person named with nothing but a date after the name is born that day.
    Not "Fatima du 14/06/2026 au …", a stay's dates."""
    lead = _BIRTH_AFTER_NAME.match(line.fold, end)
    m = DATE_RE.match(line.fold, lead.end() if lead else end)
    value = to_date(m) if m else None
    if m is None or value is None:
        return None
    found = birth_found(DateAt(value, m.start(), month_first(m)), line, "after-name")
    today = judged_on()
    if not valid_birth_date(found.value, None, today):
        return None
    if french or (found.other and not valid_birth_date(found.other, None, today)):
        found = replace(found, other=None)
    return found


def birth_found(got: DateAt, line: Line, rule: str) -> Found:
    found = found_at(got.value.isoformat(), line, got.at, rule)
    return replace(found, other=got.other.isoformat()) if got.other else found


def date_readings(found: Found) -> list[str]:
    """The dates a birth date read may be: one, or two ("12/03/1961" in English), day first."""
    return [found.value] if found.other is None else [found.value, found.other]


def narrowed(found: Found, readings: Sequence[str]) -> Found | None:
    """`found` kept to the readings still possible: none, one date, or both as they were."""
    if not readings:
        return None
    if len(readings) == 1:
        return replace(found, value=readings[0], other=None)
    return found


