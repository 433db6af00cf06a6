"""agent.disclosure: each form a patient's identity takes in a message, under each setting."""

from __future__ import annotations

from agent import disclosure
from agent.disclosure import FULL, MINIMAL

RECORD = {"id": "P001", "last_name": "Dupont", "first_name": "Jean", "birth_date": "1961-03-12"}
READ = {"last_name": {"value": "DUPONT"}, "first_name": {"value": "Jean"},
        "birth_date": {"value": "1961-03-12"}}


def test_full_says_what_the_server_knows() -> None:
    assert disclosure.person(RECORD, FULL) == "DUPONT Jean, born 1961-03-12 (#P001)"
    assert disclosure.name_read(READ, FULL) == "DUPONT Jean, born 1961-03-12"
    assert disclosure.file_name("dupont-jean.pdf", FULL, "d1") == "dupont-jean.pdf"
    assert disclosure.button(RECORD, FULL) == "DUPONT Jean, 1961-03-12"
    assert disclosure.chosen(RECORD, FULL) == "DUPONT Jean, 1961-03-12 (#P001)"
    assert disclosure.shows_scan(FULL)


def test_minimal_says_initials_and_ids_only() -> None:
    said = [disclosure.person(RECORD, MINIMAL), disclosure.name_read(READ, MINIMAL),
            disclosure.file_name("dupont-jean.pdf", MINIMAL, "d1"),
            disclosure.file_name("dupont-jean.pdf", MINIMAL, None),
            disclosure.button(RECORD, MINIMAL), disclosure.chosen(RECORD, MINIMAL)]
    # A button tells namesakes apart by the birth year: never a name, never the whole date.
    assert said == ["J.D. (#P001)", "J.D.", "document d1", "a file", "J.D. 1961 #P001",
                    "J.D. 1961 #P001"]
    assert not any(word in " ".join(said).lower() for word in ("dupont", "jean", "03-12",
                                                               "12/03"))
    assert "1961" not in " ".join(said[:4])
    assert not disclosure.shows_scan(MINIMAL)


def test_what_is_missing_stays_missing() -> None:
    assert disclosure.person(None, FULL) == disclosure.person({}, MINIMAL) == "?"
    assert disclosure.name_read({}, FULL) == disclosure.name_read({}, MINIMAL) == "no name read"
    assert disclosure.initials(None, "  ") == ""
    assert len(disclosure.button({"id": "P9", "last_name": "X" * 100}, FULL)) == 60
