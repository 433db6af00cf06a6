"""docagent under the real systemd: a Debian 12 container booted with systemd as PID 1.

`deploy/install.sh` runs inside, as on a fresh server; then each test proves one promise of the
unit: ready means watching, a dropped PDF is filed and journaled, an error shows at error
priority, `kill -9` and a hung loop are both restarted (the latter by the watchdog), a restart
in the middle of a document loses nothing, and the timer runs the health check.

A drop-in shortens RestartSec/WatchdogSec and arms the test-only hang switch. The tests share
one container and run in file order; each waits on states, never on fixed delays.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import nspawn, pdfgen

pytestmark = [pytest.mark.systemd, pytest.mark.timeout(1200)]
REPO = Path(__file__).resolve().parents[1]
STATE = "/var/lib/docagent"
HANG_FILE = f"{STATE}/.test-hang"
DROP_IN = f"""[Service]
RestartSec=1
WatchdogSec=6
Environment=DOCAGENT_TEST_HANG_FILE={HANG_FILE}
Environment=DOCAGENT_WORKERS=1
Environment=DOCAGENT_STABLE_SECONDS=0.5
Environment=DOCAGENT_RESCAN_SECONDS=2
"""


BOT_TOKEN = "4242:boot-test-token"
FAKE_BOT_API = f"""
import json
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ok = self.path == "/bot{BOT_TOKEN}/getMe"
        body = json.dumps({{"ok": True, "result": {{"id": 4242, "is_bot": True,
                           "first_name": "T", "username": "docagent_test_bot"}}}} if ok else
                          {{"ok": False, "error_code": 401, "description": "Unauthorized"}})
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

