"""The practice's patient directory: CSV import and lookups by name key.

`import_csv` is the one reader of a directory file; how an export is written (encoding,
separator, headers, dates) is `agent.directory_file`'s.

Besides the four required columns, a directory may carry `birth_name` (nom de naissance) and
`usage_name` (or `married_name`: nom d'usage, nom marital). Every name of a patient is
searchable: its keys, exact and loose (see `agent.names.record_keys`), are in the indexed
`patient_keys` table, rewritten whenever the patient is.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

from agent import directory_file
from agent.directory_file import DateProblem, ImportFileError, field_label, read_date
from agent.i18n import _
from agent.logs import escape
from agent.names import name_key, record_keys, word_keys
from agent.store import Store, now_iso

REQUIRED = directory_file.REQUIRED
MIN_BIRTH_YEAR = 1880
# Optional name columns; `married_name` is another word for `usage_name`.
NAME_COLUMNS = ("birth_name", "usage_name", "married_name")
DIRECTORY_VERSION = "directory_version"
_COLUMNS = "id, last_name, first_name, birth_date, birth_name, usage_name"
# Patient ids become folder names under done/: keep them to a safe alphabet.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# done/unassigned/ holds what a person filed under no patient (`review resolve --none`): a
# patient of that id would share it. Compared without case, for case-blind shares.
UNASSIGNED = "unassigned"
RESERVED_IDS = frozenset({UNASSIGNED})


@dataclass(frozen=True)
class Patient:
    id: str
    last_name: str
    first_name: str
    birth_date: str | None
    birth_name: str | None = None
    usage_name: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        out = {"id": self.id, "last_name": self.last_name, "first_name": self.first_name,
               "birth_date": self.birth_date}
        if self.birth_name:
            out["birth_name"] = self.birth_name
        if self.usage_name:
            out["usage_name"] = self.usage_name
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Patient:
        """A patient as kept in a record (`as_dict`), not as the directory has it now."""
        return cls(str(raw.get("id") or ""), str(raw.get("last_name") or ""),
                   str(raw.get("first_name") or ""), raw.get("birth_date"),
                   raw.get("birth_name"), raw.get("usage_name"))

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Patient:
        return cls(row["id"], row["last_name"], row["first_name"], row["birth_date"],
                   row["birth_name"], row["usage_name"])


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated)


def import_csv(store: Store, source: Path | BinaryIO, *, name: str | None = None,
               columns: Mapping[str, str] | None = None) -> ImportReport:
    """Add or update patients by id; rows with a problem are reported with their line.

    `source` is a path, or a file already open (the command opens it as its caller before it
    becomes the service user); `name` is how messages call it (default: the path); `columns`
    names the column of a field where the file's header is not one `directory_file` knows
    (`--columns`). Encoding, separator, headers and dates: see `agent.directory_file`.
    """
    report = ImportReport()
    path = name or (str(source) if isinstance(source, Path) else _("the file"))
    raw = source.read_bytes() if isinstance(source, Path) else source.read()
    text = directory_file.decode(raw, path)
    if not text.strip():
        raise ImportFileError(_("%(file)s is empty") % {"file": path})
    shape = directory_file.shape(text)
    # newline="": only CR and LF end a record; str.splitlines would also cut a field at
    # U+2028, U+0085 or \x1c and make the rest of it a row of its own.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=shape.separator)
    try:
        for _skipped in range(shape.skip + 1):
            header = next(reader, [])
    except csv.Error as error:
        raise ImportFileError(_("%(file)s: its first line is not readable as CSV (%(error)s)")
                              % {"file": path, "error": error}) from None
    layout = directory_file.layout(header, columns or {}, path)
    rows: list[tuple[Patient, dict[str, str]]] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:  # a field over csv's 128 KB limit, among others
            report.rejected.append((reader.line_num, _("not readable as CSV (%(error)s)")
                                    % {"error": error}))
            continue
        if not any(cell.strip() for cell in row):  # a blank line, or Excel's ";;;"
            continue
        values = layout.values(row)
        problem = _check(values)
        if problem:
            report.rejected.append((reader.line_num, problem))
            continue
        usage = values.get("usage_name") or values.get("married_name") or None
        rows.append((Patient(values["id"], values["last_name"], values["first_name"],
                             values["birth_date"] or None, values.get("birth_name") or None,
                             usage), layout.others(row)))

    with store.write() as conn:
        for patient, extra in rows:
            existing = conn.execute(
                "SELECT last_name, first_name, birth_date, birth_name, usage_name, extra_json"
                " FROM patients WHERE id = ?",
                (patient.id,),
            ).fetchone()
            extra_json = json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else None
            params = (patient.last_name, patient.first_name, patient.birth_date,
                      patient.birth_name, patient.usage_name,
                      name_key(patient.last_name), name_key(patient.first_name), extra_json,
                      now_iso(), patient.id)
            if existing is None:
                conn.execute(
                    "INSERT INTO patients (last_name, first_name, birth_date, birth_name,"
                    " usage_name, last_key, first_key, extra_json, updated_at, id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", params)
                report.added += 1
            elif tuple(existing) == (patient.last_name, patient.first_name, patient.birth_date,
                                     patient.birth_name, patient.usage_name, extra_json):
                report.unchanged += 1
                continue
            else:
                conn.execute(
                    "UPDATE patients SET last_name = ?, first_name = ?, birth_date = ?,"
                    " birth_name = ?, usage_name = ?, last_key = ?, first_key = ?,"
                    " extra_json = ?, updated_at = ? WHERE id = ?",
                    params)
                report.updated += 1
            _write_keys(conn, patient)
        if report.changed:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT(key) DO UPDATE"
                " SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)", (DIRECTORY_VERSION,))
    return report


def _write_keys(conn: sqlite3.Connection, patient: Patient) -> None:
    conn.execute("DELETE FROM patient_keys WHERE patient_id = ?", (patient.id,))
    conn.executemany(
        "INSERT INTO patient_keys (key, first_key, patient_id, kind) VALUES (?, ?, ?, ?)",
        [(key, name_key(patient.first_name), patient.id, kind) for key, kind in
         sorted(record_keys(patient.last_name, patient.birth_name, patient.usage_name))])


def _check(values: dict[str, str]) -> str | None:
    """What is wrong with a row, in the staff's words; None when it can be taken. Normalises
    its birth date to ISO on the way."""
    if not values.get("id"):
        return _("no patient id")
    shown = repr(values["id"])
    if not _ID.match(values["id"]):
        return (_("the patient id %(id)s may hold only letters, digits, '.', '_' and '-' "
                  "(64 at most, not starting with '.')") % {"id": shown})
    if values["id"].lower() in RESERVED_IDS:
        return (_("the patient id %(id)s is reserved (done/%(folder)s/ holds the documents "
                  "filed under no patient): give this patient another id") %
                {"id": shown, "folder": UNASSIGNED})
    for column in ("last_name", "first_name", *NAME_COLUMNS):
        text = values.get(column, "")
        if escape(text) != text:  # shown to staff in a terminal and in Telegram
            return (_("%(field)s %(value)s holds a control character") %
                    {"field": field_label(column), "value": repr(text)})
    for column in ("last_name", "first_name"):
        if not values.get(column):
            return _("%(field)s is empty") % {"field": field_label(column)}
    for column in ("last_name", *NAME_COLUMNS):
        if values.get(column) and not name_key(values[column]):
            return (_("%(field)s %(value)s has no letters") %
                    {"field": field_label(column), "value": repr(values[column])})
    birth = values.get("birth_date", "")
    if birth:
        try:
            parsed = read_date(birth)
        except DateProblem as problem:
            return _("the birth date %(problem)s") % {"problem": problem.message}
        if parsed > date.today():
            return (_("the birth date %(value)s is in the future") %
                    {"value": repr(birth)})
        if parsed.year < MIN_BIRTH_YEAR:
            return (_("the birth date %(value)s is before %(year)d: check the year") %
                    {"value": repr(birth), "year": MIN_BIRTH_YEAR})
        values["birth_date"] = parsed.isoformat()
    return None


@dataclass(frozen=True)
class Hit:
    """A patient found by one of its name keys."""

    patient: Patient
    kinds: frozenset[str]  # which of the patient's names the key is: last, birth, usage, loose


def by_keys(store: Store, keys: Iterable[str], *, first_key: str | None = None
            ) -> dict[str, Hit]:
    """Patients any of whose name keys is in `keys` (and whose first name has `first_key`,
    when given), by id: one indexed lookup."""
    wanted = sorted({k for k in keys if k})
    if not wanted:
        return {}
    marks = ",".join("?" for _ in wanted)
    where = "" if first_key is None else " AND k.first_key = ?"
    rows = store.read(
        f"SELECT p.id, p.last_name, p.first_name, p.birth_date, p.birth_name, p.usage_name,"  # noqa: S608  # nosec B608: placeholders only
        f" k.kind FROM patient_keys k JOIN patients p ON p.id = k.patient_id"
        f" WHERE k.key IN ({marks}){where} ORDER BY p.id",
        (*wanted, *(() if first_key is None else (first_key,))),
    )
    return _hits(rows)


def near_keys(store: Store, keys: Iterable[str], *, first_keys: Iterable[str] = (),
              births: Iterable[str] = (), limit: int = 60) -> dict[str, Hit]:
    """Like `by_keys`, but at most `limit` patients, those sharing a first name or a birth
    date first: a common name (500 MARTINs in a large directory) stays cheap to rank."""
    wanted = sorted({k for k in keys if k})
    if not wanted:
        return {}
    firsts = sorted({k for k in first_keys if k}) or [""]
    dates = sorted(set(births)) or [""]
    marks = ",".join("?" for _ in wanted)
    first_marks = ",".join("?" for _ in firsts)
    date_marks = ",".join("?" for _ in dates)
    rows = store.read(
        f"SELECT p.id, p.last_name, p.first_name, p.birth_date, p.birth_name, p.usage_name,"  # noqa: S608  # nosec B608: placeholders only
        f" k.kind FROM patient_keys k JOIN patients p ON p.id = k.patient_id"
        f" WHERE k.key IN ({marks})"
        f" ORDER BY (p.first_key IN ({first_marks})) + (p.birth_date IN ({date_marks})) DESC,"
        f" p.id LIMIT ?",
        (*wanted, *firsts, *dates, limit),
    )
    return _hits(rows)


def _hits(rows: list[sqlite3.Row]) -> dict[str, Hit]:
    kinds: dict[str, set[str]] = {}
    patients: dict[str, Patient] = {}
    for row in rows:
        patients[row["id"]] = Patient.from_row(row)
        kinds.setdefault(row["id"], set()).add(row["kind"])
    return {pid: Hit(patients[pid], frozenset(kinds[pid])) for pid in patients}


def by_birth_dates(store: Store, dates: Iterable[str], limit: int = 200) -> list[Patient]:
    wanted = sorted(set(dates))
    if not wanted:
        return []
    marks = ",".join("?" for _ in wanted)
    rows = store.read(
        f"SELECT {_COLUMNS} FROM patients WHERE birth_date IN ({marks}) ORDER BY id LIMIT ?",  # noqa: S608  # nosec B608: placeholders only
        (*wanted, limit),
    )
    return [Patient.from_row(r) for r in rows]


def by_ids(store: Store, ids: Iterable[str]) -> list[Patient]:
    wanted = sorted(set(ids))
    if not wanted:
        return []
    marks = ",".join("?" for _ in wanted)
    rows = store.read(f"SELECT {_COLUMNS} FROM patients WHERE id IN ({marks}) ORDER BY id",  # noqa: S608  # nosec B608: placeholders only
                      tuple(wanted))
    return [Patient.from_row(r) for r in rows]


@dataclass(frozen=True)
class KeyPool:
    """Every distinct exact name key, bucketed by its first and by its last letter: one
    OCR-style slip changes at most one end of a name, so a name with one error is in one of
    the two buckets of what was read, and a fuzzy scan looks at a few thousand keys, not all."""

    by_first: dict[str, tuple[str, ...]]
    by_last: dict[str, tuple[str, ...]]

    def near(self, key: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if not key:
            return (), ()
        return self.by_first.get(key[0], ()), self.by_last.get(key[-1], ())


_cache_lock = threading.Lock()
_caches: dict[tuple[str, str], tuple[str | None, Any]] = {}
T = TypeVar("T")


def cached(store: Store, name: str, build: Callable[[Store], T]) -> T:
    """What `build` makes of the directory, made again only when an import changes it (the
    daemon runs for months, the directory changes a few times a week)."""
    version = store.get_meta(DIRECTORY_VERSION)
    cache_id = (str(store.path), name)
    with _cache_lock:
        hit = _caches.get(cache_id)
        if hit is not None and hit[0] == version:
            return cast(T, hit[1])
    value = build(store)
    with _cache_lock:
        _caches[cache_id] = (version, value)
    return value


def key_pool(store: Store) -> KeyPool:
    return cached(store, "key_pool", _build_key_pool)


def _build_key_pool(store: Store) -> KeyPool:
    rows = store.read("SELECT DISTINCT key FROM patient_keys WHERE kind != 'loose'")
    first: dict[str, list[str]] = {}
    last: dict[str, list[str]] = {}
    for row in rows:
        key = str(row[0])
        first.setdefault(key[0], []).append(key)
        last.setdefault(key[-1], []).append(key)
    return KeyPool({k: tuple(v) for k, v in first.items()},
                   {k: tuple(v) for k, v in last.items()})


def get(store: Store, patient_id: str) -> Patient | None:
    found = by_ids(store, [patient_id])
    return found[0] if found else None


def count(store: Store) -> int:
    return int(store.read("SELECT COUNT(*) FROM patients")[0][0])


def name_pairs(store: Store) -> dict[str, frozenset[str]]:
    """Every name key that can agree (last, birth or usage name), with the first-name keys
    of the people who bear it: how the directory's people are found in a text."""
    return cached(store, "name_pairs", _build_name_pairs)


