"""The match rule on named cases: exactly one agreeing record files; anything else asks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.match import match
from agent.names import fold, is_initial, name_key
from agent.parse import Found, ParsedFields
from agent.patients import import_csv
from agent.store import Store

DIRECTORY = """id,last_name,first_name,birth_date
A1,DUPONT,Jean,1961-03-12
A2,DUPONT,Marie,1988-11-30
B1,LEGRAND,Paul,1970-05-05
B2,LEGRAND,Paul,1982-09-14
C1,Martin-Dubois,Hélène,1975-04-03
D1,BEN ALI,Mohamed,1990-07-21
E1,Smith,John,
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    root: Path = tmp_path_factory.mktemp("match")
    s = Store(root / "state.db")
    csv = root / "p.csv"
    csv.write_text(DIRECTORY, encoding="utf-8")
    import_csv(s, csv)
    yield s
    s.close()


def fields(last: str | None, first: str | None, birth: str | None) -> ParsedFields:
    def f(v: str | None) -> Found | None:
        return Found(v, 1, "", "test") if v else None

    return ParsedFields(last_name=f(last), first_name=f(first), birth_date=f(birth),
                        document_date=None, document_type="other", document_type_evidence="")


CASES = [
    # (id, last, first, birth, outcome, patient)
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
]


@pytest.mark.parametrize(("last", "first", "birth", "outcome", "patient"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_match_rule(store: Store, last: str | None, first: str | None, birth: str | None,
                    outcome: str, patient: str | None) -> None:
    result = match(store, fields(last, first, birth))
    assert (result.outcome, result.patient_id) == (outcome, patient), result.reason
    assert result.reason
    if outcome == "filed":
        chosen = next(c for c in result.candidates if c.patient.id == patient)
        assert {"last_name", "first_name"} <= set(chosen.agree) and not chosen.disagree


def test_review_keeps_the_candidates_with_evidence(store: Store) -> None:
    result = match(store, fields("LEGRAND", "Paul", "1999-01-01"))
    assert {c.patient.id for c in result.candidates} == {"B1", "B2"}
    for c in result.candidates:
        assert c.disagree == ("birth_date",)
        assert set(c.agree) == {"last_name", "first_name"}


def test_name_keys() -> None:
    assert fold("Hélène") == "helene"  # accents stripped before anything is removed
    assert name_key("Martin-Dubois") == name_key("MARTIN DUBOIS") == "martindubois"
    assert name_key("Œdipe") == "oedipe"
    assert is_initial("J.") and is_initial("J.-P.") and not is_initial("Jo")
