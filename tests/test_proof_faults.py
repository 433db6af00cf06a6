"""Faults of the machine while a real daemon runs: documents wait, nothing is lost or failed.

- tesseract disappears from PATH, then comes back;
- the spool's filesystem fills up (a small tmpfs mounted for the test), then space returns;
- another process holds the database locked for longer than our busy timeout;
- SIGTERM arrives in the middle of a slow scanned document.

Telegram down is proven by tests/test_telegram_delivery.py (marked `proof` too): the Bot API
refuses connections for a minute while 20 documents are processed; every message waits in the
outbox and goes out once, in order, when it answers again.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.spool import Document
from tests import figures, pdfgen
from tests.conftest import Spool
from tests.daemonproc import Running, documents, drop, in_progress
from tests.pdfgen import report

pytestmark = [pytest.mark.proof, pytest.mark.daemon]
TOOLS = ("pdfinfo", "pdftotext", "pdftoppm", "tesseract")


def rows(spool: Spool) -> dict[str, Document]:
    return documents(spool.home)


def born_digital(tmp_path: Path, n: int, tag: str) -> list[Path]:
    return [pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975", f"{tag} {i}")],
                            tmp_path / f"{tag}-{i}.pdf") for i in range(n)]


def all_filed(spool: Spool, names: list[str]) -> bool:
    found = rows(spool)
    return all(n in found and found[n].state == "filed" for n in names)


def all_decided(spool: Spool, names: list[str]) -> bool:
    """Filed or in review: a poor scan's OCR may leave its name in doubt, never failed."""
    found = rows(spool)
    return all(n in found and found[n].state in ("filed", "review") for n in names)


