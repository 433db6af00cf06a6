"""The find index: what was filed, by patient, type, date and the words of its text.

One row per document in done/ or review/ (`find_documents`), and its text in SQLite's
full-text index (`find_text`, FTS5: the unicode61 tokenizer with remove_diacritics 2, so
"genou" finds "GENOU" and "hélène" finds "Helene"; every word of a query is also a prefix,
"genou" finds "genoux"). The row is written in the transaction that makes a placement final
(`placing.finish`), marked moving in the one that starts a move, and removed with the document;
so the index never says a document is where it is not. The text of a document does not change
once it is read: a move rewrites only the row, and the full-text entry (kept under the row's
number `n`, never reused) is written once.

Documents placed before the index existed are indexed from what is kept beside them (the row's
record, which is the .json sidecar's content, and the .txt) by `backfill`, in small batches: the
daemon runs it at start-up between its own writes, and `docagent find` finishes it first when
no daemon has.

Where a document came from (`source`, `source_detail`) is read in one place, `source_of`: today
the folder a file was dropped into and the file's name; a channel that records more (a mail's
sender and subject, a Telegram user) puts a `source` object in the record, and its words fill the
same two columns.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import Settings
from agent.spool.rows import FILED, FILING, REVIEW, Document
from agent.store import Store

INDEXED_STATES = (FILED, REVIEW)
FOLDER = "folder"  # the channel of a file dropped into incoming/ (or handed to `process`)
BACKFILLED = "find_index"  # meta: "complete" once every document placed before is indexed
COMPLETE = "complete"
BATCH = 200
MAX_WORDS = 8
MIN_PREFIX = 3  # a shorter word is matched whole: "de*" would be half the dictionary
FEW = 2000  # words found in at most this many documents: join them all, count exactly
# The characters unicode61 keeps in a token (its default categories): letters, numbers and
# private-use characters. Everything else separates tokens, in the index and in a query.
_TOKEN_CATEGORIES = ("L", "N", "Co")
_COLUMNS = ("document_id, state, patient_id, document_type, document_date, sort_date, "
            "received_at, pages, source, source_detail, path")


@dataclass(frozen=True)
class Indexed:
    """A document as the index has it."""

    document_id: str
    state: str
    patient_id: str | None
    document_type: str | None
    document_date: str | None
    sort_date: str
    received_at: str
    pages: int | None
    source: str
    source_detail: str | None
    path: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Indexed:
        return cls(*(row[name] for name in cls.__dataclass_fields__))


# --- where a document came from -------------------------------------------------------------


def source_of(result: Mapping[str, Any], original_name: str) -> tuple[str, str | None]:
    """The channel a document came by and what it says of it: ("folder", "scan.pdf"); from the
    record's `origin` (agent.origin) when its channel wrote one ({"channel": "mail", "sender":
    ..., "subject": ...} gives ("mail", "sender — subject")). Identifiers meant for machines
    (a Message-ID, a mailbox, a chat or message number) are not words anyone searches by."""
    source = result.get("origin") or result.get("source")
    if isinstance(source, Mapping) and source.get("channel") \
            and source.get("channel") != FOLDER:
        words = [str(value) for key, value in source.items()
                 if key not in _MACHINE_KEYS and value and isinstance(value, str | int)]
        return str(source["channel"]), " — ".join(words) or original_name or None
    return FOLDER, original_name or None


_MACHINE_KEYS = {"channel", "message_id", "mailbox", "chat_id"}


# --- writing, inside the caller's transaction -------------------------------------------------


def _text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=12).hexdigest()


def put(conn: sqlite3.Connection, *, document_id: str, state: str, path: str,
        patient_id: str | None, result: Mapping[str, Any], original_name: str,
        received_at: str, text: str) -> None:
    """The document as it now lies (filed or in review, at `path`, under `patient_id`), with
    its record and text: its row rewritten; its text indexed only when it is new to the
    index."""
    document_date = result.get("document_date") or None
    source, detail = source_of(result, original_name)
    values = (state, patient_id or None, result.get("document_type") or None,
              document_date, str(document_date or received_at[:10]), received_at,
              result.get("pages"), source, detail, path)
    digest = _text_hash(text)
    row = conn.execute("SELECT n, text_hash FROM find_documents WHERE document_id = ?",
                       (document_id,)).fetchone()
    if row is not None and row["text_hash"] == digest:
        conn.execute("UPDATE find_documents SET state = ?, patient_id = ?, document_type = ?,"
                     " document_date = ?, sort_date = ?, received_at = ?, pages = ?, source = ?,"
                     " source_detail = ?, path = ? WHERE n = ?", (*values, row["n"]))
        return
    if row is not None:
        # A new text (read again): a new number; the old entry in find_text stays behind,
        # unreachable (a contentless index cannot forget a text it does not have).
        conn.execute("DELETE FROM find_documents WHERE n = ?", (row["n"],))
    cursor = conn.execute(
        "INSERT INTO find_documents (state, patient_id, document_type, document_date,"
        " sort_date, received_at, pages, source, source_detail, path, document_id, text_hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (*values, document_id, digest))
    conn.execute("INSERT INTO find_text (rowid, text) VALUES (?, ?)", (cursor.lastrowid, text))


def moving(conn: sqlite3.Connection, document_id: str) -> None:
    """The document is leaving its folder (a person's decision, a re-match): not shown until
    the commit that puts it in its new place."""
    conn.execute("UPDATE find_documents SET state = ? WHERE document_id = ?",
                 (FILING, document_id))


def drop(conn: sqlite3.Connection, document_id: str) -> None:
    """The document is no longer in done/ or review/."""
    conn.execute("DELETE FROM find_documents WHERE document_id = ?", (document_id,))


# --- reading ---------------------------------------------------------------------------------


def words_query(words: str) -> str | None:
    """What a person typed as an FTS5 query: each word as unicode61 cuts it, quoted (so that
    nothing typed is FTS5 syntax), as a prefix when it has 3 letters or more, all of them
    required; None when nothing in it is a word."""
    tokens: list[str] = []
    current: list[str] = []
    for char in unicodedata.normalize("NFC", words) + " ":
        if unicodedata.category(char).startswith(_TOKEN_CATEGORIES):
            current.append(char)
        elif current:
            tokens.append("".join(current))
            current = []
    tokens = list(dict.fromkeys(tokens))[:MAX_WORDS]
    if not tokens:
        return None
    return " ".join(f'"{t}"*' if len(t) >= MIN_PREFIX else f'"{t}"' for t in tokens)


def search(store: Store, *, patient_ids: Sequence[str] | None = None, words: str | None = None,
           document_type: str | None = None, since: str | None = None,
           until: str | None = None, limit: int = 20) -> tuple[list[Indexed], int]:
    """Documents filed or in review that fit every criterion given, newest first (the
    document's date, else the day it came), at most `limit`; and how many fit in all.
    `patient_ids` (when given) restricts to those patients' documents; `words` to documents
    whose text holds each word (or a word it begins)."""
    where = ["state IN (?, ?)"]
    params: list[Any] = [*INDEXED_STATES]
    if patient_ids is not None:
        if not patient_ids:
            return [], 0
        where.append(f"patient_id IN ({','.join('?' for _ in patient_ids)})")
        params += list(patient_ids)
    others = [(clause, value) for clause, value in (
        ("document_type = ?", document_type), ("sort_date >= ?", since),
        ("sort_date <= ?", until)) if value is not None]
    for clause, value in others:
        where.append(clause)
        params.append(value)
    matched: int | None = None
    if words is not None:
        match = words_query(words)
        if match is None:
            return [], 0
        matched = int(store.read("SELECT COUNT(*) FROM find_text WHERE find_text MATCH ?",
                                 (match,))[0][0])
        if not matched:
            return [], 0
        where.append("n IN (SELECT rowid FROM find_text WHERE find_text MATCH ?)")
        params.append(match)
    clauses = " AND ".join(where)
    order = "ORDER BY sort_date DESC, received_at DESC LIMIT ?"
    if matched is None or patient_ids is not None or matched <= FEW:
        # Few rows to join: all of them, sorted, counted on the way.
        rows = store.read(f"SELECT {_COLUMNS}, COUNT(*) OVER () AS total FROM find_documents"  # noqa: S608  # nosec B608: fixed clauses and placeholders only
                          f" WHERE {clauses} {order}", (*params, limit))
        return [Indexed.from_row(r) for r in rows], int(rows[0]["total"]) if rows else 0
    # Words found in many documents: walk the documents newest first and stop at `limit`
    # (joining every match would cost a lookup each); the total is the full-text index's own
    # count, or, with other criteria, one count of the rows that meet them.
    rows = store.read(f"SELECT {_COLUMNS} FROM find_documents INDEXED BY find_documents_date"  # noqa: S608  # nosec B608: fixed clauses and placeholders only
                      f" WHERE {clauses} {order}", (*params, limit))
    if others:
        matched = int(store.read(f"SELECT COUNT(*) FROM find_documents WHERE {clauses}",  # noqa: S608  # nosec B608: fixed clauses and placeholders only
                                 tuple(params))[0][0])
    return [Indexed.from_row(r) for r in rows], matched


def get(store: Store, document_id: str) -> Indexed | None:
    rows = store.read(f"SELECT {_COLUMNS} FROM find_documents WHERE document_id = ?",  # noqa: S608  # nosec B608: constant columns
                      (document_id,))
    return Indexed.from_row(rows[0]) if rows else None


def document_ids_of(store: Store, patient_id: str) -> list[str]:
    """Every document the index has under a patient (filed, or moving)."""
    return [str(r[0]) for r in store.read(
        "SELECT document_id FROM find_documents WHERE patient_id = ?", (patient_id,))]


# --- documents placed before the index -------------------------------------------------------


def complete(store: Store) -> bool:
    """Whether every document placed before the index existed is in it."""
    return store.get_meta(BACKFILLED) == COMPLETE


def _kept(settings: Settings, doc: Document) -> tuple[dict[str, Any], str]:
    """A placed document's record and text as kept beside it: the row's record (the .json
    sidecar's content; the sidecar itself when the row has none) and the .txt ("" if gone)."""
    pdf = settings.home / (doc.path or "")
    stem = pdf.name[: -len(pdf.suffix) or None]
    result = doc.result
    if not result:
        try:
            loaded = json.loads(pdf.with_name(f"{stem}.json").read_text(encoding="utf-8"))
            result = dict(loaded) if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            result = {}
    try:
        text = pdf.with_name(f"{stem}.txt").read_bytes().decode("utf-8", "replace")
    except OSError:
        text = ""
    return result, text


def backfill(settings: Settings, store: Store, after: str = "",
             batch: int = BATCH) -> tuple[int, str | None]:
    """Index the next `batch` documents placed before the index (by id, after `after`): their
    files are read first, then one short transaction writes them, each checked unchanged
    meanwhile. Returns how many were indexed and the id to go on after (None: done)."""
    rows = store.read(
        "SELECT * FROM documents d WHERE d.id > ? AND d.state IN (?, ?) AND d.path IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM find_documents f WHERE f.document_id = d.id)"
        " ORDER BY d.id LIMIT ?", (after, *INDEXED_STATES, batch))
    if not rows:
        return 0, None
    docs = [Document.from_row(r) for r in rows]
    kept = [(doc, *_kept(settings, doc)) for doc in docs]
    done = 0
    with store.write() as conn:
        for doc, result, text in kept:
            now = conn.execute("SELECT state, path FROM documents WHERE id = ?",
                               (doc.id,)).fetchone()
            if now is None or (now["state"], now["path"]) != (doc.state, doc.path) or \
                    conn.execute("SELECT 1 FROM find_documents WHERE document_id = ?",
                                 (doc.id,)).fetchone():
                continue  # moved or indexed meanwhile: its own commit indexed it
            put(conn, document_id=doc.id, state=doc.state, path=doc.path or "",
                patient_id=doc.patient_id, result=result, original_name=doc.original_name,
                received_at=doc.received_at, text=text)
            done += 1
    return done, docs[-1].id


def backfill_all(settings: Settings, store: Store,
                 between: Callable[[int], None] | None = None) -> int:
    """Every document placed before the index, batch after batch (`between(indexed so far)`
    runs after each: a pause, a progress line); then the index is marked complete."""
    total, after = 0, ""
    while True:
        done, last = backfill(settings, store, after)
        if last is None:
            break
        total, after = total + done, last
        if between is not None:
            between(total)
    store.set_meta(BACKFILLED, COMPLETE)
    return total


def waiting(store: Store) -> int:
    """Documents placed before the index and not in it yet (a scan: for progress only)."""
    return int(store.read(
        "SELECT COUNT(*) FROM documents d WHERE d.state IN (?, ?) AND d.path IS NOT NULL AND"
        " NOT EXISTS (SELECT 1 FROM find_documents f WHERE f.document_id = d.id)",
        INDEXED_STATES)[0][0])


def pdf_path(settings: Settings, entry: Indexed) -> Path:
    return settings.home / entry.path
