"""The Telegram channel: a file a member of staff sent to the bot, taken into the spool.

The bot (agent.notify.telegram.uploads) lets through only an allowed user in an allowed chat,
then asks here what to do with each file of the message (a PDF or an image sent as a
document, or a photo, of which the largest size is taken):

- `judge`: whether it is taken at all, before a byte is downloaded: a type docagent does not
  read, a size over the 20 MB the Bot API lets a bot download, or over `DOCAGENT_MAX_BYTES`,
  is answered and not downloaded (its bytes stay on the sender's phone and in the chat);
- `take`: its bytes, streamed as they come into the same claim as a dropped file
  (`spool.claim_stream`, 1 MiB pieces: memory does not grow with the file), with
  `Origin.telegram(...)` as where it came from. A download cut by the network is tried again
  from the start (the half-written copy is removed by the claim, nothing is recorded), up to
  `ATTEMPTS` times.

A file refused for its size is recorded like a mail attachment over the limit
(`refuse`): a document failed as `upload-too-large`, announced and audited like any failure,
its bytes left in the chat; the sender is answered with its id. A file of another type is
answered and audited (`telegram-not-taken`) but not recorded, as a mail's other attachments are
left in their message: it is not a document, and the chat keeps it.

Nothing lost: python-telegram-bot tells Telegram an update was received (the next getUpdates'
offset) before its handler runs, and Telegram then forgets it. So each upload's update is first
written down here (`keep`, in the `telegram_inbox` table), before the bot asks for more; it is
marked handled (`finish`) once the sender has had an answer, and one the daemon stopped in the
middle of (a crash, `kill -9`, a stop during a download) is handled again at the next start
(`to_replay`), at most `REPLAYS` times.

Nothing twice: the arrival is keyed by the chat, the message and the file's
`file_unique_id` (Telegram's id of the bytes, the same for every bot and every time). The same
message handled again (Telegram sent the update again after a restart) finds its document and
downloads nothing; the same file sent in another message is another arrival of the same bytes,
a `duplicate`, as the claim judges by hash.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agent import spool
from agent.config import Settings
from agent.errors import UploadTooLarge
from agent.i18n import N_
from agent.logs import get_logger
from agent.ops.mail import DOCUMENT_EXTENSIONS, DOCUMENT_TYPES, GENERIC_TYPES, mib
from agent.origin import Origin
from agent.store import Store, now_iso

log = get_logger("telegram")

# "Bots can currently download files of up to 20 MB in size" (Bot API, getFile).
BOT_API_DOWNLOAD_LIMIT = 20 * 1024 * 1024
ATTEMPTS = 5  # a cut download is tried again after 1, 2, 4, 8 s
FIRST_WAIT = 1.0

REPLAYS = 3  # starts that try an unfinished upload again before it is given up (and logged)
# Telegram keeps an update it was not told of for 24 hours: a handled one's id is kept longer,
# so that the same update sent again is known.
REMEMBER_HANDLED = timedelta(days=7)

# Why a file is not downloaded (`judge`).
NOT_A_DOCUMENT = "not-a-document"
OVER_TELEGRAM = "over-telegram-limit"
OVER_MAX_BYTES = "over-max-bytes"


class Cut(Exception):
    """The download stopped before its end (the network, Telegram): worth trying again."""


@dataclass(frozen=True)
class Upload:
    """One file of a staff member's message to the bot."""

    file_id: str
    file_unique_id: str
    name: str  # the file's own name, or `photo-<message id>.jpg` for a photo
    mime_type: str | None
    size: int | None  # as the update says (Telegram knows it; may be missing)
    user_id: int
    chat_id: int
    message_id: int

    @property
    def key(self) -> str:
        return f"telegram:{self.chat_id}/{self.message_id}/{self.file_unique_id}"

    @property
    def origin(self) -> Origin:
        return Origin.telegram(user_id=self.user_id, chat_id=self.chat_id,
                               message_id=self.message_id)


def is_document(mime_type: str | None, name: str) -> bool:
    """A file docagent takes: a PDF or an image it converts, by its type or, for a generic
    type, by its name."""
    ext = name.rpartition(".")[2].lower() if "." in name else ""
    if mime_type in DOCUMENT_TYPES:
        return True
    return (mime_type is None or mime_type in GENERIC_TYPES) and ext in DOCUMENT_EXTENSIONS


def limit(settings: Settings) -> int:
    """The most bytes a download may bring."""
    return min(settings.max_bytes, BOT_API_DOWNLOAD_LIMIT)


def judge(settings: Settings, upload: Upload) -> str | None:
    """Why this file is not downloaded, or None when it is to be."""
    if not is_document(upload.mime_type, upload.name):
        return NOT_A_DOCUMENT
    if upload.size is not None and upload.size > BOT_API_DOWNLOAD_LIMIT:
        return OVER_TELEGRAM
    if upload.size is not None and upload.size > settings.max_bytes:
        return OVER_MAX_BYTES
    return None


def take(settings: Settings, store: Store, upload: Upload,
         download: Callable[[], Iterable[bytes]], *,
         sleep: Callable[[float], None] = time.sleep) -> spool.Claim:
    """Download `upload` into the spool (see the module docstring). `download()` starts the
    download anew and yields its bytes, raising Cut when it stops short. Raises Cut after
    `ATTEMPTS` cuts, spool.OverLimit when more bytes came than `limit` (nothing recorded
    either way)."""
    earlier = spool.received(store, upload.key)
    if earlier is not None:
        return spool.Claim(earlier.id, None, upload.name, again=True)
    wait = FIRST_WAIT
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return spool.claim_stream(settings, store, download(), upload.name,
                                      key=upload.key, origin=upload.origin,
                                      limit=limit(settings))
        except Cut as cut:
            if attempt == ATTEMPTS:
                raise
            log.warning("download of %r from Telegram cut (%s): try %d of %d in %.0f s",
                        upload.name, cut, attempt + 1, ATTEMPTS, wait)
            sleep(wait)
            wait *= 2
    raise AssertionError("unreachable")


