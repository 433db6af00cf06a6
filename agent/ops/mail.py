"""The mail channel: each message of the mailbox judged, its documents claimed, then marked taken.

A look at the mailbox (`Reader.sweep`) takes every message not yet marked taken, oldest first,
and judges it from its summary alone (sender, subject, Message-ID, MIME tree), downloading
nothing it will not take:

- a sender not in `DOCAGENT_MAIL_ALLOWED_SENDERS` (every From address must be), or a message
  with no document attached: **left** in the mailbox untouched, logged and audited
  (`mail-left`) once, not at every look (`mail_messages` remembers it);
- otherwise each document attached (PDF, JPEG, PNG, TIFF, HEIC; `application/octet-stream`
  with such an extension too; not the images of an HTML body, a signature's logo) is
  downloaded into the spool through the same claim as a dropped file (`spool.claim_stream`),
  with the sender, subject and Message-ID as its origin. Only once every one is durably in the
  spool is the message audited (`mail-taken`) and marked taken (moved to
  `DOCAGENT_MAIL_TAKEN_FOLDER`, or flagged). Other attachments stay in the message, named in
  the log and the audit line.

Nothing lost, nothing twice: each attachment's claim is keyed by the message's place in its
mailbox (UIDVALIDITY and UID) and its part. A crash or a cut connection before the mark leaves
the message where it was; the next look finds the attachments already received and only marks
it. The same bytes in another message are a `duplicate`, as the claim judges by hash.

An attachment over `DOCAGENT_MAX_BYTES` is not downloaded: it is recorded as failed
(`attachment-too-large`, with the sender and subject), announced like any failure, and the
message is marked taken once its other documents are in, so that it waits in the taken folder,
whole, for a person. Downloading it only to fail it would spend the transfer, the disk and the
memory the limit is there to bound; leaving the message would tell nobody.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import spool
from agent.audit import AuditLog
from agent.config import MailSettings, Settings
from agent.errors import AttachmentTooLarge
from agent.i18n import N_
from agent.logs import get_logger
from agent.origin import Origin
from agent.store import Store, now_iso

if TYPE_CHECKING:  # `docagent status` reads this module's records without loading IMAP
    from agent.mailbox import Mailbox, Part, Summary

log = get_logger("mail")

DOCUMENT_TYPES = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png",
                  "image/tiff": "tif", "image/heic": "heic", "image/heif": "heic"}
# Types some senders give any file: a document when the file's name says it is one.
GENERIC_TYPES = {"application/octet-stream", "application/x-pdf", "application/acrobat",
                 "application/x-download", "binary/octet-stream", "application/download"}
DOCUMENT_EXTENSIONS = {"pdf", "jpg", "jpeg", "png", "tif", "tiff", "heic", "heif"}
HOLD_SWITCH = "DOCAGENT_TEST_MAIL_HOLD"  # test only: see `_hold_if_asked`
STATE_KEY = "mail_state"  # meta: the channel as the daemon last saw it (JSON)

# Why a message is left in the mailbox (the `reason` of its mail_messages row).
NOT_ALLOWED = "sender-not-allowed"
NO_ATTACHMENT = "no-attachment"
NO_DOCUMENT = "no-document"


def message_key(mail: MailSettings, uidvalidity: int, uid: int) -> str:
    """A message's place, as an IMAP URL (RFC 5092): the same message, the same key."""
    user = urllib.parse.quote(mail.user, safe="")
    box = urllib.parse.quote(mail.mailbox, safe="")
    return f"imap://{user}@{mail.host}:{mail.port}/{box};UIDVALIDITY={uidvalidity}/;UID={uid}"


def part_key(message: str, section: str) -> str:
    return f"{message}/;SECTION={section}"


