"""The match rule on named cases: exactly one agreeing record files; anything else asks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from agent.names import (
    ELIDED_PARTICLES,
    PARTICLES,
    fold,
    is_initial,
    loose_keys,
    name_key,
    record_keys,
)
from agent.patients import import_csv
from agent.stages.fields import Found, ParsedFields
from agent.stages.match import match
from agent.stages.parse import parse_document
from agent.store import Store
from tests.conftest import directory_store

DIRECTORY = """id,last_name,first_name,birth_date,birth_name,usage_name
A1,DUPONT,Jean,1961-03-12,,
A2,DUPONT,Marie,1988-11-30,,
B1,LEGRAND,Paul,1970-05-05,,
B2,LEGRAND,Paul,1982-09-14,,
C1,Martin-Dubois,Hélène,1975-04-03,,
D1,BEN ALI,Mohamed,1990-07-21,,
E1,Smith,John,,,
F1,EL AMRANI,Youssef,1985-02-10,,
F2,AMRANI,Karim,1979-06-01,,
G1,BERNARD,Sophie,1980-01-15,LEFEBVRE,
H1,AIT BEN HADDOU,Fatima,1992-12-24,,
K1,DE LA FONTAINE,Jean-Pierre,1950-08-08,,
M1,GARCIA,Ana,1977-07-07,,MOREAU
T1,NAJI,Amine,2001-05-05,,
T2,NAJI,Sara,2001-05-05,,
N1,MARTIN,Claire,1970-02-02,,BERNARD
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with directory_store(tmp_path_factory.mktemp("match"), DIRECTORY, patients=16) as s:
        yield s


def fields(last: str | None, first: str | None, birth: str | None,
           birth_name: str | None = None) -> ParsedFields:
    def f(v: str | None) -> Found | None:
        return Found(v, 1, "", "test") if v else None

    return ParsedFields(last_name=f(last), first_name=f(first), birth_date=f(birth),
                        document_date=None, document_type="other", document_type_evidence="",
                        birth_name=f(birth_name))


