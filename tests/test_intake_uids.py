"""Files dropped by another user: taken as docagent's own copy, never the dropper's inode.

Two real uids, as a server has them: a daemon user and a scanner account, both in a drop group
that may write incoming/ (made with useradd; root only). The daemon is the real `docagent run`
as the daemon user; the scanner's actions are shell commands run as the scanner.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.spool import Document
from tests import pdfgen, uids
from tests.conftest import DOCAGENT, PATIENTS_CSV, base_env
from tests.daemonproc import Running, documents

pytestmark = [pytest.mark.daemon, pytest.mark.proof,
              pytest.mark.skipif(uids.why_not() is not None, reason=str(uids.why_not()))]


@dataclass
class Site:
    """A spool laid out as install.sh lays it out, owned by the daemon user."""

    base: Path
    people: uids.Accounts
    env: dict[str, str]

    @property
    def root(self) -> Path:
        return self.base / "site"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def incoming(self) -> Path:
        return self.home / "incoming"

    def as_daemon(self, argv: list[str]) -> list[str]:
        return uids.command(self.people.daemon, argv)

    def docagent(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.as_daemon([DOCAGENT, *args]), capture_output=True, text=True,
                              env=self.env, cwd=self.root, timeout=300, check=False)

    def as_scanner(self, script: str, *, umask: int = 0o022,
                   wait: bool = True) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            uids.command(self.people.scanner, ["sh", "-c", script], umask=umask),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.base)
        if wait:
            proc.wait(timeout=60)
        return proc

    def row(self, name: str) -> Document | None:
        return documents(self.home).get(name)


@pytest.fixture(scope="module")
def people() -> Iterator[uids.Accounts]:
    with uids.accounts() as made:
        yield made


@pytest.fixture
def site(people: uids.Accounts) -> Iterator[Site]:
    base = Path(tempfile.mkdtemp(prefix="docagent-uids-", dir="/tmp"))
    base.chmod(0o755)
    root = base / "site"
    daemon = people.daemon
    root.mkdir()
    # As install.sh: the home may be crossed (not listed) on the way to incoming/, which the
    # drop group may write (setgid: files get the group; sticky: one dropper cannot remove
    # another's file); the rest is created by docagent itself, for docagent only.
    for folder, mode, gid in ((root, 0o751, daemon.gid), (root / "home", 0o751, daemon.gid),
                              (root / "home" / "incoming", 0o3770, people.drop_gid),
                              (root / "logs", 0o750, daemon.gid)):
        folder.mkdir(exist_ok=True)
        os.chown(folder, daemon.uid, gid)
        folder.chmod(mode)
    csv = base / "patients.csv"
    csv.write_text(PATIENTS_CSV, encoding="utf-8")
    csv.chmod(0o644)
    s = Site(base, people, base_env(root))
    done = s.docagent("patients", "import", str(csv))
    assert done.returncode == 0, done.stdout + done.stderr
    yield s
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def running(site: Site) -> Iterator[Running]:
    run = Running(site, command=site.as_daemon([DOCAGENT, "run"]), wait=False)
    run.wait_started(timeout=60)
    yield run
    if run.proc.poll() is None:
        try:
            run.stop()
        except subprocess.TimeoutExpired:
            run.stop(signal.SIGKILL)


def dupont(site: Site, name: str) -> Path:
    """A born-digital report for DUPONT Jean, readable by the scanner account."""
    pdf = pdfgen.text_pdf([pdfgen.report("DUPONT", "Jean", "12/03/1961", name)],
                          site.base / name)
    pdf.chmod(0o644)
    return pdf


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def filed(site: Site, name: str) -> Path | None:
    row = site.row(name)
    if row is None or row.state != "filed":
        return None
    return site.home / row.path


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["0644", "0640"])
def test_a_scanners_file_is_filed_as_docagents_own_copy(site, running, umask) -> None:
    """`link()` of another user's 0644 file is refused by fs.protected_hardlinks: a document
    taken in by linking would be deferred forever, so intake copies it."""
    pdf = dupont(site, "scan.pdf")
    dropper = site.as_scanner(f"cp {pdf} {site.incoming}/.scan.part && "
                              f"mv {site.incoming}/.scan.part {site.incoming}/scan.pdf",
                              umask=umask)
    assert dropper.returncode == 0, dropper.stdout.read() if dropper.stdout else ""
    running.wait_for(lambda: filed(site, "scan.pdf"), 90, "scan.pdf to be filed")
    archived = filed(site, "scan.pdf")
    assert archived is not None
    info = archived.stat()
    assert (info.st_uid, info.st_nlink, stat.S_IMODE(info.st_mode)) == \
        (site.people.daemon.uid, 1, 0o640)
    assert sha256(archived) == sha256(pdf) == site.row("scan.pdf").sha256
    assert not (site.incoming / "scan.pdf").exists()


def test_a_descriptor_kept_by_the_dropper_cannot_change_the_archive(site, running) -> None:
    """Were the archived file the dropper's inode, a descriptor opened before the drop could
    still write into done/ after filing."""
    pdf = dupont(site, "kept.pdf")
    go = site.base / "go"
    writer = site.as_scanner(
        f"exec 3>{site.incoming}/kept.pdf; cat {pdf} >&3; "
        f"while [ ! -e {go} ]; do sleep 0.1; done; "
        f"printf 'tampered after filing' >&3 && echo wrote", wait=False)
    try:
        running.wait_for(lambda: filed(site, "kept.pdf"), 90, "kept.pdf to be filed")
    finally:
        go.touch()
        writer.wait(timeout=30)
    said = writer.stdout.read() if writer.stdout else ""
    assert writer.returncode == 0 and "wrote" in said, said
    archived = filed(site, "kept.pdf")
    assert archived is not None
    assert sha256(archived) == sha256(pdf) == site.row("kept.pdf").sha256
    sidecar = json.loads(archived.with_suffix(".json").read_text(encoding="utf-8"))
    assert sidecar["sha256"] == sha256(archived)


def test_the_drop_account_reads_and_writes_nothing_docagent_keeps(site, running) -> None:
    """The account that drops files can read nothing docagent keeps (the token is the
    install's to protect) and cannot write over an archived PDF."""
    pdf = dupont(site, "seen.pdf")
    site.as_scanner(f"cp {pdf} {site.incoming}/seen.pdf")
    running.wait_for(lambda: filed(site, "seen.pdf"), 90, "seen.pdf to be filed")
    archived = filed(site, "seen.pdf")
    assert archived is not None
    attempts = {
        "the database": f"cat {site.home / 'state.db'} > /dev/null",
        "the filed PDF": f"cat '{archived}' > /dev/null",
        "the sidecar": f"cat '{archived.with_suffix('.json')}' > /dev/null",
        "the text": f"cat '{archived.with_suffix('.txt')}' > /dev/null",
        "the list of done/": f"ls {site.home / 'done'}",
        "the log": f"cat {site.root / 'logs' / 'docagent.log'} > /dev/null",
        "the audit": f"cat {site.root / 'logs' / 'audit.jsonl'} > /dev/null",
        "writing the archive": f"dd if=/dev/zero of='{archived}' bs=1 count=1 conv=notrunc",
    }
    for what, script in attempts.items():
        done = site.as_scanner(script)
        output = done.stdout.read() if done.stdout else ""
        assert done.returncode != 0 and "Permission denied" in output, (what, output)
    assert sha256(archived) == sha256(pdf)


def test_an_unreadable_file_fails_with_its_fix_once_then_files_when_readable(
        site, running) -> None:
    """A file docagent may not read must not be ignored silently forever."""
    pdf = dupont(site, "private.pdf")
    target = site.incoming / "private.pdf"
    shutil.copyfile(pdf, target)  # as root, private to root
    target.chmod(0o600)
    def error_lines() -> list[str]:
        return [line for line in running.output().splitlines()
                if " ERROR " in line and "private.pdf" in line]

    running.wait_for(lambda: (r := site.row("private.pdf")) is not None
                     and r.state == "failed" and bool(error_lines()), 90,
                     "private.pdf to be failed, and said at ERROR")
    row = site.row("private.pdf")
    assert row.reason_kind == "no-access"
    assert "owner root:" in row.reason and "mode 0600" in row.reason
    assert target.exists()  # its bytes could not be taken: it stays where it was dropped
    errors = error_lines()
    assert len(errors) == 1 and "chmod 644" in errors[0], errors
    listed = site.docagent("failed", "list", "--json")
    assert [json.loads(line)["reason_kind"] for line in listed.stdout.splitlines()] == \
        ["no-access"]
    retry = site.docagent("retry", row.id)
    assert retry.returncode == 2 and "taken by itself" in retry.stderr
    time.sleep(3)  # several rescans: still one record, one error line
    assert len(error_lines()) == 1
    target.chmod(0o644)
    running.wait_for(lambda: filed(site, "private.pdf"), 90,
                     "private.pdf to be filed once readable")
    with sqlite3.connect(site.home / "state.db") as db:
        kinds = db.execute("SELECT state, COUNT(*) FROM documents GROUP BY state").fetchall()
    assert kinds == [("filed", 1)]
