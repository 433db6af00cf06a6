"""The running daemon: the real watcher, half-written files, symlinks, and `kill -9`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests import pdfgen
from tests.conftest import DOCAGENT, Spool
from tests.daemonproc import drop, in_progress, states
from tests.pdfgen import report

pytestmark = pytest.mark.daemon


def test_dropped_file_is_filed_through_the_real_watcher(spool: Spool, daemon,
                                                       tmp_path: Path) -> None:
    run = daemon()
    pdf = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975")], tmp_path / "bilan.pdf")
    drop(pdf, spool.home / "incoming")
    run.wait_for(lambda: states(spool).get("bilan.pdf") == "filed", 30, "filing")
    assert [p.name for p in spool.files("done/P002") if p.suffix == ".pdf"] == [
        "2026-11-05_lab-result_bilan.pdf"]
    assert spool.files("incoming") == [] and spool.files("processing") == []
    run.wait_for(lambda: "notification (filed)" in run.output(), 15, "the notification")
    doc_id = json.loads(spool.run("status", "--json").stdout)
    assert doc_id["filed"] == 1
    assert run.stop() == 0


def test_half_written_file_is_waited_for_not_failed(spool: Spool, daemon, tmp_path: Path) -> None:
    run = daemon(DOCAGENT_STABLE_SECONDS="1")
    pdf = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975")], tmp_path / "slow.pdf")
    data = pdf.read_bytes()
    target = spool.home / "incoming" / "slow.pdf"
    with open(target, "wb") as handle:
        # Written in pieces over ~4 s, with pauses longer than the stability delay would
        # need if the PDF check were not there too.
        for i in range(0, len(data), len(data) // 4 + 1):
            handle.write(data[i:i + len(data) // 4 + 1])
            handle.flush()
            time.sleep(1.3)
            assert "slow.pdf" not in states(spool) or i + len(data) // 4 + 1 >= len(data)
    run.wait_for(lambda: states(spool).get("slow.pdf") == "filed", 30, "filing")
    assert spool.files("failed") == []


def test_never_completed_file_is_quarantined_as_incomplete(spool: Spool, daemon,
                                                          tmp_path: Path) -> None:
    run = daemon(DOCAGENT_INCOMPLETE_SECONDS="3")
    pdf = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975")], tmp_path / "t.pdf")
    (spool.home / "incoming" / "stuck.pdf").write_bytes(pdf.read_bytes()[:300])
    run.wait_for(lambda: states(spool).get("stuck.pdf") == "failed", 30, "quarantine")
    reason = json.loads((spool.home / "failed" / "stuck.pdf.reason.json").read_text())
    assert reason["kind"] == "incomplete"


def test_symlinks_and_temporary_names_are_left_alone(spool: Spool, daemon, tmp_path: Path) -> None:
    run = daemon()
    outside = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975")], tmp_path / "o.pdf")
    incoming = spool.home / "incoming"
    (incoming / "link.pdf").symlink_to(outside)
    (incoming / "scan.pdf.part").write_bytes(outside.read_bytes())
    (incoming / ".hidden.pdf").write_bytes(outside.read_bytes())
    real = pdfgen.text_pdf([report("DUPONT", "Jean", "12/03/1961")], tmp_path / "real.pdf")
    drop(real, incoming)
    run.wait_for(lambda: states(spool).get("real.pdf") == "filed", 30, "the real file")
    time.sleep(1.5)  # a rescan more
    assert set(states(spool)) == {"real.pdf"}
    assert (incoming / "link.pdf").is_symlink() and outside.exists()
    assert (incoming / "scan.pdf.part").exists() and (incoming / ".hidden.pdf").exists()
    assert "symlink" in run.output()


def test_polling_mode_for_network_shares(spool: Spool, daemon, tmp_path: Path) -> None:
    run = daemon(DOCAGENT_WATCH="polling")
    pdf = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975")], tmp_path / "p.pdf")
    drop(pdf, spool.home / "incoming")
    run.wait_for(lambda: states(spool).get("p.pdf") == "filed", 30, "filing")


def test_files_waiting_before_start_are_taken(spool: Spool, daemon, tmp_path: Path) -> None:
    incoming = spool.home / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        pdf = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975", f"#{i}")],
                              tmp_path / f"w{i}.pdf")
        drop(pdf, incoming)
    run = daemon()
    run.wait_for(lambda: sorted(states(spool).values()) == ["filed"] * 3, 60, "the backlog")


def test_second_daemon_on_the_same_spool_is_refused(spool: Spool, daemon) -> None:
    daemon()
    done = subprocess.run([DOCAGENT, "run"], env=spool.env, cwd=spool.root, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2 and "already running" in done.stderr


@pytest.mark.ocr
def test_kill_9_mid_batch_loses_nothing_and_files_nothing_twice(
        spool: Spool, daemon, tmp_path: Path) -> None:
    incoming = spool.home / "incoming"
    kinds = [("MARTIN", "Hélène", "03/04/1975"), ("DUPONT", "Jean", "12/03/1961"),
             ("NOBODY", "Zoé", "01/01/2001"), ("LEGRAND", "Paul", "01/01/1999")]
    batches: list[list[Path]] = []
    for b in range(3):
        batch = []
        # A scan first: OCR takes seconds, so the kill lands while it is in hand.
        batch.append(pdfgen.write_sample_scan(tmp_path / f"scan{b}.pdf", seed=b,
                                              birth="12/03/1961"))
        for i in range(8):
            last, first, birth = kinds[(b * 8 + i) % len(kinds)]
            batch.append(pdfgen.text_pdf([report(last, first, birth, f"lot {b}-{i}")],
                                         tmp_path / f"doc{b}{i}.pdf"))
        batches.append(batch)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"\xff\xd8\xff" + os.urandom(2000))
    dup = tmp_path / "doc00-copy.pdf"
    dup.write_bytes(batches[0][1].read_bytes())
    batches[-1] += [broken, dup]
    inputs = sorted(p.name for batch in batches for p in batch)

    # The same scan may be in hand at each of the three kills: keep the poison-pill limit
    # (tested on its own in test_recovery) out of this test's way.
    env = {"DOCAGENT_WORKERS": "2", "DOCAGENT_MAX_CRASHES": "10"}
    run = daemon(**env)
    kills_mid_document = 0
    for batch in batches:
        for s in batch:
            drop(s, incoming)
        run.wait_for(lambda: in_progress(spool) > 0, 30, "a document in hand")
        kills_mid_document += 1
        run.stop(signal.SIGKILL)
        run = daemon(**env)
    run.wait_for(lambda: not list(incoming.iterdir())
                 and all(s in ("filed", "review", "failed") for s in states(spool).values())
                 and len(states(spool)) == len(inputs) - 1, 180, "the batch to drain")
    assert run.stop() == 0
    assert kills_mid_document == 3
    # Each kill landed with a document in hand (claiming, processing or filing), and the next
    # start said what it finished or put back.
    assert run.output().count("recovery:") >= kills_mid_document, run.output()[-3000:]

    final = states(spool)
    # Every input is accounted for exactly once: one row each, or a duplicate receipt.
    with sqlite3.connect(spool.home / "state.db") as db:
        receipts = db.execute("SELECT original_name, kind FROM receipts").fetchall()
        placed = dict(db.execute("SELECT id, path FROM documents").fetchall())
        outbox = db.execute("SELECT document_id, kind, sent_at FROM outbox").fetchall()
    assert sorted(name for name, _ in receipts) == inputs
    # Same bytes twice: whichever copy was taken second is the duplicate (a kill can reorder
    # what the restarted daemon finds waiting in incoming/).
    pair = {"doc00.pdf", "doc00-copy.pdf"}
    duplicates = [name for name, kind in receipts if kind == "duplicate"]
    assert len(duplicates) == 1 and duplicates[0] in pair
    assert set(final) == set(inputs) - set(duplicates)
    assert final["broken.pdf"] == "failed"
    assert [final[f"scan{b}.pdf"] for b in range(3)] == ["filed"] * 3
    # The database agrees with the disk, and nothing is on disk twice.
    pdfs = [p for folder in ("done", "review", "failed") for p in spool.files(folder)
            if not p.name.endswith((".json", ".txt"))]
    assert len(pdfs) == len(final)
    for path in placed.values():
        assert (spool.home / path).is_file(), path
    assert spool.files("processing") == [] and spool.files("incoming") == []
    contents = [p.read_bytes() for p in pdfs]
    assert len(set(contents)) == len(contents)
    # One notification per outcome, all sent: the outbox row is written with the outcome.
    assert all(sent for _, _, sent in outbox)
    per_doc = [(d, k) for d, k, _ in outbox if k != "duplicate"]
    assert len(per_doc) == len(set(per_doc)) == len(final)


def test_a_whole_file_renamed_in_is_taken_without_the_stability_wait(
        spool: Spool, daemon, tmp_path: Path) -> None:
    # With a ten-minute stability wait only the rename (inotify IN_MOVED_TO) can explain a
    # prompt filing; the half copy closed early must still wait for its end.
    run = daemon(DOCAGENT_STABLE_SECONDS="600", DOCAGENT_RESCAN_SECONDS="600")
    whole = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975")], tmp_path / "a.pdf")
    drop(whole, spool.home / "incoming", "renamed.pdf")
    run.wait_for(lambda: states(spool).get("renamed.pdf") == "filed", 30, "the fast path")
    other = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975", "copie")],
                            tmp_path / "b.pdf").read_bytes()
    target = spool.home / "incoming" / "chunked.pdf"
    target.write_bytes(other[: len(other) // 2])
    time.sleep(2)
    assert "chunked.pdf" not in states(spool)
    with open(target, "ab") as handle:
        handle.write(other[len(other) // 2:])
    run.wait_for(lambda: states(spool).get("chunked.pdf") == "filed", 30, "the rest")
