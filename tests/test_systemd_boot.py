"""docagent under the real systemd: a Debian 12 container booted with systemd as PID 1.

`deploy/install.sh` runs inside, as on a fresh server, and the admin's steps follow as the README
gives them (`sudo docagent patients import patients.csv` from root's home). Then each test
proves one promise, the way an admin or a scanner meets it: files dropped by root (`cp`, 0644),
by a scanner account in `docagent-drop` (umask 022) and one nobody let docagent read; what the
scanner may and may not see; ready means watching; errors, refusals and a `kill -9` at error
priority; `kill -9` and a hung loop restarted; a restart mid-document loses nothing; the health
check fails its unit and alerts Telegram by itself when the daemon is down; the spool on an
overlay filesystem; uninstall, and purge.

A drop-in shortens RestartSec/WatchdogSec and arms the test-only hang switch. The tests share
one container and run in file order; each waits on states, never on fixed delays. Telegram is
the loopback Bot API (tests/botapi.py) on the host's 127.0.0.1, which the container shares.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import nspawn, pdfgen
from tests.botapi import BotApi
from tests.watch import until

pytestmark = [pytest.mark.systemd, pytest.mark.timeout(1200)]
REPO = Path(__file__).resolve().parents[1]
STATE = "/var/lib/docagent"
INCOMING = f"{STATE}/incoming"
HANG_FILE = f"{STATE}/.test-hang"
DROP_IN = f"""[Service]
RestartSec=1
WatchdogSec=6
Environment=DOCAGENT_TEST_HANG_FILE={HANG_FILE}
Environment=DOCAGENT_WORKERS=1
Environment=DOCAGENT_STABLE_SECONDS=0.5
Environment=DOCAGENT_RESCAN_SECONDS=2
"""
INSTALL = "PIP_NO_INDEX=1 PIP_FIND_LINKS=/root/wheels /payload/deploy/install.sh"
BOT_TOKEN = "4242:boot-test-token"
CHAT = -1001234567890
SCANNER = "scanner"  # a scan-to-folder account, in docagent-drop as the README says
STAFF = "reception"  # a person in the docagent group ("staff" is a Debian group)


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
    # Each test here runs a command in the container: one every 0.3 s is enough.
    until(test, timeout, what, interval=0.3)


class Box:
    """The booted container with docagent installed."""

    def __init__(self, container: nspawn.Container) -> None:
        self.c = container
        self.install_output = ""

    def sh(self, script: str, check: bool = True, timeout: float = 120.0) -> str:
        return self.c.run(["sh", "-c", script], check=check, timeout=timeout).stdout

    def run(self, script: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return self.c.run(["sh", "-c", script], check=False, timeout=timeout)

    def as_user(self, user: str, script: str) -> subprocess.CompletedProcess[str]:
        return self.c.run(["runuser", "-u", user, "--", "sh", "-c", script], check=False)

    def prop(self, unit: str, name: str) -> str:
        return self.sh(f"systemctl show -P {name} {unit}").strip()

    def main_pid(self) -> int:
        return int(self.prop("docagent", "MainPID"))

    def stage(self, pdf: Path, name: str) -> str:
        """Put a file where any account in the container may read it; returns its path."""
        folder = self.c.root / "srv/drop"
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        shutil.copyfile(pdf, folder / name)
        (folder / name).chmod(0o644)
        return f"/srv/drop/{name}"

    def drop(self, pdf: Path, name: str) -> None:
        """Copy into incoming the way a scanner share does: written aside, renamed in."""
        staged = self.stage(pdf, name)
        self.sh(f"install -o docagent -g docagent -m 0640 {staged} {INCOMING}/.{name} "
                f"&& mv {INCOMING}/.{name} {INCOMING}/{name}")

    def query(self, sql: str, *params: str) -> list[list[str]]:
        script = ("import sqlite3, json, sys; print(json.dumps(sqlite3.connect(sys.argv[1])"
                  ".execute(sys.argv[2], json.loads(sys.argv[3])).fetchall()))")
        out = self.c.run(["runuser", "-u", "docagent", "--", "python3", "-c", script,
                          f"{STATE}/state.db", sql, json.dumps(params)]).stdout
        return list(json.loads(out))

    def states(self) -> dict[str, str]:
        return dict(self.query("SELECT original_name, state FROM documents"))

    def path_of(self, name: str) -> str:
        [[path]] = self.query("SELECT path FROM documents WHERE original_name = ?", name)
        return f"{STATE}/{path}"

    def journal(self, *args: str) -> str:
        return self.sh("journalctl --no-pager -o cat " + " ".join(args), check=False)

    def set_env(self, **values: str) -> None:
        """Set values in docagent.env (replacing earlier ones), keeping its owner and mode."""
        env = self.c.root / "etc/docagent/docagent.env"
        lines = [line for line in env.read_text().splitlines()
                 if line.split("=", 1)[0] not in values]
        env.write_text("\n".join([*lines, *(f"{k}={v}" for k, v in values.items())]) + "\n")


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
            done = container.run(["sh", "-c", INSTALL], timeout=600)
            box.install_output = done.stdout + done.stderr
            # The README's first step, as an admin types it: from root's home, root's file.
            box.sh("install -m 0600 /payload/deploy/demo-patients.csv /root/patients.csv")
            box.sh("cd /root && docagent patients import patients.csv")
            box.sh(f"useradd --no-create-home --shell /bin/sh --groups docagent-drop {SCANNER}"
                   f" && useradd --no-create-home --shell /bin/sh --groups docagent {STAFF}")
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- journal ---\n{box.journal('-n 60', '-o short')}"
                                 ) from None
        yield box


@pytest.fixture(scope="module")
def botapi() -> Iterator[BotApi]:
    api = BotApi(BOT_TOKEN, {CHAT: "Cabinet"}).serve()
    yield api
    api.close()


def martin(tag: str) -> list[str]:
    """MARTIN Hélène's report, whom every test here files; `tag` makes each a file of its own."""
    return pdfgen.report("MARTIN", "Hélène", "03/04/1975", tag)


