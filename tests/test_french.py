"""What the staff read, in French (the default) and in English: exact phrases, evidence and
document types in words, plurals, no shell command in the chat, and what is kept (the log, the
audit line, the sidecar's `reason`, JSON keys) left in English.

One case goes through the real daemon and the loopback Bot API (the daemon renders its outbox
as it sends, so it must speak DOCAGENT_LANG itself); one through the real command line; the rest
are rendered in-process with `i18n.use`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent import evidence, i18n
from agent.errors import NotPdf, TooManyPages
from agent.i18n import N_
from agent.notify.messages import render, render_filed_group
from agent.ops import status
from agent.patients import import_csv
from agent.spool.placing import failure_result
from agent.stages import doctype
from agent.stages.fields import Found, ParsedFields
from agent.stages.match import match
from agent.store import Store
from tests import pdfgen
from tests.botapi import BotApi
from tests.conftest import Spool
from tests.pdfgen import report
from tests.telegram_helpers import (
    GROUP,
    ask_bot,
    botapi,
    drop_and_wait,
    message_about,
    review_pdf,
    tg,
)

__all__ = ["botapi", "tg"]  # fixtures
DUPONT = {"id": "P001", "last_name": "Dupont", "first_name": "Jean", "birth_date": "1961-03-12"}


@pytest.fixture
def french() -> Iterator[None]:
    i18n.use("fr")
    yield
    i18n.use("en")


@pytest.fixture
def directory(tmp_path: Path) -> Iterator[Store]:
    """Two DUPONT Jean on record, born on different days."""
    store = Store(tmp_path / "state.db")
    csv = tmp_path / "p.csv"
    csv.write_text("id,last_name,first_name,birth_date\nA1,DUPONT,Jean,1961-03-12\n"
                   "A2,DUPONT,Jean,1970-01-01\n", encoding="utf-8")
    import_csv(store, csv)
    yield store
    store.close()


def _read(birth: str, first: str = "Jean") -> ParsedFields:
    return ParsedFields(Found("DUPONT", 1, "", "t"), Found(first, 1, "", "t"),
                        Found(birth, 1, "", "t"), None, "lab-result", "")


def _payload(store: Store, birth: str, **extra: Any) -> dict[str, Any]:
    """A notification's payload as the pipeline writes it, for what was read."""
    decided = match(store, _read(birth))
    chosen = [c.patient.as_dict() for c in decided.candidates if c.patient.id ==
              decided.patient_id]
    return {"document_id": "abcd1234", "original_name": "bilan.pdf", "pages": 2,
            "document_type": "lab-result", "match": decided.as_dict(),
            "reason": decided.reason, "reason_code": decided.why.as_dict(),
            "patient_id": decided.patient_id, "patient": chosen[0] if chosen else None,
            "fields": {"last_name": {"value": "DUPONT"}, "first_name": {"value": "Jean"},
                       "birth_date": {"value": birth}}, **extra}


# --- messages, in-process ------------------------------------------------------------------


def test_a_filed_message_in_french(directory: Store, french: None) -> None:
    text = render("filed", _payload(directory, "1961-03-12"))
    assert text == ("Classé : bilan.pdf (résultat de laboratoire, 2 pages) dans le dossier de "
                    "DUPONT Jean, né(e) le 12/03/1961 (#A1). Nom, prénom et date de naissance "
                    "concordent. [abcd1234]")


