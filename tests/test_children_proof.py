"""The text bomb through a real `docagent run` under a memory cap.

A 250 KB PDF holding 32 MiB of compressed text: pdftotext, unbounded, grows past 2 GiB in its
120 s (bench/children.py), then the old code read the same page again by OCR. Now pdftotext
stops at the per-child limit and the document fails at once as `too-complex`, while the daemon
goes on taking documents.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests import figures, hostile, pdfgen
from tests.conftest import Spool
from tests.daemonproc import Running, documents, drop
from tests.pdfgen import report
from tests.watch import PeakMemory

MiB = 2**20
CAP = 512 * MiB  # DOCAGENT_CHILD_MEMORY for this test: the bomb reaches it in seconds
DAEMON_ALLOWANCE = 384 * MiB  # the daemon itself, and a tool alongside, while the bomb runs


def row(spool: Spool, name: str) -> tuple[str, str | None, str | None] | None:
    found = documents(spool.home).get(name)
    return None if found is None else (found.state, found.path, found.reason_kind)


def decided(spool: Spool, name: str) -> bool:
    found = row(spool, name)
    return found is not None and found[0] in ("filed", "review", "failed")


@pytest.mark.proof
@pytest.mark.daemon
@pytest.mark.timeout(900)  # on the old code the bomb alone took minutes: let it fail, not hang
def test_a_text_bomb_fails_as_too_complex_and_the_daemon_stays_small(
        spool: Spool, tmp_path: Path) -> None:
    incoming = spool.home / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    run = Running(spool, DOCAGENT_CHILD_MEMORY=f"{CAP // MiB}M", DOCAGENT_LOG_LEVEL="INFO")
    memory = PeakMemory(run.proc.pid)
    bomb = hostile.text_bomb(tmp_path / "bomb.pdf", mib=32)
    started = time.monotonic()
    drop(bomb, incoming, "text-bomb.pdf")
    run.wait_for(lambda: decided(spool, "text-bomb.pdf"), 600, "the text bomb to be decided")
    took = time.monotonic() - started
    memory.stop()
    peak = memory.peak

    state, path, kind = row(spool, "text-bomb.pdf") or ("", None, None)
    assert (state, kind) == ("failed", "too-complex"), (
        f"{state} as {kind} after {took:.0f} s; process tree peak {peak / MiB:.0f} MiB")
    assert path is not None
    reason = json.loads((spool.home / (path + ".reason.json")).read_text())
    assert "far more text than a document" in reason["message"]
    assert f"{CAP // MiB} MiB of memory" in reason["message"]  # the limit, not the deadline
    assert "print it to a new PDF or scan the paper copy" in reason["action"]
    assert "Traceback" not in reason["message"] + reason["detail"]

    # The daemon is alive, answers, and takes the next document as usual.
    good = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975")], tmp_path / "good.pdf")
    drop(good, incoming, "after-the-bomb.pdf")
    run.wait_for(lambda: decided(spool, "after-the-bomb.pdf"), 120, "the next document")
    assert (row(spool, "after-the-bomb.pdf") or ("",))[0] == "filed"
    assert run.proc.poll() is None
    status = json.loads(spool.run("status", "--json", check=True).stdout)
    assert status["failed"] == 1
    health = spool.health()
    assert health["daemon"]["ok"], health
    log = (spool.logs / "docagent.log").read_text(errors="replace")
    assert "internal error" not in log and "Traceback" not in log
    assert run.stop() == 0

    figures.record("text bomb", pdf_kib=round(bomb.stat().st_size / 1024), text_mib=32,
                   child_memory_mib=CAP // MiB, failed_as=kind, seconds_to_failed=round(took),
                   peak_tree_mib=round(peak / MiB), daemon_alive_after=True)
    assert peak < CAP + DAEMON_ALLOWANCE, (
        f"the daemon's process tree peaked at {peak / MiB:.0f} MiB")
