"""Load: 1,000 PDFs dropped at once into a running daemon.

What is asserted is what noise on a shared machine cannot move: every document decided once
(nothing lost, nothing filed twice, one notification each), every `docagent health` and every
`/status` answered (within a timeout that only a hang reaches), and the memory of the daemon's
whole process tree (Python, pdftoppm, tesseract) bounded while the backlog drains. How fast
(the drain rate, how long each answer took) is measured and printed with the proof figures,
for the README, never asserted: on two shared cores it moves by half from one run to the next.

The daemon is connected to the loopback Bot API (tests/botapi.py) as a practice's would be to
Telegram, and staff send `/status` again and again while the backlog drains.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import statistics
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from agent.spool import FINAL_STATES
from tests import figures, pdfgen
from tests.botapi import BotApi
from tests.conftest import Spool
from tests.daemonproc import Running, documents
from tests.pdfgen import report
from tests.telegram_helpers import GROUP, STAFF, TOKEN, telegram_env, wait_for_bot
from tests.watch import PeakMemory, Repeating

pytestmark = [pytest.mark.proof, pytest.mark.daemon, pytest.mark.ocr]

DOCUMENTS = 1000
SCANS = 20
PEOPLE = [("MARTIN", "Hélène", "03/04/1975"), ("DUPONT", "Jean", "12/03/1961"),
          ("BEN ALI", "Mohamed", "21/07/1990"), ("NOBODY", "Zoé", "01/01/2001"),
          ("Smith", "John", "09/01/1954")]
MEMORY_BOUND = 600 * 2**20
# Answers: waited for up to this long, which only a hang reaches (a health run takes about
# half a second here, a /status answer a tenth; the figures give the spread).
HANG_S = 60.0


def decided(spool: Spool) -> int:
    return sum(doc.state in FINAL_STATES for doc in documents(spool.home).values())


class HealthSampler(Repeating):
    """Runs `docagent health --json` again and again while the backlog drains."""

    def __init__(self, spool: Spool, pause: float = 2.0) -> None:
        self.spool = spool
        self.times: list[float] = []
        self.answers: list[dict[str, object]] = []
        self.unanswered: list[str] = []  # a hang, or no verdict printed
        super().__init__(pause)

    def tick(self) -> None:
        started = time.monotonic()
        try:
            done = self.spool.run("health", "--json", timeout=HANG_S)
            self.answers.append(json.loads(done.stdout))
        except (subprocess.TimeoutExpired, ValueError) as error:
            self.unanswered.append(repr(error))
            return
        self.times.append(time.monotonic() - started)


class CommandSampler(Repeating):
    """Staff send /status in the group again and again; how long until the bot answers."""

    def __init__(self, api: BotApi, pause: float = 2.0) -> None:
        self.api = api
        self.times: list[float] = []
        self.unanswered = 0
        super().__init__(pause)

    def _answers(self) -> int:
        return sum(1 for m in self.api.sent(GROUP) if (m.text or "").startswith("<pre>"))

    def tick(self) -> None:
        before = self._answers()
        started = time.monotonic()
        self.api.inject_message(GROUP, STAFF, "/status")
        while self._answers() == before:
            if time.monotonic() - started > HANG_S:
                self.unanswered += 1
                return
            time.sleep(0.02)
        self.times.append(time.monotonic() - started)


@pytest.mark.timeout(900)
def test_a_thousand_documents_at_once(spool: Spool, tmp_path: Path) -> None:
    staging = spool.home / "staging"  # same filesystem as incoming/: dropping is a rename
    staging.mkdir(parents=True)
    for i in range(DOCUMENTS - SCANS):
        last, first, birth = PEOPLE[i % len(PEOPLE)]
        pdfgen.text_pdf([report(last, first, birth, f"load {i}")], staging / f"doc-{i:04d}.pdf")
    for i in range(SCANS):
        pdfgen.write_sample_scan(staging / f"scan-{i:02d}.pdf", seed=100 + i)
    api = BotApi(TOKEN, {GROUP: "Cabinet"}).serve()
    run = Running(spool, **telegram_env(api, DOCAGENT_LOG_LEVEL="INFO"))
    wait_for_bot(run)
    memory = PeakMemory(run.proc.pid)
    health = HealthSampler(spool)
    commands = CommandSampler(api)
    incoming = spool.home / "incoming"
    started = time.monotonic()
    for name in sorted(os.listdir(staging)):
        os.rename(staging / name, incoming / name)
    try:
        run.wait_for(lambda: decided(spool) == DOCUMENTS, 800, "the backlog to drain")
        drained_s = time.monotonic() - started
    finally:
        health.stop()
        commands.stop()
        memory.stop()
        api.close()
    peak = memory.peak
    assert run.proc.poll() is None
    with sqlite3.connect(spool.home / "state.db") as db:
        outcomes = dict(db.execute("SELECT state, COUNT(*) FROM documents GROUP BY state"))
    assert sum(outcomes.values()) == DOCUMENTS and not list(incoming.iterdir())
    assert outcomes.get("failed", 0) == 0, outcomes
    assert run.stop() == 0
    # Nothing lost, nothing twice: each input's bytes filed once, one notification each.
    stored = [p for folder in ("done", "review") for p in spool.files(folder)
              if p.suffix == ".pdf"]
    digests = Counter(hashlib.sha256(p.read_bytes()).hexdigest() for p in stored)
    assert len(digests) == DOCUMENTS and set(digests.values()) == {1}
    with sqlite3.connect(spool.home / "state.db") as db:
        notified = Counter(row[0] for row in db.execute(
            "SELECT document_id FROM outbox WHERE kind IN ('filed', 'review')"))
    assert len(notified) == DOCUMENTS and set(notified.values()) == {1}
    # health answered every time, with the daemon alive, while the backlog drained.
    assert health.unanswered == [] and len(health.times) >= 3, health.unanswered
    for answer in health.answers:
        checks = {c["name"]: c for c in answer["checks"]}  # type: ignore[attr-defined]
        assert checks["daemon"]["ok"], checks["daemon"]
    figures.record("load", documents=DOCUMENTS, scanned=SCANS, drained_s=round(drained_s),
                   docs_per_s=round(DOCUMENTS / drained_s, 1),
                   peak_memory_mib=round(peak / 2**20), memory_samples=memory.samples,
                   health_answers=len(health.times), **spread("health", health.times),
                   status_command_answers=len(commands.times),
                   **spread("status_command", commands.times),
                   outcomes=dict(sorted(outcomes.items())))
    assert peak < MEMORY_BOUND, f"peak {peak / 2**20:.0f} MiB"
    # Every /status answered within HANG_S (as health was, above); how long each answer
    # took is in the figures, not asserted.
    assert commands.unanswered == 0 and len(commands.times) >= 3, commands.times


def spread(name: str, times: list[float]) -> dict[str, float]:
    """Median, the fastest and the slowest, and the 90th percentile: how much noise moves it."""
    ordered = sorted(times)
    return {f"{name}_min_s": round(ordered[0], 2),
            f"{name}_median_s": round(statistics.median(ordered), 2),
            f"{name}_p90_s": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
            f"{name}_max_s": round(ordered[-1], 2)}
