"""Every review decidable from the phone, and messages that follow the document.

A real `docagent run` against the loopback Bot API (tests/botapi.py), real SQLite: a patient who
is not among the buttons is found by a reply or by "Another patient…" and picked; crafted and
stale presses are refused; under DOCAGENT_PHI=minimal namesakes are told apart without a name;
and a decision made anywhere (a press in another chat, the shell, a re-match after an import)
edits every message about the document that still has buttons.
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
    TOKEN,
    all_sent,
    audit_lines,
    botapi,
    drop_and_wait,
    message_about,
    review_pdf,
    states,
    tg,
)

pytestmark = pytest.mark.daemon
__all__ = ["botapi", "tg"]  # fixtures
OTHER = -1009876543210  # a second chat of the practice's
SEARCH = "Another patient…"


def no_name_pdf(tmp: Path, name: str) -> Path:
    """A lab report whose patient lines hold a birth date and no name: the case where the
    phone used to offer only "None of them"."""
    lines = [line for line in pdfgen.lab_report_lines(last="X", first="Y", birth="12/03/1961",
                                                     doc_date="05/11/2026", extra_names=False)
             if not line.startswith("Nom :")]
    return pdfgen.text_pdf([lines], tmp / name)


def reply(api: BotApi, run: Running, to: Sent, text: str, *, chat: int = GROUP,
          user: int = STAFF) -> Sent:
    """`user` replies `text` to the bot's message `to`; the bot's next message is its answer."""
    before = len(api.sent(chat))
    api.inject_message(chat, user, text, reply_to=to.message_id)
    run.wait_for(lambda: len(api.sent(chat)) > before, 30, f"the answer to {text!r}")
    return api.sent(chat)[before]


def press(api: BotApi, run: Running, message: Sent, data: str, *, chat: int = GROUP,
          forged: bool = False) -> str:
    query = api.press(chat, message.message_id, data, STAFF, forged=forged)
    answer = run.wait_for(lambda: api.answer_to(query), 30, f"the answer to {data}")
    return str(answer["text"])


def button(message: Sent, label: str) -> str:
    return next(b["callback_data"] for b in message.buttons if b["text"].startswith(label))


def resolved(spool: Spool) -> list[dict[str, object]]:
    return [a for a in audit_lines(spool) if a["event"] == "resolved"]


def test_a_patient_not_among_the_buttons_is_searched_and_picked(
        spool: Spool, botapi: BotApi, tg, tmp_path: Path) -> None:
    run = tg()
    doc = drop_and_wait(spool, no_name_pdf(tmp_path, "sans-nom.pdf"), "review", run)
    [ask] = run.wait_for(lambda: message_about(botapi, doc), 30, "the review request")
    assert [b["text"] for b in ask.buttons] == ["None of them", "Open", SEARCH]

    # "Another patient…": a message to reply to, with the phone's reply field opened.
    assert press(botapi, run, ask, button(ask, SEARCH)) == (
        "Reply to my message with the patient's name, birth date or directory id.")
    prompt = run.wait_for(lambda: [m for m in botapi.sent(GROUP) if m.message_id >
                                   ask.message_id], 30, "the prompt")[0]
    assert prompt.text.startswith("Which patient is sans-nom.pdf about?")
    assert prompt.reply_markup and prompt.reply_markup.get("force_reply") is True
    assert prompt.text.endswith(f"[{doc}]")

    # Replying with a name written any way and the birth date: both DUPONT, the one born that
    # day first, each with what agrees with the document and what was not read.
    found = reply(botapi, run, prompt, "dupont  12/03/1961")
    lines = found.text.splitlines()
    assert lines[0] == "2 patients found for “dupont 12/03/1961” (sans-nom.pdf):"
    assert lines[1] == ("1. DUPONT Jean, 1961-03-12 (#P001) — birth date agrees; last name and "
                        "first name: nothing to compare")
    assert lines[2].startswith("2. DUPONT Marie, 1988-11-30 (#P003) — birth date differs")
    assert [b["text"] for b in found.buttons] == ["1. DUPONT Jean, 1961-03-12",
                                                  "2. DUPONT Marie, 1988-11-30"]
    assert all(len(b["callback_data"].encode()) <= 64 and "DUPONT" not in b["callback_data"]
               for b in found.buttons)
    # A reply to the review request itself searches too; accents and hyphens do not count.
    again = reply(botapi, run, ask, "Hélène martin")
    assert again.text.splitlines()[1].startswith("1. MARTIN Hélène, 1975-04-03 (#P002)")

    # The pick files it exactly as a candidate's button does.
    assert press(botapi, run, found, button(found, "1.")) == \
        "Filed under DUPONT Jean, 1961-03-12 (#P001)."
    run.wait_for(lambda: states(spool).get("sans-nom.pdf") == "filed", 30, "the decision")
    assert [p.name for p in spool.files("done/P001") if p.suffix == ".pdf"] == [
        "2026-11-05_lab-result_sans-nom.pdf"]
    [decided] = resolved(spool)
    assert (decided["actor"], decided["patient_id"], decided["document_id"]) == (
        f"telegram:{STAFF}", "P001", doc)
    assert decided["evidence"]["agree"] == ["birth_date"]  # compared, as a candidate is
    run.wait_for(lambda: any((m.text or "").startswith(
        f"Filed under DUPONT Jean, born 1961-03-12 (#P001) by telegram:{STAFF}: sans-nom.pdf.")
        for m in botapi.sent(GROUP)), 30, "the decision announced")
    # The answer pressed says who, at once; the request and the other answer follow.
    assert found.text.endswith(f"✔ Filed under DUPONT Jean, 1961-03-12 (#P001) by Claire "
                               f"(telegram:{STAFF}).") and found.buttons == []
    for message in (ask, again):
        run.wait_for(lambda m=message: m.edits, 30, "the other messages edited")
        assert message.text.endswith(
            f"✔ Filed under DUPONT Jean, 1961-03-12 (#P001) by telegram:{STAFF}.")
        assert message.buttons == []
    assert prompt.edits == []  # it never had buttons
    assert spool.run("audit", "verify").returncode == 0
    assert run.stop() == 0


def test_what_a_search_answers_and_what_it_refuses(spool: Spool, botapi: BotApi, tg,
                                                   tmp_path: Path) -> None:
    run = tg()
    doc = drop_and_wait(spool, review_pdf(tmp_path, "legrand.pdf"), "review", run)
    other = drop_and_wait(spool, no_name_pdf(tmp_path, "autre.pdf"), "review", run)
    [ask] = run.wait_for(lambda: message_about(botapi, doc), 30, "the review request")
    [ask_other] = run.wait_for(lambda: message_about(botapi, other), 30, "the other request")

    by_date = reply(botapi, run, ask, "12/03/1961")
    assert by_date.text.splitlines()[1].startswith(
        "1. DUPONT Jean, 1961-03-12 (#P001) — last name, first name and birth date differ")
    by_id = reply(botapi, run, ask, "#p004")
    assert by_id.text.splitlines()[1].startswith("1. BEN ALI Mohamed, 1990-07-21 (#P004)")
    misspelt = reply(botapi, run, ask, "Smiht John")  # two letters exchanged
    assert misspelt.text.splitlines()[1].startswith("1. SMITH John, 1954-01-09 (#P005)")
    nobody = reply(botapi, run, ask, "Zwrtqkz")
    assert nobody.text == (f"No patient in the directory matches “Zwrtqkz”. Reply again with "
                           f"another spelling, the birth date (31/12/1961) or the directory "
                           f"id. [{doc}]") and nobody.buttons == []
    assert reply(botapi, run, ask, "x").text.startswith("Give a last name")
    dupont = reply(botapi, run, ask, "dupont")
    assert [b["text"][:9] for b in dupont.buttons] == ["1. DUPONT", "2. DUPONT"]
    # A reply to a message about no document (the answer to /help) is not a search.
    botapi.inject_message(GROUP, STAFF, "/help")
    help_text = run.wait_for(lambda: [m for m in botapi.sent(GROUP) if m.message_id >
                                      dupont.message_id], 30, "the help")[0]
    assert "Another patient…" in help_text.text  # /help says how
    assert reply(botapi, run, help_text, "dupont").text == (
        "To search for a patient, reply to a message that asks for a decision.")

    # Crafted presses: a pick under the review request (no search offered it), a pick of
    # another document's search answer, an index the answer never offered. Nothing changes.
    refused = "This button is out of date: use /review."
    assert press(botapi, run, ask, f"p:{doc}:0", forged=True) == refused
    assert press(botapi, run, dupont, f"p:{other}:0", forged=True) == refused
    assert press(botapi, run, dupont, f"p:{doc}:7", forged=True) == refused
    assert press(botapi, run, dupont, f"p:{doc}:99999", forged=True) == \
        "This button is not one of mine."
    assert states(spool)["legrand.pdf"] == states(spool)["autre.pdf"] == "review"
    assert resolved(spool) == []
    assert run.output().count("refused a pick for document") == 3

    # Someone not allowed replies with a name: no answer, refused and audited, and the
    # warning does not carry what they typed.
    before = len(botapi.sent(GROUP))
    botapi.inject_message(GROUP, STRANGER, "QUETZAL Jean", reply_to=ask.message_id)
    run.wait_for(lambda: any(a["event"] == "rejected" for a in audit_lines(spool)), 30,
                 "the rejection")
    [rejected] = [a for a in audit_lines(spool) if a["event"] == "rejected"]
    assert rejected["command"] == f"reply to message {ask.message_id}"
    time.sleep(0.5)
    assert len(botapi.sent(GROUP)) == before
    [warning] = [line for line in run.output().splitlines() if "rejected reply" in line]
    assert f"rejected reply to message {ask.message_id} from Telegram user {STRANGER}" in \
        warning and "QUETZAL" not in warning

    # A stale pick (the document decided meanwhile from another answer) changes nothing.
    assert press(botapi, run, dupont, button(dupont, "1.")).startswith("Filed under")
    run.wait_for(lambda: states(spool)["legrand.pdf"] == "filed", 30, "the decision")
    assert press(botapi, run, by_id, f"p:{doc}:0", forged=True).startswith(
        f"already decided: filed under #P001 by telegram:{STAFF}")
    assert [d["patient_id"] for d in resolved(spool)] == ["P001"]
    # A reply to a message about a decided document says so.
    assert reply(botapi, run, ask, "legrand").text.startswith("already decided: filed")
    assert press(botapi, run, ask_other, f"p:{other}:0", forged=True) == refused
    assert run.stop() == 0


def test_minimal_tells_namesakes_apart_and_searches_by_id_only(
        spool: Spool, botapi: BotApi, tg, tmp_path: Path) -> None:
    run = tg(DOCAGENT_PHI="minimal")
    doc = drop_and_wait(spool, review_pdf(tmp_path, "legrand-paul.pdf"), "review", run)
    [ask] = run.wait_for(lambda: message_about(botapi, doc), 30, "the review request")
    assert [b["text"] for b in ask.buttons] == ["P.L. 1970 #P006", "P.L. 1982 #P007",
                                                "None of them", SEARCH]
    assert press(botapi, run, ask, button(ask, SEARCH)) == (
        "Reply to my message with the patient's directory id.")
    prompt = run.wait_for(lambda: [m for m in botapi.sent(GROUP) if m.message_id >
                                   ask.message_id], 30, "the prompt")[0]
    assert prompt.text.startswith(f"Which patient is document {doc} about? Reply to this "
                                  "message with the patient's directory id")
    # A name typed is not searched, nor repeated: the answer says why.
    refusal = reply(botapi, run, prompt, "DUPONT Jean 12/03/1961")
    assert refusal.text == (f"No patient has that directory id. Names and birth dates stay "
                            f"out of this chat: search with the patient's directory id only. "
                            f"[{doc}]")
    assert refusal.buttons == []
    found = reply(botapi, run, refusal, "p001")  # a reply to the answer searches again
    assert found.text.splitlines() == [
        f"1 patient found for document {doc}:",
        "1. J.D. 1961 #P001 — last name, first name and birth date differ",
        f"Tap a patient to file the document under them. [{doc}]"]
    assert [b["text"] for b in found.buttons] == ["1. J.D. 1961 #P001"]
    assert press(botapi, run, found, button(found, "1.")) == "Filed under J.D. 1961 #P001."
    run.wait_for(lambda: states(spool).get("legrand-paul.pdf") == "filed", 30, "the decision")
    run.wait_for(lambda: ask.edits and all_sent(spool), 30, "the request edited")
    assert ask.text.endswith(f"✔ Filed under J.D. 1961 #P001 by telegram:{STAFF}.")
    # Nothing the bot sent names anyone or gives a whole birth date.
    for message in botapi.sent(GROUP):
        shown = " ".join([message.text or "", *(b["text"] for b in message.buttons)]).upper()
        for secret in ("DUPONT", "JEAN", "LEGRAND", "PAUL", "1961-03-12", "12/03/1961",
                       "1970-05-05", "1982-09-14"):
            assert secret not in shown, (secret, message.text)
    assert run.stop() == 0


def test_a_press_in_one_chat_edits_the_messages_in_the_other(
        spool: Spool, botapi: BotApi, tg, tmp_path: Path) -> None:
    botapi.add_chat(OTHER, "Secrétariat")
    run = tg(TELEGRAM_CHAT_IDS=f"{GROUP},{OTHER}")
    doc = drop_and_wait(spool, review_pdf(tmp_path, "legrand.pdf"), "review", run)
    [in_a] = run.wait_for(lambda: message_about(botapi, doc, GROUP), 30, "the request in A")
    [in_b] = run.wait_for(lambda: message_about(botapi, doc, OTHER), 30, "the request in B")
    # In B also a /review answer and a search's answer, all with live buttons.
    botapi.inject_message(OTHER, STAFF, "/review")
    listed = run.wait_for(lambda: [m for m in message_about(botapi, doc, OTHER)
                                   if m.message_id > in_b.message_id], 30, "/review")[0]
    found = reply(botapi, run, in_b, "legrand paul", chat=OTHER)
    assert len(found.buttons) == 2

    assert press(botapi, run, in_a, button(in_a, "LEGRAND Paul, 1982")) == \
        "Filed under LEGRAND Paul, 1982-09-14 (#P007)."
    run.wait_for(lambda: in_a.edits, 30, "the request pressed edited")
    assert in_a.text.endswith(f"✔ Filed under LEGRAND Paul, 1982-09-14 (#P007) by Claire "
                              f"(telegram:{STAFF}).")
    for message in (in_b, listed, found):
        run.wait_for(lambda m=message: m.edits, 30, "chat B's messages edited")
        assert message.text.endswith(
            f"✔ Filed under LEGRAND Paul, 1982-09-14 (#P007) by telegram:{STAFF}.")
        assert message.buttons == [] and len(message.edits) == 1
    assert len(in_a.edits) == 1  # by the press alone, not again by the outbox
    run.wait_for(lambda: all_sent(spool), 30, "the outbox")
    with sqlite3.connect(spool.home / "state.db") as db:
        assert db.execute("SELECT COUNT(*) FROM telegram_messages WHERE closed_at IS NULL"
                          ).fetchone() == (0,)
    assert run.stop() == 0


def test_a_decision_from_the_shell_is_shown_by_the_daemon_even_after_an_outage(
        spool: Spool, botapi: BotApi, tg, tmp_path: Path) -> None:
    run = tg()
    doc = drop_and_wait(spool, review_pdf(tmp_path, "legrand.pdf"), "review", run)
    [ask] = run.wait_for(lambda: message_about(botapi, doc), 30, "the review request")
    run.wait_for(lambda: all_sent(spool), 30, "the outbox")
    botapi.outage("502")
    done = spool.run("review", "resolve", doc, "--none", check=True,
                     env={"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_IDS": str(GROUP)})
    assert done.returncode == 0
    time.sleep(6)  # the daemon tries, and finds Telegram away
    assert ask.edits == [] and ask.buttons
    botapi.outage(None)
    run.wait_for(lambda: ask.edits, 90, "the request edited once Telegram is back")
    [by_shell] = resolved(spool)
    assert str(by_shell["actor"]).startswith("shell:")
    assert (ask.text or "").endswith(f"✔ Filed as unassigned by {by_shell['actor']}.")
    assert ask.buttons == [] and len(ask.edits) == 1
    assert run.stop() == 0


def test_a_rematch_after_an_import_edits_the_request(spool: Spool, botapi: BotApi, tg,
                                                     tmp_path: Path) -> None:
    run = tg()
    pdf = pdfgen.text_pdf([pdfgen.report("ZORRO", "Diego", "02/06/1979")], tmp_path / "z.pdf")
    doc = drop_and_wait(spool, pdf, "review", run)
    [ask] = run.wait_for(lambda: message_about(botapi, doc), 30, "the review request")
    csv = spool.root / "zorro.csv"
    csv.write_text("id,last_name,first_name,birth_date\nP100,ZORRO,Diego,1979-06-02\n",
                   encoding="utf-8")
    spool.run("patients", "import", str(csv), check=True,
              env={"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_IDS": str(GROUP)})
    assert states(spool)["z.pdf"] == "filed"
    run.wait_for(lambda: ask.edits, 30, "the request edited")
    assert ask.text.endswith("✔ Filed under ZORRO Diego, 1979-06-02 (#P100) by a new match "
                             "after a directory import.")
    assert ask.buttons == []
    assert run.stop() == 0