def test_a_review_message_in_french_says_the_evidence_in_words(directory: Store,
                                                                french: None) -> None:
    text = render("review", _payload(directory, "1961-12-03"))
    assert text.splitlines() == [
        "À décider : bilan.pdf — lu : DUPONT Jean, né(e) le 03/12/1961",
        "Motif : aucun dossier ne concorde à la fois sur les noms et la date de naissance "
        "(date de naissance diffère). [abcd1234]",
        "  patient possible : DUPONT Jean, né(e) le 12/03/1961 (#A1) — nom et prénom "
        "concordent ; date de naissance diffère ; la date de naissance a le jour et le mois "
        "inversés",
        "  patient possible : DUPONT Jean, né(e) le 01/01/1970 (#A2) — nom et prénom "
        "concordent ; date de naissance diffère"]
    minimal = render("review", _payload(directory, "1961-12-03"), phi="minimal")
    assert minimal.splitlines()[0] == "À décider : document abcd1234 — lu : J.D."
    assert "  patient possible : J.D. (#A1) — nom et prénom concordent" in minimal


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_chat_names_no_field_and_no_shell_command(directory: Store,
                                                      language: str) -> None:
    i18n.use(language)
    texts = [render("review", _payload(directory, "1961-12-03")),
             render("filed", _payload(directory, "1961-03-12")),
             render("review", _payload(directory, "1961-12-03"), phi="minimal")]
    for text in texts:
        assert "docagent " not in text and "review resolve" not in text
        assert not any(field in text for field in ("last_name", "first_name", "birth_date",
                                                   "lab-result"))
        assert ".." not in text  # "read: J.D.." once


def test_the_digest_in_french(french: None) -> None:
    payload = {"day": "2026-11-05", "counts": {"filed": 1, "review": 2, "failed": 1,
                                               "duplicate": 0},
               "pending_review": 2, "oldest_review_since": "2026-11-03T08:00:00+00:00",
               "deferred_now": 0, "failures_total": 1,
               "failures": [{"document_id": "ab12", "name": "scan.pdf", "kind": "not-pdf",
                             "reason": "the file is not a PDF",
                             "reason_code": {"code": "not-pdf",
                                             "message": "the file is not a PDF"}}],
               "cost": {"total": 0.5, "currency": "EUR", "services": {"telegram": 0.5}}}
    assert render("digest", payload).splitlines() == [
        "Résumé du 05/11/2026 : 4 documents — 1 classé, 2 à décider, 1 en échec, 0 doublon.",
        "En attente de décision : 2 (le plus ancien depuis le 03/11/2026).",
        "En échec :",
        "  - scan.pdf : le fichier n'est pas un PDF [not-pdf]",
        "Coût : 0,50 EUR (telegram 0,50)."]


def test_status_in_french(local_site: tuple[Any, Any], french: None) -> None:
    settings, store = local_site
    table = status.render(status.gather(settings, store)).splitlines()
    assert table[:7] == ["              du jour    total",
                         "classés             0        0",
                         "à décider           0        0",
                         "en échec            0        0",
                         "doublons            0        0",
                         "en attente          0",
                         "  à l'arrivée : 0, en file : 0,"]
    assert "dernier classement jamais" in table
    assert "OCR du jour 0 page" in table


def test_a_failure_speaks_french_to_people_and_english_to_the_log(french: None) -> None:
    error = TooManyPages(N_("the PDF has %(pages)d pages, over the limit of %(limit)d"),
                         pages=312, limit=200, stage="inspect")
    result = failure_result({"document_id": "ab12", "original_name": "gros.pdf"}, error, 5)
    assert result["message"] == "le PDF a 312 pages, au-delà de la limite de 200"
    assert result["action"] == ("Découpez le document en PDF plus petits, ou augmentez "
                                "DOCAGENT_MAX_PAGES.")
    # What the database, the log and the audit line keep; said again in any language.
    assert result["reason"] == error.message == "the PDF has 312 pages, over the limit of 200"
    assert result["kind"] == result["reason_code"]["code"] == "too-many-pages"
    assert render("failed", result) == (
        "Échec : gros.pdf — le PDF a 312 pages, au-delà de la limite de 200. Découpez le "
        "document en PDF plus petits, ou augmentez DOCAGENT_MAX_PAGES. [ab12]")
    i18n.use("en")
    assert render("failed", result).startswith("Failed: gros.pdf — the PDF has 312 pages")


