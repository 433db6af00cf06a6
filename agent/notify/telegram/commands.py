"""What the staff can ask the bot, and what its buttons do.

Every update first passes `admit`: commands, presses and files (agent.notify.telegram.uploads)
are taken only from a user of TELEGRAM_ALLOWED_USER_IDS in a chat of TELEGRAM_CHAT_IDS.
Anything else gets nothing useful back (a file is not downloaded), a warning in the log (with
the ids, which is how an administrator finds them) and an audit line. Decisions go through
`agent.ops.decisions`, the code of `docagent review resolve` and `docagent retry`, one at a
time, with `telegram:<user id>` as who decided.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from telegram import CallbackQuery, ForceReply, Message, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from agent import disclosure, reasons, spool
from agent.audit import AuditLog
from agent.config import Settings
from agent.directory_file import DateProblem
from agent.errors import DiskFull, DocagentError, PopplerMissing, ToolFailed
from agent.i18n import N_, _, ngettext, translate
from agent.logs import get_logger
from agent.notify import decided_text, find_text, search_text
from agent.notify.messages import fit, render
from agent.notify.telegram import threads
from agent.notify.telegram.keyboards import (
    FILE,
    GET,
    NONE,
    OPEN,
    PICK,
    RETRY,
    SEARCH,
    Press,
    decode,
    failed_keyboard,
    find_keyboard,
    review_keyboard,
    search_keyboard,
)
from agent.notify.telegram.uploads import is_upload
from agent.ops import costs, decisions, finding, health, lookup, status
from agent.spool import FAILED, FILED, REVIEW, Document
from agent.stages.record import Record, parsed_fields
from agent.store import Store
from agent.tools import pdftoppm, runner

log = get_logger("telegram")
Context = ContextTypes.DEFAULT_TYPE
LIST_LIMIT = 10  # documents listed by /review and /failed, each with its buttons
HELP = N_("""docagent — what I answer:
/status — counts, backlog, last activity
/review — documents waiting for a decision, with their buttons
/failed — documents that failed, with a Retry button
/retry DOC_ID — put a failed document back in the queue
/costs [yesterday] — what external calls cost today (or yesterday)
/health — every health check
/find — a patient's documents, newest first (below)
/help — this text
Buttons under a review request file the document under that patient ("None of them" files it
as unassigned).""")
OPEN_HELP = N_(' "Open" sends its first page.')
# Open puts the scan in the chat: never where names must stay out of it, and only for a
# document a person is asked about (a crafted press can carry any document's id).
OPEN_REFUSED_MINIMAL = N_("Not sent: with DOCAGENT_PHI=minimal the first page stays out of the "
                          "chat (it shows who the patient is).")
OPEN_REFUSED_STATE = N_("Not sent: the first page is only sent for a document waiting for a "
                        "decision (this one is %(state)s).")
OPEN_REFUSED_MINIMAL_PDF = N_("Not sent: with DOCAGENT_PHI=minimal documents stay out of the "
                              "chat (a document shows who the patient is).")
# Open under a /find answer sends the whole PDF: only the documents that answer listed, in the
# chat it was sent to, for an hour (then /find again: each access follows a search on record).
FIND_OPEN_SECONDS = 3600
OPEN_REFUSED_STALE = N_("Not sent: this answer is more than an hour old or did not list that "
                        "document. Search again with /find.")
OPEN_REFUSED_GONE = N_("Not sent: the document is no longer where that answer found it "
                       "(it is %(state)s). Search again with /find.")
OPEN_TOO_LARGE = N_("Not sent: the PDF is %(mb)d MB, and a bot may send at most 50 MB. It is "
                    "on the server.")
MAX_SEND_BYTES = 50 * 1024 * 1024  # the Bot API's limit for a file a bot sends
FIND_LIMIT = 10  # documents under one /find answer, each with its Open button
# The bot's menu of commands, each with what it does (translated where the menu is set).
COMMANDS = [("find", N_("NAME [words]: a patient's documents")),
            ("status", N_("counts, backlog, last activity")),
            ("review", N_("documents waiting for a decision")),
            ("failed", N_("documents that failed")),
            ("retry", N_("DOC_ID: put a failed document back in the queue")),
            ("costs", N_("[yesterday]: what external calls cost")),
            ("health", N_("every health check")),
            ("help", N_("what I answer"))]


def _name(update: Update) -> str:
    user = update.effective_user
    return (user.full_name or str(user.id)) if user else "?"


def _who(update: Update) -> str:
    user = update.effective_user
    return f"telegram:{user.id if user else '?'}"


def _pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def document_payload(doc: Document) -> dict[str, Any]:
    """A waiting or failed document as the outbox payload its notification was made from."""
    return {**doc.result, "document_id": doc.id, "original_name": doc.original_name,
            "reason": doc.reason or doc.result.get("reason"),
            "message": doc.result.get("message") or doc.reason}


def _replied_to_me(update: Update) -> int | None:
    """The id of the bot's message this update replies to, if it is one."""
    message = update.message
    replied = message.reply_to_message if message else None
    author = replied.from_user if replied else None
    if replied is None or author is None or author.id != update.get_bot().id:
        return None
    return replied.message_id


