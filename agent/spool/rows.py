"""A document's row in state.db: its states, and every question and change the rest asks of it.

The spool is the one owner of a document's state, its folder and its row: every write of a
`documents` or `receipts` row is in this package, most of them here (start, defer, count a
crash) and the rest beside the file moves they go with (claim, place, recover, requeue). The
use cases (status, digest, health, the daemon) read documents only through these functions.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from agent.i18n import N_, Term, translate
from agent.origin import Origin
from agent.store import Store, now_iso

# Document states. `claiming` and `filing` are the two in-between states that recovery
# knows how to finish; the last three are final.
CLAIMING, QUEUED, PROCESSING, FILING = "claiming", "queued", "processing", "filing"
FILED, REVIEW, FAILED = "filed", "review", "failed"
FINAL_STATES = (FILED, REVIEW, FAILED)
# A state, or an outcome, in a sentence for the staff: "it is %(state)s".
STATE_WORDS = {
    CLAIMING: N_("being taken in"), QUEUED: N_("waiting to be read"),
    PROCESSING: N_("being read"), FILING: N_("being filed"), FILED: N_("filed"),
    REVIEW: N_("waiting for a decision"), FAILED: N_("failed"), "duplicate": N_("a duplicate"),
    "deferred": N_("deferred"),
}


def state_term(state: str) -> Term:
    """A state as a message's value, said in the staff's language where the message is."""
    return Term(STATE_WORDS.get(state, state))


def state_word(state: str) -> str:
    """A state in the staff's language."""
    return translate(state_term(state))


@dataclass(frozen=True)
class Document:
    id: str
    sha256: str
    original_name: str
    size: int
    state: str
    received_at: str
    attempts: int
    crashes: int
    deferrals: int
    next_attempt_at: float
    path: str | None
    dest_path: str | None
    outcome: str | None
    patient_id: str | None
    reason_kind: str | None
    reason: str | None
    pages: int | None
    text_source: str | None
    duration_ms: int | None
    result_json: str | None
    finished_at: str | None
    channel: str = "folder"  # agent.origin: where it came from, and what that channel knows
    origin_json: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Document:
        values = {name: row[name] for name in cls.__dataclass_fields__
                  if name not in ("channel", "origin_json")}
        return cls(**values, channel=row["channel"], origin_json=row["origin"])

    @property
    def result(self) -> dict[str, Any]:
        return dict(json.loads(self.result_json)) if self.result_json else {}

    @property
    def origin(self) -> Origin:
        return Origin.of_row(self.channel, self.origin_json)


def _documents(store: Store, where: str, params: tuple[Any, ...] = ()) -> list[Document]:
    rows = store.read(f"SELECT * FROM documents WHERE {where}", params)  # noqa: S608  # nosec B608: fixed clauses only, values as parameters
    return [Document.from_row(r) for r in rows]


def _count(store: Store, sql: str, params: tuple[Any, ...] = ()) -> int:
    return int(store.read(sql, params)[0][0] or 0)


# --- reading ---------------------------------------------------------------------------------


def get(store: Store, document_id: str) -> Document | None:
    found = _documents(store, "id = ?", (document_id,))
    return found[0] if found else None


