"""An unknown command gets an answer: which commands there are. Through a real daemon and the
loopback Bot API (tests/botapi.py)."""

from __future__ import annotations

import time

import pytest

from tests.botapi import BotApi
from tests.conftest import Spool
from tests.telegram_helpers import GROUP, STAFF, STRANGER, ask_bot, botapi, tg

pytestmark = pytest.mark.daemon
__all__ = ["botapi", "tg"]  # fixtures


def test_an_unknown_command_is_answered_with_the_list(spool: Spool, botapi: BotApi,
                                                      tg) -> None:
    run = tg()
    [answer] = ask_bot(botapi, run, "/foo")
    assert answer.text is not None and answer.text.startswith(
        "I do not know the command /foo.\n\ndocagent — what I answer:\n/status")
    assert "/review" in answer.text and "/help" in answer.text
    [addressed] = ask_bot(botapi, run, "/bar@docagent_test_bot with words")
    assert addressed.text is not None and addressed.text.startswith(
        "I do not know the command /bar.")
    [known] = ask_bot(botapi, run, "/help")
    assert answer.text.endswith(known.text or "?")  # the same list as /help's

    # Another bot's command in a shared group, and anyone not allowed: no answer.
    before = len(botapi.sent(GROUP))
    botapi.inject_message(GROUP, STAFF, "/foo@some_other_bot")
    botapi.inject_message(GROUP, STRANGER, "/foo")
    run.wait_for(lambda: botapi.pending_updates() == 0, 30, "the updates to be taken")
    time.sleep(1.0)
    assert len(botapi.sent(GROUP)) == before
    assert "rejected /foo from Telegram user" in run.output()
    assert run.stop() == 0


def test_the_unknown_command_answer_is_in_french(spool: Spool, botapi: BotApi, tg) -> None:
    run = tg(DOCAGENT_LANG="fr")
    [answer] = ask_bot(botapi, run, "/foo")
    assert answer.text is not None and answer.text.startswith(
        "Je ne connais pas la commande /foo.")
    assert run.stop() == 0
