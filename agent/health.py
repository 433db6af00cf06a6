"""`docagent health`: every check of a working installation, each one line, ok or what is wrong.

Run by hand, or every 15 minutes by docagent-health.timer with `--notify`, which writes a
"health" message to the outbox only when the set of failing checks changes (a new problem) and
once when everything is well again; the last verdict is kept in the `meta` table.

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
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent import canary
from agent.config import UNIT_NAME, HealthLimits, Settings
from agent.errors import DocagentError
from agent.store import Store
from agent.watcher import ignored

CANARY_WAIT = 10.0  # seconds for the daemon to notice the canary (polling sees it in ~2 s)
STATE_KEY = "health_failing"  # meta: JSON list of the checks failing at the last --notify



@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


# --- the checks ---------------------------------------------------------------------------


def lock_holder(lock_file: Path) -> int | None:
    """The pid holding the daemon's flock on `lock_file`, read from /proc/locks.

    Taking the lock ourselves to test it would, for an instant, stop a daemon starting up.
    """
    try:
        info = lock_file.stat()
        text = Path("/proc/locks").read_text(encoding="ascii")
    except OSError:
        return None
    wanted = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == wanted:
            return int(fields[4])
    return None


def check_daemon(settings: Settings, store: Store, limit: float) -> Check:
    pid = lock_holder(settings.home / ".docagent.lock")
    if pid is None:
        return Check("daemon", False, f"no `docagent run` holds the lock on {settings.home}: "
                     "the daemon is not running (systemctl status docagent)")
    beat = store.get_meta("heartbeat")
    if beat is None:
        return Check("daemon", False, f"running (pid {pid}) but has never written a heartbeat")
    age = time.time() - float(beat)
    if age > limit:
        return Check("daemon", False, f"running (pid {pid}) but its last heartbeat is {age:.0f} s "
                     f"old (limit {limit:.0f} s): its loop or a worker is stuck")
    return Check("daemon", True, f"running (pid {pid}), heartbeat {age:.0f} s ago")


def check_watcher(settings: Settings, daemon_alive: bool,
                  wait: float = CANARY_WAIT) -> Check:
    if not daemon_alive:
        return Check("watcher", False, "not tested: no daemon to notice the canary file")
    try:
        path = canary.drop(settings.incoming)
    except OSError as error:
        return Check("watcher", False, f"cannot write a canary in {settings.incoming}: {error}")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not path.exists():
            return Check("watcher", True, f"a canary file in {settings.incoming} was noticed")
        time.sleep(0.1)
    canary.acknowledge(path)
    return Check("watcher", False, f"a canary file in {settings.incoming} went unnoticed for "
                 f"{wait:.0f} s: the watcher sees no events (try DOCAGENT_WATCH=polling)")


def _run(argv: Sequence[str], timeout: float = 20.0) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def check_tesseract(settings: Settings) -> Check:
    if shutil.which("tesseract") is None:
        return Check("tesseract", False, "tesseract is not installed "
                     "(apt-get install tesseract-ocr tesseract-ocr-fra)")
    done = _run(["tesseract", "--list-langs"])
    if done is None or done.returncode != 0:
        return Check("tesseract", False, "tesseract --list-langs does not run")
    have = {line.strip() for line in (done.stdout + done.stderr).splitlines()[1:]}
    missing = [lang for lang in settings.ocr_langs.split("+") if lang not in have]
    if missing:
        return Check("tesseract", False, f"languages missing: {', '.join(missing)} "
                     f"(apt-get install {' '.join('tesseract-ocr-' + m for m in missing)})")
    return Check("tesseract", True, f"languages {settings.ocr_langs} present")


def check_poppler() -> Check:
    missing = [tool for tool in ("pdfinfo", "pdftoppm", "pdftotext") if shutil.which(tool) is None]
    if missing:
        return Check("poppler", False, f"{', '.join(missing)} missing "
                     "(apt-get install poppler-utils)")
    done = _run(["pdfinfo", "-v"])
    if done is None or done.returncode != 0:
        return Check("poppler", False, "pdfinfo -v does not run")
    version = (done.stderr or done.stdout).splitlines()[0] if (done.stderr or done.stdout) else ""
    return Check("poppler", True, version.strip() or "present")


def check_database(store: Store) -> Check:
    try:
        store.set_meta("health_probe", str(time.time()))
    except DocagentError as error:
        return Check("database", False, f"cannot write to the database: {error.message}")
    return Check("database", True, "opens and is writable")


def check_disk(settings: Settings, floor: int) -> Check:
    free = shutil.disk_usage(settings.home).free
    text = f"{free / 1024**3:.1f} GiB free under {settings.home}"
    if free < floor:
        return Check("disk", False, f"{text}, below the floor of {floor / 1024**3:.1f} GiB")
    return Check("disk", True, text)


def check_incoming(settings: Settings, max_wait: float) -> Check:
    oldest: float | None = None
    count = 0
    try:
        with os.scandir(settings.incoming) as entries:
            for entry in entries:
                if ignored(entry.name) or not entry.is_file(follow_symlinks=False):
                    continue
                count += 1
                mtime = entry.stat(follow_symlinks=False).st_mtime
                oldest = mtime if oldest is None else min(oldest, mtime)
    except OSError as error:
        return Check("incoming", False, f"cannot list {settings.incoming}: {error}")
    if oldest is None:
        return Check("incoming", True, "nothing waiting")
    age = time.time() - oldest
    if age > max_wait:
        return Check("incoming", False, f"{count} waiting, the oldest for {age:.0f} s "
                     f"(limit {max_wait:.0f} s): files are not being taken")
    return Check("incoming", True, f"{count} waiting, the oldest for {age:.0f} s")


def check_failures(store: Store, max_failed: int) -> Check:
    since = (datetime.now(UTC) - timedelta(hours=24)).isoformat(timespec="milliseconds")
    failed = int(store.read("SELECT COUNT(*) FROM documents WHERE state = 'failed' "
                            "AND finished_at >= ?", (since,))[0][0])
    deferred = int(store.read("SELECT COUNT(*) FROM documents WHERE state = 'queued' "
                              "AND deferrals > 0")[0][0])
    text = f"{failed} failed in the last 24 h, {deferred} deferred"
    if deferred:
        return Check("failures", False, f"{text}: a fault of this machine holds documents back "
                     "(see journalctl -u docagent -p warning)")
    if failed > max_failed:
        return Check("failures", False, f"{text} (more than {max_failed}): docagent failed list")
    return Check("failures", True, text)


def check_outbox(store: Store, max_age: float) -> Check:
    row = store.read("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox "
                     "WHERE sent_at IS NULL")[0]
    if not row["n"]:
        return Check("outbox", True, "every notification sent")
    age = (datetime.now(UTC) - datetime.fromisoformat(row["oldest"])).total_seconds()
    text = f"{row['n']} notification(s) waiting, the oldest for {age:.0f} s"
    if age > max_age:
        return Check("outbox", False, f"{text} (limit {max_age:.0f} s): they are not going out")
    return Check("outbox", True, text)


def check_telegram(settings: Settings, timeout: float = 15.0) -> Check:
    token = settings.telegram_token
    if not token:
        return Check("telegram", True, "not configured: notifications go to the log")
    from telegram import Bot  # only when configured: the import is slow
    from telegram.error import TelegramError

    async def get_me() -> str:
        # Initialising the bot is the getMe call; it keeps the answer as bot.username.
        async with Bot(token, base_url=f"{settings.telegram_api_base_url}/bot") as bot:
            return str(bot.username)

    try:
        name = asyncio.run(asyncio.wait_for(get_me(), timeout))
    except (TelegramError, OSError, TimeoutError) as error:
        text = str(error).replace(token, "<token>") or type(error).__name__
        return Check("telegram", False, f"getMe at {settings.telegram_api_base_url} failed: "
                     f"{text}")
    return Check("telegram", True, f"reachable as @{name}")


def unit_states(allowlist: Sequence[str], wanted: Sequence[str] | None = None,
                run: Callable[[Sequence[str]], subprocess.CompletedProcess[str] | None] = _run,
                ) -> list[Check]:
    """`systemctl is-active` for units of the allowlist only (all of them, or those wanted)."""
    checks = []
    for name in (allowlist if wanted is None else wanted):
        if name not in allowlist or not UNIT_NAME.match(name):
            checks.append(Check(f"unit {name}", False, "not in DOCAGENT_HEALTH_UNITS: not asked"))
            continue
        done = run(["systemctl", "is-active", "--", name])
        state = (done.stdout.strip() if done is not None else "") or "unknown"
        checks.append(Check(f"unit {name}", state == "active", state))
    return checks


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """A check that cannot run is a failing line, not a traceback that hides the others."""
    try:
        return check()
    except DocagentError as error:
        return Check(name, False, f"could not check: {error.message}")
    except (OSError, sqlite3.Error) as error:
        return Check(name, False, f"could not check: {error}")


def run_checks(settings: Settings, store: Store, lim: HealthLimits | None = None,
               ) -> list[Check]:
    lim = lim or settings.health
    alive = lock_holder(settings.home / ".docagent.lock") is not None
    steps: list[tuple[str, Callable[[], Check]]] = [
        ("daemon", lambda: check_daemon(settings, store, lim.heartbeat_max)),
        ("watcher", lambda: check_watcher(settings, alive)),
        ("tesseract", lambda: check_tesseract(settings)),
        ("poppler", check_poppler),
        ("database", lambda: check_database(store)),
        ("disk", lambda: check_disk(settings, lim.min_free)),
        ("incoming", lambda: check_incoming(settings, lim.max_wait)),
        ("failures", lambda: check_failures(store, lim.max_failed)),
        ("outbox", lambda: check_outbox(store, lim.max_outbox_age)),
        ("telegram", lambda: check_telegram(settings)),
    ]
    return [_guarded(name, step) for name, step in steps] + unit_states(lim.units)


# --- reporting ----------------------------------------------------------------------------


def render(checks: Sequence[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{'ok  ' if c.ok else 'FAIL'}  {c.name:<{width}}  {c.detail}"
                     for c in checks)


def as_json(checks: Sequence[Check]) -> str:
    return json.dumps({"healthy": all(c.ok for c in checks),
                       "checks": [asdict(c) for c in checks]}, ensure_ascii=False)


def remember_and_alert(store: Store, checks: Sequence[Check]) -> str | None:
    """Queue a "health" message if the failing set changed to a new problem or recovered."""
    failing = sorted(c.name for c in checks if not c.ok)
    raw = store.get_meta(STATE_KEY)
    before: list[str] = json.loads(raw) if raw else []
    if failing == before:
        return None
    if failing:
        text = "docagent is unhealthy:\n" + "\n".join(
            f"- {c.name}: {c.detail}" for c in checks if not c.ok)
    elif before:
        text = "docagent is healthy again (was failing: " + ", ".join(before) + ")"
    else:
        text = None
    with store.write() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     (STATE_KEY, json.dumps(failing)))
        if text is not None:
            Store.enqueue(conn, "health", None, {"text": text, "failing": failing})
    return text