# --- the install and the admin's first steps ------------------------------------------------


def test_install_is_quiet_and_says_what_comes_next(box: Box) -> None:
    out = box.install_output
    lines = out.strip().splitlines()
    assert len(lines) <= 15, out  # apt and pip go to the install log, not the screen
    assert not any("Collecting" in line or "Successfully installed" in line for line in lines)
    assert "docagent patients import patients.csv" in lines[-3], out
    assert "/etc/docagent/telegram-token" in lines[-2], out
    assert "docagent health" in lines[-1], out
    assert box.sh("stat -c '%U %a' /var/log/docagent-install.log").split() == ["root", "600"]
    assert "Successfully installed" in box.sh("cat /var/log/docagent-install.log")


def test_install_leaves_a_running_ready_service(box: Box) -> None:
    assert box.prop("docagent", "ActiveState") == "active"
    assert box.prop("docagent", "SubState") == "running"
    assert box.prop("docagent", "Type") == "notify"
    assert box.prop("docagent", "User") == "docagent"
    assert box.prop("docagent-health.timer", "ActiveState") == "active"
    assert box.sh("systemctl is-enabled docagent docagent-health.timer").split() == [
        "enabled", "enabled"]
    assert box.sh(f"stat -c %U /proc/{box.main_pid()}").strip() == "docagent"
    assert "watching /var/lib/docagent/incoming" in box.prop("docagent", "StatusText")
    # The unit as systemd loaded it (drop-ins included) keeps its hardening score.
    rating = box.sh("systemd-analyze security --no-pager docagent.service | tail -1")
    assert float(re.search(r"exposure level for docagent.service: (\d+\.\d)", rating)[1]) <= 1.5


def modes(box: Box, *paths: str) -> list[str]:
    return box.sh("stat -c '%U:%G %a' " + " ".join(paths)).splitlines()


def test_everything_is_docagents_but_the_drop_folder_and_the_token(box: Box) -> None:
    assert modes(box, STATE, INCOMING) == ["docagent:docagent 751", "docagent:docagent-drop 3770"]
    folders = [f"{STATE}/{name}" for name in ("processing", "done", "review", "failed")]
    assert modes(box, *folders, "/var/log/docagent") == ["docagent:docagent 750"] * 5
    assert modes(box, "/etc/docagent", "/etc/docagent/docagent.env",
                 "/etc/docagent/telegram-token", "/etc/docagent/mail-password") == [
        "root:docagent 750", "docagent:docagent 600", "root:root 600", "root:root 600"]
    assert modes(box, f"{STATE}/state.db") == ["docagent:docagent 640"]
    assert "docagent-drop" in box.sh("id -nG docagent").split()
    # The import ran as root from /root and left nothing of root's in the spool or the logs.
    assert box.sh(f"find {STATE} /var/log/docagent ! -user docagent").strip() == ""