def find(store: Store, prefix: str) -> list[Document]:
    """Documents whose id starts with `prefix` (people type short ids)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return _documents(store, "id LIKE ? ESCAPE '\\' ORDER BY id", (escaped + "%",))


def documents(store: Store) -> list[Document]:
    """Every document, in the order they arrived."""
    return _documents(store, "1 ORDER BY received_at, id")


def by_state(store: Store, *states: str) -> list[Document]:
    marks = ",".join("?" for _ in states)
    return _documents(store, f"state IN ({marks}) ORDER BY received_at, id", states)


def counts_by_state(store: Store, finished: tuple[str, str] | None = None) -> dict[str, int]:
    """How many documents are in each state; with `finished` (from, to), only those finished
    in that time (the index on finished_at answers it)."""
    where, params = ("WHERE finished_at >= ? AND finished_at < ?", finished) if finished \
        else ("", ())
    rows = store.read(f"SELECT state, COUNT(*) AS n FROM documents {where} GROUP BY state",  # noqa: S608  # nosec B608: fixed clauses only
                      params)
    return {r["state"]: int(r["n"]) for r in rows}


def deferred_count(store: Store) -> int:
    """Documents waiting because of a fault of the machine (retried by themselves)."""
    return _count(store, "SELECT COUNT(*) FROM documents WHERE state = ? AND deferrals > 0",
                  (QUEUED,))


def queued_count(store: Store) -> int:
    return _count(store, "SELECT COUNT(*) FROM documents WHERE state = ?", (QUEUED,))


def failed_since(store: Store, since: str, until: str | None = None,
                 limit: int | None = None) -> list[Document]:
    """Documents failed in [since, until), oldest first."""
    where = "state = ? AND finished_at >= ?"
    params: tuple[Any, ...] = (FAILED, since)
    if until is not None:
        where, params = where + " AND finished_at < ?", (*params, until)
    if limit is not None:
        return _documents(store, where + " ORDER BY finished_at LIMIT ?", (*params, limit))
    return _documents(store, where + " ORDER BY finished_at", params)


def oldest_queued(store: Store) -> Document | None:
    """The document waiting longest in the queue (or half claimed)."""
    found = _documents(store, "state IN (?, ?) ORDER BY received_at LIMIT 1", (QUEUED, CLAIMING))
    return found[0] if found else None


def review_backlog(store: Store) -> tuple[int, str | None]:
    """How many wait for a person, and since when the oldest has."""
    row = store.read("SELECT COUNT(*), MIN(received_at) FROM documents WHERE state = ?",
                     (REVIEW,))[0]
    return int(row[0]), row[1]


def last_finished_at(store: Store) -> str | None:
    value = store.read("SELECT MAX(finished_at) FROM documents")[0][0]
    return str(value) if value else None


def last_filed(store: Store) -> Document | None:
    found = _documents(store, "state = ? AND finished_at IS NOT NULL ORDER BY finished_at DESC "
                       "LIMIT 1", (FILED,))
    return found[0] if found else None


def duplicates(store: Store, received: tuple[str, str] | None = None) -> int:
    """Copies of bytes already taken in; with `received` (from, to), those that came then."""
    if received is None:
        return _count(store, "SELECT COUNT(*) FROM receipts WHERE kind = 'duplicate'")
    return _count(store, "SELECT COUNT(*) FROM receipts WHERE kind = 'duplicate' AND "
                  "received_at >= ? AND received_at < ?", received)


# --- changing --------------------------------------------------------------------------------


def update(conn: sqlite3.Connection, document_id: str, **values: Any) -> None:
    """Set some of a document's columns, inside the caller's transaction (the spool's own
    modules only: each change goes with the file move it belongs to)."""
    allowed = set(Document.__dataclass_fields__) - {"id", "sha256", "channel", "origin_json"}
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"unknown document columns: {sorted(unknown)}")
    values["updated_at"] = now_iso()
    columns = ", ".join(f"{name} = :{name}" for name in values)
    conn.execute(
        f"UPDATE documents SET {columns} WHERE id = :_id",  # noqa: S608  # nosec B608: column names checked above
        {**values, "_id": document_id},
    )


def start_next(store: Store, now: float | None = None) -> Document | None:
    """Move the oldest due queued document to `processing`, counting the attempt."""
    now = time.time() if now is None else now
    with store.write() as conn:
        row = conn.execute(
            "SELECT id FROM documents WHERE state = ? AND next_attempt_at <= ? "
            "ORDER BY next_attempt_at, received_at LIMIT 1",
            (QUEUED, now),
        ).fetchone()
        if row is None:
            return None
        conn.execute(
            "UPDATE documents SET state = ?, attempts = attempts + 1, updated_at = ? "
            "WHERE id = ?",
            (PROCESSING, now_iso(), row["id"]),
        )
    return get(store, row["id"])


def start(store: Store, document_id: str) -> Document | None:
    """Take one named queued document (for `docagent process`), or None if taken."""
    with store.write() as conn:
        cur = conn.execute(
            "UPDATE documents SET state = ?, attempts = attempts + 1, updated_at = ? "
            "WHERE id = ? AND state = ?",
            (PROCESSING, now_iso(), document_id, QUEUED),
        )
        if cur.rowcount != 1:
            return None
    return get(store, document_id)


def defer(store: Store, doc: Document, *, delay: float, kind: str, reason: str) -> None:
    """Back in the queue for a fault of the machine, tried again after `delay` seconds; the
    schedule lives in the row, so it survives restarts."""
    with store.write() as conn:
        update(conn, doc.id, state=QUEUED, deferrals=doc.deferrals + 1,
               next_attempt_at=time.time() + delay, reason_kind=kind, reason=reason)


def count_crash(store: Store, doc: Document) -> int:
    """One more time this document was in hand when something broke; returns the count."""
    crashes = doc.crashes + 1
    with store.write() as conn:
        update(conn, doc.id, crashes=crashes)
    return crashes
