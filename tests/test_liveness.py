"""The watchdog is pinged only by a loop that runs and while no worker is stuck."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent import config, liveness
from tests.conftest import Spool
from tests.daemonproc import Running
from tests.watch import Clock


def test_the_bound_follows_the_page_limit_and_ocr_timeout(spool: Spool) -> None:
    settings = config.load({**spool.env, "DOCAGENT_MAX_PAGES": "10",
                            "DOCAGENT_OCR_TIMEOUT": "30"}, cwd=spool.root)
    assert liveness.hung_after(settings) == 10 * 2 * 30 + liveness.MARGIN
    assert liveness.hung_after(settings, pages=1) == 1 * 2 * 30 + liveness.MARGIN
    assert liveness.hung_after(settings, pages=500) == liveness.hung_after(settings)


def test_a_worker_holding_a_document_too_long_stops_the_pings(spool: Spool) -> None:
    clock = Clock()
    settings = config.load(spool.env, cwd=spool.root)
    live = liveness.Liveness(settings, clock=clock)
    assert live.may_ping()
    live.took(0)  # page count unknown: the page limit applies
    live.took(1, pages=1)
    one_page = liveness.hung_after(settings, pages=1)
    clock.now += one_page - 1
    assert live.may_ping()
    clock.now += 2
    assert live.stuck() == [1] and not live.may_ping()
    live.released(1)
    assert live.may_ping()  # worker 0 may still take far longer
    clock.now += liveness.hung_after(settings)
    assert live.stuck() == [0] and not live.may_ping()
    live.released(0)
    assert live.may_ping()


def test_the_hang_switch_is_inert_unless_armed_and_present(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(liveness.HANG_SWITCH, raising=False)
    (tmp_path / "hang").touch()
    liveness.hang_if_asked()  # not armed: returns although a file exists
    monkeypatch.setenv(liveness.HANG_SWITCH, str(tmp_path / "absent"))
    liveness.hang_if_asked()  # armed, but no file: returns
    assert (tmp_path / "hang").exists()


def test_the_env_file_cannot_arm_the_hang_switch(
        spool: Spool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(liveness.HANG_SWITCH, raising=False)
    env_file = tmp_path / "docagent.env"
    env_file.write_text(f"{liveness.HANG_SWITCH}={tmp_path / 'hang'}\n")
    env_file.chmod(0o600)
    (tmp_path / "hang").touch()
    config.load({**spool.env, "DOCAGENT_ENV_FILE": str(env_file)}, cwd=spool.root)
    liveness.hang_if_asked()  # returns: reading the file armed nothing
    assert (tmp_path / "hang").exists()


@pytest.mark.daemon
def test_the_running_daemon_sends_ready_then_watchdog_pings_with_status(
        spool: Spool, daemon: Callable[..., Running], tmp_path: Path) -> None:
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(30)
        run = daemon(NOTIFY_SOCKET=address, WATCHDOG_USEC="2000000")
        messages: list[str] = []
        deadline = time.monotonic() + 30
        while sum("WATCHDOG=1" in m for m in messages) < 2 and time.monotonic() < deadline:
            messages.append(sock.recv(4096).decode())
        assert run.stop() == 0
    ready = next(i for i, m in enumerate(messages) if "READY=1" in m)
    pings = [m for m in messages if "WATCHDOG=1" in m]
    assert len(pings) >= 2 and messages.index(pings[0]) > ready
    assert f"STATUS=watching {spool.home / 'incoming'} — 0 queued" in pings[0]
    assert "failed today" in pings[0]