def test_the_admin_command_reads_roots_files_and_tells_others_what_to_do(
        box: Box, tmp_path: Path) -> None:
    again = box.run("cd /root && docagent patients import patients.csv")
    # As installed, docagent speaks the practice's French by default.
    assert again.returncode == 0 and "6 inchangés" in again.stdout, again.stderr
    pdfgen.text_pdf([martin("from root's home")], box.c.root / "root/letter.pdf")
    box.sh("chmod 600 /root/letter.pdf")
    process = box.run("cd /root && docagent process --json letter.pdf")
    assert process.returncode == 0, process.stderr
    outcome = json.loads(process.stdout)
    assert outcome["outcome"] == "filed", outcome
    assert box.sh(f"stat -c '%U %a' '{STATE}/{outcome['path']}'").split() == ["docagent", "640"]
    staff = box.as_user(STAFF, "cd / && docagent health")
    assert staff.returncode == 2 and "Traceback" not in staff.stderr, staff.stderr
    assert staff.stderr.strip().splitlines() == [
        f"docagent: /etc/docagent/docagent.env: permission denied to {STAFF}: run it as root: "
        "sudo docagent health"]


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
    # StateDirectory= sets the mode of the home only: the drop folder keeps its group and mode.
    assert modes(box, STATE, INCOMING) == ["docagent:docagent 751", "docagent:docagent-drop 3770"]


def test_reinstall_keeps_settings_and_is_idempotent(box: Box) -> None:
    box.sh("echo '# local change' >> /etc/docagent/docagent.env")
    box.sh(INSTALL, timeout=600)
    assert "# local change" in box.sh("cat /etc/docagent/docagent.env")
    assert box.prop("docagent", "ActiveState") == "active"
    assert modes(box, INCOMING, "/etc/docagent/telegram-token") == [
        "docagent:docagent-drop 3770", "root:root 600"]
    # A failing step shows the end of the install log, not a wall of pip output.
    failed = box.run("PIP_NO_INDEX=1 /payload/deploy/install.sh", timeout=300)
    assert failed.returncode == 1
    assert "the last lines of /var/log/docagent-install.log" in failed.stderr, failed.stderr
    assert len(failed.stderr.splitlines()) <= 35
    assert box.prop("docagent", "ActiveState") == "active"  # the running install is untouched


# --- files dropped by people ------------------------------------------------------------------


def test_dropped_pdf_is_filed_and_journaled(box: Box, tmp_path: Path) -> None:
    pdf = pdfgen.text_pdf([martin("boot-1")], tmp_path / "bilan.pdf")
    box.drop(pdf, "bilan.pdf")
    wait_for("filing", lambda: box.states().get("bilan.pdf") == "filed")
    assert box.sh(f"ls {STATE}/done/P0002/*bilan*.pdf").split() == [
        f"{STATE}/done/P0002/2026-11-05_lab-result_bilan.pdf"]
    wait_for("the journal line", lambda: "filed" in box.journal("-u docagent", "-g bilan"))


def test_the_service_reads_a_0640_file_of_the_drop_group_under_private_users(
        box: Box, tmp_path: Path) -> None:
    # PrivateUsers=yes maps only root and docagent into the service's user namespace: the
    # docagent-drop group shows there as nogroup, yet stays in the kernel's credential.
    box.sh("install -d -o docagent -g docagent-drop -m 3770 /srv/check")
    staged = box.stage(pdfgen.text_pdf([martin("userns")], tmp_path / "u.pdf"), "u.pdf")
    box.sh(f"runuser -u {SCANNER} -- sh -c 'umask 027 && cp {staged} /srv/check/'"
           " && install -m 0640 -g root /srv/drop/u.pdf /srv/check/root-group.pdf")
    probe = "systemd-run --quiet --wait --pipe -p User=docagent -p PrivateUsers=yes sh -c"
    inside = box.run(f"{probe} 'id -G; sha256sum /srv/check/u.pdf'")
    expected = hashlib.sha256((tmp_path / "u.pdf").read_bytes()).hexdigest()
    assert inside.returncode == 0 and expected in inside.stdout, inside
    assert "65534" in inside.stdout.splitlines()[0]  # docagent-drop, unmapped, yet it works
    refused = box.run(f"{probe} 'cat /srv/check/root-group.pdf'")  # the check can fail
    assert refused.returncode != 0 and "Permission denied" in refused.stderr, refused


