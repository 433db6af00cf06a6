"""The outbox, drained to Telegram: in order, grouped when many documents are filed at once,
retried when Telegram is away, given up (and said why) only when Telegram refuses a message.

Never lose: a row leaves the queue only once every chat has it, or Telegram refused it for
good (400, 403: retrying cannot help, and one bad row must not hold the others back). Never
block: this runs as its own task, each send is bounded by a timeout, and a failure leaves the
row for the next drain; documents are processed meanwhile as if nothing happened.

Retries (tenacity): network errors and timeouts wait with exponential backoff and jitter; a
429 waits what the server asked (`retry_after`); after `ATTEMPTS` the drain stops where it is
and the next one starts from the same row, so the order holds. A refused token (401) keeps
every row waiting and pauses sending: it is one configuration error, not a bad message.

While the daemon is down, `docagent health --notify` sends its own alert through this same
code (`send_alone`): one bot, the ledger's request, the same retries and bookkeeping, only the
outbox's `health` rows, within `ALONE_SECONDS`, holding the spool's lock (so a daemon starting
meanwhile waits, then finds them sent).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from telegram import InlineKeyboardMarkup, ReplyParameters
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import AIORateLimiter, ExtBot
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from agent.config import Settings
from agent.errors import DocagentError
from agent.ledger import Ledger, prices_from
from agent.logs import get_logger
from agent.notify import decided_text
from agent.notify.messages import fit, render, render_filed_group
from agent.notify.telegram import follow, threads
from agent.notify.telegram.keyboards import keyboard_for
from agent.notify.telegram.transport import BACKGROUND, LedgerRequest, PacedRateLimiter
from agent.origin import TELEGRAM, Origin
from agent.spool import DECIDED
from agent.store import Store

log = get_logger("telegram")
ATTEMPTS = 6            # per drain: ~1+2+4+8+16 s of backoff before the drain gives way
SEND_TIMEOUT = 60.0     # one send, rate-limiter wait included
TOKEN_PAUSE = 300.0     # after a 401, before trying again
FINAL_DRAIN_SECONDS = 10.0  # while stopping: what does not go by then waits for the restart
ALONE_SECONDS = 30.0  # `docagent health` sending its alert itself, start to finish
ALONE_HOLD = ALONE_SECONDS + 10.0  # the spool's lock it holds meanwhile: Python starting, PTB
_backoff = wait_exponential_jitter(initial=1, max=30, jitter=1)


class _Stopping(Exception):
    """The daemon is stopping: leave the rest in the outbox."""


class _NotRecorded(Exception):
    """A message went out but the database could not record it: stop this drain."""


@dataclass
class Batch:
    """One Telegram message: one outbox row, or several `filed` rows grouped."""

    rows: list[sqlite3.Row]
    kind: str
    text: str
    markup: InlineKeyboardMarkup | None

    @property
    def ids(self) -> list[int]:
        return [int(r["id"]) for r in self.rows]

    @property
    def document_id(self) -> str:
        return str(self.rows[0]["document_id"] or "-") if len(self.rows) == 1 else "-"

    @property
    def replies_to(self) -> tuple[int, int] | None:
        """(chat, message) of the staff member's message that brought this document to the
        bot: the outcome replies to it there (other chats get it as any notification)."""
        return _sent_by(self.rows[0]) if len(self.rows) == 1 else None


def _sent_by(row: sqlite3.Row) -> tuple[int, int] | None:
    """(chat, message) of the Telegram message a row's document came in, if it came so."""
    origin = Origin.from_json(_payload(row).get("origin"))
    chat, message = origin.get("chat_id"), origin.get("message_id")
    if origin.channel != TELEGRAM or not isinstance(chat, int) \
            or not isinstance(message, int):
        return None
    return chat, message


def _payload(row: sqlite3.Row) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(row["payload"])
    payload.setdefault("document_id", row["document_id"])
    return payload