CASES: list[tuple[object, ...]] = [
    # (id, last, first, birth, outcome, patient[, birth name read, OCR confidence of the name])
    ("exact-three-fields", "DUPONT", "Jean", "1961-03-12", "filed", "A1"),
    ("case-and-accents-folded", "dupont", "JEAN", "1961-03-12", "filed", "A1"),
    ("no-birth-date-one-namesake", "DUPONT", "Marie", None, "filed", "A2"),
    ("birth-date-disagrees", "DUPONT", "Jean", "1961-03-13", "review", None),
    ("last-name-only", "DUPONT", None, "1961-03-12", "review", None),
    ("initial-only", "DUPONT", "J.", "1961-03-12", "review", None),
    ("unknown-patient", "NOBODY", "Jean", "1961-03-12", "review", None),
    ("no-name-read", None, None, "1961-03-12", "review", None),
    ("homonyms-birth-decides", "LEGRAND", "Paul", "1982-09-14", "filed", "B2"),
    ("homonyms-no-birth-date", "LEGRAND", "Paul", None, "review", None),
    ("homonyms-birth-matches-neither", "LEGRAND", "Paul", "1999-01-01", "review", None),
    ("hyphen-vs-space", "MARTIN DUBOIS", "Helene", "1975-04-03", "filed", "C1"),
    ("particle-name", "Ben Ali", "Mohamed", "1990-07-21", "filed", "D1"),
    ("order-swapped-with-birth", "Jean", "DUPONT", "1961-03-12", "filed", "A1"),
    ("order-swapped-no-birth", "Marie", "DUPONT", None, "review", None),
    ("record-without-birth-date", "Smith", "John", "1954-01-09", "filed", "E1"),
    ("other-first-name", "DUPONT", "Pierre", "1961-03-12", "review", None),
    # Birth and married names: every name on record is searchable and can agree.
    ("married-name-read-with-nee", "BERNARD", "Sophie", None, "filed", "G1", "LEFEBVRE"),
    ("birth-name-read-as-last-name", "Lefebvre", "Sophie", "1980-01-15", "filed", "G1"),
    ("usage-name-on-record", "MOREAU", "Ana", "1977-07-07", "filed", "M1"),
    ("birth-name-disagrees", "BERNARD", "Sophie", "1980-01-15", "review", None, "DURAND"),
    ("nee-with-the-usage-name-on-record", "BERNARD", "Claire", None, "filed", "N1", "MARTIN"),
    ("nee-with-another-usage-name-on-record", "DUPONT", "Claire", None, "review", None,
     "MARTIN"),
    # Particles: written or not is not a spelling detail, so a difference never agrees.
    ("particle-missing-on-document", "AMRANI", "Youssef", "1985-02-10", "review", None),
    ("particle-extra-on-document", "EL AMRANI", "Karim", "1979-06-01", "review", None),
    ("particle-run-together", "ELAMRANI", "Youssef", "1985-02-10", "filed", "F1"),
    ("particle-hyphenated", "El-Amrani", "Youssef", None, "filed", "F1"),
    ("moroccan-compound-accented", "Aït Ben Haddou", "Fatima", "1992-12-24", "filed", "H1"),
    ("moroccan-compound-part-only", "HADDOU", "Fatima", "1992-12-24", "review", None),
    ("compound-last-name-part-only", "MARTIN", "Hélène", "1975-04-03", "review", None),
    ("compound-first-name-hyphen-vs-space", "de la Fontaine", "Jean Pierre", None, "filed",
     "K1"),
    ("compound-first-name-partial", "DE LA FONTAINE", "Jean", "1950-08-08", "review", None),
    ("french-particle-run-together", "DELAFONTAINE", "JEAN-PIERRE", "1950-08-08", "filed",
     "K1"),
    # Twins: same name, same birth date, only the first name tells them apart.
    ("twins-first-name-decides", "NAJI", "Sara", "2001-05-05", "filed", "T2"),
    ("twins-initial-only", "NAJI", "S.", "2001-05-05", "review", None),
    # Near misses a fuzzy matcher would "fix": they only ever suggest.
    ("ocr-error-in-last-name", "DUPOND", "Jean", "1961-03-12", "review", None),
    ("ocr-error-in-first-name", "DUPONT", "Jaen", "1961-03-12", "review", None),
    ("birth-day-month-swapped", "DUPONT", "Jean", "1961-12-03", "review", None),
    ("order-swapped-birth-disagrees", "Jean", "DUPONT", "1961-03-13", "review", None),
    ("homonyms-swapped-order-birth-decides", "Paul", "LEGRAND", "1970-05-05", "filed", "B1"),
    # OCR confidence of the page the name came from (None: a text layer).
    ("low-ocr-confidence", "DUPONT", "Jean", "1961-03-12", "review", None, None, 55.0),
    ("ocr-confidence-at-threshold", "DUPONT", "Jean", "1961-03-12", "filed", "A1", None, 70.0),
    ("good-ocr-confidence", "DUPONT", "Jean", "1961-03-12", "filed", "A1", None, 91.5),
    ("low-ocr-confidence-even-with-all-three", "LEGRAND", "Paul", "1982-09-14", "review", None,
     None, 40.0),
]


def _case(c: tuple[object, ...]) -> tuple[object, ...]:
    return (*c, None, None)[1:8]


@pytest.mark.parametrize(("last", "first", "birth", "outcome", "patient", "birth_name",
                          "confidence"),
                         [_case(c) for c in CASES], ids=[str(c[0]) for c in CASES])
def test_match_rule(store: Store, last: str | None, first: str | None, birth: str | None,
                    outcome: str, patient: str | None, birth_name: str | None,
                    confidence: float | None) -> None:
    result = match(store, fields(last, first, birth, birth_name), name_confidence=confidence,
                   min_name_confidence=70.0)
    assert (result.outcome, result.patient_id) == (outcome, patient), result.reason
    assert result.reason
    if outcome == "filed":
        chosen = next(c for c in result.candidates if c.patient.id == patient)
        assert {"last_name", "first_name"} <= set(chosen.agree) and not chosen.disagree
        assert result.evidence() == {"agree": list(chosen.agree), "disagree": [],
                                     "missing": list(chosen.missing),
                                     "notes": list(chosen.notes)}


def test_the_table_covers_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


SUGGESTIONS = [
    # (id, last, first, birth, the patient a person should see among the first three)
    ("ocr-error-in-last-name", "DUPOND", "Jean", "1961-03-12", "A1"),
    ("ocr-error-in-first-name", "DUPONT", "Jaen", "1961-03-12", "A1"),
    ("birth-day-month-swapped", "DUPONT", "Jean", "1961-12-03", "A1"),
    ("birth-one-digit-off", "LEGRAND", "Paul", "1982-09-15", "B2"),
    ("particle-missing", "AMRANI", "Youssef", "1985-02-10", "F1"),
    ("particle-extra", "EL AMRANI", "Karim", "1979-06-01", "F2"),
    ("compound-part-only", "MARTIN", "Hélène", "1975-04-03", "C1"),
    ("order-swapped-no-birth", "Marie", "DUPONT", None, "A2"),
    ("unknown-name-known-birth-date", "NOBODY", "Sophie", "1980-01-15", "G1"),
]