def test_files_dropped_by_root_and_by_a_scanner_are_filed_as_docagents(
        box: Box, tmp_path: Path) -> None:
    sources = {name: box.stage(pdfgen.text_pdf([martin(name)], tmp_path / name), name)
               for name in ("root-cp.pdf", "scanner.pdf", "scanner-0640.pdf")}
    box.sh("install -d -m 1777 /srv/signal")
    # The scanner writes through a descriptor it keeps, and writes again once the document is
    # filed: the archive must not change (it is docagent's own copy, not the dropper's inode).
    box.sh(f"systemd-run --quiet --unit=scanner-holds -p User={SCANNER} -p UMask=0022 sh -c "
           f"'exec 3>{INCOMING}/scanner.pdf; cat {sources['scanner.pdf']} >&3; "
           "while [ ! -e /srv/signal/go ]; do sleep 0.2; done; "
           "printf tampered >&3; echo written > /srv/signal/tampered'")
    box.sh(f"umask 022 && cp {sources['root-cp.pdf']} {INCOMING}/")
    box.sh(f"runuser -u {SCANNER} -- sh -c "
           f"'umask 027 && cp {sources['scanner-0640.pdf']} {INCOMING}/'")
    # Taken in at all means read: the 0640 one only through the docagent-drop group.
    wait_for("all three taken in", lambda: set(sources) <= box.states().keys(), timeout=30)
    wait_for("all three filed", lambda: all(box.states().get(n) == "filed" for n in sources),
             timeout=60)
    box.sh("touch /srv/signal/go")
    wait_for("the scanner's late write", lambda: box.run(
        "test -e /srv/signal/tampered").returncode == 0, timeout=30)
    for name in sources:
        path = box.path_of(name)
        assert path.startswith(f"{STATE}/done/P0002/"), path
        assert box.sh(f"stat -c '%U %a' '{path}'").split() == ["docagent", "640"], name
        original = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        assert box.sh(f"sha256sum '{path}'").split()[0] == original, name
        tamper = box.as_user(SCANNER, f"echo tampered >> '{path}'")
        assert tamper.returncode != 0 and "Permission denied" in tamper.stderr, name
    assert box.sh(f"ls -A {INCOMING}").strip() == ""


def test_a_file_docagent_may_not_read_is_failed_once_and_named(box: Box, tmp_path: Path) -> None:
    src = box.stage(pdfgen.text_pdf([martin("secret")], tmp_path / "secret.pdf"), "secret.pdf")
    box.sh(f"install -m 600 {src} {INCOMING}/secret.pdf")

    def listed() -> list[dict[str, str]]:
        out = box.sh("docagent failed list --json", check=False)
        return [d for d in map(json.loads, out.splitlines()) if d["file"] == "secret.pdf"]

    try:
        wait_for("the no-access verdict", lambda: bool(listed()), timeout=60)
        [entry] = listed()
        assert entry["reason_kind"] == "no-access", entry
        wait_for("an error line naming it", lambda: "secret.pdf" in box.journal(
            "-u docagent", "-p err"), timeout=30)
        assert box.sh(f"test -e {INCOMING}/secret.pdf && echo kept").strip() == "kept"
    finally:
        box.sh(f"rm -f {INCOMING}/secret.pdf")


def test_the_scanner_may_drop_and_sees_nothing_else(box: Box) -> None:
    sidecar = box.path_of("bilan.pdf").removesuffix(".pdf") + ".json"
    for path in (f"{STATE}/state.db", "/etc/docagent/telegram-token", sidecar,
                 "/etc/docagent/docagent.env", "/var/log/docagent/docagent.log"):
        read = box.as_user(SCANNER, f"cat '{path}'")
        assert read.returncode != 0 and "Permission denied" in read.stderr, path
    for folder in (STATE, f"{STATE}/done", f"{STATE}/review", f"{STATE}/failed"):
        listing = box.as_user(SCANNER, f"ls '{folder}'")
        assert listing.returncode != 0 and "Permission denied" in listing.stderr, folder
    write = box.as_user(SCANNER, f"echo x > {INCOMING}/.probe && rm {INCOMING}/.probe")
    assert write.returncode == 0, write.stderr


# --- errors, kills and restarts -----------------------------------------------------------


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