@pytest.mark.ocr
def test_tesseract_missing_defers_then_recovers(spool: Spool, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in TOOLS:
        real = shutil.which(tool)
        assert real, f"{tool} is needed for this test"
        (bindir / tool).symlink_to(real)
    path = {"PATH": str(bindir)}
    run = Running(spool, **path)
    (bindir / "tesseract").unlink()
    scans = [pdfgen.write_sample_scan(tmp_path / f"scan-{i}.pdf", seed=20 + i) for i in range(2)]
    text = born_digital(tmp_path, 1, "text")
    for pdf in [*scans, *text]:
        drop(pdf, spool.home / "incoming")

    def deferred() -> bool:
        found = rows(spool)
        return all(s.name in found and found[s.name].deferrals >= 1 for s in scans)

    run.wait_for(deferred, 60, "the scans to be deferred")
    run.wait_for(lambda: all_filed(spool, [text[0].name]), 30, "the text document")
    found = rows(spool)
    for scan in scans:
        assert found[scan.name].state == "queued"
        assert found[scan.name].reason_kind == "ocr-engine-missing"
    health = spool.health(**path)
    assert not health["tesseract"]["ok"] and "tesseract" in str(health["tesseract"]["detail"])
    assert not health["failures"]["ok"] and "deferred" in str(health["failures"]["detail"])
    assert spool.files("failed") == []

    back = time.monotonic()
    (bindir / "tesseract").symlink_to(shutil.which("tesseract") or "")
    # Deferred documents come due after 30 s (the first step of the backoff).
    run.wait_for(lambda: all_decided(spool, [s.name for s in scans]), 150, "the scans to be read")
    recovered = time.monotonic() - back
    assert spool.files("failed") == []
    health = spool.health(**path)
    assert health["tesseract"]["ok"] and health["failures"]["ok"], health
    assert run.stop() == 0
    figures.record("tesseract missing", deferred=len(scans), failed=0,
                   through_after_return_s=round(recovered))


def mount_tmpfs(where: Path, size: str) -> None:
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                           str(where)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {done.stderr.strip()}")


def fill(folder: Path) -> Path:
    """Write a file until the filesystem refuses another byte."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as handle:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    handle.write(b"\0" * chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
    return filler


def test_disk_full_loses_nothing_and_recovers(spool: Spool, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    # The spool moves onto a 24 MiB tmpfs, database and patients included.
    saved = tmp_path / "saved-home"
    shutil.move(spool.home, saved)
    spool.home.mkdir()
    mount_tmpfs(spool.home, "24m")
    try:
        shutil.copytree(saved, spool.home, dirs_exist_ok=True)
        env = {"DOCAGENT_HEALTH_MIN_FREE": "1M"}
        run = Running(spool, **env)
        first = born_digital(tmp_path, 3, "before")
        for pdf in first:
            drop(pdf, spool.home / "incoming")
        run.wait_for(lambda: all_filed(spool, [p.name for p in first]), 60, "the first ones")
        # Documents land while the disk is full: staged first, then renamed in (no space
        # needed for a rename), the way a scanner's temporary file becomes the real one.
        staging = spool.home / "staging"
        staging.mkdir()
        late = born_digital(tmp_path, 6, "during")
        for pdf in late:
            shutil.copy(pdf, staging / pdf.name)
        filler = fill(spool.home)
        for pdf in late:
            os.rename(staging / pdf.name, spool.home / "incoming" / pdf.name)
        # Give the daemon many rescans and worker rounds against the full disk.
        full_since = time.monotonic()
        run.wait_for(lambda: time.monotonic() - full_since > 8, 30, "time on a full disk")
        assert run.proc.poll() is None
        health = spool.health(**env)
        assert not health["disk"]["ok"], health["disk"]
        assert spool.files("failed") == []
        waiting = [p.name for p in late if not all_filed(spool, [p.name])]
        filler.unlink()
        back = time.monotonic()
        run.wait_for(lambda: all_filed(spool, [p.name for p in [*first, *late]]), 120,
                     "everything to be filed once space returned")
        recovered = time.monotonic() - back
        assert run.proc.poll() is None
        assert spool.files("failed") == [] and spool.files("processing") == []
        assert not any(spool.home / "incoming" for _ in ()) and not list(
            (spool.home / "incoming").iterdir())
        # Nothing half-written: no temporary file, every sidecar whole, the database sound.
        assert [p for p in spool.home.rglob(".*") if p.name != ".docagent.lock"] == []
        pdfs = [p for p in spool.files("done") if p.suffix == ".pdf"]
        assert len(pdfs) == len(first) + len(late)
        originals = {p.read_bytes() for p in [*first, *late]}
        assert {p.read_bytes() for p in pdfs} == originals
        for pdf in pdfs:
            assert json.loads(pdf.with_suffix(".json").read_text())["outcome"] == "filed"
            assert "MARTIN" in pdf.with_suffix(".txt").read_text()
        with sqlite3.connect(spool.home / "state.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert run.stop() == 0
        figures.record("disk full", documents_dropped_on_full_disk=len(late),
                       waited_while_full=len(waiting), lost=0, failed=0,
                       through_after_space_returned_s=round(recovered))
    finally:
        subprocess.run(["umount", "-l", str(spool.home)], check=False)


LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


@pytest.mark.ocr
def test_database_locked_by_another_process(spool: Spool, tmp_path: Path) -> None:
    run = Running(spool)
    scan = pdfgen.write_sample_scan(tmp_path / "scan.pdf", seed=31)
    drop(scan, spool.home / "incoming")
    run.wait_for(lambda: in_progress(spool) > 0, 30, "the scan in hand")
    hold = 15.0  # longer than the daemon's 10 s busy timeout
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(spool.home / "state.db"),
                               str(hold)], stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        locked_at = time.monotonic()
        text = born_digital(tmp_path, 3, "locked")
        for pdf in text:
            drop(pdf, spool.home / "incoming")
        assert locker.wait(timeout=hold + 30) == 0
    finally:
        if locker.poll() is None:
            locker.kill()
    assert run.proc.poll() is None, run.output()[-3000:]
    names = [scan.name, *(p.name for p in text)]
    run.wait_for(lambda: all_decided(spool, names), 120, "everything after the lock")
    assert spool.files("failed") == [] and spool.files("processing") == []
    assert run.stop() == 0
    figures.record("database locked", held_s=hold, documents=len(names), lost=0, failed=0,
                   all_filed_s_after_lock=round(time.monotonic() - locked_at - hold))


@pytest.mark.ocr
def test_sigterm_mid_document_exits_cleanly_and_loses_nothing(spool: Spool,
                                                             tmp_path: Path) -> None:
    lines = report("DUPONT", "Jean", "12/03/1961")
    pages = [pdfgen.degrade(pdfgen.render_page(lines), seed=40 + i) for i in range(3)]
    slow = pdfgen.image_pdf(pages, tmp_path / "slow-scan.pdf")
    run = Running(spool, DOCAGENT_WORKERS="1")
    drop(slow, spool.home / "incoming")
    run.wait_for(lambda: in_progress(spool) > 0, 30, "the scan in hand")
    time.sleep(1.0)  # into the OCR of its pages
    asked = time.monotonic()
    code = run.stop(signal.SIGTERM)
    stop_s = time.monotonic() - asked
    assert code == 0, run.output()[-3000:]
    state = rows(spool)[slow.name].state
    # Finished before exiting, or back in the queue: never left half-way, never failed.
    assert state in ("filed", "review", "queued"), state
    assert spool.files("failed") == []
    run = Running(spool, DOCAGENT_WORKERS="1")
    run.wait_for(lambda: all_decided(spool, [slow.name]), 120, "the scan after the restart")
    assert spool.files("processing") == [] and spool.files("failed") == []
    assert len([p for p in [*spool.files("done"), *spool.files("review")]
                if p.suffix == ".pdf"]) == 1
    assert run.stop() == 0
    figures.record("sigterm mid-document", exit_code=code, state_at_exit=state,
                   stop_s=round(stop_s, 1), lost=0)
