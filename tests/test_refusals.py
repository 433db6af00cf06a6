"""What an admin finds with `journalctl -p err`: every refusal to start, and a run that ended
without a clean stop (`kill -9`, an OOM kill, the watchdog).

systemd tells a service which stream is the journal with JOURNAL_STREAM (device:inode); a line
written there that starts with `<3>` is stored at error priority. Here stderr is a file whose
device and inode are handed over the same way.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Spool
from tests.daemonproc import Running

UNCLEAN = "the previous run ended without a clean stop"


def run_with_journal(spool: Spool, tmp_path: Path, *args: str,
                     **env: str) -> tuple[int, str]:
    return spool.run_journaled(*args, env=env, timeout=60)


def test_a_configuration_error_at_start_is_at_error_priority(spool: Spool,
                                                             tmp_path: Path) -> None:
    code, text = run_with_journal(spool, tmp_path, "run", DOCAGENT_WORKERS="many")
    assert code == 2
    assert text.startswith("<3>docagent: DOCAGENT_WORKERS must be a whole number"), text
    assert len(text.splitlines()) == 1


def test_a_private_env_file_readable_by_the_group_is_refused_at_error_priority(
        spool: Spool, tmp_path: Path) -> None:
    env_file = tmp_path / "docagent.env"
    env_file.write_text("DOCAGENT_WORKERS=1\n")
    env_file.chmod(0o640)
    code, text = run_with_journal(spool, tmp_path, "run", DOCAGENT_ENV_FILE=str(env_file))
    assert code == 2
    assert text.startswith("<3>") and f"chmod 600 {env_file}" in text, text


def test_not_under_the_journal_there_is_no_priority_prefix(spool: Spool) -> None:
    # JOURNAL_STREAM inherited from a unit, but stderr is a pipe: no `<3>` in a person's face.
    done = spool.run("run", env={"DOCAGENT_WORKERS": "many", "JOURNAL_STREAM": "8:1234"})
    assert done.returncode == 2
    assert done.stderr.startswith("docagent: DOCAGENT_WORKERS"), done.stderr


@pytest.mark.daemon
def test_a_second_daemon_is_refused_at_error_priority_with_the_fix(
        spool: Spool, daemon: Callable[..., Running], tmp_path: Path) -> None:
    daemon()
    code, text = run_with_journal(spool, tmp_path, "run")
    assert code == 2
    assert text.startswith("<3>docagent: another docagent is already running"), text
    assert "systemctl stop docagent" in text


@pytest.mark.daemon
def test_kill_9_leaves_one_error_line_at_the_next_start(spool: Spool) -> None:
    first = Running(spool)
    first.stop(signal.SIGKILL)
    second = Running(spool)  # returns once it is watching: recovery is done and said
    try:
        lines = [line for line in second.own_output().splitlines() if UNCLEAN in line]
        assert len(lines) == 1, second.own_output()
        assert " ERROR " in lines[0] and "killed or crashed" in lines[0]
        assert "recovery: nothing was left half done" in lines[0]
    finally:
        assert second.stop() == 0
    # A clean stop is remembered: the next start says nothing of the kind.
    third = Running(spool)
    try:
        assert UNCLEAN not in third.own_output()
    finally:
        third.stop()
