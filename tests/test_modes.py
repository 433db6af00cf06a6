"""What docagent creates is closed to others whatever the umask it was started with.

The unit sets `UMask=0027`; a shell (`./deploy/dev.sh run`, a command typed by hand) has 022.
These tests start from 022 and look at every mode.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import canary, ledger, logs, modes
from agent.audit import AuditLog
from agent.store import Store
from tests import pdfgen
from tests.conftest import PATIENTS_CSV, Spool, base_env
from tests.daemonproc import Running, drop, states
from tests.pdfgen import report


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The test process and every child it starts begin with a shell's usual umask."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _too_open(root: Path, group_may_write: frozenset[Path] = frozenset(),
              not_ours: frozenset[int] = frozenset()) -> list[str]:
    """Every path under `root` (itself included) that others may use, or that the group may
    write (except the folders in `group_may_write`); inodes in `not_ours` are skipped."""
    found = []
    for path in [root, *root.rglob("*")]:
        if path.lstat().st_ino in not_ours:
            continue
        mode = _mode(path)
        if mode & 0o007 or (mode & 0o020 and path not in group_may_write):
            found.append(f"{path.relative_to(root.parent)} {mode:04o}")
    return found


def test_a_shell_with_umask_022_leaves_nothing_open_to_others(loose_umask: None,
                                                              tmp_path: Path) -> None:
    root = tmp_path / "site"
    root.mkdir(mode=0o700)
    spool = Spool(root, base_env(root))
    (root / "patients.csv").write_text(PATIENTS_CSV, encoding="utf-8")
    spool.run("patients", "import", str(root / "patients.csv"), check=True)
    # The command line: a scan (OCR, so a cost line), one for review, one broken.
    scan = pdfgen.write_sample_scan(tmp_path / "scan.pdf", last="MARTIN", first="Hélène",
                                    birth="03/04/1975")
    unknown = pdfgen.text_pdf([report("NOBODY", "Alice", "01/01/1990")], tmp_path / "u.pdf")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 not really")
    outcomes = [o["outcome"] for o in spool.process_json(scan, unknown, broken)]
    assert outcomes == ["filed", "review", "failed"]
    # The daemon: a dropped file filed while it runs; its database is open (-wal, -shm).
    run = Running(spool)
    try:
        dropped = pdfgen.text_pdf([report("DUPONT", "Jean", "12/03/1961")], tmp_path / "d.pdf")
        # The dropped file itself, in incoming/, has the dropper's mode: not made by docagent,
        # so not judged here.
        dropper_inode = drop(dropped, spool.home / "incoming").stat().st_ino
        run.wait_for(lambda: states(spool).get("d.pdf") == "filed", 60, "the drop to be filed")
        health = spool.run("health")
        assert "ok    watcher" in health.stdout, health.stdout
        made = {p.name for p in [*spool.home.iterdir(), *spool.logs.iterdir()]}
        assert {"state.db", "state.db-wal", "state.db-shm", ".docagent.lock", "docagent.log",
                "audit.jsonl", ".audit.lock", "api_costs.jsonl"} <= made, made
        open_home = _too_open(spool.home, frozenset({spool.home / "incoming"}),
                              frozenset({dropper_inode}))
        open_logs = _too_open(spool.logs)
    finally:
        assert run.stop() == 0
    assert open_home == [] and open_logs == [], (open_home, open_logs)
    # incoming/ is the one folder others' files arrive in; its mode is the spool's to set.
    assert _mode(spool.home / "incoming") & 0o007 == 0
    for path in (spool.home / "state.db", spool.logs / "docagent.log",
                 spool.logs / "audit.jsonl", spool.logs / "api_costs.jsonl"):
        assert _mode(path) == 0o640, (path, oct(_mode(path)))
    assert _mode(spool.logs) == 0o750 and _mode(spool.home) == 0o750
    assert _mode(spool.logs / ".audit.lock") == 0o600


def test_each_maker_sets_its_mode_without_the_command_line(loose_umask: None,
                                                           tmp_path: Path) -> None:
    """A library caller (a test, a script) never went through `docagent`'s umask."""
    logs_dir = tmp_path / "deep" / "logs"
    logger = logs.setup(logs_dir, "INFO", stream=None)
    logger.info("one line")
    handler = next(h for h in logger.handlers if isinstance(h, logging.FileHandler))
    assert isinstance(handler, logging.handlers.RotatingFileHandler)
    handler.doRollover()
    logger.info("after the rotation")
    AuditLog(tmp_path / "audit", state_db=tmp_path / "state.db").record("taken", document_id="d1")
    ledger.Ledger(tmp_path / "costs").record("telegram", "sendMessage", duration_ms=1)
    store = Store(tmp_path / "db" / "state.db")
    with store.write() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    (tmp_path / "incoming").mkdir()
    made = canary.drop(tmp_path / "incoming")
    try:
        assert [_mode(p) for p in (tmp_path / "deep", logs_dir)] == [0o750, 0o750]
        assert _mode(logs_dir / "docagent.log") == _mode(logs_dir / "docagent.log.1") == 0o640
        assert _mode(tmp_path / "audit") == _mode(tmp_path / "costs") == 0o750
        assert _mode(tmp_path / "audit" / "audit.jsonl") == 0o640
        assert _mode(tmp_path / "costs" / "api_costs.jsonl") == 0o640
        assert _mode(tmp_path / "db") == 0o750
        for name in ("state.db", "state.db-wal", "state.db-shm"):
            assert _mode(tmp_path / "db" / name) == 0o640, name
        assert _mode(made) == 0o640
    finally:
        store.close()
        logs.setup(None, stream=None)


def test_make_folder_leaves_an_existing_folder_alone(loose_umask: None, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    modes.make_folder(mine / "a" / "b")
    assert _mode(mine) == 0o755  # not ours to change: an administrator's choice
    assert _mode(mine / "a") == _mode(mine / "a" / "b") == 0o750
