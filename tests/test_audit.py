"""The audit chain: every kind of tampering is found and named; torn writes are reported."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent import audit
from agent.audit import (
    EVENTS,
    GENESIS,
    AuditLog,
    Verification,
    _digest,
    entries,
    read_head,
    verify,
)
from tests import pdfgen
from tests.conftest import Spool
from tests.daemonproc import one_of_each
from tests.pdfgen import report


def at(log_dir: Path, **options: int) -> AuditLog:
    """The audit of a test: its head kept in a state.db beside it."""
    return AuditLog(log_dir, state_db=log_dir / "state.db", **options)


def check(log_dir: Path) -> Verification:
    return verify(log_dir, log_dir / "state.db")


def filled(tmp_path: Path, n: int = 6) -> tuple[AuditLog, list[bytes]]:
    log = at(tmp_path)
    for i in range(n):
        log.record("filed", document_id=f"doc{i}", actor="test", patient_id=f"P{i}")
    return log, (tmp_path / "audit.jsonl").read_bytes().splitlines(keepends=True)


def test_intact_chain_verifies(tmp_path: Path) -> None:
    _, lines = filled(tmp_path)
    result = check(tmp_path)
    assert result.ok and result.entries == 6 and not result.warnings
    seqs = [json.loads(line)["seq"] for line in lines]
    assert seqs == [1, 2, 3, 4, 5, 6]


def test_edited_line_is_named(tmp_path: Path) -> None:
    _, lines = filled(tmp_path)
    lines[2] = lines[2].replace(b'"P2"', b'"P9"')
    (tmp_path / "audit.jsonl").write_bytes(b"".join(lines))
    result = check(tmp_path)
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
    result = check(tmp_path)
    assert not result.ok
    assert any("deleted, inserted or moved" in p for p in result.problems), result.problems


def test_torn_last_line_is_reported_and_the_chain_goes_on(tmp_path: Path) -> None:
    log, lines = filled(tmp_path, 3)
    with open(tmp_path / "audit.jsonl", "ab") as handle:
        handle.write(lines[0][:40])  # what a kill -9 in the middle of write() leaves
    torn = check(tmp_path)
    assert torn.ok and torn.entries == 3 and "line 4: torn" in torn.warnings[0]
    log.record("review", document_id="after", actor="test")
    result = check(tmp_path)
    assert result.ok and result.entries == 4
    assert len(result.warnings) == 1 and "line 4: torn" in result.warnings[0]
    assert [e["document_id"] for e in entries(tmp_path)][-1] == "after"


def test_rotation_keeps_the_chain(tmp_path: Path) -> None:
    log = at(tmp_path, max_bytes=600)
    for i in range(12):
        log.record("taken", document_id=f"d{i}", actor="test")
    rotated = sorted(tmp_path.glob("audit-*.jsonl"))
    assert rotated, "no rotation happened"
    result = check(tmp_path)
    assert result.ok and result.entries == 12 and result.files == len(rotated) + 1
    first_new = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[0])
    last_old = json.loads(rotated[-1].read_text().splitlines()[-1])
    assert first_new["prev"] == last_old["hash"]
    rotated[0].write_text(rotated[0].read_text().replace('"d0"', '"dX"'))
    assert not check(tmp_path).ok


def test_pipeline_decisions_are_audited_and_verify_from_the_shell(spool: Spool,
                                                                  tmp_path: Path) -> None:
    pdf = pdfgen.text_pdf([report("LEGRAND", "Paul", "01/01/1999")], tmp_path / "r.pdf")
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
log = AuditLog(Path(sys.argv[1]), state_db=Path(sys.argv[1]) / "state.db",
               max_bytes=int(sys.argv[2]))
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
        at(tmp_path).record("review", document_id=f"between-{round_number}", actor="t")
        child = writer(tmp_path, f"r{round_number}", count=1000, blob=4 * 1024 * 1024)
        deadline = time.monotonic() + 20
        while child.poll() is None and time.monotonic() < deadline:
            # The file not ending in a newline means a write is in progress: kill it now.
            if ends_mid_line(path):
                break
        child.send_signal(signal.SIGKILL)
        child.wait()
        torn_rounds += path.read_bytes()[-1:] != b"\n"
        result = check(tmp_path)
        assert result.ok, result.problems
        if torn_rounds and round_number >= 2:
            break
    assert torn_rounds, "no write was ever caught half done"
    before = check(tmp_path)
    at(tmp_path).record("filed", document_id="after", actor="test")
    after = check(tmp_path)
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
    result = check(tmp_path)
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
    log = at(tmp_path)
    log.record("review", document_id="a", actor="test", reason="x" * 200_000)
    log.record("filed", document_id="b", actor="test")
    result = check(tmp_path)
    assert result.ok and result.entries == 2, result.problems


def test_every_kind_of_decision_is_audited(spool: Spool, tmp_path: Path) -> None:
    outs = one_of_each(spool, tmp_path)
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


# --- the head kept outside the file -----------------------------------------------------------


def rechained(lines: list[bytes], change: Callable[[dict[str, Any]], None]) -> bytes:
    """The log as someone who knows the format would forge it: each entry changed by `change`,
    every hash recomputed from the genesis, so the chain alone holds."""
    prev, out = GENESIS, []
    for raw in lines:
        entry = json.loads(raw)
        entry.pop("hash")
        change(entry)
        entry["prev"] = prev
        entry["hash"] = prev = _digest(prev, entry)
        out.append(json.dumps(entry, sort_keys=True, ensure_ascii=False).encode() + b"\n")
    return b"".join(out)


def test_a_normal_run_records_the_head_and_verifies_clean(tmp_path: Path) -> None:
    _, lines = filled(tmp_path)
    result = check(tmp_path)
    assert result.ok and not result.warnings, (result.problems, result.warnings)
    head, damage = read_head(tmp_path / "state.db")
    last = json.loads(lines[-1])
    assert head is not None and not damage
    assert (head.seq, head.hash, head.file, head.lines) == (6, last["hash"], "audit.jsonl", 6)


def test_the_last_lines_cut_are_named(tmp_path: Path) -> None:
    _, lines = filled(tmp_path)
    (tmp_path / "audit.jsonl").write_bytes(b"".join(lines[:4]))
    assert verify(tmp_path).ok  # the chain alone cannot tell
    result = check(tmp_path)
    assert not result.ok
    assert any(p.startswith("the last 2 entries are missing: the log ends at seq 4")
               and "seq 6" in p for p in result.problems), result.problems


def test_a_whole_rewrite_with_recomputed_hashes_is_named(tmp_path: Path) -> None:
    _, lines = filled(tmp_path)

    def other_patient(entry: dict[str, Any]) -> None:
        if entry["document_id"] == "doc2":
            entry["patient_id"] = "P9"

    (tmp_path / "audit.jsonl").write_bytes(rechained(lines, other_patient))
    assert verify(tmp_path).ok  # the chain alone cannot tell
    result = check(tmp_path)
    assert not result.ok
    assert any(p.startswith("the file was rewritten: entry seq 6 (audit.jsonl line 6) does "
                            "not match the head recorded in state.db at")
               for p in result.problems), result.problems


def test_a_rewrite_shorter_by_one_is_named(tmp_path: Path) -> None:
    _, lines = filled(tmp_path)
    (tmp_path / "audit.jsonl").write_bytes(rechained(lines[:5], lambda entry: None))
    result = check(tmp_path)
    assert any(p.startswith("the last entry is missing") for p in result.problems), \
        result.problems


@pytest.mark.parametrize("tamper", ["cut", "rewrite"])
def test_new_entries_after_tampering_do_not_hide_it(tmp_path: Path, tamper: str) -> None:
    """The daemon writes on after the cut: the writer notices the head is not where the file
    ends, records it, and verify keeps reporting it."""
    log, lines = filled(tmp_path)
    if tamper == "cut":
        forged = b"".join(lines[:3])
    else:
        forged = rechained(lines, lambda entry: entry.update(actor="someone else"))
    (tmp_path / "audit.jsonl").write_bytes(forged)
    log.record("taken", document_id="later", actor="docagent")
    log.record("filed", document_id="later", actor="docagent")
    result = check(tmp_path)
    assert not result.ok
    expected = ("the last 3 entries were missing" if tamper == "cut"
                else "the log was rewritten: it ended at seq 6")
    assert [p for p in result.problems if expected in p and p.startswith("found by a writer")]


def test_a_writer_killed_before_its_head_is_a_warning(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    log, _ = filled(tmp_path, 3)

    def killed(*args: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(audit, "_write_head", killed)
    log.record("review", document_id="no-head", actor="test")
    monkeypatch.undo()
    result = check(tmp_path)
    assert result.ok, result.problems
    assert any("1 entry after the head" in w for w in result.warnings), result.warnings
    log.record("filed", document_id="next", actor="test")  # records the head again
    result = check(tmp_path)
    assert result.ok and not result.warnings, (result.problems, result.warnings)


@pytest.mark.parametrize("max_bytes", [10**9, 1], ids=["one-file", "rotating"])
def test_writers_killed_before_their_heads_in_a_row_are_not_damage(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_bytes: int) -> None:
    at(tmp_path, max_bytes=max_bytes).record("filed", document_id="with-head", actor="test")

    def killed(*args: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(audit, "_write_head", killed)
    for n in range(3):
        at(tmp_path, max_bytes=max_bytes).record("taken", document_id=f"lost-{n}", actor="t")
    monkeypatch.undo()
    result = check(tmp_path)
    assert result.ok and any("3 entries after the head" in w for w in result.warnings), \
        (result.problems, result.warnings)
    at(tmp_path, max_bytes=max_bytes).record("filed", document_id="next", actor="test")
    result = check(tmp_path)
    assert result.ok and not result.warnings, (result.problems, result.warnings)
    assert read_head(tmp_path / "state.db")[1] == []  # no damage recorded


def test_a_torn_line_removed_before_the_head_is_named(tmp_path: Path) -> None:
    log, lines = filled(tmp_path, 3)
    path = tmp_path / "audit.jsonl"
    with open(path, "ab") as handle:
        handle.write(lines[0][:40])  # torn by a kill -9
    log.record("filed", document_id="after", actor="test")
    assert check(tmp_path).ok
    path.write_bytes(b"".join(line for line in path.read_bytes().splitlines(keepends=True)
                              if line.endswith(b"}\n")))
    result = check(tmp_path)
    assert any("audit.jsonl line 4, the head recorded" in p and "puts it on audit.jsonl "
               "line 5" in p for p in result.problems), result.problems


def test_each_head_goes_to_the_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    folder = Path(tempfile.mkdtemp(prefix="j", dir="/tmp"))  # a socket path must be short
    try:
        address = str(folder / "journal")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as journal:
            journal.bind(address)
            journal.settimeout(30)
            monkeypatch.setattr(audit, "JOURNAL_SOCKET", address)
            entry = at(folder).record("taken", document_id="j1", actor="test")
            fields = dict(line.split("=", 1) for line in
                          journal.recv(65536).decode().splitlines())
        assert fields["SYSLOG_IDENTIFIER"] == "docagent-audit" and fields["PRIORITY"] == "6"
        assert (fields["DOCAGENT_AUDIT_SEQ"], fields["DOCAGENT_AUDIT_HASH"],
                fields["DOCAGENT_AUDIT_LINES"]) == ("1", entry["hash"], "1")
        assert entry["hash"] in fields["MESSAGE"]
    finally:
        shutil.rmtree(folder)


def test_verify_from_the_shell_names_a_cut_and_a_rewrite(spool: Spool, tmp_path: Path) -> None:
    [out] = spool.process_json(pdfgen.text_pdf([report("LEGRAND", "Paul", "01/01/1999")],
                                               tmp_path / "r.pdf"))
    spool.run("review", "resolve", str(out["document_id"]), "P006", check=True)
    done = spool.run("audit", "verify")
    assert done.returncode == 0 and "intact: 3 entries" in done.stdout, done.stdout
    assert "head    seq 3, audit.jsonl line 3" in done.stdout
    path = spool.logs / "audit.jsonl"
    whole = path.read_bytes().splitlines(keepends=True)

    path.write_bytes(b"".join(whole[:2]))  # the decision's line cut away
    done = spool.run("audit", "verify")
    assert done.returncode == 1, done.stdout
    assert "BROKEN  the last entry is missing: the log ends at seq 2" in done.stdout

    path.write_bytes(rechained(whole, lambda e: e.update(patient_id="P007")
                               if e.get("patient_id") == "P006" else None))
    done = spool.run("audit", "verify")
    assert done.returncode == 1, done.stdout
    assert "BROKEN  the file was rewritten: entry seq 3" in done.stdout


def test_rotation_keeps_the_head_in_the_newest_file(tmp_path: Path) -> None:
    log = at(tmp_path, max_bytes=600)
    for i in range(12):
        log.record("taken", document_id=f"d{i}", actor="test")
    head, _ = read_head(tmp_path / "state.db")
    newest = (tmp_path / "audit.jsonl").read_bytes().splitlines()
    assert head is not None and (head.seq, head.lines) == (12, len(newest))
    result = check(tmp_path)
    assert result.ok and not result.warnings and result.files > 1
    for old in sorted(tmp_path.glob("audit-*.jsonl"))[-1:]:
        old.unlink()  # a rotated file deleted: the newest no longer follows
    assert not check(tmp_path).ok
