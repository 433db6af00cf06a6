"""The loopback Bot API server is as strict as Telegram where it matters, seen through PTB 22."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter

from tests.botapi import BotApi

TOKEN = "123456:TEST-token_abcdefghijklmnopqrstuvwxyz"
GROUP = -1001234


@pytest.fixture
def api() -> Iterator[BotApi]:
    server = BotApi(TOKEN, {GROUP: "Cabinet"}, min_interval=0).serve()
    yield server
    server.close()


def bot(api: BotApi, token: str = TOKEN) -> Bot:
    return Bot(token, base_url=f"{api.base_url}/bot")


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_get_me_send_edit_and_answer(api: BotApi) -> None:
    async def go() -> None:
        async with bot(api) as b:
            assert b.username == "docagent_test_bot"
            markup = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="x:1")]])
            message = await b.send_message(GROUP, "hello", reply_markup=markup)
            assert message.message_id == 1 and message.chat.id == GROUP
            edited = await b.edit_message_text("done", chat_id=GROUP, message_id=1)
            assert edited.text == "done"
            with pytest.raises(BadRequest, match=r"(?i)not modified"):
                await b.edit_message_text("done", chat_id=GROUP, message_id=1)
            assert await b.answer_callback_query("cb1", text="ok")
    run(go())
    [sent] = api.sent(GROUP)
    assert sent.text == "done" and sent.reply_markup is None and len(sent.edits) == 1
    assert api.answers == [{"callback_query_id": "cb1", "text": "ok", "show_alert": False}]


def test_limits_are_enforced(api: BotApi) -> None:
    async def go() -> None:
        async with bot(api) as b:
            with pytest.raises(BadRequest, match=r"(?i)too long"):
                await b.send_message(GROUP, "x" * 4097)
            await b.send_message(GROUP, "x" * 4096)
            fat = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="y" * 65)]])
            with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
                await b.send_message(GROUP, "hi", reply_markup=fat)
            with pytest.raises(BadRequest, match=r"(?i)chat not found"):
                await b.send_message(-999, "hi")
        with pytest.raises(InvalidToken):
            async with bot(api, "123456:wrong") as b:
                pass
    run(go())
    assert [m.text for m in api.sent()] == ["x" * 4096]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_flood_control_answers_429_with_retry_after(api: BotApi) -> None:
    api.min_interval = 5.0

    async def go() -> None:
        async with bot(api) as b:
            await b.send_message(GROUP, "one")
            with pytest.raises(RetryAfter) as caught:
                await b.send_message(GROUP, "two")
            assert caught.value._retry_after.total_seconds() >= 1
            with pytest.raises(RetryAfter):
                await b.send_message(GROUP, "too early")
    run(go())
    assert [m.text for m in api.sent()] == ["one"]
    assert api.early_retries == 1


def test_long_poll_gets_injected_updates_and_honours_offset(api: BotApi) -> None:
    async def go() -> None:
        async with bot(api) as b:
            assert await b.get_updates(timeout=0) == ()
            api.inject_message(GROUP, 42, "/status")
            [update] = await b.get_updates(timeout=5)
            assert update.message.text == "/status"
            assert update.message.entities[0].type == "bot_command"
            again = await b.get_updates(offset=update.update_id + 1, timeout=0)
            assert again == ()
            message = await b.send_message(GROUP, "pick", reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("A", callback_data="f:abc:0")]]))
            loop = asyncio.get_running_loop()
            loop.call_later(0.3, api.press, GROUP, message.message_id, "f:abc:0", 42)
            [press] = await b.get_updates(offset=update.update_id + 1, timeout=5)
            assert press.callback_query.data == "f:abc:0"
            assert press.callback_query.from_user.id == 42
            assert press.callback_query.message.message_id == message.message_id
    run(go())


def test_photo_and_document_are_multipart(api: BotApi) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 100

    async def go() -> None:
        async with bot(api) as b:
            await b.send_photo(GROUP, png, caption="page 1")
            await b.send_document(GROUP, b"%PDF-1.4 test", filename="scan.pdf")
            with pytest.raises(BadRequest, match=r"(?i)image_process_failed"):
                await b.send_photo(GROUP, b"not an image")
    run(go())
    photo, document = api.sent(GROUP)
    assert photo.method == "sendPhoto" and photo.file_bytes == png and photo.caption == "page 1"
    assert document.file_name == "scan.pdf" and document.file_bytes == b"%PDF-1.4 test"


@pytest.mark.parametrize("mode", ["refuse", "502"])
def test_outage_and_back(api: BotApi, mode: str) -> None:
    async def go() -> None:
        async with bot(api) as b:
            await b.send_message(GROUP, "before")
            api.outage(mode)
            with pytest.raises(NetworkError):
                await b.send_message(GROUP, "during")
            api.outage(None)
            await b.send_message(GROUP, "after")
    run(go())
    assert [m.text for m in api.sent()] == ["before", "after"]
