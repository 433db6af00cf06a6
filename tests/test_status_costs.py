"""`docagent status` and `docagent costs` count the same OCR pages.

A document read twice (deferred at filing, then read anew) was OCR work done twice: the cost
ledger has a line per reading, and the documents table only the last reading's pages. Status
now reads its OCR figures from the ledger, like costs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent import config
from agent.ops import pipeline
from agent.spool import start as start_document
from agent.store import Store
from tests import pdfgen
from tests.conftest import Spool

pytestmark = pytest.mark.ocr


def test_a_page_read_twice_is_counted_twice_by_status_as_by_costs(spool: Spool,
                                                                  tmp_path: Path) -> None:
    scan = pdfgen.write_sample_scan(tmp_path / "scan.pdf")  # DUPONT Jean: files under P001
    blocker = spool.home / "done" / "P001"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the patient's folder goes\n")
    [first] = spool.process_json(scan)
    assert first["outcome"] == "deferred", first  # read by OCR, then filing failed

    blocker.unlink()
    settings = config.load(spool.env, cwd=spool.root)
    store = Store(settings.db_path)
    doc = start_document(store, str(first["document_id"]))  # its retry, now rather than in 30 s
    assert doc is not None
    assert pipeline.process(settings, store, doc).outcome == "filed"

    costs = json.loads(spool.run("costs", "--day", "today", "--json", check=True).stdout)
    status = json.loads(spool.run("status", "--json", check=True).stdout)
    assert costs["services"]["ocr"]["units"]["pages"] == 2  # one page, read twice
    assert status["ocr_today"]["pages"] == costs["services"]["ocr"]["units"]["pages"]
    assert status["ocr_today"]["median_seconds"] > 0
    table = spool.run("status", check=True).stdout
    assert "OCR today   2 pages" in table