def test_a_configuration_error_at_start_is_at_error_priority(box: Box) -> None:
    box.sh("chmod 640 /etc/docagent/docagent.env")
    try:
        assert box.run("systemctl restart docagent").returncode != 0
        wait_for("the refusal in the journal", lambda: "chmod 600 /etc/docagent/docagent.env"
                 in box.journal("-u docagent", "-p err", "--since=-1min"), timeout=30)
    finally:
        box.sh("chmod 600 /etc/docagent/docagent.env && systemctl reset-failed docagent "
               "&& systemctl restart docagent")
    assert box.prop("docagent", "ActiveState") == "active"


def test_kill_9_is_restarted_counted_and_said_at_error_priority(box: Box) -> None:
    before, restarts = box.main_pid(), int(box.prop("docagent", "NRestarts"))
    box.sh(f"kill -9 {before}")
    wait_for("a new main process", lambda: box.main_pid() not in (0, before)
             and box.prop("docagent", "ActiveState") == "active")
    assert int(box.prop("docagent", "NRestarts")) == restarts + 1
    wait_for("the new run to say it at error priority", lambda: "the previous run ended "
             "without a clean stop (killed or crashed)" in box.journal(
                 "-u docagent", "-p err", f"_PID={box.main_pid()}"), timeout=30)


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
    pages = [pdfgen.render_page(martin(f"page {n}"), dpi=200) for n in range(4)]
    pdf = pdfgen.image_pdf(pages, tmp_path / "scan.pdf", dpi=200)
    box.drop(pdf, "scan.pdf")
    wait_for("OCR to start", lambda: box.states().get("scan.pdf") == "processing")
    box.sh("systemctl restart docagent", timeout=300)
    wait_for("filing after the restart", lambda: box.states().get("scan.pdf") == "filed",
             timeout=300)
    [[doc_id]] = box.query("SELECT id FROM documents WHERE original_name = 'scan.pdf'")
    assert box.sh(f"ls -A {INCOMING} {STATE}/processing").split() == [
        f"{INCOMING}:", f"{STATE}/processing:"]
    assert box.sh(f"ls {STATE}/failed/*.pdf").split() == [f"{STATE}/failed/broken.pdf"]
    assert doc_id not in box.journal("-u docagent", "-p err")


# --- health -------------------------------------------------------------------------------


def test_health_passes_by_hand(box: Box) -> None:
    out = json.loads(box.sh("docagent health --json", check=False))
    failing = {c["name"]: c["detail"] for c in out["checks"] if not c["ok"]}
    assert failing == {}
    assert {c["name"] for c in out["checks"]} >= {
        "daemon", "watcher", "tesseract", "poppler", "database", "disk", "incoming",
        "failures", "outbox", "telegram"}
    assert not any(name.startswith(".") for name in box.states())  # no canary taken in


def test_the_daemon_down_fails_the_health_unit_and_alerts_telegram(
        box: Box, botapi: BotApi) -> None:
    box.sh(f"echo '{BOT_TOKEN}' > /etc/docagent/telegram-token")
    box.set_env(TELEGRAM_API_BASE_URL=botapi.base_url, TELEGRAM_CHAT_IDS=str(CHAT))
    box.sh("systemctl stop docagent")
    try:
        started = box.run("systemctl start docagent-health.service")
        assert started.returncode != 0  # the oneshot failed: unhealthy
        assert box.prop("docagent-health.service", "Result") == "exit-code"
        assert "docagent-health.service" in box.sh("systemctl --failed --no-legend")
        run = box.prop("docagent-health.service", "InvocationID")
        errors = box.journal(f"_SYSTEMD_INVOCATION_ID={run}", "-p err")
        assert re.search(r"^ÉCHEC +daemon", errors, re.M), errors  # installed: French
        wait_for("the alert at the Bot API", lambda: any(
            "daemon" in (m.text or "") for m in botapi.sent(CHAT)), timeout=60)
    finally:
        box.sh("systemctl reset-failed docagent-health.service; systemctl start docagent")
    assert BOT_TOKEN not in box.journal("-u docagent-health.service", "-u docagent")