def test_what_is_kept_stays_english_while_the_staff_read_french(directory: Store,
                                                                french: None) -> None:
    decided = match(directory, _read("1961-12-03"))
    assert decided.reason == "no record agrees on both names and birth date (birth date " \
                             "differs)"
    assert decided.why.text() == ("aucun dossier ne concorde à la fois sur les noms et la date "
                                  "de naissance (date de naissance diffère)")
    assert NotPdf(N_("the file is not a PDF")).message == "the file is not a PDF"


def test_english_for_what_is_kept_leaves_the_other_threads_french(french: None) -> None:
    """A worker keeping a reason in English must not turn the sender's messages English."""
    said: list[str] = []
    inside, leave = threading.Event(), threading.Event()

    def keep() -> None:
        with i18n.english():
            inside.set()
            said.append(i18n._("Open"))
            leave.wait(5)

    worker = threading.Thread(target=keep)
    worker.start()
    assert inside.wait(5)
    said.append(i18n._("Open"))  # this thread, while the worker is inside english()
    leave.set()
    worker.join()
    assert said == ["Open", "Ouvrir"]
    assert i18n._("Open") == "Ouvrir"


# --- words ---------------------------------------------------------------------------------


def test_every_document_type_has_words_in_both_languages() -> None:
    # A type added to the classifier without words fails here.
    assert set(doctype.TYPES) == set(doctype.WORDS), "a document type without words"
    words = {}
    for language in ("en", "fr"):
        i18n.use(language)
        words[language] = {t: doctype.in_words(t) for t in doctype.TYPES}
    i18n.use("en")
    assert words["en"]["lab-result"] == "lab result"
    assert words["en"]["other"] == "other document"
    assert words["fr"]["lab-result"] == "résultat de laboratoire"
    assert words["fr"]["other"] == "autre document"
    for kind in doctype.TYPES:
        assert "-" not in words["en"][kind], kind  # words, not the code
        assert words["fr"][kind] != words["en"][kind], f"{kind} has no French"


EVIDENCE = {"agree": ["last_name", "birth_name", "first_name", "birth_date"],
            "disagree": ["usage_name"], "missing": ["first_name (initial only)"],
            "notes": ["last name agrees with the birth name on record",
                      "names read after a label on page 1", "a note from a later version"]}


def test_evidence_in_words_in_both_languages() -> None:
    assert evidence.in_words(EVIDENCE, "full") == (
        "last name, birth name, first name and birth date agree; usage name differs; the "
        "first name is only an initial; last name agrees with the birth name on record; names "
        "read after a label on page 1; a note from a later version")
    i18n.use("fr")
    try:
        assert evidence.in_words(EVIDENCE, "full") == (
            "nom, nom de naissance, prénom et date de naissance concordent ; nom d'usage "
            "diffère ; le prénom n'est qu'une initiale ; le nom concorde avec le nom de "
            "naissance du dossier ; noms lus après un intitulé, page 1 ; a note from a later "
            "version")
        assert evidence.in_words({"missing": ["birth_date"]}, "full") == \
            "date de naissance : rien à comparer"
    finally:
        i18n.use("en")
    assert evidence.in_words({"missing": ["birth_date"]}, "full") == \
        "birth date: nothing to compare"
    assert evidence.in_words(None, "full") == ""


def test_every_note_is_said_again_and_minimal_hides_the_birth_date() -> None:
    values = {"date": "12/03/1961", "age": 43, "years": 51, "page": 2, "cue": "Patient"}
    for template in evidence.NOTES:
        kept = evidence.note(template, **values)
        assert evidence.say_note(kept, "full") == kept  # English: as it was kept
        i18n.use("fr")
        try:
            said = evidence.say_note(kept, "full")
            assert said != kept and said == i18n.translate(template) % values, template
            if "%(date)s" in template:
                assert "1961" not in evidence.say_note(kept, "minimal")
        finally:
            i18n.use("en")


