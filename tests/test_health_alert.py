"""`docagent health --notify` while the daemon is down: the alert reaches the staff anyway,
once, without racing a daemon that starts meanwhile; and a refused token is named where it
was read, so the admin knows which file to correct.

Against the loopback Bot API (tests/botapi.py) and real `docagent` processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent import config
from tests.botapi import BotApi, Sent
from tests.conftest import Spool
from tests.daemonproc import Running
from tests.telegram_helpers import (
    GROUP,
    botapi,
    drop_and_wait,
    filed_pdf,
    message_about,
    outbox,
    telegram_env,
    tg,
)

pytestmark = pytest.mark.daemon
__all__ = ["botapi", "tg"]  # fixtures


def alerts(api: BotApi) -> list[Sent]:
    return [m for m in api.sent(GROUP) if (m.text or "").startswith("docagent is unhealthy")]


def telegram_calls(spool: Spool) -> list[str]:
    path = spool.logs / "api_costs.jsonl"
    entries = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() \
        else []
    return [e["operation"] for e in entries if e["service"] == "telegram"]


def test_the_daemon_is_down_alert_reaches_the_staff_once(spool: Spool, botapi: BotApi, tg,
                                                        tmp_path: Path) -> None:
    code, journal = spool.run_journaled("health", "--notify", env=telegram_env(botapi))
    assert code == 1
    assert "<3>FAIL  daemon" in journal
    assert "<4>health alert sent to Telegram by this command (1 message(s))" in journal
    [alert] = alerts(botapi)
    assert "- daemon: no `docagent run` holds the lock" in (alert.text or "")
    assert [r["sent_at"] is not None for r in outbox(spool)] == [True]
    calls = telegram_calls(spool)
    assert calls.count("sendMessage") == 1 and "getMe" in calls  # in the ledger, as the daemon's

    # Nothing new to say: nothing sent.
    assert spool.run("health", "--notify", env=telegram_env(botapi)).returncode == 1
    assert len(alerts(botapi)) == 1

    # The daemon comes back: what it sends next goes out after the alert's row in the outbox's
    # order, so by the time that message arrives the alert would have gone again if it could.
    run = tg()
    doc = drop_and_wait(spool, filed_pdf(tmp_path, "after.pdf"), "filed", run)
    run.wait_for(lambda: message_about(botapi, doc), 60, "the filed message")
    assert len(alerts(botapi)) == 1
    assert run.stop() == 0


HOLDER = """
import sys, time
from pathlib import Path
from agent import config
from agent.daemon import exclusive
with exclusive(config.load(), hold=float(sys.argv[1])) as alone:
    print("held" if alone else "not held", flush=True)
    while not Path(sys.argv[2]).exists():
        time.sleep(0.05)
"""


def test_a_daemon_started_while_health_sends_waits_for_it(spool: Spool,
                                                          tmp_path: Path) -> None:
    """What `docagent health` does while it sends: hold the spool's lock, saying until when."""
    release = tmp_path / "release"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, "60", str(release)],
                              env=spool.env, cwd=spool.root, stdout=subprocess.PIPE, text=True)
    run = None
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        run = Running(spool, wait=False)
        run.wait_for(lambda: "waiting up to" in run.own_output(), 60,
                     "the daemon to wait for the lock")
        assert "watching" not in run.own_output()  # the lock is still held: not started
        release.touch()
        run.wait_started()
        assert "already running" not in run.own_output()
        assert holder.wait(timeout=60) == 0
    finally:
        release.touch()
        holder.wait(timeout=60)
        if run is not None:
            assert run.stop() == 0


def test_a_running_daemon_is_not_waited_for(spool: Spool, daemon) -> None:
    """A holder that declared nothing is a daemon: `docagent run` beside it refuses at once."""
    daemon()
    second = spool.run("run", timeout=60)
    assert second.returncode == 2 and "another docagent is already running" in second.stderr


# --- where the token came from, when Telegram refuses it --------------------------------------


def test_the_token_source_is_recorded(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "telegram-token").write_text("1:from-credential\n")
    (creds / "telegram-token").chmod(0o640)
    env_file = tmp_path / "docagent.env"
    env_file.write_text("TELEGRAM_BOT_TOKEN=1:from-file\n")
    env_file.chmod(0o600)

    def source(**env: str) -> str | None:
        return config.load(env, cwd=tmp_path).telegram_token_source

    assert source(TELEGRAM_BOT_TOKEN="1:x") == "TELEGRAM_BOT_TOKEN in the environment"
    assert source(DOCAGENT_ENV_FILE=str(env_file)) == f"TELEGRAM_BOT_TOKEN in {env_file}"
    from_credential = source(CREDENTIALS_DIRECTORY=str(creds))
    assert from_credential is not None and from_credential.startswith(
        f"the credential telegram-token ({creds}/telegram-token, a copy of "
        "/etc/docagent/telegram-token on an installed server)")
    assert source() is None


def test_a_refused_credential_token_is_named_as_the_credential(spool: Spool, botapi: BotApi,
                                                               tg, tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "telegram-token").write_text("7000000001:AAH-not_the_right_one\n")
    (creds / "telegram-token").chmod(0o640)
    env = telegram_env(botapi, TELEGRAM_BOT_TOKEN="", CREDENTIALS_DIRECTORY=str(creds))

    done = spool.run("health", "--notify", env=env)
    assert "alert not sent (Telegram refuses the bot token" in done.stdout, done.stdout
    assert "correct the credential telegram-token" in done.stdout
    assert "/etc/docagent/telegram-token" in done.stdout
    assert "TELEGRAM_BOT_TOKEN" not in done.stdout
    assert "not_the_right_one" not in done.stdout + done.stderr  # PTB's message quotes it
    assert [r["sent_at"] for r in outbox(spool)] == [None]  # it waits for the daemon

    run = tg(TELEGRAM_BOT_TOKEN="", CREDENTIALS_DIRECTORY=str(creds))
    run.wait_for(lambda: "Telegram refuses the bot token" in run.output(), 60, "the 401")
    [line] = [x for x in run.output().splitlines() if "Telegram refuses the bot token" in x]
    assert "correct the credential telegram-token" in line and "TELEGRAM_BOT_TOKEN" not in line
    assert run.stop() == 0
