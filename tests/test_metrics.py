"""The running daemon's metrics, scraped over HTTP after a batch; its digest and OCR costs."""

from __future__ import annotations

import json
import signal
import socket
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import pdfgen
from tests.conftest import Spool
from tests.daemonproc import Running, drop
from tests.pdfgen import report

pytestmark = [pytest.mark.daemon, pytest.mark.ocr]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_after_a_batch(spool: Spool, daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    env = {"DOCAGENT_METRICS_ADDR": f"127.0.0.1:{port}", "DOCAGENT_DIGEST_HOUR": "0",
           "DOCAGENT_SERVER_EUR_PER_MONTH": "20", "DOCAGENT_MAX_PAGES": "1"}
    running: Running = daemon(**env)
    incoming = spool.home / "incoming"
    good = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975")], tmp_path / "good.pdf")
    drop(good, incoming)
    drop(pdfgen.text_pdf([report("NOBODY", "Alice", "01/01/1990")], tmp_path / "who.pdf"),
         incoming)
    two_pages = [report("MARTIN", "Hélène", "03/04/1975")] * 2
    drop(pdfgen.text_pdf(two_pages, tmp_path / "long.pdf"), incoming)  # over MAX_PAGES
    drop(pdfgen.write_sample_scan(tmp_path / "scan.pdf"), incoming)

    def status() -> dict[str, object]:
        return dict(json.loads(spool.run("status", "--json", check=True).stdout))

    running.wait_for(lambda: sum(status()[k] for k in ("filed", "review", "failed")) == 4,  # type: ignore[misc]
                     240, "the batch to be processed")
    drop(good, incoming, name="again.pdf")
    running.wait_for(lambda: status()["duplicate"] == 1, 60, "the duplicate")
    running.wait_for(lambda: status()["outbox_pending"] == 0, 60, "the outbox to drain")

    metrics = scrape(port)
    by_outcome = {dict(labels)["outcome"]: value for (name, labels), value in metrics.items()
                  if name == "docagent_documents_total"}
    assert by_outcome == {"filed": 2, "review": 1, "failed": 1, "duplicate": 1}, by_outcome
    assert metrics[("docagent_ocr_pages_total", ())] == 1
    assert metrics[("docagent_tesseract_failures_total", ())] == 0
    assert metrics[("docagent_queue_depth", ())] == 0
    assert metrics[("docagent_outbox_depth", ())] == 0
    assert metrics[("docagent_last_success_timestamp_seconds", ())] > 1.7e9
    counts = {dict(labels)["stage"]: value for (name, labels), value in metrics.items()
              if name == "docagent_stage_seconds_count"}
    # The long file stops at inspection; every document, failed or not, is filed somewhere.
    assert counts == {"inspect": 3, "text": 3, "parse": 3, "match": 3, "file": 4}, counts

    ocr_lines = [json.loads(x) for x in (spool.logs / "api_costs.jsonl").read_text().splitlines()
                 if '"ocr"' in x]
    assert len(ocr_lines) == 1 and ocr_lines[0]["units"]["pages"] == 1
    assert ocr_lines[0]["cpu_basis"] in ("cpu", "wall") and ocr_lines[0]["cost"] > 0
    assert status()["ocr_today"]["pages"] == 1  # type: ignore[index]
    costs = json.loads(spool.run("costs", "--day", "today", "--json", check=True).stdout)
    assert costs["services"]["ocr"]["calls"] == 1

    assert "Daily summary for" in running.output()
    assert running.stop(signal.SIGTERM) == 0
    again: Running = daemon(**env)
    # Both runs write to one output file: wait for the second "watching" line.
    again.wait_for(lambda: again.output().count("watching") == 2, 30, "the restart")
    again.wait_for(lambda: again.output().count("daily digest checked") >= 2, 30,
                   "the restarted daemon to look at the digest")
    assert again.stop(signal.SIGTERM) == 0
    assert again.output().count("Daily summary for") == 1  # not sent a second time
    assert spool.run("status", "--json", check=True).returncode == 0


def test_metrics_address_must_be_loopback(spool: Spool) -> None:
    for addr in ("0.0.0.0:9108", "192.168.1.10:9108", "localhost:http"):
        done = spool.run("status", env={"DOCAGENT_METRICS_ADDR": addr})
        assert done.returncode == 2 and "DOCAGENT_METRICS_ADDR" in done.stderr
    assert spool.run("status", env={"DOCAGENT_METRICS_ADDR": "[::1]:9108"}).returncode == 0
