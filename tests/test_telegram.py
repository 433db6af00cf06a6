"""Telegram through the real daemon: each message kind, buttons, commands, who may do what.

Every test runs `docagent run` as a subprocess, with python-telegram-bot talking to the
loopback Bot API of tests/botapi.py (TELEGRAM_API_BASE_URL).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.botapi import BotApi
from tests.conftest import Spool
from tests.telegram_helpers import (
    GROUP,
    all_sent,
    bad_pdf,
    botapi,
    drop_and_wait,
    filed_pdf,
    message_about,
    outbox,
    review_pdf,
    tg,
    wait,
)

pytestmark = pytest.mark.daemon
__all__ = ["botapi", "tg"]  # fixtures


def test_each_message_kind_reaches_the_chat(spool: Spool, botapi: BotApi, tg,
                                            tmp_path: Path) -> None:
    run = tg()
    filed = drop_and_wait(spool, filed_pdf(tmp_path, "bilan.pdf"), "filed", run)
    [message] = wait(lambda: message_about(botapi, filed), 30, "the filed message", run)
    assert message.text.startswith("Filed: bilan.pdf") and "MARTIN Hélène" in message.text
    assert message.reply_markup is None

    review = drop_and_wait(spool, review_pdf(tmp_path, "legrand.pdf"), "review", run)
    [ask] = wait(lambda: message_about(botapi, review), 30, "the review request", run)
    assert ask.text.startswith("Needs a decision: legrand.pdf")
    labels = [b["text"] for b in ask.buttons]
    assert labels == ["LEGRAND Paul, 1970-05-05", "LEGRAND Paul, 1982-09-14", "None of them",
                      "Open"], labels
    for button in ask.buttons:
        data = button["callback_data"]
        assert len(data.encode()) <= 64 and review in data and "LEGRAND" not in data.upper()

    failed = drop_and_wait(spool, bad_pdf(tmp_path, "broken.pdf"), "failed", run)
    [alert] = wait(lambda: message_about(botapi, failed), 30, "the failure alert", run)
    assert alert.text.startswith("Failed: broken.pdf")
    assert [b["text"] for b in alert.buttons] == ["Retry"]
    wait(lambda: all_sent(spool), 30, "the outbox to be empty", run)
    assert all(r["attempts"] == 0 and r["last_error"] is None for r in outbox(spool))
    assert run.stop() == 0
