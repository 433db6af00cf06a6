"""The practice's patient directory: CSV import and lookups by name key."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from agent.names import name_key
from agent.store import Store, now_iso

REQUIRED = ("id", "last_name", "first_name", "birth_date")
# Patient ids become folder names under done/: keep them to a safe alphabet.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Patient:
    id: str
    last_name: str
    first_name: str
    birth_date: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"id": self.id, "last_name": self.last_name, "first_name": self.first_name,
                "birth_date": self.birth_date}


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)


class ImportFileError(Exception):
    """The file as a whole cannot be read (missing columns, not UTF-8)."""


def import_csv(store: Store, path: Path) -> ImportReport:
    """Add or update patients by id; rows with a problem are reported with their line."""
    report = ImportReport()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportFileError(f"{path} is not UTF-8 text ({error.reason})") from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip().lower() for c in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ImportFileError(f"{path} lacks the column(s): {', '.join(missing)}")
    reader.fieldnames = columns
    rows: list[tuple[Patient, dict[str, str]]] = []
    for row in reader:
        line = reader.line_num
        values = {k: (v or "").strip() for k, v in row.items() if k is not None}
        problem = _check(values)
        if problem:
            report.rejected.append((line, problem))
            continue
        extra = {k: v for k, v in values.items() if k not in REQUIRED and v}
        rows.append((Patient(values["id"], values["last_name"], values["first_name"],
                             values["birth_date"] or None), extra))

    with store.write() as conn:
        for patient, extra in rows:
            existing = conn.execute(
                "SELECT last_name, first_name, birth_date, extra_json FROM patients WHERE id = ?",
                (patient.id,),
            ).fetchone()
            extra_json = json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else None
            params = (patient.last_name, patient.first_name, patient.birth_date,
                      name_key(patient.last_name), name_key(patient.first_name), extra_json,
                      now_iso(), patient.id)
            if existing is None:
                conn.execute(
                    "INSERT INTO patients (last_name, first_name, birth_date, last_key, first_key,"
                    " extra_json, updated_at, id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", params)
                report.added += 1
            elif tuple(existing) == (patient.last_name, patient.first_name, patient.birth_date,
                                     extra_json):
                report.unchanged += 1
            else:
                conn.execute(
                    "UPDATE patients SET last_name = ?, first_name = ?, birth_date = ?,"
                    " last_key = ?, first_key = ?, extra_json = ?, updated_at = ? WHERE id = ?",
                    params)
                report.updated += 1
    return report


def _check(values: dict[str, str]) -> str | None:
    if not values.get("id"):
        return "missing id"
    if not _ID.match(values["id"]):
        return f"id {values['id']!r} may hold only letters, digits, '.', '_' and '-'"
    if not values.get("last_name"):
        return "missing last_name"
    if not values.get("first_name"):
        return "missing first_name"
    if not name_key(values["last_name"]):
        return f"last_name {values['last_name']!r} has no letters"
    birth = values.get("birth_date", "")
    if birth:
        try:
            parsed = date.fromisoformat(birth)
        except ValueError:
            return f"bad birth_date {birth!r} (expected YYYY-MM-DD)"
        if parsed > date.today() or parsed.year < 1880:
            return f"birth_date {birth} is out of range"
        values["birth_date"] = parsed.isoformat()
    return None


def by_last_keys(store: Store, keys: set[str]) -> list[Patient]:
    if not keys:
        return []
    marks = ",".join("?" for _ in keys)
    rows = store.read(
        f"SELECT id, last_name, first_name, birth_date FROM patients WHERE last_key IN ({marks})"  # noqa: S608 - placeholders only
        " ORDER BY id",
        tuple(sorted(keys)),
    )
    return [Patient(r["id"], r["last_name"], r["first_name"], r["birth_date"]) for r in rows]


def get(store: Store, patient_id: str) -> Patient | None:
    rows = store.read(
        "SELECT id, last_name, first_name, birth_date FROM patients WHERE id = ?", (patient_id,)
    )
    return Patient(*tuple(rows[0])) if rows else None


def count(store: Store) -> int:
    return int(store.read("SELECT COUNT(*) FROM patients")[0][0])