@pytest.mark.parametrize(("last", "first", "birth", "expected"),
                         [c[1:] for c in SUGGESTIONS], ids=[c[0] for c in SUGGESTIONS])
def test_review_suggests_the_right_patient_among_the_first_three(
        store: Store, last: str, first: str, birth: str | None, expected: str) -> None:
    result = match(store, fields(last, first, birth))
    assert result.outcome == "review", "a resemblance must never file"
    top = [c.patient.id for c in result.candidates[:3]]
    assert expected in top, (top, result.reason)
    assert all(c.score is not None for c in result.candidates)


def test_review_keeps_the_candidates_with_evidence(store: Store) -> None:
    result = match(store, fields("LEGRAND", "Paul", "1999-01-01"))
    assert {c.patient.id for c in result.candidates[:2]} == {"B1", "B2"}
    for c in result.candidates[:2]:
        assert c.disagree == ("birth_date",)
        assert set(c.agree) == {"last_name", "first_name"}


def test_evidence_says_why_in_words(store: Store) -> None:
    swapped = match(store, fields("DUPONT", "Jean", "1961-12-03"))
    a1 = next(c for c in swapped.candidates if c.patient.id == "A1")
    assert a1.disagree == ("birth_date",)
    assert "birth date has day and month exchanged" in a1.notes
    particle = match(store, fields("AMRANI", "Youssef", "1985-02-10"))
    f1 = next(c for c in particle.candidates if c.patient.id == "F1")
    assert "last_name" in f1.disagree
    assert any("particle" in n for n in f1.notes)
    via_birth = match(store, fields("LEFEBVRE", "Sophie", "1980-01-15"))
    assert any("birth name" in n for n in via_birth.candidates[0].notes)
    low = match(store, fields("DUPONT", "Jean", "1961-03-12"), name_confidence=50.0)
    assert low.as_dict()["name_confidence"] == 50.0 and "confidence" in low.reason


def test_name_keys() -> None:
    assert fold("Hélène") == "helene"  # accents stripped before anything is removed
    assert name_key("Martin-Dubois") == name_key("MARTIN DUBOIS") == "martindubois"
    assert name_key("Œdipe") == "oedipe"
    assert is_initial("J.") and is_initial("J.-P.") and not is_initial("Jo")


def test_particles_and_compound_parts_are_search_keys_only() -> None:
    assert loose_keys("El Amrani") == {"amrani"}
    assert loose_keys("Martin-Dubois") == {"martin", "dubois"}
    assert loose_keys("de la Fontaine") == {"fontaine"}
    assert loose_keys("DUPONT") == set()
    assert record_keys("BERNARD", "Lefebvre", "El-Amrani") == {
        ("bernard", "last"), ("lefebvre", "birth"), ("elamrani", "usage"), ("amrani", "loose")}


@pytest.mark.parametrize("particle", sorted(PARTICLES | ELIDED_PARTICLES))
def test_parse_and_match_agree_on_every_particle(particle: str, tmp_path: Path) -> None:
    """The surname the parser reads, particle and all, is the one the matcher compares: the
    whole name files, and a name a particle apart, either way, is only suggested."""
    joined = f"{particle.upper()}'VERNAY" if particle in ELIDED_PARTICLES else \
        f"{particle.capitalize()} VERNAY"
    s = Store(tmp_path / "state.db")
    csv = tmp_path / "p.csv"
    csv.write_text("id,last_name,first_name,birth_date\n"
                   f"V1,{joined.upper()},Marie,1975-04-03\nV2,VERNAY,Paul,1962-08-19\n",
                   encoding="utf-8")
    assert import_csv(s, csv).added == 2
    try:
        def read(name: str, birth: str) -> ParsedFields:
            return parse_document([f"COMPTE RENDU\nPatient : {name}\nNé(e) le : {birth}\n"])

        whole = read(f"Marie {joined}", "03/04/1975")
        assert whole.last_name is not None and whole.last_name.value == joined
        assert whole.first_name is not None and whole.first_name.value == "Marie"
        assert match(s, whole).patient_id == "V1"
        for name, birth, pid in (("Marie VERNAY", "03/04/1975", "V1"),
                                 (f"Paul {joined}", "19/08/1962", "V2")):
            apart = match(s, read(name, birth))
            assert apart.outcome == "review", name
            [candidate] = [c for c in apart.candidates if c.patient.id == pid]
            assert any("particle" in note for note in candidate.notes), (name, candidate)
    finally:
        s.close()


