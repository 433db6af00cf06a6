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

Nothing twice: the arrival is keyed by the chat, the message and the file's
`file_unique_id` (Telegram's id of the bytes, the same for every bot and every time). The same
message handled again (Telegram sent the update again after a restart) finds its document and
downloads nothing; the same file sent in another message is another arrival of the same bytes,
a `duplicate`, as the claim judges by hash.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agent import spool
from agent.config import Settings
from agent.logs import get_logger
from agent.ops.mail import DOCUMENT_EXTENSIONS, DOCUMENT_TYPES, GENERIC_TYPES
from agent.origin import Origin
from agent.store import Store

log = get_logger("telegram")

# "Bots can currently download files of up to 20 MB in size" (Bot API, getFile).
BOT_API_DOWNLOAD_LIMIT = 20 * 1024 * 1024
ATTEMPTS = 5  # a cut download is tried again after 1, 2, 4, 8 s
FIRST_WAIT = 1.0

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
    """Files that came by Telegram in [start, end) (each arrival, duplicates included)."""
    return int(store.read("SELECT COUNT(*) FROM receipts WHERE channel = 'telegram' AND "
                          "received_at >= ? AND received_at < ?", (start, end))[0][0])
