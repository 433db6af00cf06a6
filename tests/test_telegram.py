"""Telegram through the real daemon: each message kind, buttons, commands, who may do what.

Every test runs `docagent run` as a subprocess, with python-telegram-bot talking to the
loopback Bot API of tests/botapi.py (TELEGRAM_API_BASE_URL).
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.botapi import BotApi
from tests.conftest import Spool
from tests.telegram_helpers import (
    GROUP,
    STAFF,
    STRANGER,
    TOKEN,
    all_sent,
    ask_bot,
    audit_lines,
    bad_pdf,
    botapi,
    drop,
    drop_and_wait,
    filed_pdf,
    message_about,
    outbox,
    review_pdf,
    states,
    tg,
)

pytestmark = pytest.mark.daemon
__all__ = ["botapi", "tg"]  # fixtures


def test_each_message_kind_reaches_the_chat(spool: Spool, botapi: BotApi, tg,
                                            tmp_path: Path) -> None:
    run = tg()
    filed = drop_and_wait(spool, filed_pdf(tmp_path, "bilan.pdf"), "filed", run)
    [message] = run.wait_for(lambda: message_about(botapi, filed), 30, "the filed message")
    assert message.text.startswith("Filed: bilan.pdf") and "MARTIN Hélène" in message.text
    assert message.reply_markup is None

    review = drop_and_wait(spool, review_pdf(tmp_path, "legrand.pdf"), "review", run)
    [ask] = run.wait_for(lambda: message_about(botapi, review), 30, "the review request")
    assert ask.text.startswith("Needs a decision: legrand.pdf")
    labels = [b["text"] for b in ask.buttons]
    assert labels == ["LEGRAND Paul, 1970-05-05", "LEGRAND Paul, 1982-09-14", "None of them",
                      "Open", "Another patient…"], labels
    for button in ask.buttons:
        data = button["callback_data"]
        assert len(data.encode()) <= 64 and review in data and "LEGRAND" not in data.upper()

    failed = drop_and_wait(spool, bad_pdf(tmp_path, "broken.pdf"), "failed", run)
    [alert] = run.wait_for(lambda: message_about(botapi, failed), 30, "the failure alert")
    assert alert.text.startswith("Failed: broken.pdf")
    assert [b["text"] for b in alert.buttons] == ["Retry"]

    drop(filed_pdf(tmp_path, "bilan.pdf"), spool.home / "incoming", "bilan-again.pdf")
    again = run.wait_for(lambda: [m for m in botapi.sent(GROUP) if (m.text or "").startswith(
        "Duplicate: bilan-again.pdf")], 30, "the duplicate notice")
    assert f"[{filed}]" in again[0].text

    # The health timer's alert: one failed document is over a limit of none.
    spool.run("health", "--notify", env={"DOCAGENT_HEALTH_MAX_FAILED": "0"})
    health = run.wait_for(lambda: [m for m in botapi.sent(GROUP) if (m.text or "").startswith(
        "docagent is unhealthy:")], 30, "the health alert")
    assert "- failures:" in health[0].text and health[0].reply_markup is None
    run.wait_for(lambda: all_sent(spool), 30, "the outbox to be empty")
    assert all(r["attempts"] == 0 and r["last_error"] is None for r in outbox(spool))
    assert run.stop() == 0


def test_documents_filed_at_once_go_as_one_message_in_order(spool: Spool, botapi: BotApi, tg,
                                                          tmp_path: Path) -> None:
    run = tg()
    botapi.outage("502")  # hold the messages back so that they are pending together
    ids = [drop_and_wait(spool, filed_pdf(tmp_path, f"f{i}.pdf", f"#{i}"), "filed", run)
           for i in range(4)]
    review = drop_and_wait(spool, review_pdf(tmp_path, "r.pdf"), "review", run)
    last = drop_and_wait(spool, filed_pdf(tmp_path, "f9.pdf", "#9"), "filed", run)
    assert botapi.sent() == []
    botapi.outage(None)
    run.wait_for(lambda: all_sent(spool), 90, "the outbox to be sent")
    texts = [m.text or "" for m in botapi.sent(GROUP)]
    assert len(texts) == 3, texts
    assert texts[0].startswith("4 documents filed:")
    assert [line.rsplit("[", 1)[1].rstrip("]") for line in texts[0].splitlines()[1:]] == ids
    assert f"[{review}]" in texts[1] and texts[1].startswith("Needs a decision")
    assert texts[2].startswith("Filed: f9.pdf") and f"[{last}]" in texts[2]
    assert run.stop() == 0


def test_review_resolved_by_a_button_press(spool: Spool, botapi: BotApi, tg,
                                           tmp_path: Path) -> None:
    run = tg()
    doc = drop_and_wait(spool, review_pdf(tmp_path, "legrand.pdf"), "review", run)
    [ask] = run.wait_for(lambda: message_about(botapi, doc), 30, "the review request")
    second = next(b["callback_data"] for b in ask.buttons if "1982" in b["text"])
    query = botapi.press(GROUP, ask.message_id, second, STAFF)
    run.wait_for(lambda: states(spool).get("legrand.pdf") == "filed", 30, "the decision")
    assert [p.name for p in spool.files("done/P007") if p.suffix == ".pdf"] == [
        "2026-11-05_lab-result_legrand.pdf"]
    assert spool.files("review") == []
    with sqlite3.connect(spool.home / "state.db") as db:
        assert db.execute("SELECT state, patient_id FROM documents WHERE id = ?",
                          (doc,)).fetchone() == ("filed", "P007")
    [decided] = [a for a in audit_lines(spool) if a["event"] == "resolved"]
    assert decided["actor"] == f"telegram:{STAFF}" and decided["patient_id"] == "P007"
    assert decided["document_id"] == doc
    answer = run.wait_for(lambda: botapi.answer_to(query), 30, "the answer to the press")
    assert answer["text"] == "Filed under LEGRAND Paul, 1982-09-14 (#P007)."
    edited = run.wait_for(lambda: ask.edits and ask, 30, "the message to be edited")
    assert edited.text.endswith(f"✔ Filed under LEGRAND Paul, 1982-09-14 (#P007) by Claire "
                                f"(telegram:{STAFF}).")
    assert edited.text.startswith("Needs a decision") and edited.buttons == []
    # The decision is announced like one made from the shell.
    run.wait_for(lambda: any((m.text or "").startswith("Filed under LEGRAND Paul")
                             and f"by telegram:{STAFF}" in m.text for m in botapi.sent(GROUP)), 30,
                 "the resolved notification")
    assert spool.run("audit", "verify").returncode == 0
    assert run.stop() == 0


def test_none_of_them_files_it_unassigned(spool: Spool, botapi: BotApi, tg,
                                          tmp_path: Path) -> None:
    run = tg()
    doc = drop_and_wait(spool, review_pdf(tmp_path, "x.pdf"), "review", run)
    [ask] = run.wait_for(lambda: message_about(botapi, doc), 30, "the review request")
    none = next(b["callback_data"] for b in ask.buttons if b["text"] == "None of them")
    botapi.press(GROUP, ask.message_id, none, STAFF)
    run.wait_for(lambda: states(spool).get("x.pdf") == "filed", 30, "the decision")
    assert [p.suffix for p in spool.files("done/unassigned")] == [".json", ".pdf", ".txt"]
    run.wait_for(lambda: ask.edits, 30, "the edit")
    assert "✔ Filed as unassigned by Claire" in (ask.text or "")
    assert run.stop() == 0


def test_a_press_or_command_from_someone_not_allowed_changes_nothing(
        spool: Spool, botapi: BotApi, tg, tmp_path: Path) -> None:
    run = tg()
    doc = drop_and_wait(spool, review_pdf(tmp_path, "legrand.pdf"), "review", run)
    [ask] = run.wait_for(lambda: message_about(botapi, doc), 30, "the review request")
    first = ask.buttons[0]["callback_data"]
    query = botapi.press(GROUP, ask.message_id, first, STRANGER)
    answer = run.wait_for(lambda: botapi.answer_to(query), 30, "the (empty) answer")
    assert answer["text"] is None and not answer["show_alert"]
    # Staff, but writing from a chat that is not the practice's.
    botapi.add_chat(STAFF, "Claire")
    botapi.inject_message(STAFF, STAFF, "/status")
    botapi.inject_message(GROUP, STRANGER, "/review")
    run.wait_for(lambda: len([a for a in audit_lines(spool) if a["event"] == "rejected"]) == 3, 30,
                 "three rejections in the audit log")
    rejected = [a for a in audit_lines(spool) if a["event"] == "rejected"]
    assert sorted((a["actor"], a["command"]) for a in rejected) == sorted([
        (f"telegram:{STRANGER}", f"button {first}"), (f"telegram:{STAFF}", "/status"),
        (f"telegram:{STRANGER}", "/review")])  # updates are handled concurrently
    assert f"user {STRANGER} (Claire) in chat {GROUP}" in run.output()  # how ids are found
    assert states(spool)["legrand.pdf"] == "review" and ask.edits == []
    assert [m.message_id for m in botapi.sent()] == [ask.message_id]  # no reply to anyone
    assert run.stop() == 0


def test_a_stale_press_says_so_and_changes_nothing(spool: Spool, botapi: BotApi, tg,
                                                   tmp_path: Path) -> None:
    run = tg()
    doc = drop_and_wait(spool, review_pdf(tmp_path, "legrand.pdf"), "review", run)
    [ask] = run.wait_for(lambda: message_about(botapi, doc), 30, "the review request")
    # From the shell, with the same settings as the daemon: its announcement waits in the
    # outbox for the daemon rather than going to the log.
    spool.run("review", "resolve", doc, "P006", check=True,
              env={"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_IDS": str(GROUP)})
    run.wait_for(lambda: any((m.text or "").startswith("Filed under LEGRAND Paul, born 1970-05-05 "
                                                       "(#P006) by shell:") for m in botapi.sent()),
                 30, "the shell's decision announced on Telegram")
    # The daemon takes the buttons away; a phone that has not caught up still shows them.
    run.wait_for(lambda: ask.edits, 30, "the request edited with the shell's decision")
    query = botapi.press(GROUP, ask.message_id, f"f:{doc}:1", STAFF, forged=True)
    answer = run.wait_for(lambda: botapi.answer_to(query), 30, "the answer")
    assert answer["text"].startswith("already decided: filed under #P006 by shell:")
    assert [p.name for p in spool.files("done") if p.suffix == ".pdf"] == [
        "2026-11-05_lab-result_legrand.pdf"]
    assert spool.files("done/P007") == []
    assert [a["actor"].split(":")[0] for a in audit_lines(spool)
            if a["event"] == "resolved"] == ["shell"]
    assert len(ask.edits) == 1  # by the decision, not by the stale press
    assert run.stop() == 0


def test_minimal_phi_keeps_names_out_of_the_chat(spool: Spool, botapi: BotApi, tg,
                                                 tmp_path: Path) -> None:
    run = tg(DOCAGENT_PHI="minimal")
    filed = drop_and_wait(spool, filed_pdf(tmp_path, "martin-helene.pdf"), "filed", run)
    review = drop_and_wait(spool, review_pdf(tmp_path, "legrand-paul.pdf"), "review", run)
    run.wait_for(lambda: all_sent(spool), 30, "the messages")
    [ask] = message_about(botapi, review)
    assert [b["text"] for b in ask.buttons] == ["P.L. 1970 #P006", "P.L. 1982 #P007",
                                                "None of them", "Another patient…"]
    [told] = message_about(botapi, filed)
    for message in (ask, told):
        text = (message.text or "").upper()
        for secret in ("MARTIN", "HÉLÈNE", "LEGRAND", "PAUL", "1975", "1970", "1982"):
            assert secret not in text, (secret, message.text)
        # The buttons tell namesakes apart by birth year and id: never a name or a whole date.
        assert all(secret not in b["text"].upper() for b in message.buttons
                   for secret in ("LEGRAND", "PAUL", "1970-05-05", "05/05/1970"))
    assert run.stop() == 0


def test_every_command_and_the_open_and_retry_buttons(spool: Spool, botapi: BotApi, tg,
                                                      tmp_path: Path) -> None:
    run = tg()
    filed = drop_and_wait(spool, filed_pdf(tmp_path, "bilan.pdf"), "filed", run)
    review = drop_and_wait(spool, review_pdf(tmp_path, "legrand.pdf"), "review", run)
    failed = drop_and_wait(spool, bad_pdf(tmp_path, "broken.pdf"), "failed", run)
    run.wait_for(lambda: all_sent(spool), 30, "the notifications")

    [help_text] = ask_bot(botapi, run, "/help")
    for command in ("/status", "/review", "/failed", "/retry DOC_ID", "/costs", "/health"):
        assert command in (help_text.text or "")

    [status] = ask_bot(botapi, run, "/status@docagent_test_bot")
    assert status.parse_mode == "HTML" and status.text.startswith("<pre>")
    assert "filed" in status.text and "review" in status.text

    [waiting] = ask_bot(botapi, run, "/review")
    assert f"[{review}]" in waiting.text and len(waiting.buttons) == 5

    [quarantine] = ask_bot(botapi, run, "/failed")
    assert f"[{failed}]" in quarantine.text and quarantine.text.startswith("Failed: broken.pdf")
    assert [b["text"] for b in quarantine.buttons] == ["Retry"]

    [today] = ask_bot(botapi, run, "/costs")
    assert today.text.startswith(f"Costs {date.today().isoformat()}:")
    assert "- telegram:" in today.text and "message" in today.text
    [yesterday] = ask_bot(botapi, run, "/costs yesterday")
    day = (date.today() - timedelta(days=1)).isoformat()
    assert yesterday.text == f"Costs {day}: 0.00 EUR (0 calls, 0 errors)"

    [checks] = ask_bot(botapi, run, "/health")
    assert "docagent is" in checks.text and "telegram" in checks.text
    assert "reachable as @docagent_test_bot" in checks.text

    [refused] = ask_bot(botapi, run, "/retry 0000ffff")
    assert refused.text == "Not retried: no document with id 0000ffff"
    # The document may fail again (and be announced) before the reply goes out: look for it.
    before = len(botapi.sent(GROUP))
    botapi.inject_message(GROUP, STAFF, f"/retry {failed[:8]}")
    run.wait_for(lambda: any(m.text == f"Queued {failed} again (asked by Claire)."
                             for m in botapi.sent(GROUP)[before:]), 30, "the answer to /retry")
    retried = [a for a in audit_lines(spool) if a["event"] == "retried"]
    assert [a["actor"] for a in retried] == [f"telegram:{STAFF}"]
    run.wait_for(lambda: len(message_about(botapi, failed)) >= 3, 60, "the second failure alert")

    # The Retry button under the newest alert, then the same button again (stale).
    alert = message_about(botapi, failed)[-1]
    query = botapi.press(GROUP, alert.message_id, alert.buttons[0]["callback_data"], STAFF)
    assert run.wait_for(lambda: botapi.answer_to(query), 30, "the answer")["text"] == \
        "Back in the queue."
    run.wait_for(lambda: alert.edits, 30, "the edit")
    assert "↻ Retry asked by Claire" in (alert.text or "") and alert.buttons == []
    run.wait_for(lambda: len([a for a in audit_lines(spool) if a["event"] == "retried"]) == 2, 30,
                 "the second retry in the audit log")

    # Open: the first page, as an image.
    before = len(botapi.sent(GROUP))
    ask = message_about(botapi, review)[0]
    query = botapi.press(GROUP, ask.message_id, f"o:{review}", STAFF)
    photo = run.wait_for(lambda: [m for m in botapi.sent(GROUP)[before:]
                                  if m.method == "sendPhoto"], 60, "the first page")[0]
    assert photo.file_bytes.startswith(b"\x89PNG") and f"[{review}]" in (photo.caption or "")
    assert states(spool)["legrand.pdf"] == "review"  # opening decides nothing

    # Open, crafted for a document no one is asked about (filed): refused, logged, nothing sent.
    told = message_about(botapi, filed)[0]
    query = botapi.press(GROUP, told.message_id, f"o:{filed}", STAFF, forged=True)
    assert run.wait_for(lambda: botapi.answer_to(query), 30, "the refusal")["text"] == (
        "Not sent: the first page is only sent for a document waiting for a decision (this "
        "one is filed).")
    run.wait_for(lambda: f"refused Open of document {filed} from telegram:{STAFF}" in
                 run.output(), 30, "the refusal in the log")
    assert [m.method for m in botapi.sent(GROUP) if m.method != "sendMessage"] == ["sendPhoto"]
    assert run.stop() == 0
