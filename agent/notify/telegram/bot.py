"""The Telegram bot inside the daemon: python-telegram-bot's Application on the daemon's loop,
polling for commands and button presses (no public HTTPS endpoint needed), and the outbox
sender that uses the same bot.

Starting never holds the daemon up: `run()` is its own task and keeps trying to reach Telegram
(getMe) with backoff; until it has, notifications wait in the outbox. Its bot is an
`InboxBot`: the files staff send are written down before Telegram is told they came, and those
a stop interrupted are handled again before polling starts (agent.notify.telegram.inbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from telegram import BotCommand, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, ApplicationBuilder, ExtBot

from agent import logs
from agent.config import Settings
from agent.i18n import translate
from agent.ledger import Ledger, prices_from
from agent.logs import get_logger
from agent.notify.telegram.commands import COMMANDS, Commands
from agent.notify.telegram.inbox import InboxBot
from agent.notify.telegram.sender import TelegramSender, request, token_refused
from agent.notify.telegram.transport import LedgerRequest, PacedRateLimiter
from agent.notify.telegram.uploads import Uploads, is_upload
from agent.ops import telegram_intake
from agent.store import Store

log = get_logger("telegram")
POLL_SECONDS = 10      # long-poll timeout of getUpdates
MAX_START_DELAY = 60.0  # seconds between two tries to reach Telegram at start


def quiet_and_redact(settings: Settings) -> None:
    """The token must never reach a log: httpx logs every URL (which holds it) at INFO."""
    logs.redact(settings.telegram_token or "")
    for name in ("httpx", "httpcore"):
        logs.adopt(name, logging.WARNING)
    logs.adopt("telegram", settings.log_level)
    logs.adopt("asyncio", logging.WARNING)


class TelegramBot:
    def __init__(self, settings: Settings, store: Store, stopping: asyncio.Event,
                 wake: Callable[[], None]) -> None:
        quiet_and_redact(settings)
        self.settings = settings
        self.stopping = stopping
        self.wake = wake
        self.ready = asyncio.Event()
        ledger = Ledger(settings.log_dir, prices_from(settings))
        api = settings.telegram_api_base_url
        self.store = store
        self.commands = Commands(settings, store, wake)
        bot = InboxBot(
            settings.telegram_token or "", base_url=f"{api}/bot", base_file_url=f"{api}/file/bot",
            request=request(ledger),
            get_updates_request=LedgerRequest(ledger, connect_timeout=5.0, read_timeout=10.0,
                                              write_timeout=10.0, pool_timeout=5.0),
            rate_limiter=PacedRateLimiter(), keep=self._keep_uploads)
        self.app: Application[Any, Any, Any, Any, Any, Any] = (
            ApplicationBuilder()
            .bot(bot)
            .concurrent_updates(4)  # a slow /health must not hold a button press back
            .build())
        self.commands.install(self.app)
        Uploads(settings, store, wake).install(self.app)
        self.sender = TelegramSender(settings, store, self._bot, stopping)
        self._poll_errors = 0

    async def _keep_uploads(self, updates: Sequence[Update]) -> None:
        """An allowed user's files, written down before Telegram is told they came (a
        stranger's are never downloaded: nothing to keep)."""
        kept = [(u.update_id, telegram_intake.message_key(u.message.chat_id,
                                                          u.message.message_id), u.to_json())
                for u in updates
                if u.message is not None and is_upload(u.message) and self.commands.allowed(u)]
        if kept:
            await asyncio.to_thread(telegram_intake.keep, self.store, kept)

    async def _replay_uploads(self) -> None:
        """The files a stop interrupted, handled again before new updates are asked for."""
        replay = await asyncio.to_thread(telegram_intake.to_replay, self.store)
        if replay:
            log.info("taking again %d file(s) sent to the bot that the last stop interrupted",
                     len(replay))
        for _, raw in replay:
            update = Update.de_json(json.loads(raw), self.app.bot)
            if update is not None:
                await self.app.update_queue.put(update)

    def _bot(self) -> ExtBot[Any] | None:
        return self.app.bot if self.ready.is_set() else None

    async def run(self) -> None:
        """Reach Telegram, start polling, then wait for the daemon to stop."""
        delay = 1.0
        while not self.stopping.is_set():
            try:
                if await self._start_or_stop():
                    break
            except InvalidToken as error:
                log.error("%s; the daemon goes on, notifications wait in the outbox",
                          token_refused(self.settings, error))
                delay = MAX_START_DELAY * 5
            except (TelegramError, OSError) as error:
                log.warning("Telegram not reachable at %s yet (%s): trying again in %.0f s",
                            self.settings.telegram_api_base_url, error, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            delay = min(delay * 2, MAX_START_DELAY)
        await self.stopping.wait()

    async def _start_or_stop(self) -> bool:
        """Start, unless the daemon stops first (PTB retries its bootstrap without end)."""
        start = asyncio.create_task(self._start(), name="telegram-start")
        stop = asyncio.create_task(self.stopping.wait())
        done, _ = await asyncio.wait({start, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if start not in done:
            start.cancel()
            with contextlib.suppress(asyncio.CancelledError, TelegramError):
                await start
            return False
        start.result()
        return True

    async def _start(self) -> None:
        await self.app.initialize()  # getMe
        if not self.app.running:
            await self.app.start()
        self.ready.set()
        self.wake()  # what waited in the outbox can go now
        log.info("Telegram bot @%s ready: messages to chat(s) %s, commands from user(s) %s",
                 self.app.bot.username,
                 ",".join(map(str, self.settings.telegram_chat_ids)) or "none (set "
                 "TELEGRAM_CHAT_IDS)",
                 ",".join(map(str, self.settings.telegram_allowed_user_ids)) or "none (set "
                 "TELEGRAM_ALLOWED_USER_IDS)")
        updater = self.app.updater
        if updater is not None and not updater.running:
            await self._replay_uploads()
            await updater.start_polling(timeout=POLL_SECONDS, bootstrap_retries=-1,
                                        allowed_updates=["message", "callback_query"],
                                        error_callback=self._poll_error)
        try:
            await self.app.bot.set_my_commands([BotCommand(n, translate(d))
                                                 for n, d in COMMANDS])
        except TelegramError as error:
            log.warning("could not register the command menu: %s", error)

    def _poll_error(self, error: TelegramError) -> None:
        # PTB retries by itself (backoff up to 30 s); one line per outage, not one per try.
        self._poll_errors += 1
        if self._poll_errors in (1, 10) or self._poll_errors % 100 == 0:
            log.warning("polling Telegram for commands failed (%d time(s) so far): %s",
                        self._poll_errors, error)

    async def stop(self) -> None:
        """Stop polling and close the connections; bounded, whatever Telegram does."""
        updater = self.app.updater
        try:
            if updater is not None and updater.running:
                await asyncio.wait_for(updater.stop(), 15)
            if self.app.running:
                await asyncio.wait_for(self.app.stop(), 15)
            await asyncio.wait_for(self.app.shutdown(), 15)
        except (TelegramError, TimeoutError, RuntimeError) as error:
            log.warning("the Telegram bot did not stop cleanly: %s", error)
