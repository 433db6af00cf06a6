"""Shared fixtures: a private spool per test, and the real `docagent` command."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.patients import import_csv
from agent.store import Store

DOCAGENT = str(Path(sys.executable).with_name("docagent"))

PATIENTS_CSV = """id,last_name,first_name,birth_date
P001,DUPONT,Jean,1961-03-12
P002,Martin,Hélène,1975-04-03
P003,DUPONT,Marie,1988-11-30
P004,BEN ALI,Mohamed,1990-07-21
P005,Smith,John,1954-01-09
P006,LEGRAND,Paul,1970-05-05
P007,LEGRAND,Paul,1982-09-14
"""


@dataclass
class Spool:
    root: Path
    env: dict[str, str]

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def run(self, *args: str, check: bool = False, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([DOCAGENT, *args], capture_output=True, text=True,
                              env={**self.env, **(env or {})}, cwd=self.root, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"docagent {' '.join(args)} exited {done.returncode}:\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done

    def run_journaled(self, *args: str, env: dict[str, str] | None = None,
                      timeout: float = 300) -> tuple[int, str]:
        """`docagent ARGS` as systemd runs it: stdout and stderr are the journal (a file here,
        named by JOURNAL_STREAM's device:inode as systemd names its socket); returns the exit
        code and what the journal got."""
        journal = self.root / f"journal-{os.urandom(4).hex()}.txt"
        with open(journal, "w") as stream:
            info = os.fstat(stream.fileno())
            done = subprocess.run(
                [DOCAGENT, *args], stdout=stream, stderr=stream, cwd=self.root, timeout=timeout,
                env={**self.env, **(env or {}), "JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"},
                check=False)
        return done.returncode, journal.read_text()

    def process_json(self, *paths: Path) -> list[dict[str, object]]:
        done = self.run("process", "--json", *map(str, paths))
        assert done.returncode in (0, 1), done.stderr
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def health(self, **env: str) -> dict[str, dict[str, Any]]:
        """`docagent health --json`'s checks, by name."""
        done = self.run("health", "--json", env=env)
        return {c["name"]: c for c in json.loads(done.stdout)["checks"]}

    def files(self, folder: str) -> list[Path]:
        base = self.home / folder
        return sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []


@contextlib.contextmanager
def directory_store(root: Path, directory_csv: str, *, patients: int) -> Iterator[Store]:
    """A state.db under `root` whose directory is `directory_csv`, imported by the real
    importer: every one of its `patients` rows taken, none rejected."""
    store = Store(root / "state.db")
    csv = root / "patients.csv"
    csv.write_text(directory_csv, encoding="utf-8")
    report = import_csv(store, csv)
    assert report.added == patients and not report.rejected, report
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(autouse=True)
def english_unless_asked(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In-process commands speak the suite's English (see base_env); a test that wants French
    sets DOCAGENT_LANG=fr itself."""
    from agent import i18n

    monkeypatch.setenv("DOCAGENT_LANG", "en")
    yield
    i18n.use("en")


def recording_tools(tmp_path: Path, *tools: str) -> tuple[Path, Path]:
    """A folder of wrappers, each writing down the environment it was given (into the second
    folder returned, one file per run) before it runs the real tool: put the first on PATH."""
    bindir, seen = tmp_path / "bin", tmp_path / "seen"
    bindir.mkdir()
    seen.mkdir()
    for tool in tools:
        real = shutil.which(tool)
        assert real, f"{tool} is needed for this test"
        script = bindir / tool
        script.write_text(f'#!/bin/sh\nenv > "{seen}/{tool}.$$"\nexec {real} "$@"\n')
        script.chmod(0o755)
    return bindir, seen


def base_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DOCAGENT_", "TELEGRAM_", "NOTIFY_SOCKET", "JOURNAL_STREAM"))}
    env.update({
        "DOCAGENT_HOME": str(root / "home"),
        "DOCAGENT_LOG_DIR": str(root / "logs"),
        "DOCAGENT_WORKERS": "2",
        "DOCAGENT_STABLE_SECONDS": "0.5",
        "DOCAGENT_RESCAN_SECONDS": "1",
        "DOCAGENT_LOG_LEVEL": "DEBUG",
        # The suite's expectations are written in the code's own English; French is checked
        # where it is meant (tests/test_i18n.py and the tests that set DOCAGENT_LANG=fr).
        "DOCAGENT_LANG": "en",
    })
    return env


@pytest.fixture
def local_site(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """Settings and an open Store on a fresh spool under tmp_path, for in-process tests of
    the spool's own functions (no `docagent` process, no patients)."""
    from agent import config, spool
    from agent.store import Store

    settings = config.load(env={"DOCAGENT_HOME": str(tmp_path / "home"),
                                "DOCAGENT_LOG_DIR": str(tmp_path / "logs")}, cwd=tmp_path)
    spool.ensure_folders(settings)
    store = Store(settings.db_path)
    yield settings, store
    store.close()


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    root = tmp_path / "site"
    root.mkdir()
    s = Spool(root, base_env(root))
    csv = root / "patients.csv"
    csv.write_text(PATIENTS_CSV, encoding="utf-8")
    s.run("patients", "import", str(csv), check=True)
    yield s


@pytest.fixture
def daemon(spool: Spool) -> Iterator[Callable[..., Any]]:
    """Start real `docagent run` processes on the spool; any still running are killed after."""
    from tests.daemonproc import Running  # here: that module imports this one

    started: list[Running] = []

    def start(**env: str) -> Running:
        r = Running(spool, **env)
        started.append(r)
        return r

    yield start
    for r in started:
        if r.proc.poll() is None:
            r.stop(signal.SIGKILL)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests import figures

    if not figures.recorded():
        return
    terminalreporter.section("proof figures")
    for line in figures.lines():
        terminalreporter.write_line(line)
    saved = figures.save()
    if saved is not None:
        terminalreporter.write_line(f"(also in {saved})")
