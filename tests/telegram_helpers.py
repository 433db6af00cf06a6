"""Shared by the Telegram tests: the loopback Bot API, a real `docagent run` pointed at it."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import pdfgen
from tests.botapi import BotApi, Sent
from tests.conftest import Spool
from tests.daemonproc import Running, documents, drop, states
from tests.pdfgen import report

TOKEN = "7000000001:AAH-docagent_secret_Token_0123456789xyz"
GROUP = -1001234567890
STAFF = 4242
STRANGER = 6666


@pytest.fixture
def botapi() -> Iterator[BotApi]:
    api = BotApi(TOKEN, {GROUP: "Cabinet"}).serve()
    yield api
    api.close()


def telegram_env(api: BotApi, *, chat: int = GROUP, **extra: str) -> dict[str, str]:
    """The settings that point a docagent at the loopback Bot API: its notifications go to
    `chat`, and STAFF may command it."""
    return {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_IDS": str(chat),
            "TELEGRAM_ALLOWED_USER_IDS": str(STAFF), "TELEGRAM_API_BASE_URL": api.base_url,
            **extra}


def wait_for_bot(run: Running) -> None:
    run.wait_for(lambda: "Telegram bot @docagent_test_bot ready" in run.output(), 30,
                 "the bot to reach the Bot API")


@pytest.fixture
def tg(daemon: Callable[..., Running], botapi: BotApi) -> Callable[..., Running]:
    """Like `daemon`, pointed at the loopback Bot API; returns once the bot has reached it
    (unless the API is down or the token is another)."""

    def start(**env: str) -> Running:
        settings = {**telegram_env(botapi), **env}
        run = daemon(**settings)
        if botapi.down is None and settings["TELEGRAM_BOT_TOKEN"] == TOKEN:
            wait_for_bot(run)
        return run

    return start


def ask_bot(api: BotApi, run: Running, command: str, count: int = 1, *,
            chat: int = GROUP) -> list[Sent]:
    """Send `command` as staff in `chat`; the bot's next `count` messages are its answer."""
    before = len(api.sent(chat))
    api.inject_message(chat, STAFF, command)
    run.wait_for(lambda: len(api.sent(chat)) >= before + count, 60, f"the answer to {command}")
    time.sleep(0.3)  # nothing more should come; checked by the caller's count
    return api.sent(chat)[before:]


def filed_pdf(tmp: Path, name: str, tag: str = "") -> Path:
    return pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975", tag)], tmp / name)


def review_pdf(tmp: Path, name: str, tag: str = "") -> Path:
    # Two LEGRAND Paul on record, neither born on that day: a person decides.
    return pdfgen.text_pdf([report("LEGRAND", "Paul", "01/02/1976", tag)], tmp / name)


def bad_pdf(tmp: Path, name: str) -> Path:
    path = tmp / name
    path.write_bytes(f"{name} is not a PDF at all\n".encode() * 20)
    return path


def drop_and_wait(spool: Spool, pdf: Path, state: str, run: Running) -> str:
    drop(pdf, spool.home / "incoming")
    run.wait_for(lambda: states(spool).get(pdf.name) == state, 60, f"{pdf.name} to be {state}")
    return doc_id(spool, pdf.name)


def doc_id(spool: Spool, name: str) -> str:
    return documents(spool.home)[name].id


def outbox(spool: Spool) -> list[dict[str, Any]]:
    with sqlite3.connect(spool.home / "state.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM outbox ORDER BY id")]


def all_sent(spool: Spool) -> bool:
    rows = outbox(spool)
    return bool(rows) and all(r["sent_at"] for r in rows)


def message_about(api: BotApi, document_id: str, chat: int = GROUP) -> list[Sent]:
    return [m for m in api.sent(chat) if f"[{document_id}]" in (m.text or "")]


def audit_lines(spool: Spool) -> list[dict[str, Any]]:
    """The audit log's entries so far; none before the daemon has written its first (a test
    waiting for an entry may look before the file exists)."""
    path = spool.logs / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


__all__ = ["GROUP", "STAFF", "STRANGER", "TOKEN", "all_sent", "ask_bot", "audit_lines",
           "bad_pdf", "botapi", "doc_id", "drop", "drop_and_wait", "filed_pdf", "message_about",
           "outbox", "review_pdf", "states", "telegram_env", "tg", "wait_for_bot"]
