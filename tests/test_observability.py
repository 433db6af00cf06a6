"""Status at a glance, the daily digest and JSON log lines, on real documents."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

from agent import config
from agent.ledger import Ledger, Prices
from agent.notify.messages import render
from agent.ops import digest
from agent.store import Store
from tests import pdfgen
from tests.conftest import Spool
from tests.daemonproc import one_of_each
from tests.pdfgen import report


def test_status_at_a_glance_on_a_busy_install(spool: Spool, tmp_path: Path) -> None:
    ids = one_of_each(spool, tmp_path)
    (spool.home / "incoming" / "waiting.pdf").write_bytes(b"%PDF-1.4")
    status = json.loads(spool.run("status", "--json", check=True).stdout)
    assert status["outcomes"] == {k: {"today": 1, "total": 1}
                                  for k in ("filed", "review", "failed", "duplicate")}
    assert status["last_filed"]["document_id"] == ids["filed"]
    assert status["last_filed"]["patient_id"] == "P002"
    assert status["oldest_waiting"]["name"] == "waiting.pdf"
    assert status["oldest_waiting"]["where"] == "incoming"
    assert status["ocr_today"] == {"pages": 0, "median_seconds": None}  # text layers only
    # No daemon ran: the four messages wait in the outbox for it (only the daemon sends).
    assert status["outbox_pending"] == 4 and status["day"] == date.today().isoformat()
    human = spool.run("status", check=True).stdout
    assert max(len(line) for line in human.splitlines()) <= 40  # a phone's width
    rows = {line.split()[0]: line.split()[1:] for line in human.splitlines()[1:5]}
    assert rows == {k: ["1", "1"] for k in ("filed", "review", "failed", "duplicate")}
    assert "backlog" in human and ids["filed"][:8] in human


def _settings(spool: Spool, **extra: str) -> config.Settings:
    return config.load({**spool.env, **extra}, cwd=spool.root)


def test_digest_tells_yesterday_in_one_message(spool: Spool, tmp_path: Path) -> None:
    ids = one_of_each(spool, tmp_path)
    settings = _settings(spool, DOCAGENT_DIGEST_HOUR="7")
    Ledger(settings.log_dir, Prices(per_unit={("telegram", "message"): 0.25})).record(
        "telegram", "sendMessage", duration_ms=90, units={"message": 2})
    store = Store(settings.db_path)
    # The documents were handled today: a digest sent tomorrow morning tells of them.
    tomorrow_8am = (datetime.now() + timedelta(days=1)).replace(hour=8).astimezone()
    assert digest.enqueue_if_due(settings, store, tomorrow_8am)
    rows = store.read("SELECT kind, payload FROM outbox WHERE kind = 'digest'")
    assert len(rows) == 1
    payload = json.loads(rows[0]["payload"])
    assert payload["day"] == date.today().isoformat()
    assert payload["counts"] == {"filed": 1, "review": 1, "failed": 1, "duplicate": 1}
    assert payload["pending_review"] == 1
    assert payload["cost"]["total"] == 0.5
    text = render("digest", payload)
    assert f"Daily summary for {date.today().isoformat()}: 4 documents" in text
    assert "1 filed, 1 to decide, 1 failed, 1 duplicate." in text
    assert "Waiting for a decision: 1" in text
    failed = next(line for line in text.splitlines() if line.startswith("  - "))
    assert failed.startswith("  - broken.pdf: ") and failed.endswith("]")
    assert "[None]" not in failed and payload["failures"][0]["document_id"] == ids["failed"]
    assert "Cost: 0.50 EUR (telegram 0.50)." in text
    minimal = render("digest", payload, phi="minimal")
    assert "broken.pdf" not in minimal and f"document {ids['failed']}" in minimal


def test_digest_is_sent_once_a_day_even_across_restarts(spool: Spool) -> None:
    settings = _settings(spool, DOCAGENT_DIGEST_HOUR="9")
    morning = datetime.now().astimezone().replace(hour=8)
    assert not digest.enqueue_if_due(settings, Store(settings.db_path), morning)  # too early
    later = morning.replace(hour=9, minute=30)
    assert digest.enqueue_if_due(settings, Store(settings.db_path), later)
    # A restart is a new process with a new connection: only the database remembers.
    assert not digest.enqueue_if_due(settings, Store(settings.db_path), later.replace(hour=17))
    assert digest.enqueue_if_due(settings, Store(settings.db_path), later + timedelta(days=1))
    store = Store(settings.db_path)
    assert len(store.read("SELECT id FROM outbox WHERE kind = 'digest'")) == 2
    assert store.get_meta(digest.META_KEY) == (later + timedelta(days=1)).date().isoformat()
    assert not digest.enqueue_if_due(_settings(spool), store, later + timedelta(days=2))


def test_json_log_lines_carry_the_document_id_as_a_field(spool: Spool, tmp_path: Path) -> None:
    pdf = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975")], tmp_path / "j.pdf")
    done = spool.run("process", "--json", str(pdf), env={"DOCAGENT_LOG_FORMAT": "json"},
                     check=True)
    doc = json.loads(done.stdout)["document_id"]
    lines = [json.loads(x) for x in (spool.logs / "docagent.jsonl").read_text().splitlines()]
    mine = [x for x in lines if x["doc"] == doc]
    assert len(mine) >= 2 and all({"ts", "level", "logger", "message"} <= set(x) for x in mine)
    assert any("filed" in x["message"] for x in mine)
    assert spool.run("status", env={"DOCAGENT_LOG_FORMAT": "xml"}).returncode == 2
