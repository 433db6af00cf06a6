"""`docagent health`: every check of a working installation, each one line, ok or what is wrong.

Run by hand, or every 15 minutes by docagent-health.timer with `--notify`, which writes a
"health" message to the outbox only when the set of failing checks changes (a new problem) and
once when everything is well again; the last verdict is kept in the `meta` table. Only the
daemon sends the outbox; while it is down, `docagent health --notify` sends its own alert
(see `cli._health`), or "the daemon is down" would reach nobody until the daemon is back.

Under journald every line carries its priority, a failing check's `err`, and the command exits
1 when anything fails, so `journalctl -p err` and `systemctl --failed` both see it.

Limits are read with every other setting (`config.load`, `Settings.health`), with defaults that
suit a small practice:
`DOCAGENT_HEALTH_HEARTBEAT_MAX` (seconds, 120), `DOCAGENT_HEALTH_MIN_FREE` (bytes, 1G),
`DOCAGENT_HEALTH_MAX_WAIT` (seconds a file may wait in incoming/, 900),
`DOCAGENT_HEALTH_MAX_FAILED` (failed documents tolerated in 24 h, 5),
`DOCAGENT_HEALTH_MAX_OUTBOX_AGE` (seconds, 900), `DOCAGENT_HEALTH_UNITS` (units to ask systemd
about, space- or comma-separated: the allowlist, and nothing outside it is ever queried).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pwd
import shutil
import sqlite3
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from agent import canary, lock, reasons, spool
from agent.config import UNIT_NAME, HealthLimits, Settings
from agent.errors import (
    DocagentError,
    NoAccess,
    OcrEngineMissing,
    PopplerMissing,
    ToolFailed,
    advice,
)
from agent.i18n import _, ngettext
from agent.ledger import day_bounds
from agent.logs import escape, with_priority
from agent.ops import telegram_intake
from agent.patients import count as count_patients
from agent.store import Store
from agent.tools import pdfinfo, pdftoppm, pdftotext, runner, systemctl, tesseract

CANARY_WAIT = 10.0  # seconds for the daemon to notice the canary (polling sees it in ~2 s)
STATE_KEY = "health_failing"  # meta: JSON list of the checks failing at the last --notify


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


# --- the checks ---------------------------------------------------------------------------


def daemon_holder(settings: Settings) -> lock.Holder | None:
    """The running daemon, asked of the spool's lock itself (see `agent.lock`); None if none.

    A holder that declared when it lets go is `docagent health` sending its alert: no daemon.
    Raises PermissionError when this user may not open the lock file.
    """
    return lock.daemon(settings.home)


def check_daemon(settings: Settings, store: Store, limit: float,
                 holder: lock.Holder | None) -> Check:
    if holder is None:
        return Check("daemon", False, _("no `docagent run` holds the lock on %(home)s: the "
                                        "daemon is not running (systemctl status docagent)")
                     % {"home": settings.home})
    pid = holder.pid if holder.pid is not None else "?"
    beat = store.get_meta("heartbeat")
    if beat is None:
        return Check("daemon", False, _("running (pid %(pid)s) but has never written a "
                                        "heartbeat") % {"pid": pid})
    age = time.time() - float(beat)
    if age > limit:
        return Check("daemon", False, _("running (pid %(pid)s) but its last heartbeat is "
                                        "%(age).0f s old (limit %(limit).0f s): its loop or a "
                                        "worker is stuck") % {"pid": pid, "age": age,
                                                              "limit": limit})
    return Check("daemon", True, _("running (pid %(pid)s), heartbeat %(age).0f s ago")
                 % {"pid": pid, "age": age})


def check_watcher(settings: Settings, daemon_alive: bool,
                  wait: float = CANARY_WAIT) -> Check:
    if not daemon_alive:
        return Check("watcher", False, _("not tested: no daemon to notice the canary file"))
    where = {"folder": settings.incoming, "wait": wait}
    try:
        path = canary.drop(settings.incoming)
    except OSError as error:
        return Check("watcher", False, _("cannot write a canary in %(folder)s: %(error)s")
                     % {**where, "error": error})
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not path.exists():
            return Check("watcher", True, _("a canary file in %(folder)s was noticed") % where)
        time.sleep(0.1)
    canary.acknowledge(path)
    return Check("watcher", False, _("a canary file in %(folder)s went unnoticed for %(wait).0f "
                                     "s: the watcher sees no events (try "
                                     "DOCAGENT_WATCH=polling)") % where)


def check_tesseract(settings: Settings) -> Check:
    try:
        have = tesseract.languages()
    except OcrEngineMissing:
        return Check("tesseract", False, _("tesseract is not installed (%(install)s)")
                     % {"install": OcrEngineMissing.install})
    except (OSError, runner.NoResult, ToolFailed):
        return Check("tesseract", False, _("tesseract --list-langs does not run"))
    missing = [lang for lang in settings.ocr_langs.split("+") if lang not in have]
    if missing:
        return Check("tesseract", False, _("languages missing: %(langs)s (%(install)s)") % {
            "langs": ", ".join(missing), "install": tesseract.install_languages(missing)})
    return Check("tesseract", True, _("languages %(langs)s present")
                 % {"langs": settings.ocr_langs})


def check_poppler() -> Check:
    missing = [tool.name for tool in (pdfinfo.PROGRAM, pdftoppm.PROGRAM, pdftotext.PROGRAM)
               if not tool.installed()]
    if missing:
        return Check("poppler", False, _("%(tools)s missing (%(install)s)") % {
            "tools": ", ".join(missing), "install": PopplerMissing.install})
    try:
        version = pdfinfo.version()
    except (PopplerMissing, OSError, runner.NoResult, ToolFailed):
        return Check("poppler", False, _("pdfinfo -v does not run"))
    return Check("poppler", True, version or _("present"))


def check_database(store: Store) -> Check:
    try:
        store.set_meta("health_probe", str(time.time()))
    except DocagentError as error:
        return Check("database", False, _("cannot write to the database: %(reason)s")
                     % {"reason": error.said})
    return Check("database", True, _("opens and is writable"))


def check_disk(settings: Settings, floor: int) -> Check:
    free = shutil.disk_usage(settings.home).free
    text = _("%(free).1f GiB free under %(home)s") % {"free": free / 1024**3,
                                                      "home": settings.home}
    if free < floor:
        return Check("disk", False, _("%(text)s, below the floor of %(floor).1f GiB")
                     % {"text": text, "floor": floor / 1024**3})
    return Check("disk", True, text)


def check_incoming(settings: Settings, store: Store, max_wait: float) -> Check:
    oldest: tuple[float, str] | None = None
    count = 0
    refused: list[str] = []
    left = 0
    try:
        with os.scandir(settings.incoming) as entries:
            for entry in entries:
                if spool.ignored(entry.name) or not entry.is_file(follow_symlinks=False):
                    continue
                doc = spool.taken_before(store, Path(entry.path))
                if doc is not None:
                    # Dealt with already: refused as unreadable, or taken and not removable.
                    if spool.is_refusal(doc):
                        said = reasons.of_payload(doc.result).text()
                        refused.append(f"'{escape(entry.name)}' ({said})")
                    else:
                        left += 1
                    continue
                count += 1
                mtime = entry.stat(follow_symlinks=False).st_mtime
                oldest = min(oldest or (mtime, entry.name), (mtime, entry.name))
    except OSError as error:
        return Check("incoming", False, _("cannot list %(folder)s: %(error)s")
                     % {"folder": settings.incoming, "error": error})
    kept = "; " + ngettext("%(n)d taken but left in place (it could not be removed)",
                           "%(n)d taken but left in place (they could not be removed)",
                           left) % {"n": left} if left else ""
    try:
        stray = spool.stray_folders(settings.incoming)
    except OSError:
        stray = {}  # a folder removed while it was counted: the next run sees it
    if stray:
        kept += "; " + _stray(stray)
    if refused:
        return Check("incoming", False, ngettext(
            "%(n)d file docagent may not read: %(files)s. %(action)s%(kept)s",
            "%(n)d files docagent may not read: %(files)s. %(action)s%(kept)s", len(refused))
            % {"n": len(refused), "files": ", ".join(refused[:3]),
               "action": advice(NoAccess), "kept": kept})
    if oldest is None:
        return Check("incoming", not stray, _("nothing waiting%(kept)s") % {"kept": kept})
    age = time.time() - oldest[0]
    text = ngettext("%(n)d waiting, the oldest for %(age).0f s ('%(file)s')%(kept)s",
                    "%(n)d waiting, the oldest for %(age).0f s ('%(file)s')%(kept)s", count) % {
        "n": count, "age": age, "file": escape(oldest[1]), "kept": kept}
    if age <= max_wait:
        return Check("incoming", not stray, text)
    try:
        why = unreadable_by_daemon(settings, settings.incoming / oldest[1])
    except OSError:
        why = None  # taken meanwhile
    return Check("incoming", False, _("%(text)s, over the limit of %(limit).0f s: %(why)s") % {
        "text": text, "limit": max_wait,
        "why": why or _("files are not being taken (is the daemon running?)")})


def _stray(folders: dict[str, int]) -> str:
    """Files in folders inside incoming/, which are never taken."""
    total = sum(folders.values())
    named = ", ".join(f"'{escape(name)}/' ({count})" for name, count in list(folders.items())[:3])
    more = (" " + _("and %(n)d more") % {"n": len(folders) - 3}) if len(folders) > 3 else ""
    return (ngettext("%(n)d file inside a folder of incoming/ is never taken (only files "
                     "directly in incoming/ are)",
                     "%(n)d files inside folders of incoming/ are never taken (only files "
                     "directly in incoming/ are)", total) % {"n": total}
            + f": {named}{more}; " + _("move them up into incoming/"))


def unreadable_by_daemon(settings: Settings, path: Path) -> str | None:
    """Why the daemon's user (the spool's owner) may not read `path`, with the fix; else None.

    Judged from the mode bits, not by trying: health may run as root, who reads everything;
    and without a daemon running, no one has tried yet.
    """
    daemon_uid = settings.home.stat().st_uid
    info = path.lstat()
    if daemon_uid == 0:
        return None
    try:
        account = pwd.getpwuid(daemon_uid)
        user, groups = account.pw_name, set(os.getgrouplist(account.pw_name, account.pw_gid))
    except KeyError:
        user, groups = str(daemon_uid), set()
    if info.st_uid == daemon_uid:
        allowed = info.st_mode & stat.S_IRUSR
    elif info.st_gid in groups:
        allowed = info.st_mode & stat.S_IRGRP
    else:
        allowed = info.st_mode & stat.S_IROTH
    if allowed:
        return None
    return _("docagent (user %(user)s) may not read it (owner %(owner)s, mode %(mode)s). "
             "%(action)s") % {"user": user, "owner": spool.owner_of(info),
                              "mode": f"{stat.S_IMODE(info.st_mode):04o}",
                              "action": advice(NoAccess)}


def check_patients(store: Store) -> Check:
    patients = count_patients(store)
    if not patients:
        return Check("patients", False, _("the patient directory is empty: no document can "
                                          "ever be filed (docagent patients import FILE.csv)"))
    return Check("patients", True, _("%(n)d in the directory") % {"n": patients})


def check_failures(store: Store, max_failed: int) -> Check:
    since = (datetime.now(UTC) - timedelta(hours=24)).isoformat(timespec="milliseconds")
    failed = len(spool.failed_since(store, since))
    deferred = spool.deferred_count(store)
    text = _("%(failed)d failed in the last 24 h, %(deferred)d deferred") % {
        "failed": failed, "deferred": deferred}
    if deferred:
        return Check("failures", False, _("%(text)s: a fault of this machine holds documents "
                                          "back (see journalctl -u docagent -p warning)")
                     % {"text": text})
    if failed > max_failed:
        return Check("failures", False, _("%(text)s (more than %(max)d): docagent failed list")
                     % {"text": text, "max": max_failed})
    return Check("failures", True, text)


def check_outbox(store: Store, max_age: float) -> Check:
    count, oldest, _retrying = store.outbox_backlog()
    if not count or oldest is None:
        return Check("outbox", True, _("every notification sent"))
    age = (datetime.now(UTC) - datetime.fromisoformat(oldest)).total_seconds()
    text = ngettext("%(n)d notification waiting, the oldest for %(age).0f s",
                    "%(n)d notifications waiting, the oldest for %(age).0f s", count) % {
        "n": count, "age": age}
    if age > max_age:
        return Check("outbox", False, _("%(text)s (limit %(limit).0f s): they are not going "
                                        "out") % {"text": text, "limit": max_age})
    return Check("outbox", True, text)


def check_telegram(settings: Settings, store: Store | None = None,
                   timeout: float = 15.0) -> Check:
    token = settings.telegram_token
    if not token:
        return Check("telegram", True, _("not configured: notifications go to the log"))
    from telegram import Bot  # only when configured: the import is slow
    from telegram.error import InvalidToken, TelegramError

    async def get_me() -> str:
        # Initialising the bot is the getMe call; it keeps the answer as bot.username.
        async with Bot(token, base_url=f"{settings.telegram_api_base_url}/bot") as bot:
            return str(bot.username)

    try:
        name = asyncio.run(asyncio.wait_for(get_me(), timeout))
    except (TelegramError, OSError, TimeoutError) as error:
        text = str(error).replace(token, "<token>") or type(error).__name__
        where = (_(": correct %(source)s") % {"source": settings.telegram_token_source}
                 if isinstance(error, InvalidToken) and settings.telegram_token_source else "")
        return Check("telegram", False, _("getMe at %(url)s failed: %(error)s%(where)s") % {
            "url": settings.telegram_api_base_url, "error": text, "where": where})
    text = _("reachable as @%(name)s") % {"name": name}
    if store is not None:
        start, end = day_bounds(date.today())
        count = telegram_intake.downloads_between(store, start, end)
        text += "; " + ngettext("%(n)d file received today", "%(n)d files received today",
                                count) % {"n": count}
    return Check("telegram", True, text)


def check_mail(settings: Settings, store: Store, timeout: float = 15.0) -> Check:
    """The mailbox: reachable, the login accepted, the mailbox open; and the last message
    taken. Asked of the server itself, as the daemon would, with the same settings."""
    box = settings.mail
    if box is None:
        return Check("mail", True, _("not configured: documents come by the folder only"))
    from agent import mailbox  # IMAP only when a mailbox is set
    from agent.ops import mail

    try:
        with mailbox.Mailbox.open(box, timeout=timeout) as opened:
            waiting = len(opened.waiting())
    except mailbox.MailError as error:
        where = ""
        if isinstance(error, mailbox.LoginRefused) and box.password_source:
            where = _(": correct %(source)s") % {"source": box.password_source}
        return Check("mail", False, _("%(mailbox)s: %(error)s%(where)s") % {
            "mailbox": box.where, "error": error, "where": where})
    last = mail.last_taken(store)
    taken = (_("last message taken %(when)s from %(sender)s") % {
        "when": datetime.fromisoformat(last["at"]).astimezone().strftime("%Y-%m-%d %H:%M"),
        "sender": last["sender"]} if last
        else _("no message taken yet"))
    text = _("%(mailbox)s reachable, login accepted; %(waiting)s; %(taken)s") % {
        "mailbox": box.where, "taken": taken,
        "waiting": ngettext("%(n)d message in the mailbox", "%(n)d messages in the mailbox",
                            waiting) % {"n": waiting}}
    if not box.allowed_senders:
        return Check("mail", False, _("%(text)s; but DOCAGENT_MAIL_ALLOWED_SENDERS is empty: "
                                      "no message is ever taken") % {"text": text})
    return Check("mail", True, text)


def unit_states(allowlist: Sequence[str], wanted: Sequence[str] | None = None) -> list[Check]:
    """`systemctl is-active` for units of the allowlist only (all of them, or those wanted)."""
    checks = []
    for name in (allowlist if wanted is None else wanted):
        if name not in allowlist or not UNIT_NAME.match(name):
            checks.append(Check(f"unit {name}", False,
                                _("not in DOCAGENT_HEALTH_UNITS: not asked")))
            continue
        state = systemctl.is_active(name)
        checks.append(Check(f"unit {name}", state == "active", state))
    return checks


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """A check that cannot run is a failing line, not a traceback that hides the others."""
    try:
        return check()
    except DocagentError as error:
        return Check(name, False, _("could not check: %(reason)s") % {"reason": error.said})
    except (OSError, sqlite3.Error) as error:
        return Check(name, False, _("could not check: %(reason)s") % {"reason": error})


def run_checks(settings: Settings, store: Store, lim: HealthLimits | None = None,
               ) -> list[Check]:
    lim = lim or settings.health
    try:
        holder = daemon_holder(settings)
        daemon = check_daemon(settings, store, lim.heartbeat_max, holder)
    except OSError as error:
        holder = None
        daemon = Check("daemon", False, _("cannot ask the spool's lock whether the daemon "
                                          "runs: %(error)s (run as docagent, or as a member of "
                                          "the docagent group)")
                       % {"error": error.strerror or error})
    steps: list[tuple[str, Callable[[], Check]]] = [
        ("daemon", lambda: daemon),
        ("watcher", lambda: check_watcher(settings, holder is not None)),
        ("tesseract", lambda: check_tesseract(settings)),
        ("poppler", check_poppler),
        ("database", lambda: check_database(store)),
        ("patients", lambda: check_patients(store)),
        ("disk", lambda: check_disk(settings, lim.min_free)),
        ("incoming", lambda: check_incoming(settings, store, lim.max_wait)),
        ("failures", lambda: check_failures(store, lim.max_failed)),
        ("outbox", lambda: check_outbox(store, lim.max_outbox_age)),
        ("telegram", lambda: check_telegram(settings, store)),
        ("mail", lambda: check_mail(settings, store)),
    ]
    return [_guarded(name, step) for name, step in steps] + unit_states(lim.units)


# --- reporting ----------------------------------------------------------------------------


def render(checks: Sequence[Check], *, journal: bool = False) -> str:
    """One line a check; for journald (`journal`) each line carries its priority, a failing
    check's error, so `journalctl -p err` shows what is wrong."""
    width = max(len(c.name) for c in checks)
    ok, fail = _("ok"), _("FAIL")
    verdict = max(len(ok), len(fail))
    lines = [(c.ok, f"{ok if c.ok else fail:<{verdict}}  {c.name:<{width}}  {c.detail}")
             for c in checks]
    if journal:
        return "\n".join(with_priority(line, logging.INFO if ok else logging.ERROR)
                         for ok, line in lines)
    return "\n".join(line for _, line in lines)


def as_json(checks: Sequence[Check]) -> str:
    return json.dumps({"healthy": all(c.ok for c in checks),
                       "checks": [asdict(c) for c in checks]}, ensure_ascii=False)


def pending_alerts(store: Store) -> int:
    """Health messages the outbox still holds (the daemon sends them; while it is down,
    `docagent health --notify` sends them itself)."""
    return store.outbox_backlog("health")[0]


def remember_and_alert(store: Store, checks: Sequence[Check]) -> str | None:
    """Queue a "health" message if the failing set changed to a new problem or recovered."""
    failing = sorted(c.name for c in checks if not c.ok)
    raw = store.get_meta(STATE_KEY)
    before: list[str] = json.loads(raw) if raw else []
    if failing == before:
        return None
    if failing:
        text = _("docagent is unhealthy:") + "\n" + "\n".join(
            f"- {c.name}: {c.detail}" for c in checks if not c.ok)
    elif before:
        text = _("docagent is healthy again (was failing: %(checks)s)") % {
            "checks": ", ".join(before)}
    else:
        text = None
    with store.write() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     (STATE_KEY, json.dumps(failing)))
        if text is not None:
            Store.enqueue(conn, "health", None, {"text": text, "failing": failing})
    return text
