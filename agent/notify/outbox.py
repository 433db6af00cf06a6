"""Drain the outbox in order through a sender; a failed send leaves the row for later."""

from __future__ import annotations

import json
from collections.abc import Callable

from agent.disclosure import FULL
from agent.logs import get_logger
from agent.notify.messages import render
from agent.spool import DECIDED
from agent.store import Store

log = get_logger("notify")
Sender = Callable[[str, str, dict[str, object]], None]  # (kind, text, payload)


def log_sender(kind: str, text: str, payload: dict[str, object]) -> None:
    """Without Telegram, a notification is a log line."""
    log.info("notification (%s): %s", kind, text, extra={"doc": payload.get("document_id") or "-"})


def drain(store: Store, send: Sender, *, phi: str = FULL, limit: int = 50) -> int:
    """Send pending messages oldest first; stop at the first failure to keep the order."""
    sent = 0
    for row in store.pending_messages(limit):
        if row["kind"] == DECIDED:  # edits of Telegram messages: none were sent without it
            store.mark_sent(row["id"])
            continue
        payload = json.loads(row["payload"])
        payload.setdefault("document_id", row["document_id"])
        text = render(row["kind"], payload, phi=phi)
        try:
            send(row["kind"], text, payload)
        except Exception as error:
            store.mark_attempt(row["id"], f"{type(error).__name__}: {error}")
            log.warning("notification %s not sent yet: %s", row["id"], error)
            break
        store.mark_sent(row["id"])
        sent += 1
    return sent