def is_document(part: Part) -> bool:
    """A part docagent takes as a document."""
    if part.embedded and part.content_type.startswith("image/"):
        return False  # an image of an HTML body: a logo, a signature
    if part.content_type in DOCUMENT_TYPES:
        return True
    return part.content_type in GENERIC_TYPES and _extension(part.filename) in DOCUMENT_EXTENSIONS


def is_attachment(part: Part) -> bool:
    """A part a person would call an attachment: named, or marked as one, and not a body."""
    if part.embedded:
        return False
    if part.disposition == "attachment" or part.filename:
        return True
    return not part.content_type.startswith(("text/", "multipart/"))


def _extension(name: str | None) -> str:
    return (name or "").rpartition(".")[2].lower() if name and "." in name else ""


def document_name(part: Part) -> str:
    """The attachment's own file name, or `attachment-<section>.<ext>` when it has none."""
    if part.filename and part.filename.strip():
        return part.filename.strip()
    ext = DOCUMENT_TYPES.get(part.content_type) or _extension(part.filename) or "pdf"
    return f"attachment-{part.section}.{ext}"


def described(parts: list[Part]) -> list[str]:
    """Attachments as the log and the audit name them: `report.docx (application/msword)`."""
    return [f"{p.filename or 'part ' + p.section} ({p.content_type})" for p in parts]


@dataclass
class Sweep:
    """What one look at the mailbox did."""

    taken: int = 0  # messages marked taken
    left: int = 0  # messages left (new verdicts only)
    claims: list[spool.Claim] = field(default_factory=list)


