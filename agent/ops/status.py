"""`docagent status`: the state of the spool at a glance, from state.db and incoming/.

Every figure is one indexed or small query, so the answer stays instant on years of history:
"today" counts use the index on `finished_at`, the OCR figures read only today's lines of the
cost ledger (found by bisection). Days are the server's local calendar days (the practice's),
stamps are stored in UTC.

The OCR figures are the ledger's, the same as `docagent costs`: one line per reading of a
document, written when the reading is done. A page read again (the document deferred at
filing and read anew, a retry) was work done twice and is counted twice, on the day it was
done; the documents table would count it once (only the last reading's pages are kept with
the document) and on the day the document was last moved (a review resolved today counted
pages read days ago).
"""

from __future__ import annotations

import stat
import time
from datetime import UTC, date, datetime
from statistics import median
from typing import Any

from agent import spool
from agent.config import Settings
from agent.i18n import N_, _, day, ngettext, pgettext, translate
from agent.ledger import day_bounds, read_range
from agent.ops import mail, telegram_intake
from agent.patients import count as count_patients
from agent.store import Store

OUTCOMES = ("filed", "review", "failed", "duplicate")


def _age(stamp: str | None, now: float) -> int | None:
    if not stamp:
        return None
    return max(0, round(now - datetime.fromisoformat(stamp).timestamp()))


def gather(settings: Settings, store: Store, today: date | None = None) -> dict[str, Any]:
    """Every figure `docagent status` shows, as JSON-ready values."""
    now = time.time()
    today = today or date.today()
    start, end = day_bounds(today)
    by_state = spool.counts_by_state(store)
    today_counts = spool.counts_by_state(store, finished=(start, end))
    duplicates = spool.duplicates(store)
    duplicates_today = spool.duplicates(store, received=(start, end))
    waiting: list[tuple[float, str]] = []
    for entry in settings.incoming.iterdir():
        try:
            info = entry.lstat()
        except FileNotFoundError:
            continue  # the daemon took it while we looked
        if stat.S_ISREG(info.st_mode):
            waiting.append((info.st_mtime, entry.name))
    oldest_file = min(waiting, default=None)
    queued = spool.oldest_queued(store)
    oldest: dict[str, Any] | None = None
    if oldest_file is not None:
        mtime, name = oldest_file
        oldest = {"name": name, "where": "incoming", "document_id": None,
                  "since": datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds"),
                  "seconds": round(now - mtime)}
    if queued and (oldest is None or (_age(queued.received_at, now) or 0) > oldest["seconds"]):
        oldest = {"name": queued.original_name, "where": "queue", "document_id": queued.id,
                  "since": queued.received_at, "seconds": _age(queued.received_at, now)}
    last = spool.last_finished_at(store)
    filed = spool.last_filed(store)
    last_filed = ({"document_id": filed.id, "patient_id": filed.patient_id,
                   "at": filed.finished_at} if filed else None)
    page_seconds = _ocr_page_seconds(settings, start, end)
    deferred = spool.deferred_count(store)
    outbox = store.outbox_backlog()
    # Messages Telegram refused for good today (they left the queue with the reason).
    given_up = store.given_up_between(start, end)
    totals = {**{k: by_state.get(k, 0) for k in OUTCOMES[:3]}, "duplicate": duplicates}
    todays = {**{k: today_counts.get(k, 0) for k in OUTCOMES[:3]}, "duplicate": duplicates_today}
    return {
        # The first keys are the original contract (tests and scripts read them).
        **totals,
        "queued": by_state.get("queued", 0) + by_state.get("claiming", 0),
        "deferred": deferred,
        "in_progress": by_state.get("processing", 0) + by_state.get("filing", 0),
        "incoming": len(waiting),
        "oldest_waiting_seconds": oldest["seconds"] if oldest else None,
        "today": {k: todays[k] for k in OUTCOMES[:3]},
        "last_activity": last,
        "outbox_pending": outbox[0],
        "patients": count_patients(store),
        # The figures by day and by outcome, with what waits longest and what was filed last.
        "day": today.isoformat(),
        "outcomes": {k: {"today": todays[k], "total": totals[k]} for k in OUTCOMES},
        "oldest_waiting": oldest,
        "last_filed": last_filed,
        "ocr_today": {"pages": len(page_seconds),
                      "median_seconds": round(median(page_seconds), 2) if page_seconds else None},
        "outbox_oldest_pending_at": outbox[1],
        "outbox_retrying": outbox[2],
        "outbox_given_up_today": given_up,
        # The mail channel (None without a mailbox): as the daemon last saw it.
        "mail": _mail(settings, store, start, end),
        # The Telegram channel (None without a bot token): files sent to the bot.
        "telegram": _telegram(settings, store, start, end),
    }


def _telegram(settings: Settings, store: Store, start: str, end: str) -> dict[str, Any] | None:
    if not settings.telegram_token:
        return None
    return {"downloads_today": telegram_intake.downloads_between(store, start, end)}


