"""The Telegram messages sent about each document (`telegram_messages` in state.db).

Kept so that a reply to one of them finds its document, a button under a search answer is
checked against the patients that message offered, and a decision made anywhere (a button in
another chat, the shell, a re-match after an import) finds every message whose buttons must
go. A message is *open* while its buttons are live; closing it forgets its text.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from agent.store import Store, now_iso

REVIEW = "review"  # a review notification, or the same message answering /review
SEARCH = "search"  # the patients found for a person's search, one button each
PROMPT = "prompt"  # "reply with a name…": no buttons, only replied to
# A /find answer: about no one document (`document_id` is ""); its options are the documents
# it listed, whose Open buttons it carries, checked on each press against what it offered.
FIND = "find"


@dataclass(frozen=True)
class Kept:
    chat_id: int
    message_id: int
    document_id: str
    kind: str
    text: str | None
    options: tuple[str, ...]  # the patient ids a search answer's buttons stand for (a find
    # answer: the document ids its Open buttons stand for)
    open: bool
    sent_at: str = ""

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Kept:
        options = json.loads(row["options"]) if row["options"] else []
        return cls(int(row["chat_id"]), int(row["message_id"]), str(row["document_id"]),
                   str(row["kind"]), row["text"], tuple(str(o) for o in options),
                   row["closed_at"] is None, str(row["sent_at"]))


def record(store: Store, chat_id: int, message_id: int, document_id: str, kind: str,
           text: str, *, buttons: bool, options: tuple[str, ...] = ()) -> None:
    """A message just sent about `document_id`; open when it carries buttons."""
    now = now_iso()
    with store.write() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO telegram_messages (chat_id, message_id, document_id, kind,"
            " text, options, sent_at, closed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (chat_id, message_id, document_id, kind, text if buttons else None,
             json.dumps(list(options)) if options else None, now, None if buttons else now))


def find(store: Store, chat_id: int, message_id: int) -> Kept | None:
    rows = store.read("SELECT * FROM telegram_messages WHERE chat_id = ? AND message_id = ?",
                      (chat_id, message_id))
    return Kept.from_row(rows[0]) if rows else None


def open_about(store: Store, document_id: str) -> list[Kept]:
    """The messages about a document whose buttons are still live, oldest first."""
    rows = store.read("SELECT * FROM telegram_messages WHERE document_id = ? AND closed_at IS"
                      " NULL ORDER BY sent_at, chat_id, message_id", (document_id,))
    return [Kept.from_row(r) for r in rows]


def close(store: Store, chat_id: int, message_id: int) -> bool:
    """Mark a message's buttons gone; False when it was closed already (someone else took
    it: two closers never both edit it)."""
    with store.write() as conn:
        done = conn.execute("UPDATE telegram_messages SET closed_at = ?, text = NULL WHERE"
                            " chat_id = ? AND message_id = ? AND closed_at IS NULL",
                            (now_iso(), chat_id, message_id))
        return done.rowcount > 0


def reopen(store: Store, kept: Kept) -> None:
    """Undo `close` for a message whose decision did not happen after all."""
    with store.write() as conn:
        conn.execute("UPDATE telegram_messages SET closed_at = NULL, text = ? WHERE"
                     " chat_id = ? AND message_id = ?",
                     (kept.text, kept.chat_id, kept.message_id))