class Reader:
    """Reads one mailbox for the daemon: `sweep` after each wake. Runs on a thread of its own
    (IMAP calls block); `on_claim` is told of each claim as it is made."""

    def __init__(self, settings: Settings, store: Store,
                 on_claim: Callable[[spool.Claim], None] = lambda claim: None) -> None:
        if settings.mail is None:
            raise ValueError("no mailbox is set (DOCAGENT_MAIL_HOST)")
        self.settings = settings
        self.mail: MailSettings = settings.mail
        self.store = store
        self.on_claim = on_claim
        # Messages judged `left` in this run, by (UIDVALIDITY, UID): not fetched again. The
        # settings cannot change while the daemon runs; a restart judges them anew.
        self._left: set[tuple[int, int]] = set()

    def sweep(self, box: Mailbox, stop: threading.Event) -> Sweep:
        done = Sweep()
        uids = [u for u in box.waiting() if (box.uidvalidity, u) not in self._left]
        for summary in box.summaries(uids):
            if stop.is_set():
                break
            self._one(box, summary, done, stop)
        self.note_state("connected", box=box)
        return done

    # --- one message -------------------------------------------------------------------

    def _one(self, box: Mailbox, summary: Summary, done: Sweep, stop: threading.Event) -> None:
        key = message_key(self.mail, box.uidvalidity, summary.uid)
        attachments = [p for p in summary.parts if is_attachment(p)]
        documents = [p for p in summary.parts if is_document(p)]
        others = [p for p in attachments if not is_document(p)]
        if not summary.senders or not all(self.mail.allows(a) for a in summary.senders):
            self._leave(box, summary, key, NOT_ALLOWED, done)
            return
        if not documents:
            self._leave(box, summary, key, NO_DOCUMENT if others else NO_ATTACHMENT, done,
                        others=others)
            return
        origin = Origin.mail(sender=summary.sender, subject=summary.subject,
                             message_id=summary.message_id, mailbox=self.mail.mailbox)
        ids: list[str] = []
        for part in documents:
            if stop.is_set():
                return  # not marked: the next run finishes it
            claim = self._claim(box, summary, part, key, origin)
            ids.append(claim.duplicate_of.id if claim.duplicate_of else claim.document_id)
            if not claim.again:
                done.claims.append(claim)
                self.on_claim(claim)
        _hold_if_asked(key, stop)
        self._record_taken(summary, key, ids, others)
        box.mark_taken(summary.uid)
        done.taken += 1
        log.info("mail %s from %s: %d document(s) taken (%s), the message marked taken%s",
                 summary.message_id or f"UID {summary.uid}", summary.sender, len(ids),
                 ", ".join(ids), f"; left in it: {', '.join(described(others))}"
                 if others else "")

    def _claim(self, box: Mailbox, summary: Summary, part: Part, key: str,
               origin: Origin) -> spool.Claim:
        name = document_name(part)
        pkey = part_key(key, part.section)
        earlier = spool.received(self.store, pkey)
        if earlier is not None:
            # Taken at an earlier look, which ended before the message was marked.
            return spool.Claim(earlier.id, None, name, again=True)
        from agent.mailbox import decoded_size_at_least

        limit = self.settings.max_bytes
        if decoded_size_at_least(part) > limit:
            return self._too_large(summary, part, name, pkey, origin,
                                   decoded_size_at_least(part))
        try:
            return spool.claim_stream(self.settings, self.store,
                                      box.download(summary.uid, part), name, key=pkey,
                                      origin=origin, limit=limit)
        except spool.OverLimit as over:
            return self._too_large(summary, part, name, pkey, origin, over.size)

    def _too_large(self, summary: Summary, part: Part, name: str, pkey: str, origin: Origin,
                   size: int) -> spool.Claim:
        reason = AttachmentTooLarge(
            N_("the attachment is larger than %(limit)s (at least %(size)s): it was not "
               "downloaded, and the message is in the mail folder %(folder)s"),
            limit=mib(self.settings.max_bytes), size=mib(size),
            folder=self.mail.taken_folder if self.mail.mark == "move" else self.mail.mailbox,
            stage="intake", detail=f"part {part.section}, {part.content_type}, "
                                   f"{part.size} bytes encoded")
        return spool.refuse_unread(self.settings, self.store, name, key=pkey, size=size,
                                   reason=reason, origin=origin)

    # --- remembering verdicts ----------------------------------------------------------

    def _leave(self, box: Mailbox, summary: Summary, key: str, reason: str, done: Sweep, *,
               others: list[Part] | None = None) -> None:
        """Left in the mailbox, untouched: logged and audited once per message and reason."""
        self._left.add((box.uidvalidity, summary.uid))
        rows = self.store.read("SELECT verdict, reason FROM mail_messages WHERE key = ?", (key,))
        if rows and rows[0]["verdict"] == "left" and rows[0]["reason"] == reason:
            return
        with self.store.write() as conn:
            conn.execute(
                "INSERT INTO mail_messages (key, message_id, sender, subject, verdict, reason, "
                "documents, at) VALUES (?, ?, ?, ?, 'left', ?, NULL, ?) ON CONFLICT(key) DO "
                "UPDATE SET verdict = 'left', reason = excluded.reason, at = excluded.at",
                (key, summary.message_id, summary.sender, summary.subject, reason, now_iso()))
        what = {NOT_ALLOWED: "the sender is not in DOCAGENT_MAIL_ALLOWED_SENDERS",
                NO_ATTACHMENT: "nothing is attached",
                NO_DOCUMENT: "no attachment is a document docagent reads (PDF, JPEG, PNG, TIFF, "
                             "HEIC): " + ", ".join(described(others or []))}[reason]
        log.warning("mail %s from %s (%r) left in %s: %s", summary.message_id or
                    f"UID {summary.uid}", summary.sender or "nobody", summary.subject,
                    self.mail.mailbox, what)
        AuditLog.of(self.settings).record(
            "mail-left", actor="docagent", reason=reason, sender=summary.sender,
            subject=summary.subject, message_id=summary.message_id, mailbox=self.mail.mailbox,
            attachments=described(others or []))
        done.left += 1

    def _record_taken(self, summary: Summary, key: str, ids: list[str],
                      others: list[Part]) -> None:
        """Audited, then remembered, before the mark: a crash in between repeats the line
        (at least once), never loses it; one remembered is not audited again."""
        rows = self.store.read("SELECT verdict FROM mail_messages WHERE key = ?", (key,))
        if rows and rows[0]["verdict"] == "taken":
            return
        AuditLog.of(self.settings).record(
            "mail-taken", actor="docagent", sender=summary.sender, subject=summary.subject,
            message_id=summary.message_id, mailbox=self.mail.mailbox, documents=ids,
            left_in_message=described(others),
            marked=(f"moved to {self.mail.taken_folder}" if self.mail.mark == "move"
                    else "flagged $DocagentTaken"))
        with self.store.write() as conn:
            conn.execute(
                "INSERT INTO mail_messages (key, message_id, sender, subject, verdict, reason, "
                "documents, at) VALUES (?, ?, ?, ?, 'taken', ?, ?, ?) ON CONFLICT(key) DO "
                "UPDATE SET verdict = 'taken', reason = excluded.reason, "
                "documents = excluded.documents, at = excluded.at",
                (key, summary.message_id, summary.sender, summary.subject,
                 json.dumps(described(others)) if others else None, json.dumps(ids), now_iso()))

    def note_state(self, state: str, *, box: Mailbox | None = None,
                   detail: str | None = None) -> None:
        """The channel as the daemon sees it, for `docagent status`."""
        note_state(self.store, state, idle=box.uses_idle if box is not None else None,
                   detail=detail)


