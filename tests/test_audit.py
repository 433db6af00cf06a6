"""The audit chain: every kind of tampering is found and named; torn writes are reported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.audit import EVENTS, AuditLog, entries, verify
from tests import pdfgen
from tests.conftest import Spool


def filled(tmp_path: Path, n: int = 6) -> tuple[AuditLog, list[bytes]]:
    log = AuditLog(tmp_path)
    for i in range(n):
        log.record("filed", document_id=f"doc{i}", actor="test", patient_id=f"P{i}")
    return log, (tmp_path / "audit.jsonl").read_bytes().splitlines(keepends=True)


def test_intact_chain_verifies(tmp_path: Path) -> None:
    _, lines = filled(tmp_path)
    result = verify(tmp_path)
    assert result.ok and result.entries == 6 and not result.warnings
    seqs = [json.loads(line)["seq"] for line in lines]
    assert seqs == [1, 2, 3, 4, 5, 6]


def test_edited_line_is_named(tmp_path: Path) -> None:
    _, lines = filled(tmp_path)
    lines[2] = lines[2].replace(b'"P2"', b'"P9"')
    (tmp_path / "audit.jsonl").write_bytes(b"".join(lines))
    result = verify(tmp_path)
    assert not result.ok
    assert any("line 3" in p and "edited" in p for p in result.problems), result.problems


@pytest.mark.parametrize("how", ["delete", "reorder"])
def test_deleted_or_moved_line_is_named(tmp_path: Path, how: str) -> None:
    _, lines = filled(tmp_path)
    if how == "delete":
        del lines[3]
    else:
        lines[1], lines[2] = lines[2], lines[1]
    (tmp_path / "audit.jsonl").write_bytes(b"".join(lines))
    result = verify(tmp_path)
    assert not result.ok
    assert any("deleted, inserted or moved" in p for p in result.problems), result.problems


def test_torn_last_line_is_reported_and_the_chain_goes_on(tmp_path: Path) -> None:
    log, lines = filled(tmp_path, 3)
    with open(tmp_path / "audit.jsonl", "ab") as handle:
        handle.write(lines[0][:40])  # what a kill -9 in the middle of write() leaves
    torn = verify(tmp_path)
    assert torn.ok and torn.entries == 3 and "line 4: torn" in torn.warnings[0]
    log.record("review", document_id="after", actor="test")
    result = verify(tmp_path)
    assert result.ok and result.entries == 4
    assert len(result.warnings) == 1 and "line 4: torn" in result.warnings[0]
    assert [e["document_id"] for e in entries(tmp_path)][-1] == "after"


def test_rotation_keeps_the_chain(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, max_bytes=600)
    for i in range(12):
        log.record("taken", document_id=f"d{i}", actor="test")
    rotated = sorted(tmp_path.glob("audit-*.jsonl"))
    assert rotated, "no rotation happened"
    result = verify(tmp_path)
    assert result.ok and result.entries == 12 and result.files == len(rotated) + 1
    first_new = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[0])
    last_old = json.loads(rotated[-1].read_text().splitlines()[-1])
    assert first_new["prev"] == last_old["hash"]
    rotated[0].write_text(rotated[0].read_text().replace('"d0"', '"dX"'))
    assert not verify(tmp_path).ok


def test_pipeline_decisions_are_audited_and_verify_from_the_shell(spool: Spool,
                                                                  tmp_path: Path) -> None:
    lines = pdfgen.lab_report_lines(last="LEGRAND", first="Paul", birth="01/01/1999",
                                    doc_date="05/11/2026")
    pdf = pdfgen.text_pdf([lines], tmp_path / "r.pdf")
    [out] = spool.process_json(pdf)
    doc = str(out["document_id"])
    spool.run("review", "resolve", doc, "P006", check=True)
    events = [(e["event"], e.get("actor", "")) for e in entries(spool.logs, doc)]
    assert [e for e, _ in events] == ["taken", "review", "resolved"]
    assert events[2][1].startswith("shell:")
    resolved = list(entries(spool.logs, doc))[-1]
    assert resolved["patient_id"] == "P006"
    done = spool.run("audit", "verify")
    assert done.returncode == 0 and "intact: 3 entries" in done.stdout
    path = spool.logs / "audit.jsonl"
    path.write_text(path.read_text().replace("P006", "P007"))
    done = spool.run("audit", "verify")
    assert done.returncode == 1 and "BROKEN" in done.stdout and "line 3" in done.stdout


WRITER = """
import sys
from pathlib import Path
from agent.audit import AuditLog
log = AuditLog(Path(sys.argv[1]), max_bytes=int(sys.argv[2]))
blob = "x" * int(sys.argv[3])
for i in range(int(sys.argv[5])):
    log.record("taken", document_id=f"{sys.argv[4]}-{i}", actor="test", blob=blob or None)