def _build_name_pairs(store: Store) -> dict[str, frozenset[str]]:
    pairs: dict[str, set[str]] = {}
    for row in store.read("SELECT DISTINCT key, first_key FROM patient_keys"
                          " WHERE kind != 'loose'"):
        pairs.setdefault(str(row[0]), set()).add(str(row[1]))
    return {key: frozenset(firsts) for key, firsts in pairs.items()}


def search(store: Store, query: str = "") -> list[Patient]:
    """The directory in name order, or the patients `query` finds: a birth date (as the
    directory writes one), an id, or names compared as matching compares them: each word
    of the query is a word of one of the patient's names, or the whole query is one of the
    patient's keys ("ben ali", "BENALI" and "Ali" all find BEN ALI Mohamed; "helene" finds
    Hélène). An impossible date raises `DateProblem`: it was meant as a date."""
    order = " ORDER BY last_key, first_key, birth_date, id"
    text = query.strip()
    if not text:
        return [Patient.from_row(r) for r in store.read(
            f"SELECT {_COLUMNS} FROM patients{order}")]  # noqa: S608  # nosec B608: constant
    try:
        born: str | None = read_date(text).isoformat()
    except DateProblem as problem:
        if problem.written_as_date:
            raise
        born = None
    if born is not None:
        return [Patient.from_row(r) for r in store.read(
            f"SELECT {_COLUMNS} FROM patients WHERE birth_date = ?{order}", (born,))]  # noqa: S608  # nosec B608: constant
    whole, words = name_key(text), word_keys(text)
    if not whole:
        return [Patient.from_row(r) for r in store.read(
            f"SELECT {_COLUMNS} FROM patients WHERE id = ? COLLATE NOCASE{order}", (text,))]  # noqa: S608  # nosec B608: constant
    # The whole query as one of a patient's stored keys (`record_keys`: "BENALI" is BEN ALI,
    # "fontaine" de la Fontaine): one indexed lookup; then word by word, in any order. A word
    # of a name is part of that name's key ("ali" of "benali"), so SQLite first keeps the
    # patients each of whose typed words is inside one of their keys, in one pass, and only
    # those are compared word by word here.
    keyed = by_keys(store, [whole])
    inside = " AND ".join(
        "(instr(last_key, ?) OR instr(first_key, ?) OR id IN (SELECT patient_id FROM"
        " patient_keys WHERE kind IN ('birth', 'usage') AND instr(key, ?)))" for _ in words)
    rows = store.read(
        f"SELECT {_COLUMNS} FROM patients WHERE id IN ({','.join('?' for _ in keyed) or 'NULL'})"  # noqa: S608  # nosec B608: placeholders only
        f" OR id = ? COLLATE NOCASE OR first_key = ? OR ({inside or '0'}){order}",
        (*keyed, text, whole, *(w for word in sorted(words) for w in (word, word, word))))
    return [p for p in map(Patient.from_row, rows)
            if p.id in keyed or p.id.casefold() == text.casefold()
            or whole == name_key(p.first_name)
            or words <= word_keys(p.last_name, p.first_name, p.birth_name or "",
                                  p.usage_name or "")]