# ---- Dates that read two ways -----------------------------------------------------------
# "DOB 12/03/1961" in an English letter: 12 March (UK, day first) or 3 December (US).
UK, US = "1961-03-12", "1961-12-03"
DATES_DIRECTORY = f"""id,last_name,first_name,birth_date
S1,SMITH,John,{UK}
J1,JONES,Mary,{US}
W1,WILSON,Anne,{UK}
W2,WILSON,Anne,{US}
B1,BROWN,Peter,1970-01-01
T1,TAYLOR,Emma,{US}
T2,TAYLOR,Emma,1975-06-06
K1,KING,Lily,2026-03-11
K2,KING,Lily,2026-11-03
"""


@pytest.fixture(scope="module")
def dates_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with directory_store(tmp_path_factory.mktemp("dates"), DATES_DIRECTORY, patients=9) as s:
        yield s


def two_ways(last: str, first: str, value: str, other: str | None,
             document: str | None = None) -> ParsedFields:
    return ParsedFields(Found(last, 1, "", "test"), Found(first, 1, "", "test"),
                        Found(value, 1, "DOB 12/03/1961", "label:dob", other=other),
                        Found(document, 1, "", "test") if document else None, "other", "")


TWO_WAYS = [
    # (id, last, first, value, other, document date, today, outcome, patient, note)
    ("uk-reading-on-record", "SMITH", "John", UK, US, None, None, "filed", "S1",
     "birth date 12/03/1961 read day first (UK)"),
    ("us-reading-on-record", "JONES", "Mary", UK, US, None, None, "filed", "J1",
     "birth date 12/03/1961 read month first (US)"),
    # Two namesakes, one born on each reading: the date decides nothing, a person does.
    ("namesakes-one-per-reading", "WILSON", "Anne", UK, US, None, None, "review", None,
     "birth date 12/03/1961 reads two ways and namesakes were born on each: it decides "
     "nothing"),
    ("neither-reading-on-record", "BROWN", "Peter", UK, US, None, None, "review", None,
     "birth date 12/03/1961 reads two ways and neither is on record"),
    # One namesake born on one reading, the other on neither: the reading decides.
    ("namesakes-one-born-on-a-reading", "TAYLOR", "Emma", UK, US, None, None, "filed", "T1",
     "birth date 12/03/1961 read month first (US)"),
    # A reading after the document's date, or in the future, is no birth date: one is left.
    ("reading-after-the-document", "WILSON", "Anne", UK, US, "1961-06-01", None, "filed",
     "W1", None),
    ("reading-in-the-future", "KING", "Lily", "2026-11-03", "2026-03-11", None,
     date(2026, 6, 1), "filed", "K1", None),
]


@pytest.mark.parametrize(("last", "first", "value", "other", "document", "today", "outcome",
                          "patient", "note"),
                         [c[1:] for c in TWO_WAYS], ids=[c[0] for c in TWO_WAYS])
def test_a_date_that_reads_two_ways(dates_store: Store, last: str, first: str, value: str,
                                    other: str, document: str | None, today: date | None,
                                    outcome: str, patient: str | None,
                                    note: str | None) -> None:
    result = match(dates_store, two_ways(last, first, value, other, document), today=today)
    assert (result.outcome, result.patient_id) == (outcome, patient), result.reason
    named = [c for c in result.candidates if c.names_agree]
    assert named
    if note is not None:
        assert all(note in c.notes for c in named), [c.notes for c in named]
    if outcome == "filed":
        chosen = next(c for c in named if c.patient.id == patient)
        assert "birth_date" in chosen.agree and not chosen.disagree


def test_a_date_that_reads_two_ways_never_disagrees_on_the_other_reading(
        dates_store: Store) -> None:
    namesakes = match(dates_store, two_ways("WILSON", "Anne", UK, US))
    assert namesakes.why.code in ("homonyms", "several-agree")
    for c in namesakes.candidates[:2]:
        assert c.patient.id in ("W1", "W2")
        assert "birth_date" in c.missing and not c.disagree
    taylor = match(dates_store, two_ways("TAYLOR", "Emma", UK, US))
    [t2] = [c for c in taylor.candidates if c.patient.id == "T2"]
    assert t2.disagree == ("birth_date",)  # born on neither reading