def downloads_between(store: Store, start: str, end: str) -> int:
    """Files that came by Telegram in [start, end) (each arrival, duplicates included; not
    those refused for their size, which were not downloaded)."""
    return int(store.read(
        "SELECT COUNT(*) FROM receipts r JOIN documents d ON d.id = r.document_id "
        "WHERE r.channel = 'telegram' AND r.received_at >= ? AND r.received_at < ? "
        "AND d.reason_kind IS NOT ?", (start, end, UploadTooLarge.kind))[0][0])


def refuse(settings: Settings, store: Store, upload: Upload, why: str,
           size: int | None = None) -> spool.Claim:
    """Record a file not downloaded for its size (`OVER_TELEGRAM`, `OVER_MAX_BYTES`; `size`
    when more came than the update said) as a failed document (see the module docstring);
    `again` when this upload was recorded before."""
    size = size if size is not None else upload.size or 0
    said = N_("the file is over the 20 MB Telegram lets a bot download (%(size)s): it was not "
              "downloaded, and it is still in the Telegram chat") if why == OVER_TELEGRAM else \
        N_("the file is larger than %(limit)s (%(size)s): it was not downloaded, and it is "
           "still in the Telegram chat")
    reason = UploadTooLarge(said, limit=mib(settings.max_bytes), size=mib(size), stage="intake",
                            detail=f"{upload.mime_type}, {size} bytes")
    return spool.refuse_unread(settings, store, upload.name, key=upload.key, size=size,
                               reason=reason, origin=upload.origin)


# --- the inbox: uploads written down before Telegram forgets them --------------------------


def message_key(chat_id: int, message_id: int) -> str:
    """The message an update brought, as the inbox tells two updates apart."""
    return f"{chat_id}/{message_id}"


def keep(store: Store, updates: Sequence[tuple[int, str, str]]) -> None:
    """Write down (update id, `message_key`, the update as JSON) for each upload, before it is
    confirmed to Telegram. One already written down for the same message (Telegram sent it
    again) is left as it is; an id remembered for another message is an id Telegram picked
    afresh, and the new upload takes its place."""
    if not updates:
        return
    with store.write() as conn:
        conn.executemany(
            "INSERT INTO telegram_inbox (update_id, message, update_json, kept_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT(update_id) DO UPDATE SET "
            "message = excluded.message, update_json = excluded.update_json, "
            "kept_at = excluded.kept_at, attempts = 0, done_at = NULL "
            "WHERE telegram_inbox.message <> excluded.message",
            [(uid, key, raw, now_iso()) for uid, key, raw in updates])


def handled(store: Store, update_id: int, key: str) -> bool:
    """Whether this update, bringing this message, has been handled already."""
    rows = store.read("SELECT 1 FROM telegram_inbox WHERE update_id = ? AND message = ? AND "
                      "done_at IS NOT NULL", (update_id, key))
    return bool(rows)


def finish(store: Store, update_id: int) -> None:
    """The sender has had an answer: nothing to do again. The update's content goes (it names
    the sender and the file); its id stays a while (`REMEMBER_HANDLED`), and older ones go."""
    with store.write() as conn:
        _mark_done(conn, update_id)
        _forget_old(conn)


def _mark_done(conn: sqlite3.Connection, update_id: int) -> None:
    conn.execute("UPDATE telegram_inbox SET done_at = ?, update_json = NULL WHERE update_id = ?",
                 (now_iso(), update_id))


def _forget_old(conn: sqlite3.Connection) -> None:
    before = (datetime.now(UTC) - REMEMBER_HANDLED).isoformat(timespec="milliseconds")
    conn.execute("DELETE FROM telegram_inbox WHERE done_at IS NOT NULL AND done_at < ?",
                 (before,))


def to_replay(store: Store) -> list[tuple[int, str]]:
    """At start: the uploads a stop interrupted, oldest first, each counted as tried once more.
    One tried `REPLAYS` times already is given up: logged for a person, marked handled."""
    replay: list[tuple[int, str]] = []
    with store.write() as conn:
        _forget_old(conn)
        for row in conn.execute("SELECT update_id, update_json, attempts FROM telegram_inbox "
                                "WHERE done_at IS NULL ORDER BY update_id").fetchall():
            if row["attempts"] >= REPLAYS or not row["update_json"]:
                log.error("a file sent to the bot (update %d, %s) could not be handled after "
                          "%d starts: given up; ask the sender to send it again",
                          row["update_id"], _where(row["update_json"]), row["attempts"])
                _mark_done(conn, row["update_id"])
                continue
            conn.execute("UPDATE telegram_inbox SET attempts = attempts + 1 WHERE update_id = ?",
                         (row["update_id"],))
            replay.append((int(row["update_id"]), str(row["update_json"])))
    return replay


def _where(raw: str | None) -> str:
    """Which message of which chat an update brought, for a person to find it."""
    try:
        message = json.loads(raw or "{}").get("message") or {}
        return (f"message {message['message_id']} in chat {message['chat']['id']} from user "
                f"{(message.get('from') or {}).get('id', '?')}")
    except (ValueError, KeyError, TypeError, AttributeError):
        return "its message unknown"