def batches(rows: list[sqlite3.Row], phi: str) -> list[Batch]:
    """Consecutive `filed` rows become one message; everything else stays one each (a review or
    a failure carries its own buttons), and the order of the outbox is kept."""
    out: list[Batch] = []
    run: list[sqlite3.Row] = []

    def flush() -> None:
        if len(run) == 1:
            out.append(_single(run[0], phi))
        elif run:
            out.append(Batch(list(run), "filed",
                             render_filed_group([_payload(r) for r in run], phi=phi), None))
        run.clear()

    for row in rows:
        # A document sent to the bot is answered on its own, as a reply to its message.
        if row["kind"] == "filed" and _sent_by(row) is None:
            run.append(row)
            continue
        flush()
        out.append(_single(row, phi))
    flush()
    return out


def _single(row: sqlite3.Row, phi: str) -> Batch:
    payload = _payload(row)
    if row["kind"] == DECIDED:  # no message of its own: the note the others are edited with
        return Batch([row], DECIDED, decided_text.note(payload, phi), None)
    return Batch([row], row["kind"], render(row["kind"], payload, phi=phi),
                 keyboard_for(row["kind"], payload, phi))


def retry_after_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the type will become timedelta
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def transient(error: BaseException) -> bool:
    """Worth trying again: the network, a timeout, a 5xx, a 429. Not a 400/401/403."""
    if isinstance(error, RetryAfter | TimeoutError):
        return True
    return isinstance(error, NetworkError) and not isinstance(error, BadRequest)


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, RetryAfter):
        return retry_after_seconds(error) + 0.5
    return float(_backoff(state))


def _say_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.info("Telegram did not take the message (%s): next try in %.1f s",
             str(error) or type(error).__name__, wait)


def token_refused(settings: Settings, error: TelegramError) -> str:
    """Telegram said 401: name where this token was read, which is where to correct it."""
    where = settings.telegram_token_source or "TELEGRAM_BOT_TOKEN"
    said = str(error).replace(settings.telegram_token or "<token>", "<token>")  # PTB quotes it
    return f"Telegram refuses the bot token ({said}): correct {where} (the token from @BotFather)"


def what_to_fix(error: TelegramError, chat: int) -> str:
    text = str(error)
    if isinstance(error, ChatMigrated):
        return (f"chat {chat} became a supergroup with id {error.new_chat_id}: "
                f"put {error.new_chat_id} in TELEGRAM_CHAT_IDS instead of {chat}")
    if isinstance(error, Forbidden):
        return (f"the bot may not write to chat {chat} ({text}): add the bot to the chat "
                f"again, or take {chat} out of TELEGRAM_CHAT_IDS")
    if "chat not found" in text.lower():
        return (f"chat id {chat} not found ({text}): add the bot to the chat, and check "
                "TELEGRAM_CHAT_IDS (a group's id starts with -)")
    return (f"Telegram refused the message for chat {chat} ({text}); this is docagent's "
            "fault: please report this line")


