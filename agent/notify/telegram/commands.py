"""What the staff can ask the bot, and what its buttons do.

Every update first passes `admit`: commands and presses are taken only from a user of
TELEGRAM_ALLOWED_USER_IDS in a chat of TELEGRAM_CHAT_IDS. Anything else gets nothing useful
back, a warning in the log (with the ids, which is how an administrator finds them) and an
audit line. Decisions go through `agent.ops.decisions`, the code of `docagent review resolve` and
`docagent retry`, one at a time, with `telegram:<user id>` as who decided.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from telegram import CallbackQuery, Message, Update
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
from agent.errors import DiskFull, DocagentError, PopplerMissing, ToolFailed
from agent.i18n import N_, _, ngettext, translate
from agent.logs import get_logger
from agent.notify.messages import fit, render
from agent.notify.telegram.keyboards import (
    FILE,
    NONE,
    OPEN,
    RETRY,
    Press,
    decode,
    failed_keyboard,
    review_keyboard,
)
from agent.ops import costs, decisions, health, status
from agent.spool import FAILED, FILED, REVIEW, Document
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
# The bot's menu of commands, each with what it does (translated where the menu is set).
COMMANDS = [("status", N_("counts, backlog, last activity")),
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
        for name, handler in (("status", self.status), ("review", self.review),
                              ("failed", self.failed), ("retry", self.retry),
                              ("costs", self.costs), ("health", self.health),
                              ("help", self.help), ("start", self.help)):
            app.add_handler(CommandHandler(name, handler))
        # Last of its group: a command none of the above took (`/foo`) gets the list.
        app.add_handler(MessageHandler(filters.COMMAND, self.unknown))
        app.add_handler(CallbackQueryHandler(self.press))
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
        if command is None and query is None:
            raise ApplicationHandlerStop  # ordinary talk in the group: not for us
        if self.allowed(update):
            return
        user, chat = update.effective_user, update.effective_chat
        what = (command or "")[:64] if query is None else f"button {(query.data or '')[:64]}"
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
                     markup: Any = None) -> None:
        if update.effective_chat is None:
            return
        body = _pre(fit(text, 4000)) if pre else fit(text)
        await update.get_bot().send_message(update.effective_chat.id, body,
                                            parse_mode="HTML" if pre else None,
                                            reply_markup=markup)

    def _help(self) -> str:
        shows = disclosure.shows_scan(self.settings.phi)
        return translate(HELP) + (translate(OPEN_HELP) if shows else "")

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
                                  "these are decided.", n) % {"n": n})

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
                         more: Callable[[int], str]) -> None:
        """A message with its buttons per document, the first LIST_LIMIT of them."""
        if not docs:
            await self._reply(update, empty)
            return
        for doc in docs[:LIST_LIMIT]:
            text, markup = one(doc)
            await self._reply(update, text, markup=markup)
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
        elif press.action in (FILE, NONE):
            await self.decide(update, query, doc, press)
        elif press.action == RETRY:
            await self.retry_press(update, query, doc)

    async def decide(self, update: Update, query: CallbackQuery, doc: Document,
                     press: Press) -> None:
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
            try:
                decision = await asyncio.to_thread(decisions.resolve, self.settings,
                                                   self.store, doc.id, patient_id,
                                                   who=_who(update))
            except DocagentError as error:  # a race lost, or the machine (disk, database)
                await query.answer(fit(self._not_done(error), 190), show_alert=True)
                return
        self.wake()
        values = {"patient": f"#{decision.patient_id}", "who": _name(update),
                  "id": _who(update)}
        if decision.patient_id:
            chosen = (current.result.get("match") or {}).get("candidates", [])[press.candidate or 0]
            values["patient"] = disclosure.chosen(chosen, self.settings.phi)
            await query.answer((_("Filed under %(patient)s.") % values)[:190])
            await self._edit(query.message, _("✔ Filed under %(patient)s by %(who)s (%(id)s).")
                             % values)
        else:
            await query.answer(_("Filed as unassigned."))
            await self._edit(query.message, _("✔ Filed as unassigned by %(who)s (%(id)s).")
                             % values)

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
        if png is not None:
            await bot.send_photo(chat, png, caption=caption)
        else:
            await bot.send_document(chat, pdf.read_bytes(), filename=pdf.name, caption=caption)

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