def _picked(kept: threads.Kept | None, document_id: str, index: int | None) -> str | None:
    """The patient a search answer's button stands for; None unless the press came from a
    search answer about this very document, on one of the buttons it carried."""
    if kept is None or kept.kind != threads.SEARCH or kept.document_id != document_id \
            or index is None or index >= len(kept.options):
        return None
    return kept.options[index]


def describe_decision(doc: Document) -> str:
    decision = doc.result.get("decision") or {}
    values = {"id": doc.patient_id, "by": decision.get("by"),
              "state": spool.state_word(doc.state)}
    if doc.state != FILED:
        return _("already handled: it is %(state)s now") % values
    if doc.patient_id:
        return (_("already decided: filed under #%(id)s by %(by)s") if values["by"] else
                _("already decided: filed under #%(id)s")) % values
    return (_("already decided: filed as unassigned by %(by)s") if values["by"] else
            _("already decided: filed as unassigned")) % values


def first_page_png(pdf: Path, timeout: float = 60.0) -> bytes | None:
    """The first page as a PNG a phone shows well (pdftoppm), or None if it cannot be made."""
    with tempfile.TemporaryDirectory(prefix="docagent-open-") as tmp:
        try:
            image = pdftoppm.render(pdf, 1, dpi=110, base=Path(tmp) / "page", fmt="png",
                                    timeout=timeout)
            return image.path.read_bytes()
        except (OSError, runner.NoResult, PopplerMissing, DiskFull, ToolFailed):
            return None


def _age(sent_at: str) -> float:
    """Seconds since a kept message was sent (its ISO time); very old when unreadable."""
    try:
        return (datetime.now(UTC) - datetime.fromisoformat(sent_at)).total_seconds()
    except ValueError:
        return float("inf")


def open_refusal(doc: Document, phi: str) -> str | None:
    """Why Open may not send this document's first page, or None when it may."""
    if not disclosure.shows_scan(phi):
        return translate(OPEN_REFUSED_MINIMAL)
    if doc.state != REVIEW:
        return translate(OPEN_REFUSED_STATE) % {"state": spool.state_word(doc.state)}
    return None


