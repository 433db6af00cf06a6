"""Reasons as codes: the shell's sentences unchanged, and nothing read under PHI=minimal."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import reasons
from agent.errors import DiskFull, UsageError
from agent.notify.messages import render
from agent.patients import import_csv
from agent.reasons import Reason
from agent.stages.fields import Found, ParsedFields
from agent.stages.match import match
from agent.store import Store

READ = ("ZORRO", "Diego", "1979-06-02", "zorro-diego.pdf")

# Each code, and the sentence the shell, the sidecar and the audit line had before codes.
SENTENCES = [
    (Reason.of("no-name"), "no patient name was found on the document"),
    (Reason.of("last-name-only"), "only a last name was read: that is not enough"),
    (Reason.of("initial-only"), "the first name is only an initial"),
    (Reason.of("low-confidence", confidence=61.4, threshold=70.0),
     "the name was read by OCR with low confidence (61 < 70): a misread letter could be "
     "another person"),
    (Reason.of("no-such-patient", last_name="ZORRO", first_name="Diego"),
     "no patient named ZORRO Diego in the directory"),
    (Reason.of("fields-differ", fields=["birth_date"]),
     "no record agrees on both names and birth date (birth date differs)"),
    (Reason.of("fields-differ", fields=["first_name", "birth_date"]),
     "no record agrees on both names and birth date (first name and birth date differ)"),
    (Reason.of("fields-differ", fields=[]), "no record agrees on both names and birth date"),
    (Reason.of("several-agree", count=2), "2 patients agree with what was read"),
    (Reason.of("swapped-unconfirmed"),
     "the names match only in the other order, with no birth date to confirm"),
    (Reason.of("homonyms", count=3),
     "3 patients share this name and the birth date does not tell them apart"),
    (Reason.of("one-agrees", fields=["last_name", "first_name", "birth_date"]),
     "one patient agrees on last name, first name and birth date"),
    (Reason.of("filed-by", who="telegram:42"), "filed by telegram:42"),
    (Reason.of("unassigned-by", who="shell:anne"), "kept unassigned by shell:anne"),
    (Reason.of("rematched", match={"code": "one-agrees", "fields": ["last_name"]}),
     "one patient agrees on last name (matched again after the directory changed)"),
    (reasons.failure("not-pdf", "the file zorro-diego.pdf is not a PDF"),
     "the file zorro-diego.pdf is not a PDF"),
]


def leaked(text: str) -> list[str]:
    return [word for word in READ if word.lower() in text.lower()]


@pytest.mark.parametrize(("reason", "sentence"), SENTENCES)
def test_full_is_the_sentence_of_before_and_minimal_names_nothing(reason: Reason,
                                                                  sentence: str) -> None:
    assert reason.text() == sentence
    again = reasons.from_dict(reason.as_dict())  # as kept in the sidecar and the outbox
    assert again is not None and again.text("full") == sentence
    assert leaked(again.text("minimal")) == []


def test_minimal_sentences_for_what_was_read_and_for_failures() -> None:
    nobody = Reason.of("no-such-patient", last_name="ZORRO", first_name="Diego")
    assert nobody.text("minimal") == "no patient with the name read is in the directory"
    assert reasons.failure("too-large", "the file is 3.1 MB").text("minimal") == \
        "the file is over the size limit"
    # A code nobody wrote a sentence for: its name, never its parameters.
    assert Reason.of("a-new-kind", message="owned by zorro").text("minimal") == "a-new-kind"


def test_reasons_the_matcher_gives_are_codes_with_the_old_sentences(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    csv = tmp_path / "p.csv"
    csv.write_text("id,last_name,first_name,birth_date\nA1,DUPONT,Jean,1961-03-12\n",
                   encoding="utf-8")
    import_csv(store, csv)
    read = ParsedFields(Found("ZORRO", 1, "", "t"), Found("Diego", 1, "", "t"),
                        Found("1979-06-02", 1, "", "t"), None, "other", "")
    result = match(store, read)
    assert result.reason == "no patient named ZORRO Diego in the directory"
    assert result.as_dict()["reason_code"] == {"code": "no-such-patient", "last_name": "ZORRO",
                                               "first_name": "Diego"}
    store.close()


def _review(**extra: object) -> dict[str, object]:
    return {"document_id": "abcd1234", "original_name": READ[3], "fields": {
        "last_name": {"value": "ZORRO"}, "first_name": {"value": "Diego"},
        "birth_date": {"value": "1979-06-02"}}, **extra}


def test_messages_render_the_code_and_payloads_from_before_codes_leak_nothing() -> None:
    stored = _review(reason="no patient named ZORRO Diego in the directory",
                     reason_code={"code": "no-such-patient", "last_name": "ZORRO",
                                  "first_name": "Diego"})
    assert "Why: no patient named ZORRO Diego in the directory." in render("review", stored)
    minimal = render("review", stored, phi="minimal")
    assert leaked(minimal) == [] and "no patient with the name read" in minimal
    # An outbox row or a database row written before reasons had codes.
    old = _review(reason="no patient named ZORRO Diego in the directory")
    assert leaked(render("review", old, phi="minimal")) == []
    assert "ZORRO Diego" in render("review", old)
    failed = {"document_id": "abcd1234", "original_name": READ[3], "outcome": "failed",
              "kind": "not-pdf", "message": "the file zorro-diego.pdf is not a PDF",
              "action": "Only PDF files are taken."}
    assert render("failed", failed, phi="minimal") == (
        "Failed: document abcd1234 — the file is not a document docagent reads. Only PDF files "
        "and images (JPEG, PNG, TIFF, HEIC) are taken: save or scan the document as a PDF. "
        "[abcd1234]")
    assert "zorro-diego.pdf is not a PDF" in render("failed", failed)
    # A kind this renderer does not know: under minimal, not its payload.
    assert leaked(render("someday", _review(), phi="minimal")) == []
    digest = {"day": "2026-11-05", "counts": {"failed": 1}, "failures": [
        {"document_id": "abcd1234", "name": READ[3], "kind": "not-pdf",
         "reason": "the file zorro-diego.pdf is not a PDF"}]}
    assert leaked(render("digest", digest, phi="minimal")) == []


def test_a_refusal_under_minimal_says_its_kind_not_its_path() -> None:
    disk = DiskFull("could not write done/Q011/2026-11-05_lab-result_zorro-diego.pdf")
    assert reasons.error_text(disk, "full") == disk.message
    said = reasons.error_text(disk, "minimal")
    assert leaked(said) == [] and said.startswith("the server's disk is full")
    usage = UsageError("no document with id 0000ffff")  # what the person typed
    assert reasons.error_text(usage, "minimal") == usage.message