"""


def writer(log_dir: Path, name: str, *, count: int, max_bytes: int = 10**12,
           blob: int = 0) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(log_dir), str(max_bytes),
                             str(blob), name, str(count)])


def ends_mid_line(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        size = os.fstat(fd).st_size
        return size > 0 and os.pread(fd, 1, size - 1) != b"\n"
    finally:
        os.close(fd)


def test_kill_9_in_the_middle_of_a_write_is_reported_and_the_chain_goes_on(
        tmp_path: Path) -> None:
    """A real process appending big entries, killed by SIGKILL while its write is half done."""
    path = tmp_path / "audit.jsonl"
    torn_rounds = 0
    for round_number in range(30):
        # A whole entry between kills: the chain must link it across the torn line before it.
        AuditLog(tmp_path).record("review", document_id=f"between-{round_number}", actor="t")
        child = writer(tmp_path, f"r{round_number}", count=1000, blob=4 * 1024 * 1024)
        deadline = time.monotonic() + 20
        while child.poll() is None and time.monotonic() < deadline:
            # The file not ending in a newline means a write is in progress: kill it now.
            if ends_mid_line(path):
                break
        child.send_signal(signal.SIGKILL)
        child.wait()
        torn_rounds += path.read_bytes()[-1:] != b"\n"
        result = verify(tmp_path)
        assert result.ok, result.problems
        if torn_rounds and round_number >= 2:
            break
    assert torn_rounds, "no write was ever caught half done"
    before = verify(tmp_path)
    AuditLog(tmp_path).record("filed", document_id="after", actor="test")
    after = verify(tmp_path)
    assert after.ok, after.problems
    assert after.entries == before.entries + 1
    assert len(after.warnings) >= 1 and all("torn" in w for w in after.warnings)
    whole = [e for e in entries(tmp_path)]
    assert whole[-1]["document_id"] == "after" and whole[-1]["prev"] == whole[-2]["hash"]
    assert [e["seq"] for e in whole] == list(range(1, len(whole) + 1))
    assert 1 <= len(after.warnings) <= torn_rounds


def test_rotation_under_concurrent_writers_keeps_one_chain(tmp_path: Path) -> None:
    children = [writer(tmp_path, f"w{n}", count=60, max_bytes=3000) for n in range(4)]
    assert [c.wait(timeout=120) for c in children] == [0, 0, 0, 0]
    result = verify(tmp_path)
    assert result.ok, result.problems
    assert result.entries == 240 and result.files > 10 and not result.warnings
    whole = list(entries(tmp_path))
    assert [e["seq"] for e in whole] == list(range(1, 241))
    assert sorted(e["document_id"] for e in whole) == sorted(
        f"w{n}-{i}" for n in range(4) for i in range(60))
    # Each writer's own entries are in its order: the lock serialises whole appends.
    for n in range(4):
        mine = [int(e["document_id"].split("-")[1]) for e in whole
                if e["document_id"].startswith(f"w{n}-")]
        assert mine == sorted(mine)


def test_a_long_entry_does_not_break_the_chain(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.record("review", document_id="a", actor="test", reason="x" * 200_000)
    log.record("filed", document_id="b", actor="test")
    result = verify(tmp_path)
    assert result.ok and result.entries == 2, result.problems


def test_every_kind_of_decision_is_audited(spool: Spool, tmp_path: Path) -> None:
    def lines(last: str, first: str, birth: str) -> list[str]:
        return pdfgen.lab_report_lines(last=last, first=first, birth=birth,
                                       doc_date="05/11/2026")

    good = pdfgen.text_pdf([lines("MARTIN", "Hélène", "03/04/1975")], tmp_path / "g.pdf")
    copy = tmp_path / "copy.pdf"
    copy.write_bytes(good.read_bytes())
    who = pdfgen.text_pdf([lines("NOBODY", "Alice", "01/01/1990")], tmp_path / "w.pdf")
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"not a pdf at all")
    outs = {str(o["outcome"]): str(o["document_id"])
            for o in spool.process_json(good, copy, who, bad)}
    spool.run("review", "resolve", outs["review"], "--none", check=True)
    spool.run("retry", outs["failed"], check=True)
    seen = {(e["event"], e.get("document_id")) for e in entries(spool.logs)}
    assert {("filed", outs["filed"]), ("duplicate", outs["filed"]),
            ("review", outs["review"]), ("resolved", outs["review"]),
            ("failed", outs["failed"]), ("retried", outs["failed"]),
            ("taken", outs["failed"])} <= seen
    assert {event for event, _ in seen} <= set(EVENTS)
    filed = next(e for e in entries(spool.logs, outs["filed"]) if e["event"] == "filed")
    assert filed["patient_id"] == "P002" and "last_name" in filed["evidence"]["agree"]
    failed = next(e for e in entries(spool.logs, outs["failed"]) if e["event"] == "failed")
    assert failed["kind"] and failed["reason"]
    assert spool.run("audit", "verify").returncode == 0
