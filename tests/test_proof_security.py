"""Security checks that run with the suite.

Already elsewhere: every SQL statement parameterized (test_quality), a `.env` readable by
others refused (test_config), the hardened unit's exposure (test_units). Here: bandit on agent/
with every medium or high finding explained where it is silenced, no secret in any log after a
DEBUG run, and a credential file readable by others refused.

The DEBUG run below also drives the Telegram sender and bot against a closed port (every call
fails and is retried), so the assertion covers their logging too, including the HTTP
library's request lines, which name the URL with the token in it.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests import figures, pdfgen
from tests.conftest import Spool
from tests.daemonproc import Running, drop, states
from tests.pdfgen import report

pytestmark = pytest.mark.proof
ROOT = Path(__file__).resolve().parent.parent
BANDIT = str(Path(sys.executable).with_name("bandit"))
NOSEC = re.compile(r"#\s*nosec\b(.*)$")
EXPLAINED = re.compile(r"^\s+B\d{3}(,\s*B\d{3})*:\s+\S.{5,}")
TOKEN = "987654321:AAFakeTokenNeverValid_abcdefghijklmnop"


def bandit(*extra: str) -> dict[str, object]:
    done = subprocess.run([BANDIT, "-r", "agent", "-ll", "-f", "json", "-q", *extra],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.stdout, done.stderr
    return dict(json.loads(done.stdout))


def test_bandit_finds_nothing_medium_or_high_left_unexplained() -> None:
    report_ = bandit()
    findings = [f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}"
                for r in report_["results"]]  # type: ignore[attr-defined]
    assert findings == [], "\n".join(findings)
    # Each silenced finding says which check it silences and why, on its own line.
    unexplained = []
    for path in sorted((ROOT / "agent").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            m = NOSEC.search(line)
            if m and not EXPLAINED.match(m.group(1)):
                unexplained.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert unexplained == [], "a nosec needs '# nosec BXXX: reason':\n" + "\n".join(unexplained)
    silenced = bandit("--ignore-nosec")["results"]
    figures.record("security", bandit_medium_high_unexplained=0,
                   bandit_explained_by_nosec=len(silenced))  # type: ignore[arg-type]


def test_the_bandit_check_does_catch_a_finding(tmp_path: Path) -> None:
    bad = tmp_path / "agent"
    bad.mkdir()
    (bad / "x.py").write_text("import subprocess\n\ndef f(cmd):\n"
                              "    return subprocess.call(cmd, shell=True)\n")
    done = subprocess.run([BANDIT, "-r", "agent", "-ll", "-f", "json", "-q"], cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    assert json.loads(done.stdout)["results"], done.stdout


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # free again once closed: connections are refused


@pytest.mark.daemon
def test_no_secret_in_any_log_after_a_debug_run(spool: Spool, tmp_path: Path) -> None:
    # A token and an API that refuses every connection: every call fails and is logged.
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_IDS": "42",
           "TELEGRAM_ALLOWED_USER_IDS": "42",
           "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{closed_port()}",
           "DOCAGENT_LOG_LEVEL": "DEBUG", "DOCAGENT_DIGEST_HOUR": "0"}
    run = Running(spool, **env)
    for i, (last, first, birth) in enumerate([("MARTIN", "Hélène", "03/04/1975"),
                                              ("NOBODY", "Zoé", "01/01/2001")]):
        pdf = pdfgen.text_pdf([report(last, first, birth)], tmp_path / f"s{i}.pdf")
        drop(pdf, spool.home / "incoming")
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"GIF89a not a pdf" * 20)
    drop(bad, spool.home / "incoming")
    spool.run("health", "--notify", env=env)
    run.wait_for(lambda: len(states(spool)) == 3
                 and all(s in ("filed", "review", "failed") for s in states(spool).values()),
                 60, "the documents")
    assert run.stop() == 0
    # Everything a person or a log shipper could read: logs, ledger, audit, daemon output.
    secret = TOKEN.split(":", 1)[1]
    looked = []
    for path in [*spool.logs.rglob("*"), spool.root / "daemon.out"]:
        if path.is_file():
            looked.append(path.name)
            text = path.read_text(errors="replace")
            assert secret not in text, f"the bot token is written in {path}"
    assert "docagent.log" in looked and "daemon.out" in looked
    log = (spool.logs / "docagent.log").read_text()
    assert " DEBUG " in log  # it was a DEBUG run
    figures.record("security", secret_in_logs_after_debug_run=0, log_files_checked=len(looked))


def test_a_credential_readable_by_others_is_refused(spool: Spool, tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    token = creds / "telegram-token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o644)
    done = spool.run("status", env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert done.returncode == 2 and "chmod 640" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and TOKEN not in done.stderr
    token.chmod(0o640)  # root:docagent 0640 is how the install hands it to the service
    assert spool.run("status", env={"CREDENTIALS_DIRECTORY": str(creds)}).returncode == 0
