"""Figures the proofs measure, printed at the end of the run and kept in .proof-figures.json.

A proof calls `record("crash", inputs=52, kills=20, ...)`; tests/conftest.py prints every
section recorded in this run in a "proof figures" block, and merges them into the JSON file at
the repository root (ignored by git) so the README's figures can be checked against a run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

FILE = Path(__file__).resolve().parent.parent / ".proof-figures.json"
_recorded: dict[str, dict[str, object]] = {}


def record(section: str, **values: object) -> None:
    _recorded.setdefault(section, {}).update(values)


def recorded() -> dict[str, dict[str, object]]:
    return {name: dict(values) for name, values in _recorded.items()}


def lines() -> list[str]:
    out = []
    for section, values in _recorded.items():
        text = ", ".join(f"{k}={v}" for k, v in values.items())
        out.append(f"{section}: {text}")
    return out


def save() -> Path | None:
    if not _recorded:
        return None
    try:
        kept = json.loads(FILE.read_text()) if FILE.exists() else {}
    except (OSError, ValueError):
        kept = {}
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for section, values in _recorded.items():
        kept[section] = {**values, "measured_at": stamp}
    try:
        FILE.write_text(json.dumps(kept, indent=2, sort_keys=True) + "\n")
    except OSError:
        return None
    return FILE
