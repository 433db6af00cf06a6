"""How the bot talks to the Bot API: each call into the cost ledger, and at most about one
message a second per chat.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.ext import AIORateLimiter
from telegram.request import HTTPXRequest, RequestData

from agent.ledger import Ledger

# Telegram: "avoid sending more than one message per second" to a chat. The gap is counted
# from the end of the last send, with a margin, so the server never sees two closer than 1 s.
CHAT_GAP_SECONDS = 1.1
# Telegram allows 20 messages a minute in a group. Notifications (sent with BACKGROUND) use at
# most 15 of them, so a staff member's command is answered at once even while a backlog of
# notifications drains, instead of queueing behind it in the same bucket.
BACKGROUND = -1  # the `rate_limit_args` the outbox sender passes with each message
GROUP_BACKGROUND_GAP_SECONDS = 4.0


class LedgerRequest(HTTPXRequest):
    """An HTTPX request whose every Bot API call leaves a line in api_costs.jsonl.

    An idle long poll (getUpdates that returned nothing, or that our shutdown cut short) is not
    written: it costs nothing, carries nothing, and at one every 10 s would be most of the
    ledger.
    """

    def __init__(self, ledger: Ledger, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ledger = ledger

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        operation = url.rsplit("/", 1)[-1]  # the URL holds the token: never the URL itself
        polls = operation == "getUpdates"
        units = {"message" if operation.startswith("send") else "call": 1}
        with self.ledger.call("telegram", operation, units=units) as call:
            try:
                status, payload = await super().do_request(url, method, request_data,
                                                           *args, **kwargs)
            except asyncio.CancelledError:
                call.counts = not polls  # a long poll cut short by our own shutdown
                raise
            call.details["status"] = status
            if not 200 <= status < 300:
                call.outcome = "error"
            call.counts = not (polls and call.outcome == "ok" and _empty_result(payload))
            return status, payload


def _empty_result(payload: bytes) -> bool:
    try:
        return bool(json.loads(payload).get("result") == [])
    except (ValueError, AttributeError):
        return False


class PacedRateLimiter(AIORateLimiter):
    """PTB's limiter (30 messages a second overall, 20 a minute per group) plus a gap of
    about a second between two messages to the same chat, private chats included; background
    messages to a group keep a wider gap, leaving room for answers to commands."""

    def __init__(self, gap: float = CHAT_GAP_SECONDS,
                 group_background_gap: float = GROUP_BACKGROUND_GAP_SECONDS) -> None:
        super().__init__(max_retries=0)  # a 429 goes back to the sender, which retries
        self.gap = gap
        self.group_background_gap = group_background_gap
        self._last: dict[str, float] = {}
        self._last_background: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        chat = data.get("chat_id")
        if chat is None or not endpoint.startswith("send"):
            return await super().process_request(callback, args, kwargs, endpoint, data,
                                                 rate_limit_args)
        key = str(chat)
        background = rate_limit_args == BACKGROUND
        if background and _is_group(chat):
            # Waited outside the chat's lock: an answer to a command may go meanwhile.
            wait = self._last_background.get(key, 0.0) + self.group_background_gap \
                - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            wait = self._last.get(key, 0.0) + self.gap - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                return await super().process_request(
                    callback, args, kwargs, endpoint, data,
                    None if background else rate_limit_args)
            finally:
                self._last[key] = time.monotonic()
                if background:
                    self._last_background[key] = self._last[key]


def _is_group(chat: object) -> bool:
    """Groups, supergroups and channels have negative ids; a person's chat a positive one."""
    try:
        return int(str(chat)) < 0
    except ValueError:
        return str(chat).startswith("@")  # a public channel's or group's @name
