"""The Telegram pieces on their own: callback data, long texts, grouping, errors, redaction."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from telegram import Update
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.request import HTTPXRequest

from agent import logs
from agent.ledger import FILE_NAME, Ledger, Prices
from agent.notify.messages import MAX_TEXT, fit, render_filed_group
from agent.notify.telegram import keyboards
from agent.notify.telegram.inbox import InboxBot, NotWrittenDown
from agent.notify.telegram.sender import batches, transient, what_to_fix
from agent.notify.telegram.transport import LedgerRequest
from agent.ops import telegram_intake
from agent.store import Store
from tests.botapi import BotApi

TOKEN = "7000000001:AAH-unit_secret_Token_abcdefghijklmnop"
DOC = "0123456789abcdef"


def test_callback_data_round_trips_and_stays_small() -> None:
    for action, candidate in (("f", 0), ("f", 4), ("n", None), ("o", None), ("r", None),
                              ("s", None), ("p", 0), ("p", 4)):
        data = keyboards.encode(action, DOC, candidate)
        assert len(data.encode()) <= 64
        assert keyboards.decode(data) == keyboards.Press(action, DOC, candidate)
    for junk in (None, "", "x:abc", "f:abc", "n:abc:1", "f:abc:x", "f:a-b:1", "o:abc:1:2",
                 "p:abc", "s:abc:1", "p:abc:-1", "p:abc:1000", "p:abc:P0042"):
        assert keyboards.decode(junk) is None
    with pytest.raises(ValueError):
        keyboards.encode("f", "x" * 70, 1)


def test_review_keyboard_carries_ids_not_names() -> None:
    payload = {"document_id": DOC, "match": {"candidates": [
        {"id": "P006", "last_name": "Legrand", "first_name": "Paul", "birth_date": "1970-05-05"},
        {"id": "P007", "last_name": "LEGRAND", "first_name": "Paul", "birth_date": None}]}}
    full = keyboards.review_keyboard(payload, "full").to_dict()["inline_keyboard"]
    assert [[b["text"] for b in row] for row in full] == [
        ["LEGRAND Paul, 1970-05-05"], ["LEGRAND Paul"], ["None of them", "Open"],
        ["Another patient…"]]
    assert [b["callback_data"] for row in full for b in row] == [
        f"f:{DOC}:0", f"f:{DOC}:1", f"n:{DOC}", f"o:{DOC}", f"s:{DOC}"]
    minimal = keyboards.review_keyboard(payload, "minimal").to_dict()["inline_keyboard"]
    assert [[b["text"] for b in row] for row in minimal] == [
        ["P.L. 1970 #P006"], ["P.L. #P007"], ["None of them"], ["Another patient…"]]


def test_long_texts_are_trimmed_to_telegrams_limit() -> None:
    text = "\n".join(f"line {i} " + "x" * 80 for i in range(200))
    short = fit(text)
    assert len(short) <= MAX_TEXT and short.endswith("(trimmed: see the server for the rest)")
    assert fit("short") == "short"
    payloads = [{"document_id": f"{i:016x}", "original_name": f"scan-{i:03d}-" + "y" * 40 +
                 ".pdf", "document_type": "lab-result",
                 "patient": {"id": f"P{i}", "last_name": "Martin", "first_name": "Hélène"}}
                for i in range(200)]
    group = render_filed_group(payloads)
    assert len(group) <= MAX_TEXT and group.startswith("200 documents filed:")
    listed = group.count("\n- ")
    assert 10 < listed < 200 and group.endswith(f"… and {200 - listed} more (/status)")


def _rows(kinds: list[str]) -> list[sqlite3.Row]:
    db = sqlite3.connect(":memory:")
    db.row_factory = sqlite3.Row
    db.execute("CREATE TABLE outbox (id INTEGER, kind TEXT, document_id TEXT, payload TEXT)")
    for number, kind in enumerate(kinds, 1):
        db.execute("INSERT INTO outbox VALUES (?, ?, ?, ?)",
                   (number, kind, f"{number:016x}", json.dumps({"original_name": "a.pdf"})))
    return db.execute("SELECT * FROM outbox ORDER BY id").fetchall()


def test_consecutive_filed_rows_are_grouped_and_the_order_kept() -> None:
    got = batches(_rows(["filed", "filed", "filed", "review", "filed", "failed", "filed",
                         "filed"]), "full")
    assert [(b.kind, b.ids) for b in got] == [
        ("filed", [1, 2, 3]), ("review", [4]), ("filed", [5]), ("failed", [6]),
        ("filed", [7, 8])]
    assert got[0].text.startswith("3 documents filed:") and got[0].markup is None
    assert got[1].markup is not None and got[3].markup is not None


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_which_errors_are_retried() -> None:
    assert transient(NetworkError("boom")) and transient(TimedOut()) and transient(RetryAfter(3))
    assert transient(TimeoutError())
    assert not transient(BadRequest("Chat not found")) and not transient(Forbidden("kicked"))
    assert not transient(ChatMigrated(-1009))
    assert "add the bot to the chat" in what_to_fix(BadRequest("Chat not found"), -5)
    assert "take -5 out of TELEGRAM_CHAT_IDS" in what_to_fix(Forbidden("bot was kicked"), -5)
    assert "put -1009 in TELEGRAM_CHAT_IDS" in what_to_fix(ChatMigrated(-1009), -5)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    out = io.StringIO()
    logs.setup(None, "DEBUG", stream=out)
    yield out
    logs.setup(None, "INFO", stream=None)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


def test_the_token_is_redacted_from_messages_arguments_and_tracebacks(
        captured: io.StringIO) -> None:
    logs.redact(TOKEN)
    log = logs.get_logger("test")
    log.info("calling https://api.telegram.org/bot%s/getMe", TOKEN)
    log.info(f"plain https://api.telegram.org/bot{TOKEN}/getMe")
    try:
        raise RuntimeError(f"failed at /bot{TOKEN}/sendMessage")
    except RuntimeError:
        log.exception("send failed")
    text = captured.getvalue()
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    assert text.count("/bot<token>/") == 3 and "RuntimeError" in text


def test_httpx_request_lines_are_redacted_even_when_let_through(
        captured: io.StringIO) -> None:
    """httpx logs each URL at INFO: routed through our handlers, the token is replaced."""
    api = BotApi(TOKEN).serve()
    try:
        logs.redact(TOKEN)
        logs.adopt("httpx", logging.INFO)  # louder than the daemon ever sets it
        httpx.post(f"{api.base_url}/bot{TOKEN}/getMe", timeout=10)
    finally:
        api.close()
    text = captured.getvalue()
    assert "HTTP Request: POST" in text and "/bot<token>/getMe" in text
    assert TOKEN not in text


def test_every_bot_api_call_leaves_a_ledger_line_but_an_idle_poll(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list[tuple[int, bytes] | BaseException] = [
        (200, b'{"ok":true,"result":{"message_id":1}}'),  # sendMessage
        (200, b'{"ok":true,"result":[]}'),  # getUpdates with nothing: no line
        (200, b'{"ok":true,"result":[{"update_id":1}]}'),  # getUpdates with an update
        (403, b'{"ok":false}'),  # sendMessage refused
        asyncio.CancelledError(),  # getUpdates cut short by our shutdown: no line
        httpx.ConnectError("down"),  # sendPhoto
    ]

    async def answer(self: object, *args: object, **kwargs: object) -> tuple[int, bytes]:
        got = answers.pop(0)
        if isinstance(got, BaseException):
            raise got
        return got

    monkeypatch.setattr(HTTPXRequest, "do_request", answer)
    request = LedgerRequest(Ledger(tmp_path, Prices(per_unit={("telegram", "message"): 0.5})))
    base = f"https://api.telegram.org/bot{TOKEN}/"

    async def calls() -> None:
        for method in ("sendMessage", "getUpdates", "getUpdates", "sendMessage", "getUpdates",
                       "sendPhoto"):
            with contextlib.suppress(BaseException):
                await request.do_request(base + method, "POST")

    asyncio.run(calls())
    text = (tmp_path / FILE_NAME).read_text()
    assert TOKEN not in text
    got = [json.loads(line) for line in text.splitlines()]
    assert [(e["operation"], e["outcome"], e.get("status"), e.get("error"), e["units"],
             e["cost"]) for e in got] == [
        ("sendMessage", "ok", 200, None, {"message": 1}, 0.5),
        ("getUpdates", "ok", 200, None, {"call": 1}, 0.0),
        ("sendMessage", "error", 403, None, {"message": 1}, 0.5),
        ("sendPhoto", "error", None, "ConnectError", {"message": 1}, 0.5)]


def test_the_inbox_replays_an_unfinished_upload_a_few_times_then_gives_it_up(
        local_site: tuple[Any, Store], caplog: pytest.LogCaptureFixture) -> None:
    _, store = local_site
    seven = json.dumps({"update_id": 7, "message": {"message_id": 31, "chat": {"id": -1001},
                                                    "from": {"id": 4242}}})
    telegram_intake.keep(store, [(7, "-1001/31", seven), (8, "-1001/32", '{"update_id": 8}')])
    telegram_intake.keep(store, [(7, "-1001/31", '{"update_id": 7, "again": 1}')])  # re-sent
    assert not telegram_intake.handled(store, 7, "-1001/31")
    telegram_intake.finish(store, 8)
    assert telegram_intake.handled(store, 8, "-1001/32")
    for _ in range(telegram_intake.REPLAYS):
        assert telegram_intake.to_replay(store) == [(7, seven)]
    with caplog.at_level(logging.ERROR):
        assert telegram_intake.to_replay(store) == []
    assert ("(update 7, message 31 in chat -1001 from user 4242) could not be handled after 3 "
            "starts: given up") in caplog.text
    assert telegram_intake.handled(store, 7, "-1001/31")
    assert store.read("SELECT COUNT(*) FROM telegram_inbox WHERE update_json IS NOT NULL"
                      )[0][0] == 0  # a handled update's content goes at once


def test_an_update_id_telegram_picks_again_is_a_new_upload(local_site: tuple[Any, Store]) -> None:
    """After a week without updates Telegram may pick ids afresh: an id remembered for
    another message must not pass a new file for handled."""
    _, store = local_site
    telegram_intake.keep(store, [(8, "-1001/32", '{"update_id": 8}')])
    telegram_intake.finish(store, 8)
    assert not telegram_intake.handled(store, 8, "-1001/77")
    telegram_intake.keep(store, [(8, "-1001/77", '{"update_id": 8, "new": 1}')])
    assert telegram_intake.to_replay(store) == [(8, '{"update_id": 8, "new": 1}')]
    # Handled ids are forgotten after a week, at the next finish.
    with store.write() as conn:
        conn.execute("UPDATE telegram_inbox SET done_at = '2026-01-01T00:00:00.000+00:00'")
    telegram_intake.keep(store, [(9, "-1001/78", "{}")])
    telegram_intake.finish(store, 9)
    assert [r[0] for r in store.read("SELECT update_id FROM telegram_inbox")] == [9]


def test_updates_not_written_down_are_not_handed_on_and_stay_unconfirmed() -> None:
    api = BotApi(TOKEN, {-1001: "Cabinet"}).serve()
    kept: list[int] = []
    failing = [True]

    async def keep(updates: Sequence[Update]) -> None:
        if failing[0]:
            raise sqlite3.OperationalError("database or disk is full")
        kept.extend(u.update_id for u in updates)

    async def poll() -> None:
        bot = InboxBot(TOKEN, base_url=f"{api.base_url}/bot", keep=keep)
        async with bot:
            with pytest.raises(NotWrittenDown, match="disk is full"):
                await bot.get_updates(timeout=0)
            failing[0] = False
            [update] = await bot.get_updates(timeout=0)
            assert kept == [update.update_id]
            await bot.get_updates(offset=update.update_id + 1, timeout=0)

    try:
        api.inject_message(-1001, 4242, "/status")
        asyncio.run(poll())
        assert api.pending_updates() == 0 and len(api.confirmed) == 1
    finally:
        api.close()


def test_the_reason_file_of_a_refused_upload_stays_in_failed_whatever_its_name(
        local_site: tuple[Any, Store]) -> None:
    settings, store = local_site
    for n, name in enumerate(["../../outside.pdf", "a/b.pdf", "..", "scan.pdf", "scan.pdf"]):
        upload = telegram_intake.Upload(f"f{n}", f"u{n}", name, "application/pdf",
                                        30 * 1024 * 1024, 4242, -1001, 100 + n)
        claim = telegram_intake.refuse(settings, store, upload, telegram_intake.OVER_TELEGRAM)
        assert claim.refused and not claim.again
        again = telegram_intake.refuse(settings, store, upload, telegram_intake.OVER_TELEGRAM)
        assert again.again  # the same upload once
    written = sorted(p.name for p in settings.failed.iterdir())
    assert written == ["_.._outside.pdf.reason.json", "a_b.pdf.reason.json",
                       "document.reason.json", "scan (2).pdf.reason.json",
                       "scan.pdf.reason.json"]
    assert not (settings.home.parent / "outside.pdf.reason.json").exists()
