"""state.db: the database (SQLite, WAL), its schema, the outbox and a few settings kept.

The documents and their arrivals (receipts) are the spool's to read and write (agent.spool);
the patient directory is agent.patients'.

Only parameterized SQL. Each thread gets its own connection (sqlite3 objects must not cross
threads); writes run in `BEGIN IMMEDIATE` transactions so that two processes (the daemon and a
`docagent review resolve` in a shell) serialise cleanly, waiting up to `busy_timeout`. A lock
held longer than that is the machine's fault, not the document's: it becomes `DatabaseBusy`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent import modes
from agent.errors import DatabaseBusy, DiskFull
from agent.names import record_keys

SCHEMA_VERSION = 6
BUSY_TIMEOUT_MS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id              TEXT PRIMARY KEY,
    sha256          TEXT NOT NULL UNIQUE,
    original_name   TEXT NOT NULL,
    size            INTEGER NOT NULL,
    state           TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    crashes         INTEGER NOT NULL DEFAULT 0,
    deferrals       INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    path            TEXT,
    dest_path       TEXT,
    outcome         TEXT,
    patient_id      TEXT,
    reason_kind     TEXT,
    reason          TEXT,
    pages           INTEGER,
    text_source     TEXT,
    duration_ms     INTEGER,
    result_json     TEXT,
    finished_at     TEXT
);
CREATE INDEX IF NOT EXISTS documents_state ON documents(state, next_attempt_at);
CREATE INDEX IF NOT EXISTS documents_finished ON documents(finished_at);

CREATE TABLE IF NOT EXISTS receipts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id   TEXT NOT NULL,
    original_name TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    kind          TEXT NOT NULL,
    source_key    TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS receipts_document ON receipts(document_id);

CREATE TABLE IF NOT EXISTS patients (
    id          TEXT PRIMARY KEY,
    last_name   TEXT NOT NULL,
    first_name  TEXT NOT NULL,
    birth_date  TEXT,
    last_key    TEXT NOT NULL,
    first_key   TEXT NOT NULL,
    extra_json  TEXT,
    updated_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS patients_last_key ON patients(last_key);
CREATE INDEX IF NOT EXISTS patients_first_key ON patients(first_key);

CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    document_id TEXT,
    payload     TEXT NOT NULL,
    sent_at     TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(sent_at, id);

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


# Version 2: birth and usage (married) names, and every searchable name key of a patient in
# one indexed table. Applied in place to a version-1 state.db, keys built from what it holds.
_SCHEMA_V2 = """
ALTER TABLE patients ADD COLUMN birth_name TEXT;
ALTER TABLE patients ADD COLUMN usage_name TEXT;
CREATE TABLE IF NOT EXISTS patient_keys (
    key         TEXT NOT NULL,
    first_key   TEXT NOT NULL,  -- beside the name key: "MARTIN Jean" is one index probe
    patient_id  TEXT NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    PRIMARY KEY (key, first_key, patient_id, kind)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS patient_keys_patient ON patient_keys(patient_id);
CREATE INDEX IF NOT EXISTS patients_birth_date ON patients(birth_date);
"""


# Version 3: the Telegram messages sent about each document, so that a reply to one finds its
# document, a button under one can be checked against what it offered, and a decision made
# anywhere finds every message whose buttons must go (agent.notify.telegram.threads).
_SCHEMA_V3 = """
CREATE TABLE IF NOT EXISTS telegram_messages (
    chat_id     INTEGER NOT NULL,
    message_id  INTEGER NOT NULL,
    document_id TEXT NOT NULL,
    kind        TEXT NOT NULL,
    text        TEXT,  -- as sent, while its buttons are live: the edit appends the decision
    options     TEXT,  -- a search answer: the patient ids its buttons offer, as JSON
    sent_at     TEXT NOT NULL,
    closed_at   TEXT,  -- its buttons taken away (or it never had any)
    PRIMARY KEY (chat_id, message_id)
);
CREATE INDEX IF NOT EXISTS telegram_messages_open ON telegram_messages(document_id)
    WHERE closed_at IS NULL;
"""


# Version 4: where each document and each arrival came from (agent.origin): the channel (folder,
# mail, telegram) and, as JSON, what that channel knows (a mail's sender, subject and
# Message-ID; later a Telegram user and chat). Rows written before are `folder`. And the mail
# channel's own memory: each message it judged, taken or left, so that a message left in the
# mailbox is logged and audited once, not at every look, and `status` and `health` can say
# when a message was last taken (agent.ops.mail).
_SCHEMA_V4 = """
ALTER TABLE documents ADD COLUMN channel TEXT NOT NULL DEFAULT 'folder';
ALTER TABLE documents ADD COLUMN origin TEXT;
ALTER TABLE receipts ADD COLUMN channel TEXT NOT NULL DEFAULT 'folder';
ALTER TABLE receipts ADD COLUMN origin TEXT;
CREATE TABLE IF NOT EXISTS mail_messages (
    key         TEXT PRIMARY KEY,  -- the message in its mailbox (agent.ops.mail.message_key)
    message_id  TEXT,
    sender      TEXT,
    subject     TEXT,
    verdict     TEXT NOT NULL,     -- taken | left
    reason      TEXT,              -- why it was left (a code), or what was left of it
    documents   TEXT,              -- taken: the document ids, as JSON
    at          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mail_messages_verdict ON mail_messages(verdict, at);
"""


# Version 5: the index `docagent find` and the bot's /find search (agent.spool.index writes
# and reads it, in the same transaction that files, re-files or removes a document). One row
# per document in done/ or review/ in `find_documents`; its text in the full-text index
# `find_text` under the same number. The text of a document never changes once it is read, so
# the full-text row is written once and a move only rewrites the small row; `find_text` keeps
# no copy of the text (contentless: the .txt beside the PDF is the text), only its index, without
# positions (detail=none: a query is a set of words) nor sizes (columnsize=0: no ranking).
# Documents filed before this version are indexed from their sidecars afterwards, in small
# batches (`agent.spool.index.backfill`), so the migration itself is only these tables.
_SCHEMA_FIND = """
CREATE TABLE IF NOT EXISTS find_documents (
    n             INTEGER PRIMARY KEY AUTOINCREMENT,  -- the rowid of its text in find_text
    document_id   TEXT NOT NULL UNIQUE,
    state         TEXT NOT NULL,    -- filed | review | filing (moving: not shown)
    patient_id    TEXT,             -- NULL: waiting in review, or filed under no patient
    document_type TEXT,
    document_date TEXT,             -- as read (ISO), NULL when none was
    sort_date     TEXT NOT NULL,    -- the document's date, else the day it came: newest first
    received_at   TEXT NOT NULL,
    pages         INTEGER,
    source        TEXT NOT NULL,    -- the channel it came by: folder (later mail, telegram)
    source_detail TEXT,             -- what the channel says of it: the dropped file's name
    path          TEXT NOT NULL,    -- the PDF, relative to the home
    text_hash     TEXT NOT NULL     -- of the text indexed under n: a new text gets a new n
);
CREATE INDEX IF NOT EXISTS find_documents_patient ON find_documents(patient_id, sort_date);
CREATE INDEX IF NOT EXISTS find_documents_date ON find_documents(sort_date, received_at);
CREATE VIRTUAL TABLE IF NOT EXISTS find_text USING fts5(
    text, content='', detail=none, columnsize=0, tokenize='unicode61 remove_diacritics 2')
"""


# Version 6: files sent to the bot, written down before Telegram is told they were received
# (agent.notify.telegram.inbox). python-telegram-bot confirms an update to Telegram (the next
# getUpdates' offset) before its handler has run, so a crash during a download would lose the
# file: each upload's update is kept here first, replayed at start until it is handled, and
# its id remembered a while after (the JSON dropped) so that Telegram sending it again does
# not answer it twice. With the message it brought: Telegram may pick update ids afresh after a
# week without updates, and a new upload must never pass for an old one.
_SCHEMA_V6 = """
CREATE TABLE IF NOT EXISTS telegram_inbox (
    update_id   INTEGER PRIMARY KEY,
    message     TEXT NOT NULL,     -- chat id/message id
    update_json TEXT,              -- the update as Telegram sent it, NULL once handled
    kept_at     TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,  -- starts that replayed it
    done_at     TEXT
);
CREATE INDEX IF NOT EXISTS telegram_inbox_pending ON telegram_inbox(done_at, update_id);
"""


def _migrate_find_index(conn: sqlite3.Connection) -> None:
    """The find index's tables (self-contained: renumbered freely when migrations merge)."""
    _run_script(conn, _SCHEMA_FIND)


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    # executescript() would commit the open transaction first; statements go one by one.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _migrate_to_2(conn: sqlite3.Connection) -> None:
    _run_script(conn, _SCHEMA_V2)
    rows = conn.execute("SELECT id, last_name, first_key, extra_json FROM patients").fetchall()
    for row in rows:
        extra = json.loads(row["extra_json"]) if row["extra_json"] else {}
        birth = extra.get("birth_name") or None
        usage = extra.get("usage_name") or extra.get("married_name") or None
        conn.execute("UPDATE patients SET birth_name = ?, usage_name = ? WHERE id = ?",
                     (birth, usage, row["id"]))
        conn.executemany("INSERT OR IGNORE INTO patient_keys (key, first_key, patient_id, kind)"
                         " VALUES (?, ?, ?, ?)",
                         [(k, row["first_key"], row["id"], kind) for k, kind in
                          record_keys(row["last_name"], birth, usage)])


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _translate(error: sqlite3.OperationalError) -> Exception:
    text = str(error).lower()
    if "locked" in text or "busy" in text:
        return DatabaseBusy("the database is held by another program", detail=str(error))
    if "full" in text:
        return DiskFull("the disk is full: the database cannot grow", detail=str(error))
    return error


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite ends the transaction by itself on some errors (a full disk among them): a second
    # ROLLBACK would raise "no transaction is active" and hide the real error.
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        modes.make_folder(path.parent)
        # SQLite would create the database 0644 & ~umask; its -wal and -shm take the mode of
        # the database file, so creating it 0640 first closes all three.
        modes.create_file(path)
        conn = self.connection()
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                self._upgrade(conn)
        except sqlite3.OperationalError as error:
            raise _translate(error) from error

    @staticmethod
    def _upgrade(conn: sqlite3.Connection) -> None:
        """Create or upgrade the schema in one transaction.

        A second process doing the same at the same moment waits on BEGIN IMMEDIATE, then
        reads the version again and finds the work done.
        """
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version < 1:
                _run_script(conn, _SCHEMA)
            if version < 2:
                _migrate_to_2(conn)
            if version < 3:
                _run_script(conn, _SCHEMA_V3)
            if version < 4:
                _run_script(conn, _SCHEMA_V4)
            if version < 5:
                _migrate_find_index(conn)
            if version < 6:
                _run_script(conn, _SCHEMA_V6)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit is on disk before we move the file it describes.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE takes the lock up front."""
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise _translate(error) from error
        try:
            yield conn
        except sqlite3.OperationalError as error:
            _rollback(conn)
            translated = _translate(error)
            if translated is error:
                raise
            raise translated from error
        except BaseException:
            _rollback(conn)
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.OperationalError as error:
            _rollback(conn)
            raise _translate(error) from error

    def read(self, sql: str, params: tuple[Any, ...] | Mapping[str, Any] = ()) -> list[sqlite3.Row]:
        try:
            return self.connection().execute(sql, params).fetchall()
        except sqlite3.OperationalError as error:
            raise _translate(error) from error

    # --- outbox ------------------------------------------------------------------------

    @staticmethod
    def enqueue(
        conn: sqlite3.Connection, kind: str, document_id: str | None, payload: Mapping[str, Any]
    ) -> None:
        conn.execute(
            "INSERT INTO outbox (created_at, kind, document_id, payload) VALUES (?, ?, ?, ?)",
            (now_iso(), kind, document_id, json.dumps(payload, ensure_ascii=False)),
        )

    def outbox_backlog(self, kind: str | None = None) -> tuple[int, str | None, int]:
        """Unsent messages (of `kind`, or all): how many, when the oldest was written, and how
        many have been tried already."""
        sql = ("SELECT COUNT(*), MIN(created_at), SUM(attempts > 0) FROM outbox "
               "WHERE sent_at IS NULL AND (? IS NULL OR kind = ?)")
        row = self.read(sql, (kind, kind))[0]
        return int(row[0]), row[1], int(row[2] or 0)

    def given_up_between(self, start: str, end: str) -> int:
        """Messages Telegram refused for good in [start, end) (they left the queue)."""
        return int(self.read("SELECT COUNT(*) FROM outbox WHERE sent_at >= ? AND sent_at < ? "
                             "AND last_error LIKE 'gave up:%'", (start, end))[0][0])

    def pending_messages(self, limit: int = 50) -> list[sqlite3.Row]:
        return self.read(
            "SELECT * FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT ?", (limit,)
        )

    def mark_sent(self, message_id: int) -> None:
        with self.write() as conn:
            conn.execute("UPDATE outbox SET sent_at = ? WHERE id = ?", (now_iso(), message_id))

    def mark_attempt(self, message_id: int, error: str) -> None:
        with self.write() as conn:
            conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                (error[:500], message_id),
            )

    def mark_sent_together(self, message_ids: list[int]) -> None:
        """Several rows that went out as one grouped message: sent in one transaction."""
        with self.write() as conn:
            conn.executemany("UPDATE outbox SET sent_at = ? WHERE id = ?",
                             [(now_iso(), i) for i in message_ids])

    def mark_given_up(self, message_id: int, error: str) -> None:
        """A message Telegram refuses for good (400/403): out of the queue so it cannot block
        the others, kept with its reason (`last_error` starts with "gave up:")."""
        with self.write() as conn:
            conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, sent_at = ?, last_error = ? "
                "WHERE id = ?", (now_iso(), f"gave up: {error}"[:500], message_id),
            )

    # --- meta --------------------------------------------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def get_meta(self, key: str) -> str | None:
        rows = self.read("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None