def test_english_and_french_letters_read_the_same_date(dates_store: Store) -> None:
    english = parse_document(["Name: Mary JONES   DOB: 12/03/1961"])
    assert match(dates_store, english).patient_id == "J1"
    # A French document writes day first, always: 12 March is not her birth date.
    french = parse_document(["Nom : JONES   Prénom : Mary\nDate de naissance : 12/03/1961"])
    result = match(dates_store, french)
    assert result.outcome == "review" and "birth_date" in result.candidates[0].disagree


# ---- Ages -------------------------------------------------------------------------------
AGES_DIRECTORY = """id,last_name,first_name,birth_date
R1,ADAMS,Ruth,1983-01-15
H1,HILL,Sam,1983-01-15
H2,HILL,Sam,1975-01-15
G1,GRAY,Tom,
"""
REPORT_DAY = "2026-11-05"  # Ruth ADAMS and the first Sam HILL are 43, the second Sam HILL 51


@pytest.fixture(scope="module")
def ages_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with directory_store(tmp_path_factory.mktemp("ages"), AGES_DIRECTORY, patients=4) as s:
        yield s


def aged(last: str, first: str, age: str, birth: str | None = None,
         document: str | None = REPORT_DAY) -> ParsedFields:
    return ParsedFields(Found(last, 1, "", "test"), Found(first, 1, "", "test"),
                        Found(birth, 1, "", "test") if birth else None,
                        Found(document, 1, "", "test") if document else None, "other", "",
                        age=Found(age, 1, f"{age} ans", "age:ans"))


AGES = [
    # (id, last, first, age, birth date read, document date, today, outcome, reason, patient)
    ("age-agrees-within-a-year", "ADAMS", "Ruth", "44", None, REPORT_DAY, None, "filed",
     "one-agrees", "R1"),
    ("age-rules-the-only-namesake-out", "ADAMS", "Ruth", "51", None, REPORT_DAY, None,
     "review", "fields-differ", None),
    # The age rules the second Sam HILL out, but only a birth date tells namesakes apart.
    ("age-never-replaces-the-birth-date", "HILL", "Sam", "43", None, REPORT_DAY, None,
     "review", "homonyms", None),
    ("age-and-birth-date", "HILL", "Sam", "43", "1983-01-15", REPORT_DAY, None, "filed",
     "one-agrees", "H1"),
    ("age-disagrees-with-the-birth-date-read", "HILL", "Sam", "51", "1983-01-15", REPORT_DAY,
     None, "review", "fields-differ", None),
    # No document date: the age is taken as of today.
    ("age-as-of-today", "ADAMS", "Ruth", "43", None, None, date(2026, 12, 2), "filed",
     "one-agrees", "R1"),
    ("age-as-of-today-years-later", "ADAMS", "Ruth", "43", None, None, date(2030, 1, 1),
     "review", "fields-differ", None),
    ("no-birth-date-on-record-no-judgement", "GRAY", "Tom", "99", None, REPORT_DAY, None,
     "filed", "one-agrees", "G1"),
]


@pytest.mark.parametrize(("last", "first", "age", "birth", "document", "today", "outcome",
                          "reason", "patient"),
                         [c[1:] for c in AGES], ids=[c[0] for c in AGES])
def test_an_age_can_rule_a_record_out_but_never_agrees(
        ages_store: Store, last: str, first: str, age: str, birth: str | None,
        document: str | None, today: date | None, outcome: str, reason: str,
        patient: str | None) -> None:
    result = match(ages_store, aged(last, first, age, birth, document), today=today)
    assert (result.outcome, result.why.code, result.patient_id) == (outcome, reason, patient)
    assert all("age" not in c.agree for c in result.candidates)


def test_age_evidence_in_words(ages_store: Store) -> None:
    result = match(ages_store, aged("HILL", "Sam", "43"))
    [h2] = [c for c in result.candidates if c.patient.id == "H2"]
    assert h2.disagree == ("age",)
    assert "age 43 on the document, 51 from the record" in h2.notes
    [h1] = [c for c in result.candidates if c.patient.id == "H1"]
    assert not h1.disagree and "birth_date" in h1.missing


def test_an_age_read_from_a_letter_rules_out(ages_store: Store) -> None:
    letter = parse_document(["Le 05/11/2026\nNom : ADAMS   Prénom : Ruth\nÂge : 51 ans"])
    assert letter.age is not None and letter.age.value == "51"
    assert match(ages_store, letter).why.code == "fields-differ"
    right = parse_document(["Le 05/11/2026\nNom : ADAMS   Prénom : Ruth\nÂge : 43 ans"])
    assert match(ages_store, right).patient_id == "R1"
