"""The daily digest: yesterday's counts, pending reviews, failures with reasons, and cost.

Once a day, at or after `DOCAGENT_DIGEST_HOUR` (local time), one `digest` message goes into
the outbox, so it reaches Telegram (or the log) like every other notification. The day it was
sent for is kept in the `meta` table, checked and written in the same transaction as the
message: a restart, or a second process, never sends it twice; a daemon that was down at the
hour sends it when it comes back.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from agent import spool
from agent.config import Settings
from agent.ledger import day_bounds, read_range, summarize
from agent.store import Store

META_KEY = "digest_last_day"
MAX_FAILURES = 10


def build(settings: Settings, store: Store, day: date) -> dict[str, Any]:
    """The digest's figures for one local day (what the message is rendered from)."""
    start, end = day_bounds(day)
    by_state = spool.counts_by_state(store, finished=(start, end))
    duplicates = spool.duplicates(store, received=(start, end))
    pending_review, oldest_review = spool.review_backlog(store)
    failures = spool.failed_since(store, start, end, limit=MAX_FAILURES)
    deferred = spool.deferred_count(store)
    costs = summarize(read_range(settings.log_dir, start, end))
    return {
        "day": day.isoformat(),
        "counts": {"filed": by_state.get("filed", 0), "review": by_state.get("review", 0),
                   "failed": by_state.get("failed", 0), "duplicate": duplicates},
        "pending_review": pending_review,
        "oldest_review_since": oldest_review,
        "deferred_now": deferred,
        "failures": [{"document_id": d.id, "name": d.original_name, "kind": d.reason_kind,
                      "reason": d.reason, "reason_code": d.result.get("reason_code")}
                     for d in failures],
        "failures_total": by_state.get("failed", 0),
        "cost": {"total": costs["total"]["cost"], "currency": costs["currency"],
                 "services": {k: v["cost"] for k, v in costs["services"].items()}},
    }


def enqueue_if_due(settings: Settings, store: Store, now: datetime | None = None) -> bool:
    """Put yesterday's digest in the outbox if the hour has come and today's is not sent."""
    if settings.digest_hour is None:
        return False
    now = now or datetime.now().astimezone()
    today = now.date().isoformat()
    if now.hour < settings.digest_hour or store.get_meta(META_KEY) == today:
        return False
    payload = build(settings, store, now.date() - timedelta(days=1))
    with store.write() as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (META_KEY,)).fetchone()
        if row is not None and row["value"] == today:
            return False  # another process was quicker
        store.enqueue(conn, "digest", None, payload)
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (META_KEY, today))
    return True