HTTPServer(("127.0.0.1", 8089), Handler).serve_forever()
"""


def wheels() -> Path:
    """The dependencies as wheels, built once per pyproject.toml, so the install is offline."""
    key = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:16]
    folder = nspawn.CACHE / f"wheels-{key}"
    nspawn.CACHE.mkdir(parents=True, exist_ok=True)
    with open(nspawn.CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another checkout's suite may be building it too
        if not folder.is_dir():
            build_wheels(folder)
    return folder


def build_wheels(folder: Path) -> None:
    partial = folder.with_suffix(".part")
    shutil.rmtree(partial, ignore_errors=True)
    # The dependencies only: the project itself is built from the checkout by install.sh
    # (building it here would leave build/ in the working tree).
    needs = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir",
                    str(partial), *needs], check=True, cwd="/")
    # The build backend too, for pip's isolated build of the project.
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--dest",
                    str(partial), "setuptools>=68", "wheel"], check=True, cwd="/")
    partial.rename(folder)


def wait_for(what: str, test: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


class Box:
    """The booted container with docagent installed."""

    def __init__(self, container: nspawn.Container) -> None:
        self.c = container

    def sh(self, script: str, check: bool = True, timeout: float = 120.0) -> str:
        return self.c.run(["sh", "-c", script], check=check, timeout=timeout).stdout

    def prop(self, unit: str, name: str) -> str:
        return self.sh(f"systemctl show -P {name} {unit}").strip()

    def main_pid(self) -> int:
        return int(self.prop("docagent", "MainPID"))

    def drop(self, pdf: Path, name: str) -> None:
        """Copy into incoming the way a scanner share does: written aside, renamed in."""
        staging = self.c.root / "root" / name
        shutil.copyfile(pdf, staging)
        self.sh(f"install -o docagent -g docagent -m 0640 /root/{name} {STATE}/incoming/.{name} "
                f"&& mv {STATE}/incoming/.{name} {STATE}/incoming/{name}")

    def query(self, sql: str) -> list[list[str]]:
        script = ("import sqlite3, json, sys; print(json.dumps(sqlite3.connect(sys.argv[1])"
                  ".execute(sys.argv[2]).fetchall()))")
        out = self.c.run(["runuser", "-u", "docagent", "--", "python3", "-c", script,
                          f"{STATE}/state.db", sql]).stdout
        return list(json.loads(out))

    def states(self) -> dict[str, str]:
        return dict(self.query("SELECT original_name, state FROM documents"))

    def journal(self, *args: str) -> str:
        return self.sh("journalctl --no-pager -o cat " + " ".join(args), check=False)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    reason = nspawn.why_not()
    if reason is not None:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("nspawn")
    wheelhouse = wheels()
    with nspawn.booted(REPO, work) as container:
        # The repository is mounted read-only at /payload; the wheels go in root's home.
        shutil.copytree(wheelhouse, container.root / "root/wheels")
        box = Box(container)
        drop_in = container.root / "etc/systemd/system/docagent.service.d"
        drop_in.mkdir(parents=True)
        (drop_in / "test.conf").write_text(DROP_IN)
        try:
            box.sh("PIP_NO_INDEX=1 PIP_FIND_LINKS=/root/wheels /payload/deploy/install.sh",
                   timeout=600)
            box.sh("docagent patients import /payload/deploy/demo-patients.csv")
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- journal ---\n{box.journal('-n 60', '-o short')}"
                                 ) from None
        yield box


def report(tag: str) -> list[str]:
    lines = pdfgen.lab_report_lines(last="MARTIN", first="Hélène", birth="03/04/1975",
                                    doc_date="05/11/2026")
    return [*lines, tag]


def test_install_leaves_a_running_ready_service(box: Box) -> None:
    assert box.prop("docagent", "ActiveState") == "active"
    assert box.prop("docagent", "SubState") == "running"
    assert box.prop("docagent", "Type") == "notify"
    assert box.prop("docagent", "User") == "docagent"
    assert box.prop("docagent-health.timer", "ActiveState") == "active"
    assert box.sh("systemctl is-enabled docagent docagent-health.timer").split() == [
        "enabled", "enabled"]
    assert box.sh("stat -c '%U %a' /etc/docagent/docagent.env").strip() == "docagent 600"
    assert box.sh(f"stat -c '%U %a' {STATE} {STATE}/incoming").split() == [
        "docagent", "750", "docagent", "2770"]
    assert box.sh(f"stat -c %U /proc/{box.main_pid()}").strip() == "docagent"
    assert "watching /var/lib/docagent/incoming" in box.prop("docagent", "StatusText")
    # The unit as systemd loaded it (drop-ins included) keeps its hardening score.
    rating = box.sh("systemd-analyze security --no-pager docagent.service | tail -1")
    assert float(re.search(r"exposure level for docagent.service: (\d+\.\d)", rating)[1]) <= 1.5


def test_start_returns_once_ready(box: Box) -> None:
    box.sh("systemctl stop docagent")
    assert box.prop("docagent", "ActiveState") == "inactive"
    # systemctl start of a Type=notify unit blocks until READY=1: by then the daemon has
    # recovered and its watcher runs, so the state is active at once, not "activating".
    box.sh("systemctl start docagent")
    assert box.prop("docagent", "ActiveState") == "active"
    assert box.prop("docagent", "StatusText").startswith("watching")
    ready = box.journal("-u docagent", "--since=-2min")
    assert "watching /var/lib/docagent/incoming" in ready


def test_reinstall_keeps_settings_and_is_idempotent(box: Box) -> None:
    box.sh("echo '# local change' >> /etc/docagent/docagent.env")
    box.sh("PIP_NO_INDEX=1 PIP_FIND_LINKS=/root/wheels /payload/deploy/install.sh", timeout=600)
    assert "# local change" in box.sh("cat /etc/docagent/docagent.env")
    assert box.prop("docagent", "ActiveState") == "active"


def test_dropped_pdf_is_filed_and_journaled(box: Box, tmp_path: Path) -> None:
    pdf = pdfgen.text_pdf([report("boot-1")], tmp_path / "bilan.pdf")
    box.drop(pdf, "bilan.pdf")
    wait_for("filing", lambda: box.states().get("bilan.pdf") == "filed")
    assert box.sh(f"ls {STATE}/done/P0002/*.pdf").split() == [
        f"{STATE}/done/P0002/2026-11-05_lab-result_bilan.pdf"]
    wait_for("the journal line", lambda: "filed" in box.journal("-u docagent", "-g bilan"))


def test_failure_is_logged_at_error_priority(box: Box, tmp_path: Path) -> None:
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"this is not a PDF at all\n" * 40)
    box.drop(bad, "broken.pdf")
    wait_for("the quarantine", lambda: box.states().get("broken.pdf") == "failed")
    [[doc_id]] = box.query("SELECT id FROM documents WHERE original_name = 'broken.pdf'")
    wait_for("an error line", lambda: f"[{doc_id}]" in box.journal("-u docagent", "-p err"))
    errors = box.journal("-u docagent", "-p err", "-o json")
    line = next(json.loads(x) for x in errors.splitlines() if doc_id in x)
    assert line["PRIORITY"] == "3" and "failed" in line["MESSAGE"]
    assert "filed" not in box.journal("-u docagent", "-p err")  # successes stay below err


def test_kill_9_is_restarted_and_counted(box: Box) -> None:
    before, restarts = box.main_pid(), int(box.prop("docagent", "NRestarts"))
    box.sh(f"kill -9 {before}")
    wait_for("a new main process", lambda: box.main_pid() not in (0, before)
             and box.prop("docagent", "ActiveState") == "active")
    assert int(box.prop("docagent", "NRestarts")) == restarts + 1


def test_hung_loop_is_killed_by_the_watchdog(box: Box) -> None:
    before, restarts = box.main_pid(), int(box.prop("docagent", "NRestarts"))
    box.sh(f"runuser -u docagent -- touch {HANG_FILE}")
    wait_for("the hang switch to be taken", lambda: box.sh(f"test -e {HANG_FILE} || echo gone")
             .strip() == "gone")
    wait_for("the watchdog restart", lambda: box.main_pid() not in (0, before)
             and box.prop("docagent", "ActiveState") == "active", timeout=60)
    assert int(box.prop("docagent", "NRestarts")) == restarts + 1
    log = box.journal("-u docagent", "--since=-2min", "-o short")
    assert "Watchdog timeout" in log


def test_restart_mid_document_loses_nothing(box: Box, tmp_path: Path) -> None:
    pages = [pdfgen.render_page(report(f"page {n}"), dpi=200) for n in range(4)]
    pdf = pdfgen.image_pdf(pages, tmp_path / "scan.pdf", dpi=200)
    box.drop(pdf, "scan.pdf")
    wait_for("OCR to start", lambda: box.states().get("scan.pdf") == "processing")
    box.sh("systemctl restart docagent", timeout=300)
    wait_for("filing after the restart", lambda: box.states().get("scan.pdf") == "filed",
             timeout=300)
    assert box.sh(f"ls -A {STATE}/incoming {STATE}/processing").split() == [
        f"{STATE}/incoming:", f"{STATE}/processing:"]
    assert box.sh(f"ls {STATE}/failed/*.pdf").split() == [f"{STATE}/failed/broken.pdf"]
    [[doc_id]] = box.query("SELECT id FROM documents WHERE original_name = 'scan.pdf'")
    assert doc_id not in box.journal("-u docagent", "-p err")


def test_health_passes_by_hand(box: Box) -> None:
    out = json.loads(box.sh("docagent health --json", check=False))
    failing = {c["name"]: c["detail"] for c in out["checks"] if not c["ok"]}
    assert failing == {}
    assert {c["name"] for c in out["checks"]} >= {
        "daemon", "watcher", "tesseract", "poppler", "database", "disk", "incoming",
        "failures", "outbox", "telegram"}
    assert box.states().keys() == {"bilan.pdf", "broken.pdf", "scan.pdf"}  # no canary


def test_timer_runs_the_health_check(box: Box) -> None:
    timer = box.c.root / "etc/systemd/system/docagent-health.timer.d"
    timer.mkdir(parents=True)
    (timer / "test.conf").write_text("[Timer]\nOnCalendar=\nOnCalendar=*:*:0/5\n"
                                     "RandomizedDelaySec=0\nAccuracySec=1s\n")
    # The hardened health unit must still be able to ask systemd about the allowlisted units,
    # receive the token through LoadCredential= and reach the Bot API over IP (a stand-in
    # answering getMe on 127.0.0.1: the real one is outside this machine's reach).
    (box.c.root / "root/fake_bot_api.py").write_text(FAKE_BOT_API)
    box.sh("systemd-run --quiet --unit=fake-bot-api python3 /root/fake_bot_api.py")
    box.sh(f"echo '{BOT_TOKEN}' > /etc/docagent/telegram-token")
    box.sh("printf '%s\\n' 'DOCAGENT_HEALTH_UNITS=dbus.service systemd-journald.service' "
           "'TELEGRAM_API_BASE_URL=http://127.0.0.1:8089' >> /etc/docagent/docagent.env")
    box.sh("systemctl daemon-reload && systemctl restart docagent-health.timer")
    wait_for("the health service to run", lambda: "daemon" in box.journal(
        "-u docagent-health.service"), timeout=60)
    wait_for("its result", lambda: box.prop("docagent-health.service", "Result") == "success"
             and box.prop("docagent-health.service", "ExecMainStatus") == "0", timeout=60)
    out = box.journal("-u docagent-health.service")
    assert "ok    daemon" in out and "ok    watcher" in out
    assert "ok    unit dbus.service" in out and "ok    unit systemd-journald.service" in out
    assert re.search(r"^ok +telegram +reachable as @docagent_test_bot$", out, re.M), out
    assert BOT_TOKEN not in box.journal("-u docagent-health.service", "-u docagent")


def test_uninstall_keeps_the_data(box: Box) -> None:
    box.sh("/payload/deploy/uninstall.sh")
    assert box.sh("systemctl is-active docagent", check=False).strip() in ("inactive", "unknown")
    assert box.sh(f"ls {STATE}/done/P0002/*.pdf | wc -l").strip() == "2"
    assert box.sh("test -e /etc/docagent/docagent.env && test ! -e /opt/docagent && echo kept"
                  ).strip() == "kept"