@pytest.mark.parametrize(("language", "expected"), [
    ("en", ["(lab result, 0 pages)", "(lab result, 1 page)", "(lab result, 2 pages)"]),
    ("fr", ["(résultat de laboratoire, 0 page)", "(résultat de laboratoire, 1 page)",
            "(résultat de laboratoire, 2 pages)"]),
])
def test_page_counts_take_their_plural(language: str, expected: list[str]) -> None:
    i18n.use(language)
    said = [render("filed", {"document_id": "d", "original_name": "x.pdf", "pages": n,
                             "document_type": "lab-result", "patient": DUPONT})
            for n in (0, 1, 2)]
    assert [e in s for e, s in zip(expected, said, strict=True)] == [True] * 3, said


@pytest.mark.parametrize(("language", "expected"), [
    ("en", ["0 documents — 0 filed, 0 to decide, 0 failed, 0 duplicates.",
            "1 document — 1 filed, 0 to decide, 0 failed, 0 duplicates.",
            "2 documents — 1 filed, 0 to decide, 0 failed, 1 duplicate."]),
    ("fr", ["0 document — 0 classé, 0 à décider, 0 en échec, 0 doublon.",
            "1 document — 1 classé, 0 à décider, 0 en échec, 0 doublon.",
            "2 documents — 1 classé, 0 à décider, 0 en échec, 1 doublon."]),
])
def test_digest_counts_take_their_plural(language: str, expected: list[str]) -> None:
    i18n.use(language)
    counts = [{}, {"filed": 1}, {"filed": 1, "duplicate": 1}]
    said = [render("digest", {"day": "2026-11-05", "counts": c}).splitlines()[0]
            for c in counts]
    assert [s.split(": ", 1)[1] if language == "en" else s.split(" : ", 1)[1]
            for s in said] == expected


@pytest.mark.parametrize(("language", "expected"), [
    ("en", ["last name agrees", "last name and first name agree",
            "1 document filed:", "2 documents filed:"]),
    ("fr", ["nom concorde", "nom et prénom concordent",
            "1 document classé :", "2 documents classés :"]),
])
def test_evidence_and_groups_take_their_plural(language: str, expected: list[str]) -> None:
    i18n.use(language)
    filed = {"document_id": "d", "original_name": "x.pdf", "document_type": "other",
             "patient": DUPONT}
    said = [evidence.in_words({"agree": ["last_name"]}, "full"),
            evidence.in_words({"agree": ["last_name", "first_name"]}, "full"),
            render_filed_group([filed]).splitlines()[0],
            render_filed_group([filed, filed]).splitlines()[0]]
    assert said == expected


# --- the command line and the daemon, as processes -----------------------------------------


