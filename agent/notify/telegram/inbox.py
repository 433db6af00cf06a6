"""The bot's one change to how python-telegram-bot receives: uploads written down first.

PTB's updater confirms each batch of updates to Telegram with the offset of its next getUpdates,
which it sends as soon as the batch is queued, before any handler has run; a daemon killed
during a download would lose the file, since Telegram does not send a confirmed update again.
`InboxBot.get_updates` hands each batch to `keep` before returning it, so the upload is on disk
before the updater can confirm it; when `keep` fails (a full disk), the batch is not returned,
the updater backs off and asks again from the same offset, and Telegram sends it again.

What is kept, and how it is replayed and marked handled: agent.ops.telegram_intake.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ExtBot

Keep = Callable[[Sequence[Update]], Awaitable[None]]


class NotWrittenDown(TelegramError):
    """The batch could not be written down: the updater retries (with its backoff), unconfirmed."""


class InboxBot(ExtBot[Any]):
    """An ExtBot whose getUpdates writes uploads down (`keep`) before the updater sees them."""

    def __init__(self, *args: Any, keep: Keep, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keep = keep

    async def get_updates(self, *args: Any, **kwargs: Any) -> tuple[Update, ...]:
        updates = await super().get_updates(*args, **kwargs)
        if updates:
            try:
                await self._keep(updates)
            except Exception as error:  # the database: locked, disk full
                raise NotWrittenDown(f"could not write down the files sent to the bot "
                                     f"({type(error).__name__}: {error})") from error
        return updates