def _mail(settings: Settings, store: Store, start: str, end: str) -> dict[str, Any] | None:
    if settings.mail is None:
        return None
    state = mail.state_of(store)
    return {"mailbox": settings.mail.where, "state": state.get("state"),
            "since": state.get("since"), "idle": state.get("idle"),
            "detail": state.get("detail"), "checked_at": state.get("checked_at"),
            "last_taken": mail.last_taken(store),
            "documents_today": mail.taken_between(store, start, end),
            "left": mail.left_count(store)}


def _ocr_page_seconds(settings: Settings, start: str, end: str) -> list[float]:
    """Seconds per page read by OCR in [start, end), from the ledger: a reading's line gives
    its pages and their total time, so each of its pages counts at the reading's mean."""
    seconds: list[float] = []
    for entry in read_range(settings.log_dir, start, end):
        if entry.get("service") != "ocr":
            continue
        pages = int((entry.get("units") or {}).get("pages") or 0)
        if pages:
            seconds += [int(entry.get("duration_ms") or 0) / 1000 / pages] * pages
    return seconds


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return _("%(n)d s") % {"n": seconds}
    if seconds < 7200:
        return _("%(n)d min") % {"n": seconds // 60}
    if seconds < 172800:
        return _("%(n)d h") % {"n": seconds // 3600}
    return ngettext("%(n)d day", "%(n)d days", seconds // 86400) % {"n": seconds // 86400}


def _local(stamp: str | None) -> str:
    if not stamp:
        return _("never")
    moment = datetime.fromisoformat(stamp).astimezone()
    if moment.date() == date.today():
        return moment.strftime("%H:%M")
    return f"{day(moment.date().isoformat())} {moment.strftime('%H:%M')}"


_WHERE = {"incoming": N_("in incoming/"), "queue": N_("in the queue")}
# The mail channel's state, as the daemon last saw it.
_MAIL_STATES = {"connected": N_("connected"), "down": N_("unreachable"),
                "refused": N_("refused"), None: N_("not read yet")}


def _row(label: str, *figures: object) -> str:
    return f"{label:<12}" + "".join(f"{f:>9}" for f in figures)


def render(status: dict[str, Any]) -> str:
    """A table 34 columns wide: it fits a phone's terminal as well as a desktop one."""
    lines = [_row("", pgettext("status table", "today"), pgettext("status table", "total"))]
    # A table's words: "classés" in French, where a document is "classé".
    rows = {"filed": pgettext("status table", "filed"),
            "review": pgettext("status table", "review"),
            "failed": pgettext("status table", "failed"),
            "duplicate": pgettext("status table", "duplicate")}
    for outcome in OUTCOMES:
        figures = status["outcomes"][outcome]
        lines.append(_row(rows[outcome], figures["today"], figures["total"]))
    backlog = status["incoming"] + status["queued"]
    lines.append(_row(pgettext("status table", "backlog"), backlog))
    lines.append("  " + _("%(incoming)d incoming, %(queued)d queued,") % status)
    lines.append("  " + _("%(deferred)d deferred, %(in_progress)d in progress") % status)
    oldest = status["oldest_waiting"]
    if oldest:
        where = _WHERE.get(oldest["where"])
        lines.append(_("oldest wait %(time)s (%(where)s)") % {
            "time": _duration(oldest["seconds"]),
            "where": translate(where) if where else oldest["where"]})
    last = status["last_filed"]
    lines.append(_("last filed  %(when)s") % {"when": _local(last["at"]) if last else _("never")}
                 + (f" {last['document_id'][:8]}" if last else ""))
    ocr = status["ocr_today"]
    pages = ngettext("%(n)d page", "%(n)d pages", ocr["pages"]) % {"n": ocr["pages"]}
    lines.append(_("OCR today   %(pages)s") % {"pages": pages} + (
        _(", median %(seconds)s s") % {"seconds": ocr["median_seconds"]} if ocr["pages"] else ""))
    given_up = status.get("outbox_given_up_today")
    pending = {"n": status["outbox_pending"], "retrying": status["outbox_retrying"]}
    lines.append((_("outbox      %(n)d pending (%(retrying)d retrying)") if pending["retrying"]
                  else _("outbox      %(n)d pending")) % pending)
    if given_up:
        lines.append("  " + ngettext("%(n)d refused by Telegram today (see the log)",
                                     "%(n)d refused by Telegram today (see the log)", given_up)
                     % {"n": given_up})
    lines.append(_("patients    %(n)d") % {"n": status["patients"]})
    box = status.get("mail")
    if box:
        word = translate(_MAIL_STATES.get(box["state"], N_("not read yet")))
        idle = " (IDLE)" if box["state"] == "connected" and box["idle"] else ""
        lines.append(_("mail        %(state)s") % {"state": word + idle})
        last = box["last_taken"]
        lines.append("  " + _("last taken %(when)s, %(n)d today")
                     % {"when": _local(last["at"]) if last else _("never"),
                        "n": box["documents_today"]})
        if box["left"]:
            lines.append("  " + ngettext("%(n)d message left (see the log)",
                                         "%(n)d messages left (see the log)", box["left"])
                         % {"n": box["left"]})
    bot = status.get("telegram")
    if bot:
        n = bot["downloads_today"]
        lines.append(ngettext("telegram    %(n)d received today",
                              "telegram    %(n)d received today", n) % {"n": n})
    return "\n".join(lines)