class TelegramSender:
    def __init__(self, settings: Settings, store: Store, bot: Callable[[], ExtBot[Any] | None],
                 stopping: asyncio.Event) -> None:
        self.settings = settings
        self.store = store
        self.bot = bot  # None until the bot has reached Telegram once
        self.stopping = stopping
        self.chats = settings.telegram_chat_ids
        self.delivered: set[tuple[int, int]] = set()  # (outbox row, chat) sent by this process
        self.paused_until = 0.0
        # The message in hand when some chats have it (or refused it) and others not yet.
        self.partial: set[int] = set()
        self.refused: dict[int, str] = {}  # chat -> what to fix, for that message

    async def drain(self, *, final: bool = False, kind: str | None = None) -> int:
        """Send what is pending (of `kind`, or all), oldest first; stop at the first row that
        cannot go yet."""
        bot = self.bot()
        if bot is None or time.monotonic() < self.paused_until:
            return 0
        sent = 0
        deadline: float | None = None
        while True:
            if final or self.stopping.is_set():
                # Also when the stop comes in the middle of a long drain: a backlog goes out
                # at Telegram's pace (a group: 20 a minute), and the stop must not wait for it.
                final = True
                deadline = deadline or time.monotonic() + FINAL_DRAIN_SECONDS
                if time.monotonic() >= deadline:
                    break
            try:
                count = await self._send_head(bot, attempts=1 if final else ATTEMPTS,
                                              kind=kind)
            except (_Stopping, _NotRecorded):
                break
            except (TelegramError, TimeoutError) as error:
                log.warning("notifications not sent yet (%s): kept, tried again later",
                            str(error) or type(error).__name__)
                break
            except DocagentError as error:
                log.warning("outbox not readable yet: %s", error)
                break
            if not count:
                break
            sent += count
        return sent

    async def _send_head(self, bot: ExtBot[Any], *, attempts: int, kind: str | None = None,
                         ) -> int:
        """Send the oldest message, retrying; the pending rows are read again at each try, so
        what piled up during an outage goes out grouped when Telegram is back."""
        async for attempt in AsyncRetrying(
                retry=retry_if_exception(transient), wait=_wait,
                stop=stop_after_attempt(attempts), sleep=self._sleep, reraise=True,
                before_sleep=_say_retry):
            with attempt:
                rows = await asyncio.to_thread(self._pending, kind)
                if not rows:
                    return 0
                batch = self._head(rows)
                try:
                    await self._deliver(bot, batch)
                except (TelegramError, TimeoutError) as error:
                    await self._attempted(batch, f"{type(error).__name__}: {error}")
                    raise
                return len(batch.rows)
        return 0

    def _pending(self, kind: str | None) -> list[sqlite3.Row]:
        if kind is None:
            return self.store.pending_messages(50)
        return self.store.read("SELECT * FROM outbox WHERE sent_at IS NULL AND kind = ? "
                               "ORDER BY id LIMIT 50", (kind,))

    def _head(self, rows: list[sqlite3.Row]) -> Batch:
        if self.partial and int(rows[0]["id"]) in self.partial:
            # Some chats have this group already: the others get the very same message.
            rows = [r for r in rows if int(r["id"]) in self.partial]
        return batches(rows, self.settings.phi)[0]

    async def _deliver(self, bot: ExtBot[Any], batch: Batch) -> None:
        """One try per chat that lacks it; a transient error is raised for the caller to retry,
        a refusal for good is logged with what to fix and the row leaves the queue."""
        if batch.kind == DECIDED:
            await self._follow(bot, batch)
            return
        for chat in self.chats:
            if chat in self.refused or all((i, chat) in self.delivered for i in batch.ids):
                continue
            target = batch.replies_to
            reply = ReplyParameters(target[1], allow_sending_without_reply=True) \
                if target is not None and target[0] == chat else None
            try:
                sent = await asyncio.wait_for(
                    bot.send_message(chat, fit(batch.text), reply_markup=batch.markup,
                                     reply_parameters=reply, rate_limit_args=BACKGROUND),
                    SEND_TIMEOUT)
            except InvalidToken as error:
                self.paused_until = time.monotonic() + TOKEN_PAUSE
                log.error("%s; notifications wait in the outbox, next try in %d s",
                          token_refused(self.settings, error), TOKEN_PAUSE)
                raise
            except (BadRequest, Forbidden, ChatMigrated) as error:
                # Not retried, not even when another chat's failure makes the message go
                # round again: `refused` remembers the chat until the message is done.
                self.refused[chat] = what_to_fix(error, chat)
                log.error("notification %s not sent and not retried: %s",
                          ",".join(map(str, batch.ids)), self.refused[chat],
                          extra={"doc": batch.document_id})
            else:
                self.delivered.update((i, chat) for i in batch.ids)
                if batch.kind == "review" and batch.markup is not None:
                    await self._keep(chat, sent.message_id, batch)
            self.partial = set(batch.ids)

        reasons = "; ".join(self.refused.values())

        def give_up() -> None:
            for i in batch.ids:
                self.store.mark_given_up(i, reasons)

        given_up = len(self.refused) == len(self.chats)
        if not await self._write(give_up if given_up else
                                 lambda: self.store.mark_sent_together(batch.ids)):
            # Sent but not recorded: `delivered` remembers it, so the next drain records it
            # without sending it again.
            raise _NotRecorded
        if not given_up:
            log.info("notification %s (%s) sent to Telegram", ",".join(map(str, batch.ids)),
                     batch.kind, extra={"doc": batch.document_id})
        self.delivered.difference_update((i, c) for i in batch.ids for c in self.chats)
        self.partial, self.refused = set(), {}

    async def _keep(self, chat: int, message_id: int, batch: Batch) -> None:
        """A review request just sent: kept, so that a decision anywhere edits it."""
        if not await self._write(lambda: threads.record(
                self.store, chat, message_id, batch.document_id, threads.REVIEW,
                fit(batch.text), buttons=True)):
            log.warning("review request %d in chat %d not kept: it will keep its buttons "
                        "after the decision", message_id, chat,
                        extra={"doc": batch.document_id})

    async def _follow(self, bot: ExtBot[Any], batch: Batch) -> None:
        """A `decided` row: the messages about the document follow the decision."""
        edited = await follow.close_all(bot, self.store, batch.document_id, batch.text)
        if not await self._write(lambda: self.store.mark_sent_together(batch.ids)):
            raise _NotRecorded
        if edited:
            log.info("%d message(s) about the decided document edited", edited,
                     extra={"doc": batch.document_id})

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            return
        raise _Stopping

    async def _attempted(self, batch: Batch, error: str) -> None:
        def attempted() -> None:
            for i in batch.ids:
                self.store.mark_attempt(i, error)
        await self._write(attempted)

    @staticmethod
    async def _write(action: Callable[[], object]) -> bool:
        try:
            await asyncio.to_thread(action)
        except DocagentError as error:
            log.warning("outbox not updated: %s", error)
            return False
        return True


