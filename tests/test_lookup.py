"""A person's search for a review document's patient (`agent.ops.lookup`), its evidence
(`match.compare`), what minimal shows of a patient, the words of the answer, and the table that
keeps the messages sent about each document. In process, on a real SQLite directory."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from agent import disclosure, i18n
from agent import store as store_module
from agent.notify import search_text
from agent.notify.telegram import threads
from agent.ops.lookup import MAX_HITS, Query, find
from agent.patients import get
from agent.stages.fields import Found, ParsedFields
from agent.stages.match import compare
from agent.stages.record import parsed_fields
from agent.store import Store
from tests.conftest import PATIENTS_CSV, directory_store

MORE = """P010,Martin-Dubois,Claire,1950-01-01
P011,EL AMRANI,Fatima,1961-12-03
P012,BERNARD,Sophie,1980-01-15
"""
NAMESAKES = "".join(f"N{i:03d},NGUYEN,Van {i},19{40 + i}-01-01\n" for i in range(8))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    rows = PATIENTS_CSV + MORE + NAMESAKES
    with directory_store(tmp_path, rows, patients=rows.count("\n") - 1) as opened:
        yield opened


def read(last: str | None, first: str | None, birth: str | None,
         other: str | None = None) -> ParsedFields:
    def found(value: str | None, rule: str = "label:patient") -> Found | None:
        return Found(value, 1, "", rule, None) if value else None
    birth_found = Found(birth, 1, "", "label", other) if birth else None
    return ParsedFields(found(last), found(first), birth_found, None, "other", "")


NOTHING = parsed_fields({})


def ids(store: Store, text: str, fields: ParsedFields = NOTHING) -> list[str]:
    return [hit.patient.id for hit in find(store, text, fields).hits]


def test_names_are_compared_as_the_matcher_compares_them(store: Store) -> None:
    assert ids(store, "dupont") == ["P001", "P003"]
    assert ids(store, "Jean DUPONT") == ids(store, "DUPONT, jean") == ["P001"]
    assert ids(store, "helene martin") == ["P002"]  # accents and case do not count
    assert ids(store, "martin dubois claire") == ["P010"]  # nor hyphens
    assert ids(store, "elamrani") == ids(store, "El-Amrani Fatima") == ["P011"]
    assert ids(store, "ben ali") == ["P004"]
    assert ids(store, "Dupond Jean") == ["P001"]  # one letter mistyped
    assert ids(store, "Jean") == []  # a first name alone finds nobody
    assert find(store, "x", NOTHING).by == "nothing"


def test_a_birth_date_finds_and_ranks(store: Store) -> None:
    # Day first, as French is written, then the other reading of a date that reads both ways.
    assert ids(store, "12/03/1961") == ["P001", "P011"]
    assert ids(store, "1961-03-12") == ["P001"]
    # With a name, a birth date ranks; it does not exclude.
    assert ids(store, "legrand 14.09.1982") == ["P007", "P006"]
    assert ids(store, "legrand") == ["P006", "P007"]


def test_a_directory_id_and_what_minimal_refuses(store: Store) -> None:
    assert ids(store, "#p004") == ids(store, " P004 ") == ["P004"]
    assert find(store, "P004", NOTHING, names=False).by == "id"
    refused = find(store, "DUPONT Jean", NOTHING, names=False)
    assert (refused.by, refused.hits) == ("refused", ())


def test_a_few_at_most_and_how_many_more(store: Store) -> None:
    found = find(store, "nguyen", NOTHING)
    assert len(found.hits) == MAX_HITS and found.more == 8 - MAX_HITS
    assert find(store, "nguyen 01/01/1947", NOTHING).hits[0].patient.id == "N007"


def test_query_reading() -> None:
    assert Query.read("DUPONT  Jean, né le 12/03/1961") == Query(
        "DUPONT Jean né le", ("1961-03-12", "1961-12-03"))
    assert Query.read("25/03/1961") == Query("", ("1961-03-25",))


def test_the_evidence_is_the_matchers(store: Store) -> None:
    jean = get(store, "P001")
    assert jean is not None
    nothing_read = compare(jean, read(None, None, "1961-03-12"))
    assert (nothing_read.agree, nothing_read.disagree, nothing_read.missing) == (
        ("birth_date",), (), ("last_name", "first_name"))
    other = compare(jean, read("LEGRAND", "Paul", "1976-02-01"))
    assert (other.agree, other.disagree) == ((), ("last_name", "first_name", "birth_date"))
    swapped = compare(jean, read("Jean", "DUPONT", None))
    assert swapped.swapped and swapped.names_agree and swapped.missing == ("birth_date",)
    # "12/03/1961" in an English letter: taken the way this record can tell.
    fatima = get(store, "P011")
    assert fatima is not None
    two_ways = compare(fatima, read("EL AMRANI", "Fatima", "1961-03-12", "1961-12-03"))
    assert "birth_date" in two_ways.agree
    assert "birth date 12/03/1961 read month first (US)" in two_ways.notes
    assert "names read after a label on page 1" in two_ways.notes


def test_minimal_shows_initials_birth_year_and_id() -> None:
    jean = {"id": "P001", "last_name": "DUPONT", "first_name": "Jean", "birth_date": "1961-03-12"}
    assert disclosure.button(jean, "minimal") == "J.D. 1961 #P001"
    assert disclosure.chosen(jean, "minimal") == "J.D. 1961 #P001"
    assert disclosure.button({**jean, "birth_date": None}, "minimal") == "J.D. #P001"
    today = date(2026, 12, 2)
    assert disclosure.birth_year("1936-12-03", today) == "1936"  # 89 still
    assert disclosure.birth_year("1936-12-02", today) == "90+"  # 90 today: no year
    assert disclosure.button(jean, "full") == "DUPONT Jean, 1961-03-12"


def test_the_answer_in_french(store: Store) -> None:
    found = find(store, "dupont", read("LEGRAND", "Paul", None))
    try:
        i18n.use("fr")
        text = search_text.answer(found, "dupont", "scan.pdf", "0123456789abcdef", "full")
        one = search_text.answer(find(store, "P004", NOTHING), "P004", "document 0123",
                                 "0123", "minimal")
    finally:
        i18n.use("en")
    assert text.splitlines()[0] == "2 patients trouvés pour « dupont » (scan.pdf) :"
    assert text.splitlines()[-1] == ("Touchez un patient pour classer le document à son "
                                     "dossier. [0123456789abcdef]")
    assert one.splitlines()[0] == "1 patient trouvé pour document 0123 :"
    assert "BEN ALI" not in one and "1990-07-21" not in one and "M.B. 1990 #P004" in one


def test_a_version_2_database_gains_the_messages_table(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:  # the schema as version 2 left it
        db.executescript(store_module._SCHEMA)
        for statement in store_module._SCHEMA_V2.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute("PRAGMA user_version = 2")
    store = Store(path)
    assert store.read("PRAGMA user_version")[0][0] == store_module.SCHEMA_VERSION >= 3
    threads.record(store, -100, 7, "abc", threads.REVIEW, "Needs a decision", buttons=True)
    threads.record(store, -100, 8, "abc", threads.PROMPT, "Which patient", buttons=False)
    assert [(k.message_id, k.text) for k in threads.open_about(store, "abc")] == [
        (7, "Needs a decision")]
    assert threads.close(store, -100, 7) and not threads.close(store, -100, 7)
    assert threads.open_about(store, "abc") == []
    store.close()
