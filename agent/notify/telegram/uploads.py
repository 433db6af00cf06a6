"""Files sent to the bot: a PDF or a photo from a phone becomes a document of the spool.

`Commands.admit` has let through only an allowed user in an allowed chat (anyone else's file
is not downloaded: it is logged and audited `rejected` there). Each file of such a message (a
document, or a photo in its largest size; a media group comes as one message per file) is
judged from what the update says (agent.ops.telegram_intake), then downloaded: getFile for its
path, then the Bot API's file endpoint, streamed by httpx in 1 MiB pieces into the same claim
as a dropped file, on a thread. The message is answered, as a reply, with the document's id;
the outcome message (filed, review, failed, duplicate) later replies to it too, since the
document's origin keeps the chat and the message (see `sender`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
from telegram import Message, ReplyParameters, Update
from telegram.error import BadRequest, NetworkError
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from agent import disclosure, metrics, spool
from agent.audit import AuditLog
from agent.config import Settings
from agent.i18n import _
from agent.ledger import Ledger, prices_from
from agent.logs import get_logger
from agent.notify.messages import fit
from agent.ops import telegram_intake
from agent.ops.mail import mib
from agent.ops.telegram_intake import (
    NOT_A_DOCUMENT,
    OVER_MAX_BYTES,
    OVER_TELEGRAM,
    Cut,
    Upload,
)
from agent.store import Store

log = get_logger("telegram")
Context = ContextTypes.DEFAULT_TYPE
CHUNK = 1024 * 1024
DOWNLOADS_AT_ONCE = 2  # a media group of ten photos does not open ten downloads
GET_FILE_ATTEMPTS = 3  # getFile through a network error: after 2 s, then 4 s
EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png",
              "image/tiff": "tif", "image/heic": "heic", "image/heif": "heic"}


class Refused(Exception):
    """Telegram refused the download (a 4xx): trying again would not help."""


def is_upload(message: Message | None) -> bool:
    """A message that brings a file docagent may take (a document or a photo)."""
    return message is not None and (message.document is not None or bool(message.photo))


def upload_of(message: Message) -> Upload | None:
    """The file of a message: its document, or its photo in the largest size."""
    user = message.from_user
    if user is None:
        return None
    if message.document is not None:
        doc = message.document
        name = (doc.file_name or "").strip() or \
            f"telegram-{message.message_id}.{EXTENSIONS.get(doc.mime_type or '', 'pdf')}"
        return Upload(doc.file_id, doc.file_unique_id, name, doc.mime_type, doc.file_size,
                      user.id, message.chat_id, message.message_id)
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        return Upload(largest.file_id, largest.file_unique_id,
                      f"photo-{message.message_id}.jpg", "image/jpeg", largest.file_size,
                      user.id, message.chat_id, message.message_id)
    return None


class Uploads:
    def __init__(self, settings: Settings, store: Store, wake: Any) -> None:
        self.settings = settings
        self.store = store
        self.wake = wake  # a document was queued: the workers look now
        self.ledger = Ledger(settings.log_dir, prices_from(settings))
        self.downloading = asyncio.Semaphore(DOWNLOADS_AT_ONCE)
        self.in_hand: set[int] = set()  # update ids being handled

    def install(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        app.add_handler(MessageHandler(filters.Document.ALL | filters.PHOTO, self.received))

    def _shown(self, upload: Upload, document_id: str | None) -> str:
        return disclosure.file_name(upload.name, self.settings.phi, document_id)

    async def _answer(self, message: Message, text: str) -> None:
        await message.get_bot().send_message(
            message.chat_id, fit(text),
            reply_parameters=ReplyParameters(message.message_id,
                                             allow_sending_without_reply=True))

    async def received(self, update: Update, context: Context) -> None:
        """One upload, once: written down before it came here (agent.notify.telegram.inbox),
        marked handled once the sender has an answer. The same update again (replayed at start,
        then sent again by Telegram) is passed over while in hand or once handled; one whose
        handling failed stays to be replayed at the next start."""
        uid, message = update.update_id, update.message
        if uid in self.in_hand or message is None:
            return
        self.in_hand.add(uid)  # before any await: the same update twice is let in once
        try:
            key = telegram_intake.message_key(message.chat_id, message.message_id)
            if await asyncio.to_thread(telegram_intake.handled, self.store, uid, key):
                return
            await self._receive(update)
            await asyncio.to_thread(telegram_intake.finish, self.store, uid)
        finally:
            self.in_hand.discard(uid)

    async def _receive(self, update: Update) -> None:
        message = update.message
        upload = upload_of(message) if message is not None else None
        if message is None or upload is None:
            return
        why = telegram_intake.judge(self.settings, upload)
        if why is not None:
            await self._not_taken(message, upload, why)
            return
        url = await self._file_url(message, upload)
        if url is None:
            return
        try:
            async with self.downloading:
                claim = await asyncio.to_thread(
                    telegram_intake.take, self.settings, self.store, upload,
                    lambda: self._stream(url))
        except spool.OverLimit as over:  # the update said less than came
            await self._not_taken(message, upload, OVER_TELEGRAM if telegram_intake.limit(
                self.settings) < self.settings.max_bytes else OVER_MAX_BYTES, size=over.size)
            return
        except (Cut, Refused) as error:
            await self._not_received(message, upload, str(error))
            return
        await self._taken(message, upload, claim)

    async def _file_url(self, message: Message, upload: Upload) -> str | None:
        """getFile: where to download the file (the URL holds the token), tried again on a
        network error; None, the sender answered, when Telegram will not give it."""
        for attempt in range(1, GET_FILE_ATTEMPTS + 1):
            try:
                file = await message.get_bot().get_file(upload.file_id)
                return file.file_path or ""
            except BadRequest as error:  # before NetworkError, of which it is a kind
                if "too big" in str(error).lower():  # file_size was missing from the update
                    await self._not_taken(message, upload, OVER_TELEGRAM)
                else:
                    await self._not_received(message, upload, str(error))
                return None
            except NetworkError as error:
                if attempt == GET_FILE_ATTEMPTS:
                    await self._not_received(message, upload,
                                             str(error) or type(error).__name__)
                    return None
                await asyncio.sleep(2.0 ** attempt)
        return None

    def _stream(self, url: str) -> Iterator[bytes]:
        """The file's bytes as they come; Cut when the download stops short. The URL holds
        the token: it is never logged (httpx is kept quiet, and logs are scrubbed anyway)."""
        with self.ledger.call("telegram", "download", units={"call": 1}) as call:
            got = 0
            try:
                with httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0)) as client, \
                        client.stream("GET", url) as response:
                    call.details["status"] = response.status_code
                    if response.status_code == 429 or response.status_code >= 500:
                        raise Cut(f"HTTP {response.status_code}")
                    if response.status_code != 200:
                        raise Refused(f"HTTP {response.status_code}")
                    expected = response.headers.get("content-length")
                    for chunk in response.iter_bytes(CHUNK):
                        got += len(chunk)
                        yield chunk
                    if expected is not None and expected.isdigit() and got < int(expected):
                        raise Cut(f"{got} of {expected} bytes came")
            except httpx.TransportError as error:
                raise Cut(f"{type(error).__name__} after {got} bytes") from None
            finally:
                call.details["bytes"] = got

    # --- answers ------------------------------------------------------------------------

    async def _taken(self, message: Message, upload: Upload, claim: spool.Claim) -> None:
        phi = self.settings.phi
        if claim.again:
            text = _("Already received: document %(id)s.") % {"id": claim.document_id}
        elif claim.duplicate_of is not None:
            metrics.document_done("duplicate")
            text = _("Received %(file)s: the same content as document %(id)s, taken in "
                     "before; not stored twice.") % {
                "file": disclosure.file_name(upload.name, phi, None), "id": claim.document_id}
        elif disclosure.minimal(phi):
            text = _("Received as document %(id)s; what becomes of it will follow as a reply "
                     "to your message.") % {"id": claim.document_id}
        else:
            text = _("Received %(file)s as document %(id)s; what becomes of it will follow as "
                     "a reply to your message.") % {"file": upload.name,
                                                    "id": claim.document_id}
        self.wake()
        log.info("Telegram upload from user %d in chat %d (message %d): %s", upload.user_id,
                 upload.chat_id, upload.message_id, "again" if claim.again else
                 f"duplicate of {claim.document_id}" if claim.duplicate_of else
                 f"taken as {claim.document_id}", extra={"doc": claim.document_id})
        await self._answer(message, text)

    async def _not_taken(self, message: Message, upload: Upload, why: str, *,
                         size: int | None = None) -> None:
        """Not downloaded: its bytes stay on the phone and in the chat; the sender is told
        what to do. Refused for its size, it is a failed document like a mail attachment over
        the limit (announced, in `failed list`); of another type, it is only audited, as a
        mail's other attachments are left in their message."""
        size = upload.size if size is None else size
        if why == NOT_A_DOCUMENT:
            log.warning("Telegram upload %r from user %d in chat %d not taken: %s",
                        upload.name, upload.user_id, upload.chat_id, why)
            await asyncio.to_thread(
                AuditLog.of(self.settings).record, "telegram-not-taken",
                actor=f"telegram:{upload.user_id}", reason=why, name=upload.name,
                size=upload.size, origin=upload.origin.to_json())
            await self._answer(message, _(
                "Not taken: %(file)s is not a document docagent reads (PDF, JPEG, PNG, TIFF, "
                "HEIC).") % {"file": self._shown(upload, None)})
            return
        claim = await asyncio.to_thread(telegram_intake.refuse, self.settings, self.store,
                                        upload, why, size)
        values = {"file": self._shown(upload, claim.document_id),
                  "size": mib(size) if size is not None else "?",
                  "limit": mib(self.settings.max_bytes), "id": claim.document_id}
        if why == OVER_TELEGRAM:
            text = _("Not downloaded: %(file)s (%(size)s) is over the 20 MB Telegram lets a "
                     "bot download: drop it into the folder or mail it. Recorded as failed "
                     "document %(id)s.") % values
        else:
            text = _("Not downloaded: %(file)s (%(size)s) is larger than the %(limit)s "
                     "docagent takes (DOCAGENT_MAX_BYTES). Recorded as failed document "
                     "%(id)s.") % values
        if not claim.again:
            metrics.document_done("failed")
        self.wake()  # its failure message waits in the outbox
        await self._answer(message, text)

    async def _not_received(self, message: Message, upload: Upload, error: str) -> None:
        """The download did not succeed, tries included: nothing was recorded."""
        log.warning("Telegram upload %r from user %d in chat %d not downloaded: %s",
                    upload.name, upload.user_id, upload.chat_id, error)
        await self._answer(message, _("Not received: %(file)s could not be downloaded from "
                                      "Telegram (%(error)s). Send it again in a moment.") % {
            "file": self._shown(upload, None), "error": error[:200]})
