"""Messages follow the document: once it is decided, every message about it that still has
buttons (its review notification in each chat, a /review answer, a search's answer) is edited
to say what was decided and by whom, and its buttons go.

The daemon does it when the outbox's `decided` row comes up (written in the transaction that
decided the document, by whoever decided: a press, the shell, a re-match), so a decision made
in a shell is shown in the chat by the daemon, the only process that talks to Telegram.
"""

from __future__ import annotations

import asyncio
from typing import Any

from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError
from telegram.ext import ExtBot

from agent.logs import get_logger
from agent.notify.messages import fit
from agent.notify.telegram import threads
from agent.store import Store

log = get_logger("telegram")
EDIT_TIMEOUT = 60.0


def decided_text(text: str | None, note: str) -> str:
    """The message as it was, and below it the decision."""
    return fit(f"{text}\n\n{note}") if text else note


async def close_all(bot: ExtBot[Any], store: Store, document_id: str, note: str) -> int:
    """Edit each open message about `document_id` with `note`, its buttons removed; returns
    how many were edited. A message Telegram will not edit (deleted, too old, the bot out
    of that chat) is left as it is, said in the log; a network error is raised, with the
    message still open, for the caller to try again."""
    edited = 0
    for kept in await asyncio.to_thread(threads.open_about, store, document_id):
        # Taken first: the press that decided may be editing its own message right now.
        if not await asyncio.to_thread(threads.close, store, kept.chat_id, kept.message_id):
            continue
        try:
            await asyncio.wait_for(
                bot.edit_message_text(decided_text(kept.text, note), chat_id=kept.chat_id,
                                      message_id=kept.message_id, reply_markup=None),
                EDIT_TIMEOUT)
        except (BadRequest, Forbidden, ChatMigrated) as error:
            if "not modified" not in str(error).lower():
                log.warning("message %d in chat %d about document %s not edited with the "
                            "decision (%s): it keeps its buttons, a press on them says the "
                            "document is decided", kept.message_id, kept.chat_id,
                            document_id, error, extra={"doc": document_id})
            continue
        except (TelegramError, TimeoutError):
            await asyncio.to_thread(threads.reopen, store, kept)
            raise
        edited += 1
    return edited

