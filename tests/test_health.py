"""`docagent health`: each check failing for its own reason, and passing against a live daemon."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agent import config, lock
from agent import spool as spool_module
from agent.config import HealthLimits, unit_names
from agent.daemon import exclusive
from agent.errors import ConfigError
from agent.ops import health
from agent.store import Store
from agent.tools import runner
from tests import pdfgen, uids
from tests.conftest import Spool, base_env
from tests.daemonproc import Running, states
from tests.watch import until

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
                        "database": "ok", "patients": "ok", "disk": "ok", "incoming": "ok",
                        "failures": "ok", "outbox": "ok", "telegram": "ok", "mail": "ok"}
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


def daemon_check(settings: config.Settings, store: Store) -> health.Check:
    return health.check_daemon(settings, store, 120, health.daemon_holder(settings))


def test_heartbeat_age_is_judged_while_the_lock_is_held(spool: Spool) -> None:
    settings = settings_for(spool)
    store = Store(settings.db_path)
    with exclusive(settings) as alone:
        assert alone
        assert not daemon_check(settings, store).ok  # never beat
        store.set_meta("heartbeat", str(time.time() - 1000))
        stale = daemon_check(settings, store)
        assert not stale.ok and "1000 s old" in stale.detail
        store.set_meta("heartbeat", str(time.time()))
        fresh = daemon_check(settings, store)
        assert fresh.ok and f"pid {os.getpid()}" in fresh.detail
    assert not daemon_check(settings, store).ok  # lock released: not running


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
    assert not check.ok and "1 notification waiting" in check.detail


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


def test_only_allowlisted_units_are_ever_asked_about(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def systemctl(argv: Sequence[str], *, timeout: float,
                  pass_fds: Sequence[int] = ()) -> runner.Finished:
        calls.append(list(argv))
        return runner.Finished(0, b"active\n", b"", 0.0)

    monkeypatch.setattr(runner, "run", systemctl)
    allow = unit_names("cups.service, smbd.service")
    checks = health.unit_states(allow, ["cups.service", "sshd.service", "-H evil"])
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


# --- what an admin meets on a real server -----------------------------------------------------


def test_under_journald_a_failing_check_is_an_error(spool: Spool) -> None:
    """journald reads a `<N>` prefix on each stdout line: FAIL lines must be `err`."""
    code, journal = spool.run_journaled("health")
    assert code == 1
    out = journal.splitlines()
    assert out and all(line.startswith(("<3>FAIL  ", "<6>ok    ")) for line in out), out
    assert any(line.startswith("<3>FAIL  daemon") for line in out)
    assert any(line.startswith("<6>ok    tesseract") for line in out)


def test_an_empty_patient_directory_fails(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    done = Spool(root, base_env(root)).run("health")
    assert done.returncode == 1 and lines(done)["patients"] == "FAIL"
    assert "the patient directory is empty" in done.stdout
    assert "docagent patients import" in done.stdout


@pytest.fixture
def account() -> Iterator[pwd.struct_passwd]:
    """A real system account (and its own group), removed afterwards."""
    uids.require()
    with uids.user("dagt") as made:
        yield pwd.getpwnam(made.name)


def old(path: Path) -> None:
    os.utime(path, (time.time() - 3600, time.time() - 3600), follow_symlinks=False)


def test_the_oldest_waiting_file_is_named_with_why_it_cannot_be_read(
        spool: Spool, account: pwd.struct_passwd) -> None:
    settings = settings_for(spool)
    os.chown(settings.home, account.pw_uid, account.pw_gid)  # the daemon's user owns the spool
    name = "scan\x1b[2J\n01.pdf"  # a terminal escape and a newline in a dropped file's name
    stuck = settings.incoming / name
    stuck.write_bytes(b"%PDF-1.4 a scan\n")
    stuck.chmod(0o600)  # `install -m600 x.pdf incoming/` as root
    old(stuck)
    younger = settings.incoming / "later.pdf"
    younger.write_bytes(b"%PDF-1.4 later\n")

    store = Store(settings.db_path)
    check = health.check_incoming(settings, store, 60)
    assert not check.ok
    assert "2 waiting, the oldest for" in check.detail
    assert "'scan\\x1b[2J" in check.detail and "01.pdf'" in check.detail
    assert "\x1b" not in check.detail and "\n" not in check.detail
    assert (f"docagent (user {account.pw_name}) may not read it (owner root:root, "
            "mode 0600)") in check.detail
    assert "chmod 644" in check.detail and "docagent-drop" in check.detail

    stuck.chmod(0o644)  # readable now: then it is the daemon that does not take files
    check = health.check_incoming(settings, store, 60)
    assert not check.ok and "files are not being taken" in check.detail
    assert "may not read" not in check.detail and "01.pdf'" in check.detail
    assert health.check_incoming(settings, store, 7200).ok


def test_files_already_dealt_with_are_not_counted_as_waiting(spool: Spool, monkeypatch) -> None:
    """A file refused as unreadable fails the check at once, with its reason and the fix; one
    taken but impossible to remove is said, not counted as waiting."""
    settings = settings_for(spool)
    store = Store(settings.db_path)
    refused = settings.incoming / "private.pdf"
    refused.write_bytes(b"%PDF-1.4 private\n")
    kept = settings.incoming / "kept.pdf"
    kept.write_bytes(pdfgen.text_pdf([["kept"]], spool.root / "k.pdf").read_bytes())
    real_open, real_unlink = os.open, os.unlink

    def deny(path, *args, **kwargs):  # what a file of root's at 0600 does to the daemon
        if Path(path) == refused:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    def keep(path, *args, **kwargs):  # an incoming/ the daemon may not remove files from
        if Path(path) == kept:
            raise PermissionError(1, "Operation not permitted", str(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    monkeypatch.setattr(os, "unlink", keep)
    assert spool_module.claim(settings, store, refused).refused
    assert spool_module.claim(settings, store, kept).left is not None
    monkeypatch.undo()
    check = health.check_incoming(settings, store, 60)
    assert not check.ok
    assert check.detail.startswith("1 file docagent may not read: 'private.pdf' (docagent "
                                   "may not read this file (owner root:")
    assert "chmod 644" in check.detail
    assert "1 taken but left in place" in check.detail


def test_the_tools_are_run_through_the_one_runner(spool: Spool,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []
    real = runner.run

    def recording(argv: Sequence[str], *, timeout: float, env: dict[str, str] | None = None,
                  pass_fds: Sequence[int] = ()) -> runner.Finished:
        ran.append(argv[0])
        return real(argv, timeout=timeout, env=env, pass_fds=pass_fds)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("health started a program outside runner.run")

    monkeypatch.setattr(runner, "run", recording)
    monkeypatch.setattr(subprocess, "run", forbidden)
    settings = settings_for(spool, DOCAGENT_HEALTH_UNITS="docagent-nonexistent.service")
    checks = {c.name: c for c in health.run_checks(settings, Store(settings.db_path))}
    assert checks["tesseract"].ok and checks["poppler"].ok, checks
    assert {"tesseract", "pdfinfo", "systemctl"} <= set(ran)


# --- the daemon-alive check asks the lock itself ----------------------------------------------


@pytest.fixture
def overlay(tmp_path: Path) -> Iterator[Path]:
    """An overlay mount whose lower layer is another filesystem, without xino: there stat()
    gives a file the overlay's device and /proc/locks another (00:2b against 00:2a, say), so
    a lock found by device and inode is missed."""
    if os.geteuid() != 0:
        pytest.skip("mounting an overlay needs root")
    layers = {name: tmp_path / name for name in ("lower", "upper", "work", "merged")}
    for path in layers.values():
        path.mkdir()
    mounted: list[Path] = []
    try:
        for argv in (["mount", "-t", "tmpfs", "tmpfs", str(layers["lower"])],
                     ["mount", "-t", "overlay", "overlay", "-o",
                      f"lowerdir={layers['lower']},upperdir={layers['upper']},"
                      f"workdir={layers['work']},xino=off", str(layers["merged"])]):
            done = subprocess.run(argv, capture_output=True, text=True)
            if done.returncode != 0:
                pytest.skip(f"cannot mount here: {done.stderr.strip()}")
            mounted.append(Path(argv[-1]))
        yield layers["merged"]
    finally:
        for point in reversed(mounted):
            if subprocess.run(["umount", str(point)], capture_output=True).returncode:
                subprocess.run(["umount", "--lazy", str(point)], capture_output=True)


@pytest.mark.daemon
def test_the_daemon_is_found_where_proc_locks_and_stat_disagree(
        spool: Spool, overlay: Path, daemon: Callable[..., Running]) -> None:
    # `overlay` before `daemon`: the daemon is stopped before the overlay is unmounted.
    home = overlay / "home"
    run = daemon(DOCAGENT_HOME=str(home))
    info = (home / lock.NAME).stat()
    by_stat = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    held = [fields[5] for fields in map(str.split, Path("/proc/locks").read_text().splitlines())
            if len(fields) >= 6 and fields[1] == "FLOCK" and fields[4] == str(run.proc.pid)]
    assert held, "the daemon's flock is not in /proc/locks"
    if by_stat in held:
        pytest.skip("on this kernel /proc/locks and stat() agree on an overlay: nothing to show")
    report = json.loads(spool.run("health", "--json", env={"DOCAGENT_HOME": str(home)}).stdout)
    [check] = [c for c in report["checks"] if c["name"] == "daemon"]
    assert f"running (pid {run.proc.pid})" in check["detail"], (by_stat, held, check)
    assert run.stop() == 0


def test_staff_in_the_group_may_ask_the_lock(account: pwd.struct_passwd) -> None:
    """Staff are in the service's group: the lock file is 0640 and a read-only probe works."""
    base = Path(tempfile.mkdtemp(prefix="docagent-lock-", dir="/tmp"))
    try:
        base.chmod(0o711)
        home = base / "home"
        home.mkdir(mode=0o750)
        os.chown(home, 0, account.pw_gid)
        settings = config.load({"DOCAGENT_HOME": str(home), "DOCAGENT_LOG_DIR": str(base)},
                               cwd=base)
        with exclusive(settings) as alone:
            assert alone
            path = home / lock.NAME
            os.chown(path, 0, account.pw_gid)  # the service's group, as on a server
            assert stat.S_IMODE(path.stat().st_mode) == 0o640
            staff = uids.Account(account.pw_name, account.pw_uid, account.pw_gid)
            done = subprocess.run(
                uids.command(staff, [sys.executable, "-c", "import sys; from pathlib import "
                                     "Path; from agent import lock; "
                                     "print(lock.probe(Path(sys.argv[1])).pid)", str(path)]),
                capture_output=True, text=True, timeout=60, cwd="/")
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip() == str(os.getpid())
    finally:
        shutil.rmtree(base)


PROBES = """
import fcntl, os, sys
from pathlib import Path
Path(sys.argv[2]).touch()
while True:  # what `docagent health` does, as fast as a loop can
    fd = os.open(sys.argv[1], os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        pass
    os.close(fd)
"""


def test_a_probe_never_makes_a_starting_daemon_think_another_runs(spool: Spool,
                                                                 tmp_path: Path) -> None:
    settings = settings_for(spool)
    with exclusive(settings) as alone:
        assert alone  # the lock file exists from now on
    started = tmp_path / "probing"
    prober = subprocess.Popen([sys.executable, "-c", PROBES,
                               str(lock.path_in(settings.home)), str(started)])
    try:
        until(started.exists, 60, "the prober to start", process=prober, interval=0.05)
        taken = []
        for _ in range(200):
            with exclusive(settings) as alone:
                taken.append(alone)
        assert all(taken), f"{taken.count(False)} of 200 tries saw a probe as a daemon"
    finally:
        prober.kill()
        prober.wait()