class Commands:
    def __init__(self, settings: Settings, store: Store, wake: Callable[[], None]) -> None:
        self.settings = settings
        self.store = store
        self.wake = wake  # a decision queued a message or a document: look now
        self.audit = AuditLog.of(settings)
        self.deciding = asyncio.Lock()  # one decision at a time: two presses, one filing

    def install(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        app.add_handler(TypeHandler(Update, self.admit), group=-1)
        for name, handler in (("find", self.find), ("status", self.status),
                              ("review", self.review),
                              ("failed", self.failed), ("retry", self.retry),
                              ("costs", self.costs), ("health", self.health),
                              ("help", self.help), ("start", self.help)):
            app.add_handler(CommandHandler(name, handler))
        # Last of its group: a command none of the above took (`/foo`) gets the list.
        app.add_handler(MessageHandler(filters.COMMAND, self.unknown))
        app.add_handler(CallbackQueryHandler(self.press))
        app.add_handler(MessageHandler(filters.REPLY & filters.TEXT & ~filters.COMMAND,
                                       self.search_reply))
        app.add_error_handler(self.error)

    # --- who may ------------------------------------------------------------------------

    def allowed(self, update: Update) -> bool:
        user, chat = update.effective_user, update.effective_chat
        return (user is not None and chat is not None
                and user.id in self.settings.telegram_allowed_user_ids
                and chat.id in self.settings.telegram_chat_ids)

    async def admit(self, update: Update, context: Context) -> None:
        message = update.message
        command = message.text if message and message.text and message.text.startswith("/") \
            else None
        query = update.callback_query
        reply = _replied_to_me(update)
        upload = is_upload(message)  # a file sent to the bot: downloaded only if allowed
        if command is None and query is None and reply is None and not upload:
            raise ApplicationHandlerStop  # ordinary talk in the group: not for us
        if self.allowed(update):
            return
        user, chat = update.effective_user, update.effective_chat
        # A reply's text, or what follows /find, may be a patient's name: the log says what
        # it answered or asked, not what was typed; a file is named by its kind only (its name
        # may be a patient's), and not downloaded.
        if command is not None and command.split()[0].split("@")[0].lower() == "/find":
            command = "/find …"
        what = (command or f"reply to message {reply}")[:64] if query is None \
            else f"button {(query.data or '')[:64]}"
        if upload and message is not None:
            what = "upload of a " + ("document" if message.document else "photo")
        log.warning("rejected %s from Telegram user %s (%s) in chat %s: to allow it, the user id "
                    "goes in TELEGRAM_ALLOWED_USER_IDS and the chat id in TELEGRAM_CHAT_IDS",
                    what, user.id if user else "?", _name(update), chat.id if chat else "?")
        await asyncio.to_thread(self.audit.record, "rejected", actor=_who(update),
                                chat_id=chat.id if chat else None, command=what)
        if query is not None:
            await query.answer()  # stops the phone's spinner; says nothing
        raise ApplicationHandlerStop

    # --- commands -----------------------------------------------------------------------

    async def _reply(self, update: Update, text: str, *, pre: bool = False,
                     markup: Any = None) -> Message | None:
        if update.effective_chat is None:
            return None
        body = _pre(fit(text, 4000)) if pre else fit(text)
        sent: Message = await update.get_bot().send_message(
            update.effective_chat.id, body, parse_mode="HTML" if pre else None,
            reply_markup=markup)
        return sent

    async def _reply_about(self, update: Update, document_id: str, kind: str, text: str,
                           markup: Any = None, options: tuple[str, ...] = ()) -> None:
        """A message about a document, kept (`threads`) so that a reply to it finds the
        document and a decision made anywhere edits it."""
        sent = await self._reply(update, text, markup=markup)
        if sent is None:
            return
        buttons = markup is not None and kind != threads.PROMPT
        try:
            await asyncio.to_thread(threads.record, self.store, sent.chat_id, sent.message_id,
                                    document_id, kind, fit(text), buttons=buttons,
                                    options=options)
            doc = await asyncio.to_thread(spool.get, self.store, document_id)
            # Decided while this was on its way (the decision's edits may be done already):
            # this one follows now.
            if buttons and doc is not None and doc.state == FILED and await asyncio.to_thread(
                    threads.close, self.store, sent.chat_id, sent.message_id):
                await self._edit(sent, decided_text.note(doc.result, self.settings.phi))
        except DocagentError as error:
            log.warning("message %d about document %s not kept (%s): it keeps its buttons "
                        "after the decision", sent.message_id, document_id, error)

    def _help(self) -> str:
        shows = disclosure.shows_scan(self.settings.phi)
        text = translate(HELP) + (translate(OPEN_HELP) if shows else "")
        return (f"{text}\n{search_text.help_line(self.settings.phi)}\n"
                f"{find_text.help_line(self.settings.phi)}")

    async def help(self, update: Update, context: Context) -> None:
        await self._reply(update, self._help())

    async def unknown(self, update: Update, context: Context) -> None:
        """A command that is not one of ours: say so, with the list (`admit` has let only
        staff through)."""
        text = update.message.text if update.message and update.message.text else ""
        name, _at, addressee = (text.split() or ["/"])[0].removeprefix("/").partition("@")
        if addressee and addressee.lower() != (context.bot.username or "").lower():
            return  # another bot's command, in a group several bots share
        await self._reply(update, _("I do not know the command /%(command)s.")
                          % {"command": name[:32]} + "\n\n" + self._help())

    async def status(self, update: Update, context: Context) -> None:
        figures = await asyncio.to_thread(status.gather, self.settings, self.store)
        await self._reply(update, status.render(figures), pre=True)

    async def health(self, update: Update, context: Context) -> None:
        def run() -> str:
            checks = health.run_checks(self.settings, self.store)
            verdict = _("docagent is healthy") if all(c.ok for c in checks) else \
                _("docagent is NOT healthy")
            return f"{verdict}\n" + health.render(checks)
        await self._reply(update, await asyncio.to_thread(run), pre=True)

    async def costs(self, update: Update, context: Context) -> None:
        day = costs.named_day((context.args or ["today"])[0].lower())
        if day is None:
            await self._reply(update, _("usage: /costs [%(days)s]") % {"days": costs.DAY_WORDS})
            return
        report = await asyncio.to_thread(costs.report, self.settings.log_dir, costs.day(day))
        await self._reply(update, costs.render(report, chat=True))

    async def review(self, update: Update, context: Context) -> None:
        docs = await asyncio.to_thread(decisions.review_waiting, self.store)

        def one(doc: Document) -> tuple[str, Any]:
            payload = document_payload(doc)
            return (render("review", payload, phi=self.settings.phi),
                    review_keyboard(payload, self.settings.phi))

        await self._send_list(update, docs, one, _("Nothing waiting for a decision."),
                              lambda n: ngettext(
                                  "… and %(n)d more waiting: /review again once these are "
                                  "decided.", "… and %(n)d more waiting: /review again once "
                                  "these are decided.", n) % {"n": n},
                              kept=threads.REVIEW)

    async def failed(self, update: Update, context: Context) -> None:
        docs = await asyncio.to_thread(decisions.failed_documents, self.store)

        def one(doc: Document) -> tuple[str, Any]:
            return (render("failed", document_payload(doc), phi=self.settings.phi),
                    failed_keyboard(doc.id))

        await self._send_list(update, docs, one, _("No failed documents."),
                              lambda n: ngettext(
                                  "… and %(n)d more: /failed again once these are handled.",
                                  "… and %(n)d more: /failed again once these are handled.",
                                  n) % {"n": n})

    async def _send_list(self, update: Update, docs: list[Document],
                         one: Callable[[Document], tuple[str, Any]], empty: str,
                         more: Callable[[int], str], kept: str | None = None) -> None:
        """A message with its buttons per document, the first LIST_LIMIT of them (each
        kept as a message of kind `kept`, when given)."""
        if not docs:
            await self._reply(update, empty)
            return
        for doc in docs[:LIST_LIMIT]:
            text, markup = one(doc)
            if kept is None:
                await self._reply(update, text, markup=markup)
            else:
                await self._reply_about(update, doc.id, kept, text, markup)
        if len(docs) > LIST_LIMIT:
            await self._reply(update, more(len(docs) - LIST_LIMIT))

    async def retry(self, update: Update, context: Context) -> None:
        if not context.args:
            await self._reply(update, _("usage: /retry DOC_ID (the id in brackets, or its "
                                        "first characters)"))
            return
        try:
            async with self.deciding:
                decision = await asyncio.to_thread(decisions.retry, self.settings, self.store,
                                                   context.args[0], who=_who(update))
        except DocagentError as error:
            await self._reply(update, _("Not retried: %(reason)s") % {"reason": self._said(error)})
            return
        self.wake()
        await self._reply(update, _("Queued %(id)s again (asked by %(who)s).") % {
            "id": decision.document_id, "who": _name(update)})

    # --- buttons ------------------------------------------------------------------------

    async def press(self, update: Update, context: Context) -> None:
        query = update.callback_query
        if query is None:
            return
        press = decode(query.data)
        if press is None:
            await query.answer(_("This button is not one of mine."))
            return
        doc = await asyncio.to_thread(spool.get, self.store, press.document_id)
        if doc is None:
            await query.answer(_("No such document."))
            return
        if press.action == OPEN:
            refusal = open_refusal(doc, self.settings.phi)
            if refusal is None:
                await self.open(update, query, doc)
                return
            log.warning("refused Open of document %s from %s: %s", doc.id, _who(update),
                        refusal, extra={"doc": doc.id})
            await query.answer(refusal)
        elif press.action == GET:
            await self.send_pdf(update, query, doc, press)
        elif press.action in (FILE, NONE, PICK):
            await self.decide(update, query, doc, press)
        elif press.action == RETRY:
            await self.retry_press(update, query, doc)
        elif press.action == SEARCH:
            await self.search_press(update, query, doc)

    async def decide(self, update: Update, query: CallbackQuery, doc: Document,
                     press: Press) -> None:
        """A candidate's button, "None of them", or a patient a search found: the same
        decision as `docagent review resolve`, by this user."""
        async with self.deciding:
            current = await asyncio.to_thread(spool.get, self.store, doc.id) or doc
            if current.state != REVIEW:
                await query.answer(fit(describe_decision(current), 190))
                return
            patient_id = None
            if press.action == FILE:
                candidates = (current.result.get("match") or {}).get("candidates") or []
                if press.candidate is None or press.candidate >= len(candidates):
                    await query.answer(_("This button is out of date: use /review."))
                    return
                patient_id = str(candidates[press.candidate]["id"])
            kept = await asyncio.to_thread(self._kept, query.message)
            if press.action == PICK:
                patient_id = _picked(kept, doc.id, press.candidate)
                if patient_id is None:  # not a search answer about this document: forged
                    log.warning("refused a pick for document %s from %s: no answer of mine "
                                "offered it", doc.id, _who(update), extra={"doc": doc.id})
                    await query.answer(_("This button is out of date: use /review."))
                    return
            # This message is edited here and now; the decision's outbox row edits the others.
            mine = kept is not None and kept.open and await asyncio.to_thread(
                threads.close, self.store, kept.chat_id, kept.message_id)
            try:
                await asyncio.to_thread(decisions.resolve, self.settings, self.store, doc.id,
                                        patient_id, who=_who(update))
            except DocagentError as error:  # a race lost, or the machine (disk, database)
                if mine and kept is not None:
                    await asyncio.to_thread(threads.reopen, self.store, kept)
                await query.answer(fit(self._not_done(error), 190), show_alert=True)
                return
            decided = await asyncio.to_thread(spool.get, self.store, doc.id) or current
        self.wake()
        where = decided_text.where(decided.result, self.settings.phi)
        await query.answer((_("Filed under %(patient)s.") % {"patient": where} if where
                            else _("Filed as unassigned."))[:190])
        await self._edit(query.message, decided_text.note(decided.result, self.settings.phi,
                                                          name=_name(update)))

    def _kept(self, message: object) -> threads.Kept | None:
        """What the bot kept of the message a button was pressed under."""
        if not isinstance(message, Message):
            return None
        return threads.find(self.store, message.chat_id, message.message_id)

    async def retry_press(self, update: Update, query: CallbackQuery, doc: Document) -> None:
        async with self.deciding:
            current = await asyncio.to_thread(spool.get, self.store, doc.id) or doc
            if current.state != FAILED:
                await query.answer(_("Already handled: it is %(state)s now.") % {
                    "state": spool.state_word(current.state)})
                return
            try:
                await asyncio.to_thread(decisions.retry, self.settings, self.store, doc.id,
                                        who=_who(update))
            except DocagentError as error:
                await query.answer(fit(self._not_done(error), 190), show_alert=True)
                return
        self.wake()
        await query.answer(_("Back in the queue."))
        await self._edit(query.message, _("↻ Retry asked by %(who)s (%(id)s): back in the "
                                          "queue.") % {"who": _name(update), "id": _who(update)})

    async def _edit(self, message: Any, note: str) -> None:
        if not isinstance(message, Message):
            return
        try:
            await message.edit_text(fit(f"{message.text or ''}\n\n{note}"), reply_markup=None)
        except TelegramError as error:
            log.warning("could not edit the message with the decision: %s", error)

    def _said(self, error: DocagentError) -> str:
        return reasons.error_text(error, self.settings.phi)

    def _not_done(self, error: DocagentError) -> str:
        return _("Not done: %(reason)s") % {"reason": self._said(error)}

    # --- a patient who is not among the buttons ----------------------------------------

    async def search_press(self, update: Update, query: CallbackQuery, doc: Document) -> None:
        """"Another patient…": a message to reply to with a name, a birth date or an id."""
        if doc.state != REVIEW:
            await query.answer(fit(describe_decision(doc), 190))
            return
        phi = self.settings.phi
        shown = disclosure.file_name(doc.original_name, phi, doc.id)
        await query.answer(search_text.press_answer(phi)[:190])
        await self._reply_about(update, doc.id, threads.PROMPT,
                                search_text.prompt(shown, doc.id, phi),
                                ForceReply(input_field_placeholder=search_text.placeholder(phi)))

    async def search_reply(self, update: Update, context: Context) -> None:
        """A reply to a message about a document in review: search the directory with it."""
        message, chat = update.message, update.effective_chat
        replied = message.reply_to_message if message else None
        if message is None or replied is None or chat is None or not message.text:
            return
        kept = await asyncio.to_thread(threads.find, self.store, chat.id, replied.message_id)
        if kept is not None and kept.kind == threads.FIND:
            await self._find(update, message.text.strip())  # a reply to an answer: again
            return
        if kept is None:
            await self._reply(update, search_text.not_about_a_document())
            return
        doc = await asyncio.to_thread(spool.get, self.store, kept.document_id)
        if doc is None or doc.state != REVIEW:
            await self._reply(update, describe_decision(doc) if doc else _("No such document."))
            return
        phi = self.settings.phi
        fields = Record.from_json(doc.result).fields or parsed_fields({})
        found = await asyncio.to_thread(lookup.find, self.store, message.text, fields,
                                        names=not disclosure.minimal(phi))
        log.info("search for the patient of document %s by %s: %s, %d found", doc.id,
                 _who(update), found.by, len(found.hits) + found.more, extra={"doc": doc.id})
        shown = disclosure.file_name(doc.original_name, phi, doc.id)
        text = search_text.answer(found, message.text, shown, doc.id, phi)
        if not found.hits:
            # Replying to this answer searches again: it is kept, without buttons.
            await self._reply_about(update, doc.id, threads.PROMPT, text)
            return
        await self._reply_about(update, doc.id, threads.SEARCH, text,
                                search_keyboard(doc.id, found.hits, phi),
                                options=tuple(hit.patient.id for hit in found.hits))

    async def open(self, update: Update, query: CallbackQuery, doc: Document) -> None:
        if update.effective_chat is None:
            return
        pdf = self.settings.home / (doc.path or "")
        if not doc.path or not pdf.is_file():
            await query.answer(_("The file is not there any more."))
            return
        await query.answer(_("Sending the first page…"))
        shown = disclosure.file_name(doc.original_name, self.settings.phi, doc.id)
        caption = (_("First page of %(file)s [%(id)s]") % {"file": shown, "id": doc.id})[:1000]
        png = await asyncio.to_thread(first_page_png, pdf)
        bot, chat = update.get_bot(), update.effective_chat.id
        # Recorded before it leaves: an access whose sending failed is still on record.
        await asyncio.to_thread(finding.record_access, self.settings, finding.OPENED,
                                _who(update), doc, chat_id=chat,
                                sent="first page" if png is not None else "pdf")
        if png is not None:
            await bot.send_photo(chat, png, caption=caption)
        else:
            await bot.send_document(chat, pdf.read_bytes(), filename=pdf.name, caption=caption)

    # --- finding a patient's documents -------------------------------------------------

    async def find(self, update: Update, context: Context) -> None:
        """/find: the patients that fit, then their documents with an Open button each."""
        await self._find(update, " ".join(context.args or []).strip())

    async def _find(self, update: Update, text: str) -> None:
        phi = self.settings.phi
        if not text:
            await self._reply(update, find_text.usage(phi))
            return
        try:
            ask = await asyncio.to_thread(self._ask, text)
            if ask is None:
                log.info("/find from %s refused: not a directory id (DOCAGENT_PHI=minimal)",
                         _who(update))
                await self._reply(update, find_text.id_only())
                return
            answer = await asyncio.to_thread(finding.find, self.store, ask,
                                             max_patients=find_text.MAX_PATIENTS)
        except DateProblem as problem:  # "31/02/1961": meant as a date, and impossible
            await self._reply(update, problem.message)
            return
        shown = answer.documents[:FIND_LIMIT]
        patients = answer.patients[:find_text.MAX_PATIENTS]
        chat = update.effective_chat.id if update.effective_chat else None
        await asyncio.to_thread(finding.record_search, self.settings, _who(update), answer,
                                channel=finding.TELEGRAM, shown=shown, patients=patients,
                                chat_id=chat)
        markup = None if not disclosure.shows_scan(phi) else find_keyboard(
            [(hit.entry.document_id, find_text.label(hit)) for hit in shown])
        sent = await self._reply(update, find_text.answer(answer, shown, phi), markup=markup)
        if sent is not None and shown:
            try:
                await asyncio.to_thread(
                    threads.record, self.store, sent.chat_id, sent.message_id, "",
                    threads.FIND, "", buttons=False,
                    options=tuple(hit.entry.document_id for hit in shown))
            except DocagentError as error:  # its Open buttons then refuse: say why
                log.warning("find answer %d not kept (%s): its Open buttons will refuse",
                            sent.message_id, error)

    def _ask(self, text: str) -> finding.Ask | None:
        """What a /find asks; None under minimal when it does not start with a directory id."""
        if disclosure.minimal(self.settings.phi):
            first, _space, rest = text.partition(" ")
            patient = lookup.patient_by_id(self.store, first)
            if patient is None:
                return None
            return finding.Ask(patient=patient.id, words=rest.strip() or None,
                               limit=FIND_LIMIT)
        name, words = finding.split_words(self.store, text)
        return finding.Ask(patient=name, words=words, limit=FIND_LIMIT)

    async def send_pdf(self, update: Update, query: CallbackQuery, doc: Document,
                       press: Press) -> None:
        """Open under a /find answer: the PDF into this chat, if this answer offered it."""
        refusal = await asyncio.to_thread(self._pdf_refusal, query.message, doc, press)
        if refusal is not None:
            log.warning("refused Open of document %s from %s: %s", doc.id, _who(update),
                        refusal, extra={"doc": doc.id})
            await query.answer(fit(refusal, 190), show_alert=True)
            return
        pdf = self.settings.home / (doc.path or "")
        size = pdf.stat().st_size
        if size > MAX_SEND_BYTES:
            await query.answer(fit(translate(OPEN_TOO_LARGE) % {"mb": size // 2**20}, 190),
                               show_alert=True)
            return
        if update.effective_chat is None:
            return
        chat = update.effective_chat.id
        await query.answer(_("Sending the PDF…"))
        data = await asyncio.to_thread(pdf.read_bytes)
        await asyncio.to_thread(finding.record_access, self.settings, finding.OPENED,
                                _who(update), doc, chat_id=chat, sent="pdf")
        shown = disclosure.file_name(doc.original_name, self.settings.phi, doc.id)
        await update.get_bot().send_document(
            chat, data, filename=pdf.name,
            caption=(_("%(file)s [%(id)s], sent at %(who)s's request")
                     % {"file": shown, "id": doc.id, "who": _name(update)})[:1000])

    def _pdf_refusal(self, message: object, doc: Document, press: Press) -> str | None:
        """Why Open under a find answer may not send this document's PDF, or None."""
        if not disclosure.shows_scan(self.settings.phi):
            return translate(OPEN_REFUSED_MINIMAL_PDF)
        kept = self._kept(message)
        if kept is None or kept.kind != threads.FIND or press.candidate is None \
                or press.candidate >= len(kept.options) \
                or kept.options[press.candidate] != doc.id or _age(kept.sent_at) > \
                FIND_OPEN_SECONDS:
            return translate(OPEN_REFUSED_STALE)
        pdf = self.settings.home / (doc.path or "")
        if doc.state not in (FILED, REVIEW) or not doc.path or not pdf.is_file() \
                or not pdf.resolve().is_relative_to(self.settings.home.resolve()):
            return translate(OPEN_REFUSED_GONE) % {"state": spool.state_word(doc.state)}
        return None

    async def error(self, update: object, context: Context) -> None:
        error = context.error
        if isinstance(error, DocagentError):
            log.warning("a Telegram command could not be done: %s", error)
            said = self._said(error)
        else:
            log.error("a Telegram command failed: %r", error, exc_info=error)
            said = _("an unexpected error; the log has the details")
        # Staff who asked get an answer rather than silence; nobody else learns anything.
        if (isinstance(update, Update) and update.effective_chat is not None
                and update.effective_user is not None
                and update.effective_chat.id in self.settings.telegram_chat_ids
                and update.effective_user.id in self.settings.telegram_allowed_user_ids):
            with contextlib.suppress(TelegramError):
                await self._reply(update, _("That did not work: %(reason)s. Try again in a "
                                            "moment.") % {"reason": said})