# --- the health timer's own alert, while the daemon is down --------------------------------


def request(ledger: Ledger) -> LedgerRequest:
    """How every bot of ours calls the Bot API (the daemon's and health's): timeouts, ledger."""
    return LedgerRequest(ledger, connect_timeout=5.0, read_timeout=15.0, write_timeout=30.0,
                         pool_timeout=5.0)


async def _send_alone(settings: Settings, store: Store, kind: str) -> int:
    api = settings.telegram_api_base_url
    limiter: AIORateLimiter = PacedRateLimiter()
    bot: ExtBot[Any] = ExtBot(settings.telegram_token or "", base_url=f"{api}/bot",
                              base_file_url=f"{api}/file/bot",
                              request=request(Ledger(settings.log_dir, prices_from(settings))),
                              rate_limiter=limiter)
    async with bot:  # getMe, as the daemon's bot starts
        sender = TelegramSender(settings, store, lambda: bot, asyncio.Event())
        return await sender.drain(kind=kind)


def send_alone(settings: Settings, store: Store, kind: str = "health") -> tuple[bool, str]:
    """Send the outbox's pending `kind` rows here and now (the caller holds the spool's lock, so
    no daemon runs); returns whether all went, and a line for a person saying so, or why not."""
    from agent.notify.telegram.bot import (
        quiet_and_redact,  # bot imports this module: here, not above
    )

    quiet_and_redact(settings)
    try:
        sent = asyncio.run(asyncio.wait_for(_send_alone(settings, store, kind),
                                            ALONE_SECONDS))
        left = store.read("SELECT last_error FROM outbox WHERE sent_at IS NULL AND kind = ? "
                          "ORDER BY id DESC LIMIT 1", (kind,))
        why = str(left[0]["last_error"] or "not tried") if left else None
        if why is not None and "InvalidToken" in why:
            why = f"{why}: correct {settings.telegram_token_source}"
    except InvalidToken as error:
        why = token_refused(settings, error)
    except (TelegramError, OSError, TimeoutError) as error:
        why = (f"Telegram not reachable at {settings.telegram_api_base_url} "
               f"({str(error) or type(error).__name__})")
    except DocagentError as error:
        why = error.message
    if why is None:
        return True, (f"{kind} alert sent to Telegram by this command ({sent} message(s)): the "
                      "daemon is not running to send it")
    why = why.replace(settings.telegram_token or "<token>", "<token>")  # printed, not logged
    return False, f"{kind} alert not sent ({why}): it waits in the outbox for the daemon"
