"""Suggestions for a person: which records a review document most likely belongs to.

Everything here ranks and nothing here decides: a fuzzy score never files a document. The
ranking looks past what the match rule refuses to guess at: a name with one OCR error
("DUPOND" for "DUPONT"), a name without its particle, first and last names exchanged, a birth
date with a mistyped digit or with day and month swapped.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from rapidfuzz import fuzz, process

from agent.names import loose_keys, name_key, record_keys, word_keys
from agent.patients import Patient, by_birth_dates, key_pool, near_keys
from agent.store import Store

FUZZY_CUTOFF = 75.0
FUZZY_LIMIT = 8
SWAPPED_DAY_MONTH = 95.0
# How much each part weighs in a suggestion's score (0-100).
W_LAST, W_FIRST, W_BIRTH = 0.45, 0.25, 0.30
NEUTRAL_BIRTH = 50.0  # no birth date on one side: neither for nor against


def swapped_day_month(iso: str) -> str | None:
    """1961-03-12 -> 1961-12-03, when that is a date; the commonest slip on a form."""
    try:
        day = date.fromisoformat(iso)
        swapped = date(day.year, day.day, day.month)
    except ValueError:
        return None
    return swapped.isoformat() if swapped != day else None


def gather(store: Store, last: str, first: str, birth: str | None) -> list[Patient]:
    """Records worth showing beyond those the names find exactly."""
    keys: set[str] = set()
    pool = key_pool(store)
    for name in (last, first):
        key = name_key(name) if name else ""
        if len(key) < 3:
            continue
        keys |= {key} | loose_keys(name)
        for bucket in pool.near(key):
            keys.update(k for k, _score, _i in process.extract(
                key, bucket, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF, limit=FUZZY_LIMIT))
    dates = {birth} | ({s} if birth and (s := swapped_day_month(birth)) else set()) \
        if birth else set()
    found = {pid: hit.patient for pid, hit in near_keys(
        store, keys, first_keys={name_key(last), name_key(first)}, births=dates).items()}
    found.update((p.id, p) for p in by_birth_dates(store, dates))
    return list(found.values())


SAME_WORD = 75.0  # one or two letters misread in a name of six or more


def same_words(text: str, names: Iterable[str]) -> bool:
    """Every word of `text` is one of the words of `names`, or that word misread by a letter
    or two ("EL AMRAN1" for "EL AMRANI"): the same person written again."""
    known, words = word_keys(*names), word_keys(text)
    return bool(words) and all(
        w in known or max((fuzz.ratio(w, k) for k in known), default=0.0) >= SAME_WORD
        for w in words)


def _names(patient: Patient) -> list[str]:
    return sorted({k for k, kind in record_keys(patient.last_name, patient.birth_name,
                                                 patient.usage_name) if kind != "loose"})


def _similar(key: str, candidates: Iterable[str]) -> float:
    return max((fuzz.ratio(key, c) for c in candidates), default=0.0) if key else 0.0


def birth_score(read: str | None, recorded: str | None) -> float:
    if not read or not recorded:
        return NEUTRAL_BIRTH
    if read == recorded:
        return 100.0
    if swapped_day_month(read) == recorded:
        return SWAPPED_DAY_MONTH
    return float(fuzz.ratio(read, recorded))  # one mistyped digit scores 90


def score(patient: Patient, last: str, first: str, birth: str | None) -> float:
    """0-100: how likely this record is the one the document means. Ranking only."""
    last_key, first_key = name_key(last), name_key(first)
    names = _names(patient)
    patient_first = name_key(patient.first_name)
    straight = (W_LAST * _similar(last_key, names)
                + W_FIRST * _similar(first_key, [patient_first]))
    crossed = (W_LAST * _similar(first_key, names)
               + W_FIRST * _similar(last_key, [patient_first]))
    return round(max(straight, crossed) + W_BIRTH * birth_score(birth, patient.birth_date), 1)
