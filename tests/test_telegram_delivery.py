"""Never lose, never block, never leak: outages, flood control, refusals and the token.

Through the real daemon and python-telegram-bot against the loopback Bot API.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests import figures
from tests.botapi import BotApi
from tests.conftest import Spool
from tests.telegram_helpers import (
    GROUP,
    STRANGER,
    TOKEN,
    all_sent,
    bad_pdf,
    botapi,
    drop,
    drop_and_wait,
    filed_pdf,
    outbox,
    review_pdf,
    states,
    tg,
)

pytestmark = pytest.mark.daemon
__all__ = ["botapi", "tg"]  # fixtures
DOC_IN_TEXT = re.compile(r"\[([0-9a-f]{16})\]")


def delivered_order(api: BotApi) -> list[str]:
    """The document ids as the chat saw them, grouped messages line by line."""
    return [m for sent in api.sent(GROUP) for m in DOC_IN_TEXT.findall(sent.text or "")]


def outbox_order(spool: Spool) -> list[str]:
    return [str(r["document_id"]) for r in outbox(spool)]


def assert_token_nowhere(spool: Spool, *tokens: str) -> int:
    """Every file of the log folder and the daemon's own output; returns the bytes read."""
    files = [*sorted(p for p in spool.logs.rglob("*") if p.is_file()),
             spool.root / "daemon.out"]
    read = 0
    for path in files:
        data = path.read_bytes()
        read += len(data)
        for token in tokens:
            for form in {token, quote(token, safe=""), token.split(":", 1)[1]}:
                assert form.encode() not in data, f"the token is in {path}"
    return read


@pytest.mark.slow
@pytest.mark.proof  # the README's "Telegram down" figures
def test_an_outage_of_a_minute_loses_nothing_and_holds_nothing_up(
        spool: Spool, botapi: BotApi, tg, tmp_path: Path) -> None:
    run = tg()
    botapi.outage("refuse")
    down_at = time.monotonic()
    pdfs = []
    for i in range(20):
        if i % 7 == 3:
            pdfs.append(review_pdf(tmp_path, f"r{i:02d}.pdf", f"#{i}"))
        elif i % 9 == 5:
            pdfs.append(bad_pdf(tmp_path, f"x{i:02d}.pdf"))
        else:
            pdfs.append(filed_pdf(tmp_path, f"f{i:02d}.pdf", f"#{i}"))
    for pdf in pdfs:
        drop(pdf, spool.home / "incoming")
    finals = ("filed", "review", "failed")
    # Processed while Telegram is away: the outage lasts until they all are (the wait's
    # bound only catches a hang; how long it took is a figure, not an assertion).
    run.wait_for(lambda: sum(states(spool).get(p.name) in finals for p in pdfs) == 20, 300,
                 "all 20 documents to be processed while Telegram is away")
    processed_in = time.monotonic() - down_at
    assert botapi.down == "refuse"
    assert botapi.sent() == []
    assert len(outbox(spool)) == 20 and not any(r["sent_at"] for r in outbox(spool))
    time.sleep(max(0.0, 60 - (time.monotonic() - down_at)))
    botapi.outage(None)
    back_at = time.monotonic()
    run.wait_for(lambda: all_sent(spool), 300, "every message to go out after the outage")
    assert delivered_order(botapi) == outbox_order(spool)  # in order, each exactly once
    assert len(set(delivered_order(botapi))) == 20
    figures.record("telegram_down", documents=20, outage_s=60,
                   processed_during_outage_s=round(processed_in, 1),
                   all_delivered_after_s=round(time.monotonic() - back_at, 1),
                   messages=len(botapi.sent(GROUP)),
                   delivered_twice=len(delivered_order(botapi)) - len(set(delivered_order(botapi))))
    assert "polling Telegram for commands failed" in run.output()
    assert "notifications not sent yet" in run.output()
    assert run.stop() == 0
    assert assert_token_nowhere(spool, TOKEN) > 0


def test_flood_control_retry_after_is_honoured(spool: Spool, botapi: BotApi, tg,
                                               tmp_path: Path) -> None:
    # Stricter than our own pacing of notifications in a group (one per 4 s): the server
    # must push back, and we must wait what it says.
    botapi.min_interval, botapi.retry_after = 5.0, 2
    run = tg()
    botapi.outage("502")  # the four requests wait, then go out back to back
    ids = [drop_and_wait(spool, review_pdf(tmp_path, f"r{i}.pdf", f"#{i}"), "review", run)
           for i in range(4)]
    botapi.outage(None)
    run.wait_for(lambda: all_sent(spool), 120, "the review requests")
    assert botapi.too_many >= 1  # the server did push back...
    assert botapi.early_retries == 0  # ...and was never asked again before retry_after
    assert delivered_order(botapi) == outbox_order(spool) == ids
    assert any(r["attempts"] > 0 and "RetryAfter" in (r["last_error"] or "")
               for r in outbox(spool))
    assert run.stop() == 0