def test_timer_runs_the_health_check(box: Box, botapi: BotApi) -> None:
    timer = box.c.root / "etc/systemd/system/docagent-health.timer.d"
    timer.mkdir(parents=True)
    (timer / "test.conf").write_text("[Timer]\nOnCalendar=\nOnCalendar=*:*:0/5\n"
                                     "RandomizedDelaySec=0\nAccuracySec=1s\n")
    # The hardened health unit must still be able to ask systemd about the allowlisted units,
    # receive the token through LoadCredential= and reach the Bot API over IP.
    box.sh(f"echo '{BOT_TOKEN}' > /etc/docagent/telegram-token")
    box.set_env(DOCAGENT_HEALTH_UNITS="dbus.service systemd-journald.service",
                TELEGRAM_API_BASE_URL=botapi.base_url, TELEGRAM_CHAT_IDS=str(CHAT))
    before = box.prop("docagent-health.service", "InvocationID")
    box.sh("systemctl daemon-reload && systemctl restart docagent-health.timer")

    def ended() -> bool:
        return box.prop("docagent-health.service", "InvocationID") != before and box.prop(
            "docagent-health.service", "ActiveState") in ("inactive", "failed")

    wait_for("a run of the health service started by the timer, to its end", ended, 60)
    run = box.prop("docagent-health.service", "InvocationID")
    result = box.prop("docagent-health.service", "Result")
    out = box.journal(f"_SYSTEMD_INVOCATION_ID={run}")
    assert result == "success", out
    assert re.search(r"^ok +daemon", out, re.M) and re.search(r"^ok +watcher", out, re.M), out
    assert re.search(r"^ok +unit dbus.service", out, re.M), out
    assert re.search(r"^ok +unit systemd-journald.service", out, re.M), out
    assert re.search(r"^ok +telegram +\S.* @docagent_test_bot\b", out, re.M), out
    assert BOT_TOKEN not in box.journal("-u docagent-health.service", "-u docagent")
    box.sh("rm -r /etc/systemd/system/docagent-health.timer.d && systemctl daemon-reload "
           "&& systemctl restart docagent-health.timer")


def test_health_finds_the_daemon_with_the_spool_on_an_overlay(box: Box) -> None:
    # On overlayfs /proc/locks names the upper layer's device, stat() the overlay's.
    box.sh("systemctl stop docagent && mkdir -p /run/ovl && mount -t tmpfs tmpfs /run/ovl "
           "&& mkdir /run/ovl/upper /run/ovl/work && mount -t overlay overlay -o "
           f"lowerdir={STATE},upperdir=/run/ovl/upper,workdir=/run/ovl/work {STATE} "
           "&& systemctl start docagent")
    try:
        assert box.sh(f"stat -f -c %T {STATE}").strip() == "overlayfs"
        out = json.loads(box.sh("docagent health --json", check=False))
        daemon = next(c for c in out["checks"] if c["name"] == "daemon")
        assert daemon["ok"] and "en marche" in daemon["detail"], daemon  # installed: French
    finally:
        box.sh(f"systemctl stop docagent; umount {STATE}; umount /run/ovl; "
               "systemctl start docagent")


# --- taking it away -----------------------------------------------------------------------


def test_uninstall_keeps_the_data(box: Box) -> None:
    box.sh("/payload/deploy/uninstall.sh")
    assert box.sh("systemctl is-active docagent", check=False).strip() in ("inactive", "unknown")
    assert int(box.sh(f"ls {STATE}/done/P0002/*.pdf | wc -l")) >= 2
    assert box.sh("test -e /etc/docagent/docagent.env && test ! -e /opt/docagent && echo kept"
                  ).strip() == "kept"


def test_purge_asks_says_what_it_deletes_and_removes_what_install_made(box: Box) -> None:
    documents = int(box.sh(f"find {STATE}/done {STATE}/review -name '*.pdf' | wc -l")) + int(
        box.sh(f"find {STATE}/failed -type f ! -name '*.reason.json' | wc -l"))
    refused = box.run("/payload/deploy/uninstall.sh --purge < /dev/null")
    assert refused.returncode == 2 and "--yes" in refused.stderr, refused.stderr
    assert box.sh(f"test -e {STATE}/state.db && echo kept").strip() == "kept"
    purged = box.run("/payload/deploy/uninstall.sh --purge --yes")
    assert purged.returncode == 0, purged.stderr
    assert f"{documents} document(s) in done/, review/ and failed/" in purged.stderr
    gone = ("/opt/docagent", "/etc/docagent", STATE, "/var/log/docagent",
            "/usr/local/bin/docagent", "/etc/systemd/system/docagent.service",
            "/etc/systemd/system/docagent-health.service",
            "/etc/systemd/system/docagent-health.timer")
    assert box.sh(f"ls -d {' '.join(gone)} 2>/dev/null", check=False).strip() == ""
    for name in ("docagent", "docagent-drop"):
        assert box.run(f"getent group {name}").returncode == 2, name
    assert box.run("getent passwd docagent").returncode == 2
