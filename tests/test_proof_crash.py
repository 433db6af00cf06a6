"""Crash torture: `kill -9` a real `docagent run` at seeded random moments, restart, repeat.

The batch mixes every outcome (filed, review, duplicate, failed) and a few scans, so kills land
during start-up recovery, claims, OCR, filing and the outbox. At the end every input must be in
exactly one final place, the database must agree with the disk, nothing may be filed twice and
every notification must have gone out at least once (at most one extra per kill: a kill between
sending and marking sent).
"""

from __future__ import annotations

import hashlib
import random
import re
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from tests import figures, pdfgen
from tests.conftest import Spool
from tests.daemonproc import Running, drop, in_progress
from tests.pdfgen import report

pytestmark = [pytest.mark.proof, pytest.mark.daemon, pytest.mark.ocr]

SEED = 8
KILLS = 22
WAVES = KILLS  # a few documents arrive before each kill, so most kills find work in hand
SCANS = 6
FILED = [("MARTIN", "Hélène", "03/04/1975", "P002"), ("DUPONT", "Jean", "12/03/1961", "P001"),
         ("BEN ALI", "Mohamed", "21/07/1990", "P004"), ("DUPONT", "Marie", "30/11/1988", "P003")]
REVIEW = [("NOBODY", "Zoé", "01/01/2001"), ("LEGRAND", "Paul", "01/01/1999"),
          ("DUPOND", "Jean", "12/03/1961")]
NOTIFICATION = re.compile(r"\[([^\]\s]+)\] \S+: notification \(([\w-]+)\)")


def make_batch(tmp_path: Path) -> tuple[list[list[Path]], dict[str, str], list[set[str]]]:
    """Waves of inputs, what each must end as ("filed:P002", "review", "failed"), and the
    pairs of identical files (either copy may be the one taken first)."""
    src = tmp_path / "src"
    src.mkdir()
    expected: dict[str, str] = {}
    docs: list[Path] = []
    for i in range(32):
        last, first, birth, pid = FILED[i % len(FILED)]
        docs.append(pdfgen.text_pdf([report(last, first, birth, f"lot {i}")],
                                    src / f"filed-{i:02d}.pdf"))
        expected[docs[-1].name] = f"filed:{pid}"
    for i in range(12):
        last, first, birth = REVIEW[i % len(REVIEW)]
        docs.append(pdfgen.text_pdf([report(last, first, birth, f"lot {i}")],
                                    src / f"review-{i:02d}.pdf"))
        expected[docs[-1].name] = "review"
    for i in range(SCANS):
        # Small scans: OCR takes seconds, so some kills land while tesseract runs.
        docs.append(pdfgen.write_sample_scan(src / f"scan-{i}.pdf", seed=SEED + i))
        expected[docs[-1].name] = "filed:P001"
    rng = random.Random(SEED)
    for i in range(2):
        bad = src / f"broken-{i}.pdf"
        bad.write_bytes(b"\xff\xd8\xff\xe0JFIF" + rng.randbytes(3000))
        docs.append(bad)
        expected[bad.name] = "failed"
    (src / "broken-text.pdf").write_text("not a pdf\n" * 100)
    docs.append(src / "broken-text.pdf")
    expected["broken-text.pdf"] = "failed"
    rng.shuffle(docs)
    waves = [docs[w::WAVES] for w in range(WAVES)]
    pairs = []
    for i, original in enumerate(sorted(p for p in docs if p.name.startswith("filed-"))[:4]):
        copy = src / f"copy-{i}.pdf"
        copy.write_bytes(original.read_bytes())
        # A later wave than the original's, or the same one: either way one copy is a duplicate.
        later = next(w for w, wave in enumerate(waves) if original in wave)
        waves[min(later + 1 + i % 2, WAVES - 1)].append(copy)
        expected[copy.name] = expected[original.name]
        pairs.append({original.name, copy.name})
    return waves, expected, pairs


def notification_lines(logs: Path) -> Counter[tuple[str, str]]:
    seen: Counter[tuple[str, str]] = Counter()
    for path in logs.glob("docagent.log*"):
        for line in path.read_text(errors="replace").splitlines():
            m = NOTIFICATION.search(line)
            if m:
                seen[(m.group(1), m.group(2))] += 1
    return seen


def final_places(spool: Spool) -> tuple[dict[str, tuple[str, str, str | None]], list[Path]]:
    with sqlite3.connect(spool.home / "state.db") as db:
        rows = db.execute("SELECT original_name, state, path, patient_id FROM documents")
        docs = {name: (state, path, pid) for name, state, path, pid in rows}
    stored = [p for folder in ("done", "review", "failed") for p in spool.files(folder)]
    return docs, stored


