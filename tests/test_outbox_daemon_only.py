"""Only the daemon sends the outbox: a command run from a shell writes its messages and leaves
them, whether or not that shell has the token.

Through a real daemon and the loopback Bot API (tests/botapi.py).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.botapi import BotApi
from tests.conftest import Spool
from tests.telegram_helpers import (
    GROUP,
    all_sent,
    botapi,
    drop_and_wait,
    filed_pdf,
    outbox,
    review_pdf,
    tg,
)

pytestmark = pytest.mark.daemon
__all__ = ["botapi", "tg"]  # fixtures


def test_a_decision_from_a_shell_without_the_token_loses_no_message(
        spool: Spool, botapi: BotApi, tg, tmp_path: Path) -> None:
    run = tg()  # the daemon holds the token; the shell below does not
    review = drop_and_wait(spool, review_pdf(tmp_path, "legrand.pdf"), "review", run)
    run.wait_for(lambda: all_sent(spool), 30, "the review request")
    botapi.outage("refuse")
    # The daemon's own message, pending while Telegram is away.
    filed = drop_and_wait(spool, filed_pdf(tmp_path, "martin.pdf", "#m"), "filed", run)

    done = spool.run("review", "resolve", review, "P006")  # the shell's environment: no token
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"filed {review} -> done/P006/")
    assert "wait" not in done.stderr  # a daemon runs: it sends them, nothing to say
    pending = [r for r in outbox(spool) if r["sent_at"] is None]
    # Left for the daemon: both messages, and the edit of the review request to say it is decided.
    assert sorted(r["kind"] for r in pending) == ["decided", "filed", "resolved"]
    assert "notification (" not in (spool.logs / "docagent.log").read_text()

    botapi.outage(None)
    run.wait_for(lambda: all_sent(spool), 120, "every message once Telegram is back")
    texts = [m.text or "" for m in botapi.sent(GROUP)]
    about = Counter(doc for doc in (review, filed) for text in texts if f"[{doc}]" in text)
    # The review request, the shell's decision, and the daemon's filed message: each once.
    assert about == {review: 2, filed: 1}, texts
    assert sum(t.startswith("Filed under LEGRAND Paul") and "by shell:" in t for t in texts) == 1
    assert len(texts) == 3
    assert run.stop() == 0


def test_without_a_daemon_a_command_says_its_messages_wait(spool: Spool,
                                                           tmp_path: Path) -> None:
    pdf = review_pdf(tmp_path, "legrand.pdf")
    [out] = spool.process_json(pdf)
    assert out["outcome"] == "review"
    assert [r["sent_at"] for r in outbox(spool)] == [None]  # not drained into the shell's log
    done = spool.run("review", "resolve", str(out["document_id"]), "--none", check=True)
    assert ("2 messages for the staff wait for the daemon, which is not running"
            in done.stderr), done.stderr
    # The two messages and the decision's edit of the first, all left for the daemon.
    assert [r["sent_at"] for r in outbox(spool)] == [None, None, None]
    french = spool.run("process", str(filed_pdf(tmp_path, "martin.pdf")),
                       env={"DOCAGENT_LANG": "fr"})
    assert ("3 messages pour l'équipe attendent le service, qui n'est pas en marche"
            in french.stderr), french.stderr
    log = spool.logs / "docagent.log"
    assert "notification (" not in log.read_text()

    # No Telegram anywhere: the daemon's log sender writes them when it runs.
    from tests.daemonproc import Running

    run = Running(spool)
    run.wait_for(lambda: all_sent(spool), 30, "the daemon to write them to its log")
    assert run.stop() == 0
    written = [line for line in log.read_text().splitlines() if "notification (" in line]
    assert [line.split("notification (")[1].split(")")[0] for line in written] == [
        "review", "resolved", "filed"]
