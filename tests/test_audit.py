"""The audit chain: every kind of tampering is found and named; torn writes are reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.audit import AuditLog, entries, verify
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
