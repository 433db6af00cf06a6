"""`docagent health`: each check failing for its own reason, and passing against a live daemon."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agent import config, health
from agent.config import HealthLimits, unit_names
from agent.errors import ConfigError
from agent.store import Store
from tests.conftest import Spool
from tests.daemonproc import Running, states

TOKEN = "123456:TEST-token-not-real"


def lines(done: Any) -> dict[str, str]:
    """name -> 'ok'/'FAIL' from the one-line-per-check output."""
    out = {}
    for line in done.stdout.splitlines():
        verdict, name = line.split()[:2]
        out[name if name != "unit" else " ".join(line.split()[1:3])] = verdict
    return out


def settings_for(spool: Spool, **env: str) -> config.Settings:
    return config.load({**spool.env, **env}, cwd=spool.root)


def test_without_a_daemon_health_fails_and_says_why(spool: Spool) -> None:
    done = spool.run("health")
    assert done.returncode == 1
    verdicts = lines(done)
    assert verdicts == {"daemon": "FAIL", "watcher": "FAIL", "tesseract": "ok", "poppler": "ok",
                        "database": "ok", "disk": "ok", "incoming": "ok", "failures": "ok",
                        "outbox": "ok", "telegram": "ok"}
    assert "the daemon is not running" in done.stdout
    assert list(spool.home.joinpath("incoming").iterdir()) == []  # no canary left behind


@pytest.mark.daemon
def test_with_a_running_daemon_everything_is_ok_and_the_canary_leaves_no_trace(
        spool: Spool, daemon: Callable[..., Running]) -> None:
    run = daemon()
    run.wait_for(lambda: spool.run("health").returncode == 0, 30, "a healthy verdict")
    report = json.loads(spool.run("health", "--json").stdout)
    assert report["healthy"] is True
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["watcher"]["detail"].endswith("was noticed")
    assert f"pid {run.proc.pid}" in by_name["daemon"]["detail"]
    assert states(spool) == {}  # the canary never became a document
    assert json.loads(spool.run("status", "--json").stdout)["incoming"] == 0
    assert list(spool.home.joinpath("incoming").iterdir()) == []
    assert run.stop() == 0


@pytest.mark.daemon
def test_polling_mode_notices_the_canary_too(spool: Spool,
                                             daemon: Callable[..., Running]) -> None:
    run = daemon(DOCAGENT_WATCH="polling")
    run.wait_for(lambda: '"watcher", "ok": true' in spool.run("health", "--json").stdout,
                 30, "the canary to be noticed by polling")
    assert states(spool) == {}


def test_heartbeat_age_is_judged_while_the_lock_is_held(spool: Spool) -> None:
    settings = settings_for(spool)
    store = Store(settings.db_path)
    fd = os.open(settings.home / ".docagent.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert not health.check_daemon(settings, store, 120).ok  # never beat
        store.set_meta("heartbeat", str(time.time() - 1000))
        stale = health.check_daemon(settings, store, 120)
        assert not stale.ok and "1000 s old" in stale.detail
        store.set_meta("heartbeat", str(time.time()))
        fresh = health.check_daemon(settings, store, 120)
        assert fresh.ok and f"pid {os.getpid()}" in fresh.detail
    finally:
        os.close(fd)
    assert not health.check_daemon(settings, store, 120).ok  # lock released: not running


def test_an_unnoticed_canary_fails_and_is_removed(spool: Spool) -> None:
    settings = settings_for(spool)
    check = health.check_watcher(settings, daemon_alive=True, wait=0.3)
    assert not check.ok and "unnoticed" in check.detail
    assert list(settings.incoming.iterdir()) == []


def test_a_missing_ocr_language_is_named(spool: Spool) -> None:
    check = health.check_tesseract(settings_for(spool, DOCAGENT_OCR_LANGS="fra+zzz"))
    assert not check.ok and "zzz" in check.detail and "tesseract-ocr-zzz" in check.detail


def test_disk_floor_old_waiting_file_and_failure_count(spool: Spool, tmp_path: Path) -> None:
    env = {"DOCAGENT_HEALTH_MIN_FREE": "1000000G", "DOCAGENT_HEALTH_MAX_WAIT": "60",
           "DOCAGENT_HEALTH_MAX_FAILED": "0"}
    incoming = spool.home / "incoming"
    hidden = incoming / ".scanner-temp"
    hidden.write_bytes(b"x")
    os.utime(hidden, (time.time() - 3600, time.time() - 3600))
    assert lines(spool.run("health", env=env))["incoming"] == "ok"  # dot files are not waiting
    old = incoming / "waiting.pdf"
    old.write_bytes(b"%PDF-1.4 half")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"not a pdf\n" * 30)
    assert spool.run("process", str(bad)).returncode == 1
    done = spool.run("health", env=env)
    verdicts = lines(done)
    assert (verdicts["disk"], verdicts["incoming"], verdicts["failures"]) == (
        "FAIL", "FAIL", "FAIL")
    assert "1 failed in the last 24 h" in done.stdout and "below the floor" in done.stdout
    assert lines(spool.run("health"))["failures"] == "ok"  # default tolerance is 5 a day


def test_an_old_unsent_notification_fails_the_outbox_check(spool: Spool) -> None:
    store = Store(settings_for(spool).db_path)
    with store.write() as conn:
        conn.execute("INSERT INTO outbox (created_at, kind, payload) VALUES (?, 'filed', '{}')",
                     ("2020-01-01T00:00:00.000+00:00",))
    check = health.check_outbox(store, 900)
    assert not check.ok and "1 notification(s) waiting" in check.detail


# --- Telegram getMe against a tiny Bot API stand-in -----------------------------------------


@pytest.fixture
def bot_api() -> Iterator[tuple[str, list[str]]]:
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            paths.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == f"/bot{TOKEN}/getMe":
                code, body = 200, {"ok": True, "result": {
                    "id": 123456, "is_bot": True, "first_name": "Docagent",
                    "username": "docagent_test_bot"}}
            else:
                code, body = 401, {"ok": False, "error_code": 401,
                                   "description": "Unauthorized"}
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", paths
    server.shutdown()
    server.server_close()


def test_telegram_getme_answers(spool: Spool, bot_api: tuple[str, list[str]]) -> None:
    url, paths = bot_api
    done = spool.run("health", env={"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": url})
    assert lines(done)["telegram"] == "ok" and "@docagent_test_bot" in done.stdout
    assert paths == [f"/bot{TOKEN}/getMe"]


def test_telegram_token_from_a_credential_and_a_refusal(spool: Spool, tmp_path: Path,
                                                       bot_api: tuple[str, list[str]]) -> None:
    url, _ = bot_api
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "telegram-token").write_text("999:wrong-token\n")
    (creds / "telegram-token").chmod(0o640)
    done = spool.run("health", env={"CREDENTIALS_DIRECTORY": str(creds),
                                    "TELEGRAM_API_BASE_URL": url})
    assert lines(done)["telegram"] == "FAIL"
    assert "getMe" in done.stdout and "wrong-token" not in done.stdout


def test_telegram_unreachable_fails(spool: Spool) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connection refused
        done = spool.run("health", env={"TELEGRAM_BOT_TOKEN": TOKEN,
                                        "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{port}"})
    assert lines(done)["telegram"] == "FAIL" and TOKEN not in done.stdout


# --- the unit allowlist ------------------------------------------------------------------------


def test_only_allowlisted_units_are_ever_asked_about() -> None:
    calls: list[list[str]] = []

    def systemctl(argv: Sequence[str]) -> Any:
        calls.append(list(argv))
        import subprocess
        return subprocess.CompletedProcess(argv, 0, "active\n", "")

    allow = unit_names("cups.service, smbd.service")
    checks = health.unit_states(allow, ["cups.service", "sshd.service", "-H evil"],
                                run=systemctl)
    assert [(c.name, c.ok) for c in checks] == [
        ("unit cups.service", True), ("unit sshd.service", False), ("unit -H evil", False)]
    assert calls == [["systemctl", "is-active", "--", "cups.service"]]


@pytest.mark.parametrize("bad", ["cups", "a.service;reboot", "--host=x.service", "../x.service",
                                 "$(id).service"])
def test_malformed_unit_names_are_a_configuration_error(bad: str) -> None:
    with pytest.raises(ConfigError):
        unit_names(f"cups.service {bad}")


def test_a_bad_unit_list_is_exit_2(spool: Spool) -> None:
    done = spool.run("health", env={"DOCAGENT_HEALTH_UNITS": "x.service;reboot"})
    assert done.returncode == 2 and "DOCAGENT_HEALTH_UNITS" in done.stderr


def test_a_unit_that_is_not_active_fails(spool: Spool) -> None:
    # This machine's PID 1 is not systemd: systemctl answers, but not "active".
    done = spool.run("health", env={"DOCAGENT_HEALTH_UNITS": "docagent-nonexistent.service"})
    assert lines(done)["unit docagent-nonexistent.service"] == "FAIL"


# --- --notify: a message on a change, not every run ---------------------------------------------


def test_notify_only_on_a_change_and_once_on_recovery(spool: Spool) -> None:
    store = Store(settings_for(spool).db_path)
    ok = [health.Check("disk", True, "fine")]
    bad = [health.Check("disk", False, "0.1 GiB free")]
    worse = [*bad, health.Check("outbox", False, "stuck")]
    sent = [health.remember_and_alert(store, checks) is not None
            for checks in (ok, bad, bad, worse, worse, ok, ok)]
    assert sent == [False, True, False, True, False, True, False]
    rows = store.read("SELECT kind, payload FROM outbox ORDER BY id")
    assert [r["kind"] for r in rows] == ["health"] * 3
    texts = [json.loads(r["payload"])["text"] for r in rows]
    assert "disk: 0.1 GiB free" in texts[0] and "outbox: stuck" in texts[1]
    assert texts[2].startswith("docagent is healthy again")


def test_notify_from_the_command_line_writes_one_message(spool: Spool) -> None:
    assert spool.run("health", "--notify").returncode == 1
    assert spool.run("health", "--notify").returncode == 1
    store = Store(settings_for(spool).db_path)
    rows = store.read("SELECT kind FROM outbox WHERE kind = 'health'")
    assert len(rows) == 1


def test_a_check_that_cannot_run_is_one_failing_line(spool: Spool) -> None:
    settings = settings_for(spool)
    store = Store(settings.db_path)
    with store.write() as conn:
        conn.execute("DROP TABLE outbox")  # a damaged database: this one query cannot run
    checks = health.run_checks(settings, store, HealthLimits())
    by_name = {c.name: c for c in checks}
    assert not by_name["outbox"].ok and "could not check" in by_name["outbox"].detail
    assert by_name["failures"].ok and by_name["tesseract"].ok  # the others still ran
