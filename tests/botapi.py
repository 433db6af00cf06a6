"""A small, strict Telegram Bot API server on loopback, for tests (and by hand).

It speaks the shapes python-telegram-bot 22 parses: `/bot<token>/<method>` with form, JSON or
multipart bodies, answers `{"ok": true, "result": ...}` or `{"ok": false, "error_code": ...,
"description": ...}`. It is strict the way Telegram is:

* 401 for a wrong token, 404 for an unknown method;
* 400 for a text over 4096 characters (counted on the raw text, tags included: stricter than
  Telegram, which counts after parsing entities), an empty text, a caption over 1024, callback
  data over 64 bytes, an unknown chat, an edit that changes nothing;
* 429 with `parameters.retry_after` when a chat is sent a second message within
  `min_interval` seconds of the last one (1 s: Telegram's "about one message per second per
  chat"); a request to that chat before the `retry_after` has passed is counted in
  `early_retries` (a client that does not honour it) and refused again;
* `outage("refuse")` closes the listening socket (connections are refused), `outage("502")`
  answers 502 Bad Gateway, `outage(None)` is back to normal; a long poll in flight when the
  outage starts is answered 502;
* files a user sent: `getFile` answers a file's `file_path` (400 "file is too big" over the
  20 MB a bot may download, as Telegram), and `GET /file/bot<token>/<file_path>` serves its
  bytes; `cut_downloads(n, after=)` cuts the next `n` downloads after `after` bytes (the
  connection closed mid-body, Content-Length promising the rest), as a network would;
  `hold_downloads()` serves half of each download, then holds the rest until
  `release_downloads()` (a slow link, to stop a daemon in the middle of one).
* `unconfirm()` puts back the updates a client confirmed (as Telegram sends an update again
  when the offset that confirms it never reached it).

Test side (Python, or HTTP under `/test/...`): `inject_message()` / `press()` queue a user's
command, message (`reply_to=`: a reply to one of the bot's) or button press for `getUpdates`
(`press(..., forged=True)`: a press on a button the message does not carry, as a crafted
client could send); `inject_document()` / `inject_photo()` a user's file (a PDF, a photo in
its sizes, several in one media group), whose download the bot asks with getFile and the file
endpoint (`file_requests` lists the downloads asked); `sent()` lists what the bot sent
(messages with their edits, photos, documents), `answers` the callback answers, `calls` every
method called, `received` every Bot API request as it came (raw body, and parsed).

By hand: `python -m tests.botapi --port 8081 --token 123:abc --chat -1001` then point the daemon
at it with TELEGRAM_API_BASE_URL=http://127.0.0.1:8081.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
BOT_ID = 7_000_000_001
SEND_METHODS = {"sendMessage", "sendPhoto", "sendDocument"}
DOWNLOAD_LIMIT = 20 * 1024 * 1024  # what getFile lets a bot download


@dataclass
class StoredFile:
    """A file a user sent, as Telegram keeps it for the bot to download."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_size: int  # what updates say (a test may say more than `data` holds)
    file_path: str


@dataclass(frozen=True)
class Received:
    """One Bot API request, whatever its method or answer: what left the bot."""

    method: str
    body: bytes                       # raw, as it came over the socket
    params: dict[str, Any]            # parsed (form, JSON or multipart fields)
    files: dict[str, tuple[str, bytes]]  # multipart uploads: field -> (file name, bytes)


class ApiError(Exception):
    def __init__(self, code: int, description: str, **parameters: Any) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters


@dataclass
class Sent:
    """One message the bot sent, as the chat would show it now (after edits)."""

    chat_id: int
    message_id: int
    method: str
    text: str | None
    reply_markup: dict[str, Any] | None
    parse_mode: str | None = None
    caption: str | None = None
    file_name: str | None = None
    file_bytes: bytes = b""
    reply_to: int | None = None  # the message this one replies to (reply_parameters)
    at: float = field(default_factory=time.monotonic)
    edits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [button for row in rows for button in row]

    def as_message(self, chat: Mapping[str, Any], bot: Mapping[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"message_id": self.message_id, "date": int(time.time()),
                                   "chat": dict(chat), "from": dict(bot)}
        if self.text is not None:
            message["text"] = self.text
        if self.caption is not None:
            message["caption"] = self.caption
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            # As Telegram: a message shows only an inline keyboard (not a ForceReply).
            message["reply_markup"] = self.reply_markup
        if self.edits:
            message["edit_date"] = int(time.time())
        if self.method == "sendPhoto":
            message["photo"] = [{"file_id": f"photo-{self.message_id}",
                                 "file_unique_id": f"p{self.message_id}", "width": 800,
                                 "height": 1131, "file_size": len(self.file_bytes)}]
        if self.method == "sendDocument":
            message["document"] = {"file_id": f"doc-{self.message_id}",
                                   "file_unique_id": f"d{self.message_id}",
                                   "file_name": self.file_name or "file",
                                   "mime_type": "application/pdf",
                                   "file_size": len(self.file_bytes)}
        return message


class BotApi:
    """The server's state and rules; `serve()` puts it on 127.0.0.1."""

    def __init__(self, token: str, chats: Mapping[int, str] | None = None, *,
                 min_interval: float = 1.0, retry_after: int | None = None) -> None:
        self.token = token
        self.chats: dict[int, dict[str, Any]] = {}
        for chat_id, title in (chats or {}).items():
            self.add_chat(chat_id, title)
        self.min_interval = min_interval
        self.retry_after = retry_after  # None: the time left until the window has passed
        self.bot = {"id": BOT_ID, "is_bot": True, "first_name": "docagent test",
                    "username": "docagent_test_bot", "can_join_groups": True,
                    "can_read_all_group_messages": False, "supports_inline_queries": False}
        self.lock = threading.Condition()
        self.updates: list[dict[str, Any]] = []
        self.next_update_id = 1
        self.messages: list[Sent] = []
        self.next_message_id: dict[int, int] = {}
        self.answers: list[dict[str, Any]] = []
        self.calls: list[tuple[str, int | None, int]] = []  # (method, chat_id, http status)
        self.received: list[Received] = []
        self.last_send: dict[int, float] = {}
        self.blocked_until: dict[int, float] = {}
        self.early_retries = 0
        self.too_many = 0
        self.down: str | None = None
        self.down_generation = 0
        self.connections: set[socket.socket] = set()
        self.files: dict[str, StoredFile] = {}  # by file_id
        self.file_requests: list[str] = []  # file_path of each download asked, in order
        self.cuts: list[int] = []  # bytes served by each of the next downloads before a cut
        self.held: threading.Event | None = None  # set: held downloads go on
        self.confirmed: list[dict[str, Any]] = []  # updates forgotten after a client's offset
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.port = 0

    # --- test side ------------------------------------------------------------------------

    def add_chat(self, chat_id: int, title: str) -> None:
        kind = "private" if chat_id > 0 else "supergroup" if str(chat_id).startswith(
            "-100") else "group"
        chat: dict[str, Any] = {"id": chat_id, "type": kind}
        if kind == "private":
            chat["first_name"] = title
        else:
            chat["title"] = title
        self.chats[chat_id] = chat

    @staticmethod
    def user(user_id: int, name: str = "Claire") -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": name,
                "username": f"{name.lower()}{user_id}", "language_code": "fr"}

    def _push(self, update: dict[str, Any]) -> int:
        with self.lock:
            update_id = self.next_update_id
            self.next_update_id += 1
            self.updates.append({"update_id": update_id, **update})
            self.lock.notify_all()
            return update_id

    def inject_message(self, chat_id: int, user_id: int, text: str, *,
                       reply_to: int | None = None) -> int:
        """A user writes `text` (a command if it starts with /) in a chat; `reply_to`: as a
        reply to that message of the bot's (Telegram then sends the whole message replied to,
        as the chat shows it now)."""
        chat = self.chats.get(chat_id) or {"id": chat_id, "type": "group", "title": "?"}
        message: dict[str, Any] = {"message_id": self._new_message_id(chat_id),
                                   "date": int(time.time()), "chat": chat,
                                   "from": self.user(user_id), "text": text}
        if reply_to is not None:
            with self.lock:
                message["reply_to_message"] = self.find(chat_id, reply_to).as_message(
                    chat, self.bot)
        if text.startswith("/"):
            length = len(text.split()[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return self._push({"message": message})

    def _store_file(self, data: bytes, kind: str, ext: str, *, file_size: int | None,
                    file_unique_id: str | None) -> StoredFile:
        with self.lock:
            number = len(self.files) + 1
            unique = file_unique_id or f"U{kind[0]}{number}"
            stored = StoredFile(f"{kind}-{number}-{unique}", unique, data,
                                len(data) if file_size is None else file_size,
                                f"{kind}s/file_{number}.{ext}")
            self.files[stored.file_id] = stored
            return stored

    def _file_message(self, chat_id: int, user_id: int, media_group_id: str | None,
                      caption: str | None, **content: Any) -> tuple[int, int]:
        chat = self.chats.get(chat_id) or {"id": chat_id, "type": "group", "title": "?"}
        message_id = self._new_message_id(chat_id)
        message: dict[str, Any] = {"message_id": message_id, "date": int(time.time()),
                                   "chat": chat, "from": self.user(user_id), **content}
        if media_group_id is not None:
            message["media_group_id"] = media_group_id
        if caption is not None:
            message["caption"] = caption
        return self._push({"message": message}), message_id

    def inject_document(self, chat_id: int, user_id: int, data: bytes, *,
                        name: str = "scan.pdf", mime_type: str = "application/pdf",
                        file_size: int | None = None, file_unique_id: str | None = None,
                        media_group_id: str | None = None,
                        caption: str | None = None) -> tuple[int, int, StoredFile]:
        """A user sends a file as a document; `file_size` may claim more than `data` (a file
        over the download limit, without its bytes); the same `file_unique_id` is the same
        file sent again. Returns the update id, the message id and the file as stored."""
        ext = name.rpartition(".")[2] if "." in name else "bin"
        stored = self._store_file(data, "document", ext, file_size=file_size,
                                  file_unique_id=file_unique_id)
        update, message = self._file_message(
            chat_id, user_id, media_group_id, caption,
            document={"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                      "file_name": name, "mime_type": mime_type,
                      "file_size": stored.file_size})
        return update, message, stored

    def inject_photo(self, chat_id: int, user_id: int, data: bytes, *,
                     width: int = 1280, height: int = 1707, file_size: int | None = None,
                     media_group_id: str | None = None,
                     caption: str | None = None) -> tuple[int, int, StoredFile]:
        """A user sends a photo (Telegram's JPEG of it): the update lists it in three sizes,
        smallest first, as Telegram does; the two thumbnails are other bytes, so a bot that
        takes one of them instead of the largest gets a picture too small to read."""
        sizes = []
        for scale, thumb in ((16, True), (4, True), (1, False)):
            stored = self._store_file(data if not thumb else data[: max(1, len(data) // scale)],
                                      "photo", "jpg",
                                      file_size=file_size if not thumb else None,
                                      file_unique_id=None)
            sizes.append({"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                          "width": width // scale, "height": height // scale,
                          "file_size": stored.file_size})
        update, message = self._file_message(chat_id, user_id, media_group_id, caption,
                                             photo=sizes)
        return update, message, stored

    def cut_downloads(self, count: int, *, after: int = 4096) -> None:
        """The next `count` downloads stop after `after` bytes: the connection is closed with
        the rest of the promised body missing."""
        with self.lock:
            self.cuts.extend([after] * count)

    def hold_downloads(self) -> None:
        """Downloads from now on stop after half their bytes until `release_downloads()`."""
        with self.lock:
            self.held = threading.Event()

    def release_downloads(self) -> None:
        with self.lock:
            held, self.held = self.held, None
        if held is not None:
            held.set()

    def unconfirm(self) -> None:
        """Every confirmed update is pending again, in order."""
        with self.lock:
            self.updates = sorted(self.confirmed + self.updates, key=lambda u: u["update_id"])
            self.confirmed = []
            self.lock.notify_all()

    def downloads(self) -> list[str]:
        with self.lock:
            return list(self.file_requests)

    def press(self, chat_id: int, message_id: int, data: str, user_id: int, *,
              forged: bool = False) -> str:
        """A user presses the button carrying `data` under a message the bot sent; `forged`:
        any data, as a client that crafts its own callback queries could send."""
        sent = self.find(chat_id, message_id)
        if not forged and data not in [b.get("callback_data") for b in sent.buttons]:
            raise AssertionError(f"no button {data!r} under message {message_id}: "
                                 f"{sent.buttons}")
        query_id = f"cb{self.next_update_id}"
        self._push({"callback_query": {
            "id": query_id, "from": self.user(user_id), "chat_instance": f"ci{chat_id}",
            "data": data, "message": sent.as_message(self.chats[chat_id], self.bot)}})
        return query_id

    def find(self, chat_id: int, message_id: int) -> Sent:
        for sent in self.messages:
            if sent.chat_id == chat_id and sent.message_id == message_id:
                return sent
        raise KeyError(f"no message {message_id} in chat {chat_id}")

    def sent(self, chat_id: int | None = None) -> list[Sent]:
        with self.lock:
            return [m for m in self.messages if chat_id is None or m.chat_id == chat_id]

    def answer_to(self, query_id: str) -> dict[str, Any] | None:
        with self.lock:
            return next((a for a in self.answers if a["callback_query_id"] == query_id), None)

    def pending_updates(self) -> int:
        with self.lock:
            return len(self.updates)

    def outage(self, mode: str | None) -> None:
        """"refuse" (socket closed), "502" (Bad Gateway) or None (working)."""
        if mode not in (None, "refuse", "502"):
            raise ValueError(mode)
        with self.lock:
            previous, self.down = self.down, mode
            if mode is not None:
                self.down_generation += 1
                self.lock.notify_all()  # long polls in flight see it
        if mode == "refuse" and previous != "refuse":
            self._close_socket()
            for connection in list(self.connections):
                # Kept-alive connections too: a client must see the outage, not a stale pipe.
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        elif previous == "refuse" and mode != "refuse":
            self._open_socket(self.port)

    # --- server ---------------------------------------------------------------------------

    def serve(self, port: int = 0) -> BotApi:
        self._open_socket(port)
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _open_socket(self, port: int) -> None:
        api = self

        class Handler(_Handler):
            state = api

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="botapi")
        self.thread.start()

    def _close_socket(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def close(self) -> None:
        self.release_downloads()
        with self.lock:
            self.down = "closing"
            self.lock.notify_all()
        self._close_socket()

    # --- the Bot API ----------------------------------------------------------------------

    def _new_message_id(self, chat_id: int) -> int:
        with self.lock:
            number = self.next_message_id.get(chat_id, 0) + 1
            self.next_message_id[chat_id] = number
            return number

    def handle(self, token: str, method: str, params: dict[str, Any],
               files: dict[str, tuple[str, bytes]]) -> Any:
        if token != self.token:
            raise ApiError(401, "Unauthorized")
        handler = getattr(self, f"api_{method}", None)
        if handler is None:
            raise ApiError(404, "Not Found")
        return handler(params, files)

    def _chat(self, params: Mapping[str, Any]) -> int:
        try:
            chat_id = int(params["chat_id"])
        except (KeyError, ValueError):
            raise ApiError(400, "Bad Request: chat_id is empty") from None
        if chat_id not in self.chats:
            raise ApiError(400, "Bad Request: chat not found")
        return chat_id

    @staticmethod
    def _markup(params: Mapping[str, Any]) -> dict[str, Any] | None:
        raw = params.get("reply_markup")
        if raw in (None, ""):
            return None
        markup = json.loads(raw) if isinstance(raw, str) else raw
        for row in markup.get("inline_keyboard") or []:
            for button in row:
                if not button.get("text"):
                    raise ApiError(400, "Bad Request: text buttons are unallowed in the inline "
                                        "keyboard")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return dict(markup)

    @staticmethod
    def _text(params: Mapping[str, Any], key: str = "text", limit: int = MAX_TEXT) -> str | None:
        text = params.get(key)
        if text is None:
            return None
        if key == "text" and not str(text).strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(str(text)) > limit:
            raise ApiError(400, f"Bad Request: {'message' if key == 'text' else key} is too long")
        return str(text)

    def _pace(self, chat_id: int) -> None:
        """Telegram's flood control: about one message a second per chat."""
        now = time.monotonic()
        blocked = self.blocked_until.get(chat_id, 0.0)
        if now < blocked:
            self.early_retries += 1
            self.too_many += 1
            raise ApiError(429, f"Too Many Requests: retry after {int(blocked - now) + 1}",
                           retry_after=int(blocked - now) + 1)
        last = self.last_send.get(chat_id)
        if self.min_interval and last is not None and now - last < self.min_interval:
            wait = self.retry_after or int(self.min_interval - (now - last)) + 1
            self.blocked_until[chat_id] = now + wait
            self.too_many += 1
            raise ApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)

    def _send(self, method: str, params: Mapping[str, Any], *, text: str | None = None,
              caption: str | None = None, file: tuple[str, bytes] | None = None) -> Any:
        chat_id = self._chat(params)
        markup = self._markup(params)
        with self.lock:
            self._pace(chat_id)
            sent = Sent(chat_id=chat_id, message_id=0, method=method, text=text,
                        reply_markup=markup, parse_mode=params.get("parse_mode"),
                        caption=caption, file_name=file[0] if file else None,
                        file_bytes=file[1] if file else b"",
                        reply_to=_reply_to(params))
            number = self.next_message_id.get(chat_id, 0) + 1
            self.next_message_id[chat_id] = number
            sent.message_id = number
            self.messages.append(sent)
            self.last_send[chat_id] = time.monotonic()
            return sent.as_message(self.chats[chat_id], self.bot)

    def api_getFile(self, params: Mapping[str, Any], files: Any) -> Any:
        with self.lock:
            stored = self.files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if stored.file_size > DOWNLOAD_LIMIT:
            raise ApiError(400, "Bad Request: file is too big")
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "file_size": stored.file_size, "file_path": stored.file_path}

    def download(self, token: str,
                 file_path: str) -> tuple[bytes, int | None, threading.Event | None] | None:
        """The bytes of the file at `file_path`, where to cut them (None: whole), and the event
        its second half waits for (None: no wait); None when there is no such file."""
        if token != self.token:
            return None
        with self.lock:
            self.file_requests.append(file_path)
            stored = next((f for f in self.files.values() if f.file_path == file_path), None)
            if stored is None:
                return None
            cut = self.cuts.pop(0) if self.cuts else None
            return stored.data, cut, self.held

    def api_getMe(self, params: Mapping[str, Any], files: Any) -> Any:
        return self.bot

    def api_sendMessage(self, params: Mapping[str, Any], files: Any) -> Any:
        return self._send("sendMessage", params, text=self._text(params))

    def _file(self, params: Mapping[str, Any], files: Mapping[str, tuple[str, bytes]],
              key: str) -> tuple[str, bytes]:
        value = params.get(key)
        if isinstance(value, str) and value.startswith("attach://"):
            value = value[len("attach://"):]
        if key in files:
            return files[key]
        if isinstance(value, str) and value in files:
            return files[value]
        raise ApiError(400, f"Bad Request: there is no {key} in the request")

    def api_sendPhoto(self, params: Mapping[str, Any], files: Any) -> Any:
        photo = self._file(params, files, "photo")
        if not photo[1].startswith(b"\x89PNG") and not photo[1].startswith(b"\xff\xd8"):
            raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
        return self._send("sendPhoto", params, file=photo,
                          caption=self._text(params, "caption", MAX_CAPTION))

    def api_sendDocument(self, params: Mapping[str, Any], files: Any) -> Any:
        return self._send("sendDocument", params, file=self._file(params, files, "document"),
                          caption=self._text(params, "caption", MAX_CAPTION))

    def _edit(self, params: Mapping[str, Any], *, text: str | None) -> Any:
        chat_id = self._chat(params)
        try:
            sent = self.find(chat_id, int(params.get("message_id", 0)))
        except (KeyError, ValueError):
            raise ApiError(400, "Bad Request: message to edit not found") from None
        markup = self._markup(params)
        with self.lock:
            new_text = sent.text if text is None else text
            if new_text == sent.text and markup == sent.reply_markup:
                raise ApiError(400, "Bad Request: message is not modified: specified new "
                                    "message content and reply markup are exactly the same")
            sent.edits.append({"text": sent.text, "reply_markup": sent.reply_markup})
            sent.text, sent.reply_markup = new_text, markup
            if text is not None:
                sent.parse_mode = params.get("parse_mode")
            return sent.as_message(self.chats[chat_id], self.bot)

    def api_editMessageText(self, params: Mapping[str, Any], files: Any) -> Any:
        return self._edit(params, text=self._text(params))

    def api_editMessageReplyMarkup(self, params: Mapping[str, Any], files: Any) -> Any:
        return self._edit(params, text=None)

    def api_answerCallbackQuery(self, params: Mapping[str, Any], files: Any) -> Any:
        if len(str(params.get("text") or "")) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        with self.lock:
            self.answers.append({"callback_query_id": params.get("callback_query_id"),
                                 "text": params.get("text"),
                                 "show_alert": params.get("show_alert") in (True, "true")})
        return True

    def api_getUpdates(self, params: Mapping[str, Any], files: Any) -> Any:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + timeout
        with self.lock:
            generation = self.down_generation
            if offset:
                # Confirmed when the request comes: Telegram forgets every update before the
                # offset.
                self.confirmed += [u for u in self.updates if u["update_id"] < offset]
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
            while True:
                if self.down_generation != generation:
                    raise ApiError(502, "Bad Gateway")
                ready = [u for u in self.updates if u["update_id"] >= offset]
                if ready:
                    return ready[:limit]
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self.lock.wait(left)

    def api_deleteWebhook(self, params: Mapping[str, Any], files: Any) -> Any:
        return True

    def api_getWebhookInfo(self, params: Mapping[str, Any], files: Any) -> Any:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}

    def api_setMyCommands(self, params: Mapping[str, Any], files: Any) -> Any:
        commands = json.loads(params.get("commands") or "[]")
        self.commands = [c["command"] for c in commands]
        return True

    def api_getMyCommands(self, params: Mapping[str, Any], files: Any) -> Any:
        return [{"command": c, "description": c} for c in getattr(self, "commands", [])]

    def api_deleteMyCommands(self, params: Mapping[str, Any], files: Any) -> Any:
        self.commands = []
        return True

    def api_close(self, params: Mapping[str, Any], files: Any) -> Any:
        return True

    def api_logOut(self, params: Mapping[str, Any], files: Any) -> Any:
        return True


class _Handler(BaseHTTPRequestHandler):
    state: BotApi
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.state.connections.add(self.connection)

    def finish(self) -> None:
        self.state.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request line holds the token: nothing of it on the test's output

    def _reply(self, status: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client went away (a long poll it cancelled)

    def _params(self) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]], bytes]:
        url = urlsplit(self.path)
        params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        ctype = self.headers.get("Content-Type") or ""
        files: dict[str, tuple[str, bytes]] = {}
        if ctype.startswith("application/json") and body:
            params.update(json.loads(body))
        elif ctype.startswith("application/x-www-form-urlencoded"):
            params.update({k: v[-1] for k, v in parse_qs(body.decode("utf-8"),
                                                          keep_blank_values=True).items()})
        elif ctype.startswith("multipart/form-data"):
            message = BytesParser(policy=policy.HTTP).parsebytes(
                b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body)
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True) or b""
                filename = part.get_filename()
                if filename is not None:
                    files[str(name)] = (filename, payload)
                else:
                    params[str(name)] = payload.decode("utf-8")
        return params, files, url.query.encode("latin-1") + b"\n" + body

    def _serve_file(self, path: str) -> None:
        """GET /file/bot<token>/<file_path>: the bytes, or a cut body (see `cut_downloads`)."""
        _, _, token_and_path = path.partition("/file/bot")
        token, _, file_path = token_and_path.partition("/")
        found = self.state.download(token, file_path)
        if found is None:
            self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        data, cut, held = found
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            if held is not None and cut is None:
                self.wfile.write(data[:len(data) // 2])
                self.wfile.flush()
                held.wait(120)
                self.wfile.write(data[len(data) // 2:])
                return
            if cut is None:
                self.wfile.write(data)
                return
            self.wfile.write(data[:cut])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            self.close_connection = True

    def _serve(self) -> None:
        api = self.state
        path = urlsplit(self.path).path
        if path.startswith("/file/bot"):
            if api.down == "502":
                self._reply(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})
            else:
                self._serve_file(path)
            return
        params, files, raw = self._params()
        if path.startswith("/test/"):
            self._reply(200, {"ok": True, "result": _test_endpoint(api, path, params)})
            return
        with api.lock:
            api.received.append(Received(path.rsplit("/", 1)[-1], raw, params, files))
        if api.down == "502":
            self._reply(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})
            return
        parts = path.split("/")
        if len(parts) != 3 or not parts[1].startswith("bot"):
            self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        token, method = parts[1][3:], parts[2]
        chat = params.get("chat_id")
        try:
            result = api.handle(token, method, params, files)
        except ApiError as error:
            body: dict[str, Any] = {"ok": False, "error_code": error.code,
                                    "description": error.description}
            if error.parameters:
                body["parameters"] = error.parameters
            with api.lock:
                api.calls.append((method, _int(chat), error.code))
            self._reply(error.code, body)
            return
        with api.lock:
            api.calls.append((method, _int(chat), 200))
        self._reply(200, {"ok": True, "result": result})

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()


def _reply_to(params: Mapping[str, Any]) -> int | None:
    """The message a send replies to: `reply_parameters` (JSON) or `reply_to_message_id`."""
    raw = params.get("reply_parameters")
    if isinstance(raw, str) and raw:
        raw = json.loads(raw)
    if isinstance(raw, Mapping) and raw.get("message_id") is not None:
        return int(raw["message_id"])
    return _int(params.get("reply_to_message_id"))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _test_endpoint(api: BotApi, path: str, params: Mapping[str, Any]) -> Any:
    if path == "/test/message":
        reply_to = params.get("reply_to")
        return api.inject_message(int(params["chat_id"]), int(params["user_id"]),
                                  str(params["text"]),
                                  reply_to=int(reply_to) if reply_to else None)
    if path == "/test/press":
        return api.press(int(params["chat_id"]), int(params["message_id"]),
                         str(params["data"]), int(params["user_id"]),
                         forged=params.get("forged") in ("1", "true", True))
    if path == "/test/outage":
        api.outage(params.get("mode") or None)
        return True
    if path == "/test/sent":
        return [{"chat_id": m.chat_id, "message_id": m.message_id, "method": m.method,
                 "text": m.text, "caption": m.caption, "reply_markup": m.reply_markup,
                 "reply_to": m.reply_to, "edits": len(m.edits)} for m in api.sent()]
    if path == "/test/answers":
        return api.answers
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", required=True)
    parser.add_argument("--chat", type=int, action="append", default=[])
    args = parser.parse_args()
    api = BotApi(args.token, {c: f"chat {c}" for c in args.chat}).serve(args.port)
    print(f"Bot API on {api.base_url} (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        api.close()


if __name__ == "__main__":
    main()
