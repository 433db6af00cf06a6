"""The code stays typed and lint-clean: mypy --strict and ruff, as part of the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_mypy_strict_is_clean() -> None:
    done = subprocess.run([str(BIN / "mypy"), "agent"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_is_clean() -> None:
    done = subprocess.run([str(BIN / "ruff"), "check", "agent", "tests", "bench"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_sql_is_never_built_from_values() -> None:
    """Every f-string handed to execute() may only splice in placeholders or checked names."""
    offenders = []
    for path in (ROOT / "agent").rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            if (stripped.startswith(('f"SELECT', 'f"UPDATE', 'f"INSERT', 'f"DELETE'))
                    and "noqa: S608" not in line):
                offenders.append(f"{path.name}:{number}: {stripped}")
            if ".execute(" in line and ("%" in line.split(".execute(")[1].split(",")[0]
                                        or ".format(" in line):
                offenders.append(f"{path.name}:{number}: {stripped}")
    assert offenders == []
