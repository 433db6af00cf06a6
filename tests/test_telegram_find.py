"""A patient's document from the phone in two messages and a tap: /find, its answer, Open.

A real `docagent run` against the loopback Bot API (tests/botapi.py): /find from staff lists
the patients that fit and their documents newest first, each with an Open button that sends
the PDF into that chat; a stranger gets nothing; a crafted or stale Open sends nothing; under
DOCAGENT_PHI=minimal the answer shows initials and ids and Open is refused; every search and
every document sent is an audit line, and the chain stays whole.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests import pdfgen
from tests.botapi import BotApi, Sent
from tests.conftest import Spool
from tests.daemonproc import Running
from tests.telegram_helpers import (
    GROUP,
    STAFF,
    STRANGER,
    all_sent,
    ask_bot,
    audit_lines,
    botapi,
    drop_and_wait,
    message_about,
    review_pdf,
    tg,
)

pytestmark = pytest.mark.daemon
__all__ = ["botapi", "tg"]  # fixtures


def lab(tmp: Path, name: str, last: str, first: str, birth: str, day: str,
        tag: str = "") -> Path:
    lines = pdfgen.lab_report_lines(last=last, first=first, birth=birth, doc_date=day)
    return pdfgen.text_pdf([[*lines, tag] if tag else lines], tmp / name)


def press(api: BotApi, run: Running, message: Sent, data: str, *, user: int = STAFF,
          forged: bool = False) -> str:
    query = api.press(GROUP, message.message_id, data, user, forged=forged)
    answer = run.wait_for(lambda: api.answer_to(query), 30, f"the answer to {data}")
    return str(answer.get("text") or "")


def documents_sent(api: BotApi) -> list[Sent]:
    return [m for m in api.sent(GROUP) if m.method == "sendDocument"]


def filed_three(spool: Spool, api: BotApi, run: Running, tmp: Path) -> dict[str, str]:
    docs = {
        "ancien.pdf": drop_and_wait(spool, lab(tmp, "ancien.pdf", "MARTIN", "Hélène",
                                               "03/04/1975", "12/09/2026"), "filed", run),
        "recent.pdf": drop_and_wait(spool, lab(tmp, "recent.pdf", "MARTIN", "Hélène",
                                               "03/04/1975", "05/11/2026", "IRM du genou"),
                                    "filed", run),
        "dupont.pdf": drop_and_wait(spool, lab(tmp, "dupont.pdf", "DUPONT", "Jean",
                                               "12/03/1961", "20/10/2026"), "filed", run),
    }
    run.wait_for(lambda: all_sent(spool), 30, "the notifications")
    return docs


def test_find_then_open_sends_the_pdf_into_the_chat(spool: Spool, botapi: BotApi, tg,
                                                     tmp_path: Path) -> None:
    run = tg()
    docs = filed_three(spool, botapi, run, tmp_path)
    recent, old = docs["recent.pdf"], docs["ancien.pdf"]

    # Message one: /find and the name as it is said; message two: the answer.
    [answer] = ask_bot(botapi, run, "/find helene martin")
    lines = answer.text.splitlines()
    assert lines[:2] == ["MARTIN Hélène, born 1975-04-03 (#P002)",
                         "2 documents, newest first:"]
    assert lines[2] == f"1. 2026-11-05 · lab result · 1 page [{recent}]"
    assert lines[3] == f"2. 2026-09-12 · lab result · 1 page [{old}]"
    assert [b["text"] for b in answer.buttons] == ["1. Open · 2026-11-05 lab result",
                                                   "2. Open · 2026-09-12 lab result"]
    assert all("MARTIN" not in b["callback_data"] and len(b["callback_data"]) <= 64
               for b in answer.buttons)

    # The tap: the PDF itself, as filed, into this chat.
    assert press(botapi, run, answer, answer.buttons[0]["callback_data"]) == \
        "Sending the PDF…"
    [sent] = run.wait_for(lambda: documents_sent(botapi), 30, "the PDF")
    filed = next(p for p in spool.files("done/P002") if p.name.endswith("recent.pdf"))
    assert sent.file_bytes == filed.read_bytes() and sent.file_name == filed.name
    assert f"[{recent}]" in (sent.caption or "")

    # The words of the text, with or without a name before them.
    [by_words] = ask_bot(botapi, run, "/find martin irm genou")
    assert f"[{recent}]" in by_words.text and f"[{old}]" not in by_words.text
    [everyone] = ask_bot(botapi, run, "/find hémoglobine")
    assert everyone.text.splitlines()[0] == "3 documents, newest first:"
    assert "MARTIN Hélène, born 1975-04-03 (#P002)" in everyone.text  # whose, on each line
    assert "DUPONT Jean, born 1961-03-12 (#P001)" in everyone.text
    # Several patients: each, then their documents; a reply to an answer searches again.
    [dupont] = ask_bot(botapi, run, "/find dupont")
    assert dupont.text.splitlines()[:2] == ["DUPONT Jean, born 1961-03-12 (#P001)",
                                            "DUPONT Marie, born 1988-11-30 (#P003)"]
    before = len(botapi.sent(GROUP))
    botapi.inject_message(GROUP, STAFF, "12/03/1961", reply_to=dupont.message_id)
    run.wait_for(lambda: len(botapi.sent(GROUP)) > before, 30, "the answer to the reply")
    assert botapi.sent(GROUP)[before].text.startswith("DUPONT Jean, born 1961-03-12 (#P001)\n1 ")

    # Recorded: the searches with what was shown, the PDF sent, with who and where.
    audit = audit_lines(spool)
    searched = [a for a in audit if a["event"] == "searched"]
    assert (searched[0]["actor"], searched[0]["channel"], searched[0]["chat_id"]) == (
        f"telegram:{STAFF}", "telegram", GROUP)
    assert searched[0]["query"] == {"patient": "helene martin"}
    assert searched[0]["patients"] == ["P002"]
    assert searched[0]["documents"] == [{"document_id": recent, "patient_id": "P002"},
                                        {"document_id": old, "patient_id": "P002"}]
    assert searched[1]["query"] == {"patient": "martin", "words": "irm genou"}
    [opened] = [a for a in audit if a["event"] == "opened"]
    assert (opened["actor"], opened["chat_id"], opened["document_id"], opened["patient_id"],
            opened["sent"]) == (f"telegram:{STAFF}", GROUP, recent, "P002", "pdf")
    access = spool.run("audit", "access", "--patient", "P002", check=True).stdout
    assert f"telegram:{STAFF}  opened  1 document: {recent}" in access

    # The first page of a document waiting for a decision (its review message's Open) is an
    # access on record too.
    waiting = drop_and_wait(spool, review_pdf(tmp_path, "legrand.pdf"), "review", run)
    [ask] = run.wait_for(lambda: message_about(botapi, waiting), 30, "the review request")
    assert press(botapi, run, ask, f"o:{waiting}") == "Sending the first page…"
    run.wait_for(lambda: [m for m in botapi.sent(GROUP) if m.method == "sendPhoto"], 30,
                 "the first page")
    first_page = [a for a in audit_lines(spool) if a["event"] == "opened"][-1]
    assert (first_page["document_id"], first_page.get("patient_id"), first_page["sent"]) == (
        waiting, None, "first page")
    verify = spool.run("audit", "verify")
    assert verify.returncode == 0 and "audit log intact" in verify.stdout


def test_strangers_and_crafted_presses_get_no_document(spool: Spool, botapi: BotApi, tg,
                                                        tmp_path: Path) -> None:
    run = tg()
    docs = filed_three(spool, botapi, run, tmp_path)
    [answer] = ask_bot(botapi, run, "/find martin")
    first = answer.buttons[0]["callback_data"]

    # A user who is not allowed: no answer to /find, nothing for a press on Open.
    before = len(botapi.sent(GROUP))
    botapi.inject_message(GROUP, STRANGER, "/find martin")
    assert press(botapi, run, answer, first, user=STRANGER) == ""
    time.sleep(1.0)
    assert len(botapi.sent(GROUP)) == before and documents_sent(botapi) == []
    rejected = [a for a in audit_lines(spool) if a["event"] == "rejected"]
    assert [a["actor"] for a in rejected] == [f"telegram:{STRANGER}"] * 2
    assert "martin" not in str(rejected)  # what a stranger typed is not kept

    # Staff, with crafted data: a document this answer did not list, an index it did not
    # offer, an Open under a message that is no find answer. Nothing is sent.
    dupont = docs["dupont.pdf"]
    for data, under in ((f"g:{dupont}:0", answer), (f"g:{docs['recent.pdf']}:7", answer),
                        (first, ask_bot(botapi, run, "/help")[0])):
        said = press(botapi, run, under, data, forged=True)
        assert said.startswith("Not sent: this answer is more than an hour old"), said
    # The real button, once its answer is over an hour old: search again.
    with sqlite3.connect(spool.home / "state.db") as db:
        db.execute("UPDATE telegram_messages SET sent_at = '2026-01-01T00:00:00.000+00:00' "
                   "WHERE chat_id = ? AND message_id = ?", (GROUP, answer.message_id))
    assert press(botapi, run, answer, first).startswith("Not sent: this answer is more than")
    assert documents_sent(botapi) == []
    assert not [a for a in audit_lines(spool) if a["event"] == "opened"]
    assert "refused Open of document" in run.output()


def test_under_minimal_initials_and_ids_and_open_is_refused(spool: Spool, botapi: BotApi, tg,
                                                             tmp_path: Path) -> None:
    run = tg(DOCAGENT_PHI="minimal")
    docs = filed_three(spool, botapi, run, tmp_path)
    # A name typed is not searched nor repeated: the directory id is.
    [refused] = ask_bot(botapi, run, "/find martin")
    assert refused.text.startswith("No patient has that directory id.")
    assert "martin" not in refused.text.lower()
    [answer] = ask_bot(botapi, run, "/find p002 genou")
    assert answer.text.splitlines() == [
        "H.M. (#P002)", "1 document:",
        f"1. 2026-11-05 · lab result · 1 page [{docs['recent.pdf']}]"]
    assert answer.buttons == []
    for word in ("MARTIN", "Hélène", "1975", "recent.pdf"):
        assert word not in answer.text
    # A crafted Open is refused, not only hidden.
    said = press(botapi, run, answer, f"g:{docs['recent.pdf']}:0", forged=True)
    assert said.startswith("Not sent: with DOCAGENT_PHI=minimal documents stay out")
    time.sleep(0.5)
    assert documents_sent(botapi) == []
    [searched] = [a for a in audit_lines(spool) if a["event"] == "searched"]
    assert searched["query"] == {"patient": "P002", "words": "genou"}