def test_the_command_line_and_a_reason_file_in_french(spool: Spool, tmp_path: Path) -> None:
    fr = {"DOCAGENT_LANG": "fr"}
    review = pdfgen.text_pdf([report("LEGRAND", "Paul", "01/02/1976")], tmp_path / "lg.pdf")
    bad = tmp_path / "scan.pdf"
    bad.write_bytes(b"PK\x03\x04 an Office document named .pdf\n" * 10)
    done = spool.run("process", str(review), str(bad), env=fr)
    first, second = done.stdout.splitlines()
    assert first.startswith("à décider ") and "(aucun dossier ne concorde à la fois sur les " \
        "noms et la date de naissance (date de naissance diffère) ; " in first
    assert second.startswith("échec ") and "(le fichier n'est pas un document que docagent " \
        "sait lire (il ressemble à une archive ZIP ou à un document Office) ; " in second

    listing = spool.run("review", "list", env=fr, check=True).stdout.splitlines()
    assert listing[0].endswith("  lg.pdf  (résultat de laboratoire)")
    assert listing[1] == ("    lu : LEGRAND Paul, né(e) le 01/02/1976   motif : aucun dossier ne "
                          "concorde à la fois sur les noms et la date de naissance (date de "
                          "naissance diffère)")
    assert listing[2].startswith("    patient possible P006 : LEGRAND Paul, né(e) le 05/05/1970 "
                                 "(#P006) — nom et prénom concordent ; date de naissance "
                                 "diffère")
    assert listing[-1] == ("Pour décider : docagent review resolve DOC_ID PATIENT_ID (ou "
                           "--none)")

    [reason_file] = [p for p in spool.files("failed") if p.name.endswith(".reason.json")]
    reason = json.loads(reason_file.read_text(encoding="utf-8"))
    assert reason["message"] == ("le fichier n'est pas un document que docagent sait lire (il "
                                 "ressemble à une archive ZIP ou à un document Office)")
    assert reason["action"] == ("Seuls les fichiers PDF et les images (JPEG, PNG, TIFF, HEIC) "
                                "sont pris en charge : enregistrez ou numérisez le document en "
                                "PDF.")
    # The keys and the machine's words stay English.
    assert reason["kind"] == "not-pdf" and reason["outcome"] == "failed"
    assert reason["reason"] == ("the file is not a document docagent reads (it looks like a ZIP "
                                "archive or an Office document)")
    assert reason["reason_code"]["code"] == "not-pdf"
    # The same document, in English when asked.
    failed = spool.run("failed", "list", env={"DOCAGENT_LANG": "en"}).stdout
    assert "[not-pdf] the file is not a document docagent reads (it looks like a ZIP" in failed
    wrong = spool.run("retry", "zz", env=fr)
    assert wrong.returncode == 2 and wrong.stderr == (
        "docagent: donnez au moins les 4 premiers caractères de l'identifiant du document\n")


@pytest.mark.daemon
def test_the_daemon_speaks_french_on_telegram(spool: Spool, botapi: BotApi, tg,
                                              tmp_path: Path) -> None:
    run = tg(DOCAGENT_LANG="fr", DOCAGENT_DIGEST_HOUR="0")
    i18n.use("fr")  # for the date only; the autouse fixture puts English back
    yesterday = i18n.day((date.today() - timedelta(days=1)).isoformat())
    digest = run.wait_for(lambda: [m for m in botapi.sent(GROUP)
                                   if (m.text or "").startswith("Résumé du")], 30, "the digest")
    assert digest[0].text.splitlines()[0] == (f"Résumé du {yesterday} : 0 document — 0 classé, "
                                              "0 à décider, 0 en échec, 0 doublon.")

    doc = drop_and_wait(spool, review_pdf(tmp_path, "legrand.pdf"), "review", run)
    [ask] = run.wait_for(lambda: message_about(botapi, doc), 30, "the review request")
    assert ask.text.splitlines()[:2] == [
        "À décider : legrand.pdf — lu : LEGRAND Paul, né(e) le 01/02/1976",
        "Motif : aucun dossier ne concorde à la fois sur les noms et la date de naissance "
        f"(date de naissance diffère). [{doc}]"]
    assert "  patient possible : LEGRAND Paul, né(e) le 14/09/1982 (#P007) — nom et prénom " \
           "concordent ; date de naissance diffère" in ask.text
    assert "docagent" not in ask.text
    assert [b["text"] for b in ask.buttons] == ["LEGRAND Paul, 05/05/1970",
                                                "LEGRAND Paul, 14/09/1982", "Aucun de ceux-ci",
                                                "Ouvrir", "Autre patient…"]

    [answer] = ask_bot(botapi, run, "/status")
    assert "du jour" in (answer.text or "") and "à décider" in (answer.text or "")


@pytest.mark.parametrize(("language", "expected"), [
    ("fr", ["1,25", "0,03", "0,0000047", "0,00"]), ("en", ["1.25", "0.03", "0.0000047", "0.00"])])
def test_amounts_in_the_staffs_decimal_mark(language: str, expected: list[str]) -> None:
    from agent.ledger import money

    i18n.use(language)
    assert [money(a) for a in (1.25, 0.03, 4.7e-06, 0.0)] == expected
    with i18n.english():  # what is kept (records, logs) keeps the point
        assert money(1.25) == "1.25"