def test_a_refused_message_is_not_retried_and_says_what_to_fix(
        spool: Spool, botapi: BotApi, tg, tmp_path: Path) -> None:
    missing = -100999
    run = tg(TELEGRAM_CHAT_IDS=f"{GROUP},{missing}")
    drop_and_wait(spool, filed_pdf(tmp_path, "a.pdf"), "filed", run)
    drop_and_wait(spool, review_pdf(tmp_path, "b.pdf"), "review", run)
    run.wait_for(lambda: all_sent(spool), 30, "the messages")
    refused = [c for c in botapi.calls if c[1] == missing]
    assert refused == [("sendMessage", missing, 400)] * 2  # once per message, no retry
    assert len(botapi.sent(GROUP)) == 2  # the good chat has everything
    assert (f"chat id {missing} not found" in run.output()
            and "add the bot to the chat, and check TELEGRAM_CHAT_IDS" in run.output())
    assert run.stop() == 0

    # Refused by every chat: given up, kept in the outbox with the reason; the queue moves on.
    run = tg(TELEGRAM_CHAT_IDS=str(missing))
    drop_and_wait(spool, filed_pdf(tmp_path, "c.pdf", "#c"), "filed", run)
    drop_and_wait(spool, filed_pdf(tmp_path, "d.pdf", "#d"), "filed", run)
    run.wait_for(lambda: all_sent(spool), 30, "the rows to be given up")
    given_up = [r for r in outbox(spool) if (r["last_error"] or "").startswith("gave up:")]
    assert len(given_up) == 2 and all(f"chat id {missing} not found" in r["last_error"]
                                      for r in given_up)
    assert len([c for c in botapi.calls if c[1] == missing]) == 4
    status = json.loads(spool.run("status", "--json", check=True).stdout)
    assert status["outbox_given_up_today"] == 2 and status["outbox_pending"] == 0
    assert "2 refused by Telegram today" in spool.run("status", check=True).stdout
    assert run.stop() == 0


def test_the_token_is_never_logged(spool: Spool, botapi: BotApi, tg, tmp_path: Path) -> None:
    # conftest runs every daemon at DOCAGENT_LOG_LEVEL=DEBUG; PTB's and httpx's loggers too.
    run = tg()
    drop_and_wait(spool, review_pdf(tmp_path, "r.pdf"), "review", run)
    botapi.inject_message(GROUP, STRANGER, "/status")
    botapi.outage("502")
    drop_and_wait(spool, filed_pdf(tmp_path, "f.pdf"), "filed", run)
    run.wait_for(lambda: "Telegram did not take the message" in run.output(), 60, "a failed send")
    botapi.outage("refuse")
    run.wait_for(lambda: "polling Telegram for commands failed" in run.output(), 60,
                 "a failed poll")
    botapi.outage(None)
    run.wait_for(lambda: all_sent(spool), 90, "the messages")
    assert run.stop() == 0
    assert "Calling Bot API endpoint" in run.output()  # PTB's DEBUG lines were written

    wrong = "7000000001:AAH-this_one_is_WRONG_0123456789abcdef"
    run = tg(TELEGRAM_BOT_TOKEN=wrong)
    run.wait_for(lambda: "Telegram refuses the bot token" in run.output(), 30, "the 401")
    drop_and_wait(spool, filed_pdf(tmp_path, "g.pdf", "#g"), "filed", run)  # still working
    assert run.stop() == 0
    assert not all_sent(spool)  # the message waits for a good token
    assert assert_token_nowhere(spool, TOKEN, wrong) > 10_000


def test_telegram_down_at_start_holds_nothing_up(spool: Spool, botapi: BotApi, tg,
                                                 tmp_path: Path) -> None:
    botapi.outage("refuse")
    run = tg()
    run.wait_for(lambda: "Telegram not reachable at" in run.output(), 30, "the start to be refused")
    doc = drop_and_wait(spool, filed_pdf(tmp_path, "a.pdf"), "filed", run)
    assert run.stop() == 0  # stops while still trying to reach Telegram
    assert [r["sent_at"] for r in outbox(spool)] == [None]

    run = tg()
    drop_and_wait(spool, review_pdf(tmp_path, "b.pdf"), "review", run)
    botapi.outage(None)
    run.wait_for(lambda: all_sent(spool), 90, "the messages once Telegram is back")
    assert delivered_order(botapi) == outbox_order(spool) == [doc, outbox_order(spool)[1]]
    assert run.stop() == 0