def drained(spool: Spool, inputs: int) -> bool:
    with sqlite3.connect(spool.home / "state.db") as db:
        receipts = db.execute("SELECT COUNT(*) FROM receipts").fetchone()[0]
        open_docs = db.execute("SELECT COUNT(*) FROM documents WHERE state NOT IN "
                               "('filed', 'review', 'failed')").fetchone()[0]
        unsent = db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]
    return receipts == inputs and open_docs == 0 and unsent == 0 and not any(
        (spool.home / "incoming").iterdir())


def test_kill_9_twenty_times_loses_nothing(spool: Spool, tmp_path: Path) -> None:
    waves, expected, pairs = make_batch(tmp_path)
    incoming = spool.home / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    # A document in hand at many kills must not become a poison pill here (tested on its own in
    # test_recovery); a file that never opens is judged incomplete quickly once left alone.
    env = {"DOCAGENT_MAX_CRASHES": "100", "DOCAGENT_INCOMPLETE_SECONDS": "3",
           "DOCAGENT_LOG_LEVEL": "INFO"}
    rng = random.Random(SEED)
    in_hand = before_ready = 0
    started = time.monotonic()
    for kill in range(KILLS):
        for pdf in waves[kill]:
            drop(pdf, incoming)
        run = Running(spool, wait=False, **env)
        # Mostly after start-up, some during it (the recovery of the previous kill).
        if kill % 5 == 4:
            time.sleep(rng.uniform(0.05, 0.6))
        else:
            run.wait_started()
            time.sleep(rng.uniform(0.0, 1.5))
        ready = "watching" in run.own_output()
        before_ready += not ready
        in_hand += ready and in_progress(spool) > 0
        assert run.proc.poll() is None, run.output()[-3000:]
        run.stop(signal.SIGKILL)
    run = Running(spool, **env)
    run.wait_for(lambda: drained(spool, len(expected)), 300, "the batch to drain")
    assert run.stop() == 0
    elapsed = time.monotonic() - started

    docs, stored = final_places(spool)
    with sqlite3.connect(spool.home / "state.db") as db:
        receipts = db.execute("SELECT original_name, kind FROM receipts").fetchall()
        outbox = db.execute("SELECT document_id, kind, sent_at FROM outbox").fetchall()
    # Every input taken exactly once: one receipt each, a row or a duplicate receipt.
    assert sorted(name for name, _ in receipts) == sorted(expected)
    duplicates = {name for name, kind in receipts if kind == "duplicate"}
    assert all(len(pair & duplicates) == 1 for pair in pairs), (pairs, duplicates)
    assert set(docs) == set(expected) - duplicates
    lost = [name for name in expected if name not in docs and name not in duplicates]
    # Each ends where its content says.
    for name, (state, _, pid) in docs.items():
        want = expected[name]
        assert (f"{state}:{pid}" if state == "filed" else state) == want, (name, state, pid)
    # The database agrees with the disk: each row's file and companions, and nothing else.
    companions: set[Path] = set()
    for name, (state, path, _) in docs.items():
        pdf = spool.home / path
        assert pdf.is_file(), (name, path)
        if state == "failed":
            companions.add(pdf.with_name(pdf.name + ".reason.json"))
        else:
            companions |= {pdf.with_suffix(".json"), pdf.with_suffix(".txt")}
    assert all(c.is_file() for c in companions), sorted(companions - set(stored))
    assert sorted(set(stored) - companions) == sorted(spool.home / p for _, p, _ in docs.values())
    assert spool.files("processing") == [] and spool.files("incoming") == []
    assert not [p for p in stored if p.name.startswith(".")], "a temporary file was left"
    # Nothing filed twice: each stored document's bytes appear once.
    digests = [hashlib.sha256((spool.home / p).read_bytes()).hexdigest()
               for _, p, _ in docs.values()]
    double_filed = len(digests) - len(set(digests))
    assert double_filed == 0
    # Every notification went out at least once, at most one extra per kill.
    assert all(sent for _, _, sent in outbox)
    wanted = Counter((doc, kind) for doc, kind, _ in outbox)
    seen = notification_lines(spool.logs)
    missing = {key: n for key, n in wanted.items() if seen[key] < n}
    assert not missing, missing
    extra = sum(seen[key] - n for key, n in wanted.items())
    assert extra <= KILLS
    assert set(seen) <= set(wanted), set(seen) - set(wanted)
    # Each start says what the kill before it left half done and how it finished or undid it.
    recovered = run.output().count("recovery:")
    figures.record("crash torture", inputs=len(expected), kills=KILLS,
                   kills_with_a_document_in_hand=in_hand, kills_during_startup=before_ready,
                   recovery_actions=recovered,
                   lost=len(lost), double_filed=double_filed,
                   notifications=sum(wanted.values()), notifications_duplicated=extra,
                   seconds=round(elapsed))