def note_state(store: Store, state: str, *, idle: bool | None = None,
               detail: str | None = None) -> None:
    """`connected` (with whether IDLE is used), `down` or `refused` (with why), and when."""
    before = state_of(store)
    since = before.get("since") if before.get("state") == state else now_iso()
    store.set_meta(STATE_KEY, json.dumps({"state": state, "since": since, "idle": idle,
                                          "detail": detail, "checked_at": now_iso()},
                                         ensure_ascii=False))


def state_of(store: Store) -> dict[str, Any]:
    raw = store.get_meta(STATE_KEY)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return dict(value) if isinstance(value, dict) else {}


def last_taken(store: Store) -> dict[str, Any] | None:
    """The message last taken: when, from whom, and the documents it gave."""
    rows = store.read("SELECT message_id, sender, at, documents FROM mail_messages "
                      "WHERE verdict = 'taken' ORDER BY at DESC LIMIT 1")
    if not rows:
        return None
    row = rows[0]
    return {"at": row["at"], "sender": row["sender"], "message_id": row["message_id"],
            "documents": json.loads(row["documents"] or "[]")}


def taken_between(store: Store, start: str, end: str) -> int:
    """Documents that came by mail in [start, end) (each arrival, duplicates included)."""
    return int(store.read("SELECT COUNT(*) FROM receipts WHERE channel = 'mail' AND "
                          "received_at >= ? AND received_at < ?", (start, end))[0][0])


def left_count(store: Store) -> int:
    """Messages judged `left` (they stay in the mailbox until someone moves them)."""
    return int(store.read("SELECT COUNT(*) FROM mail_messages WHERE verdict = 'left'")[0][0])


def mib(size: int) -> str:
    return f"{size / 1024**2:.1f} MiB"


def _hold_if_asked(key: str, stop: threading.Event) -> None:
    """The test-only switch: with `DOCAGENT_TEST_MAIL_HOLD=/path` in the process environment
    (never read from a `.env`) and that file present, a message whose documents are all in
    the spool is held before it is marked taken: `/path.held` says which, and the hold lasts
    while `/path` exists. A test kills the daemon there. Nothing sets it in production."""
    named = os.environ.get(HOLD_SWITCH)
    if not named or not Path(named).exists():
        return
    Path(named + ".held").write_text(key + "\n", encoding="utf-8")
    log.error("test switch %s: holding %s before it is marked taken", HOLD_SWITCH, key)
    while Path(named).exists() and not stop.is_set():
        time.sleep(0.05)
