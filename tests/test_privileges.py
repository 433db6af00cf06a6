"""The `docagent` command run by real users: root acting for the service user, and staff.

Root (the admin, through `sudo docagent`) reads its input files and the root-only token as
itself, then works on the spool as the service user: everything it creates belongs to that
user. Anyone else meets a permission problem as one line naming the path and the fix, exit 2,
never a traceback. Every user here is made with `useradd` and removed afterwards.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import pdfgen, uids
from tests.botapi import BotApi
from tests.conftest import DOCAGENT, PATIENTS_CSV

TOKEN = "4242:privileges-test-token"


@dataclass
class Users:
    service: str  # owns the spool, like `docagent`
    staff: str  # a person in the service's group, like office staff in group `docagent`

    def ids(self, name: str) -> tuple[int, int]:
        entry = pwd.getpwnam(name)
        return entry.pw_uid, entry.pw_gid

    def account(self, name: str) -> uids.Account:
        return uids.Account(name, *self.ids(name))


@pytest.fixture(scope="module")
def users() -> Iterator[Users]:
    uids.require()
    with uids.user("dagsvc") as service, \
            uids.user("dagstf", groups=[service.name], login_shell="/bin/sh",
                      system=False) as staff:
        yield Users(service.name, staff.name)


@dataclass
class Site:
    """An installed layout in miniature: a spool and logs owned by the service user, settings
    in a folder root and the service group share, root's own folder for the admin's files."""

    root: Path
    users: Users

    @property
    def home(self) -> Path:
        return self.root / "lib"

    @property
    def logs(self) -> Path:
        return self.root / "log"

    @property
    def conf(self) -> Path:
        return self.root / "etc"

    @property
    def admin(self) -> Path:
        return self.root / "root"  # like /root: 0700, root's

    def env(self, **extra: str) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
               "DOCAGENT_HOME": str(self.home),
               "DOCAGENT_LOG_DIR": str(self.logs), "CONFIGURATION_DIRECTORY": str(self.conf),
               "DOCAGENT_SERVICE_USER": self.users.service, "DOCAGENT_WORKERS": "1",
               "DOCAGENT_LANG": "en"}  # the suite reads English (tests/conftest.py)
        return {**env, **extra}

    def docagent(self, *args: str, user: str | None = None, cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """The command as the installed wrapper runs it, as root or as `user`."""
        account = None if user is None else self.users.account(user)
        argv = uids.command(account, [DOCAGENT, *args])
        return subprocess.run(argv, env=env or self.env(), cwd=cwd or self.admin,
                              capture_output=True, text=True, timeout=300, check=False)

    def owners(self) -> set[str]:
        """Every owner of a file or folder docagent created or touched."""
        found = set()
        for base in (self.home, self.logs):
            for path in [base, *base.rglob("*")]:
                found.add(pwd.getpwuid(path.lstat().st_uid).pw_name)
        return found


@pytest.fixture
def site(users: Users) -> Iterator[Site]:
    root = Path(tempfile.mkdtemp(prefix="docagent-site-", dir="/tmp"))
    root.chmod(0o755)
    s = Site(root, users)
    uid, gid = users.ids(users.service)
    for folder, mode in ((s.home, 0o750), (s.logs, 0o750)):
        folder.mkdir(mode=mode)
        os.chown(folder, uid, gid)
    s.conf.mkdir(mode=0o750)
    os.chown(s.conf, 0, gid)
    env_file = s.conf / "docagent.env"
    env_file.write_text("DOCAGENT_OCR_LANGS=fra+eng\n")
    env_file.chmod(0o600)
    os.chown(env_file, uid, gid)
    s.admin.mkdir(mode=0o700)
    (s.admin / "patients.csv").write_text(PATIENTS_CSV, encoding="utf-8")
    (s.admin / "patients.csv").chmod(0o600)
    try:
        yield s
    finally:
        shutil.rmtree(root, ignore_errors=True)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a refusal (exit 2), with no traceback."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


# --- root, acting for the service user ----------------------------------------------------


def test_root_imports_a_csv_only_root_can_read(site: Site) -> None:
    done = site.docagent("patients", "import", "patients.csv")
    assert done.returncode == 0, done.stderr
    assert "7 added" in done.stdout
    # The database, the log, the lock: all the service user's, none root's.
    assert site.owners() == {site.users.service}
    assert (site.home / "state.db").exists()


def test_root_processes_a_pdf_only_root_can_read(site: Site) -> None:
    site.docagent("patients", "import", "patients.csv")
    pdf = pdfgen.text_pdf([pdfgen.report("DUPONT", "Jean", "12/03/1961")],
                          site.admin / "bilan.pdf")
    pdf.chmod(0o600)
    done = site.docagent("process", "--json", "bilan.pdf")
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["outcome"] == "filed" and outcome["patient_id"] == "P001"
    filed = site.home / outcome["path"]
    assert filed.read_bytes() == pdf.read_bytes()
    assert site.owners() == {site.users.service}
    assert pdf.exists()  # the original is never touched


def test_root_refuses_a_symlink_and_a_fifo_as_input(site: Site) -> None:
    (site.admin / "link.pdf").symlink_to("/etc/hostname")
    os.mkfifo(site.admin / "pipe.pdf")
    assert "symbolic link" in one_line(site.docagent("process", "link.pdf"))
    assert "not a regular file" in one_line(site.docagent("process", "pipe.pdf"))


def test_root_hands_the_root_only_token_to_health(site: Site) -> None:
    token = site.conf / "telegram-token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)  # root:root, as install.sh leaves it
    api = BotApi(TOKEN).serve()
    try:
        done = site.docagent("health", "--json",
                             env=site.env(TELEGRAM_API_BASE_URL=api.base_url))
        checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
        assert checks["telegram"]["ok"], checks["telegram"]
        assert "docagent_test_bot" in checks["telegram"]["detail"]
        assert [c[0] for c in api.calls].count("getMe") >= 1
    finally:
        api.close()
    assert TOKEN not in (site.logs / "docagent.log").read_text()
    assert site.owners() == {site.users.service}


def test_root_without_the_service_user_says_so(site: Site) -> None:
    line = one_line(site.docagent("status", env=site.env(DOCAGENT_SERVICE_USER="nosuchuser9")))
    assert "nosuchuser9" in line and "not a user" in line


# --- anyone else: one line, the path, the fix ---------------------------------------------


def test_staff_cannot_read_the_settings(site: Site) -> None:
    line = one_line(site.docagent("health", user=site.users.staff, cwd=site.root))
    assert str(site.conf / "docagent.env") in line
    assert f"permission denied to {site.users.staff}" in line
    assert line.endswith("run it as root: sudo docagent health")


def test_staff_in_a_folder_closed_to_them(site: Site) -> None:
    env = site.env()
    del env["CONFIGURATION_DIRECTORY"]  # so ./.env is looked for in the working folder
    line = one_line(site.docagent("status", user=site.users.staff, env=env))
    assert f"the current folder {site.admin} is closed to {site.users.staff}" in line
    assert "sudo docagent status" in line


def test_staff_cannot_write_the_database(site: Site) -> None:
    site.docagent("patients", "import", "patients.csv")
    (site.home / "state.db").chmod(0o640)  # the service's own, as its umask leaves it
    # Settings and a log the staff may use, so that the database is what stops them.
    env = site.env(DOCAGENT_LOG_DIR=str(site.root / "stafflogs"))
    del env["CONFIGURATION_DIRECTORY"]
    csv = site.root / "more.csv"
    csv.write_text("id,last_name,first_name,birth_date\nP100,NOUVEAU,Paul,1990-01-01\n")
    csv.chmod(0o644)
    (site.root / "stafflogs").mkdir()
    os.chown(site.root / "stafflogs", *site.users.ids(site.users.staff))
    line = one_line(site.docagent("patients", "import", str(csv), user=site.users.staff,
                                  cwd=site.root, env=env))
    assert str(site.home / "state.db") in line and "sudo docagent patients import" in line


def test_staff_cannot_write_the_log(site: Site) -> None:
    site.docagent("patients", "import", "patients.csv")
    env = site.env()
    del env["CONFIGURATION_DIRECTORY"]
    line = one_line(site.docagent("status", user=site.users.staff, cwd=site.root, env=env))
    assert str(site.logs / "docagent.log") in line and "sudo docagent status" in line


def test_staff_cannot_read_the_input_file(site: Site) -> None:
    secret = site.root / "secret.pdf"
    secret.write_bytes(b"%PDF-1.4\n")
    secret.chmod(0o600)
    line = one_line(site.docagent("process", str(secret), user=site.users.staff,
                                  cwd=site.root))
    assert f"{secret}: permission denied to {site.users.staff}" in line
    assert line.endswith(f"sudo docagent process {secret}")


# --- the service user itself --------------------------------------------------------------


def test_daemon_refuses_to_start_on_a_database_taken_from_it(site: Site) -> None:
    site.docagent("patients", "import", "patients.csv")
    os.chown(site.home / "state.db", 0, 0)
    (site.home / "state.db").chmod(0o600)
    journal = site.root / "journal"
    with open(journal, "w") as stderr:
        info = os.fstat(stderr.fileno())
        env = site.env(JOURNAL_STREAM=f"{info.st_dev}:{info.st_ino}")
        done = subprocess.run(
            uids.command(site.users.account(site.users.service), [DOCAGENT, "run"]),
            env=env, cwd="/", stdout=subprocess.DEVNULL, stderr=stderr, timeout=120,
            check=False)
    text = journal.read_text()
    assert done.returncode == 2, text
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1, text
    assert text.startswith("<3>docagent: "), text  # journalctl -p err shows it
    assert str(site.home / "state.db") in text
    assert f"chown {site.users.service}: {site.home / 'state.db'}" in text
