"""The shell's side of the loop: status, review, failed, retry and the patient import."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests import pdfgen
from tests.conftest import DOCAGENT, Spool
from tests.daemonproc import one_of_each
from tests.pdfgen import report
from tests.watch import until


def test_status_on_an_empty_install(spool: Spool) -> None:
    done = spool.run("status", "--json", check=True)
    status = json.loads(done.stdout)
    assert status["filed"] == status["review"] == status["failed"] == status["duplicate"] == 0
    assert status["incoming"] == 0 and status["last_activity"] is None
    assert status["patients"] == 7
    human = spool.run("status", check=True).stdout
    assert "filed" in human and "backlog" in human and "never" in human


def test_status_counts_each_outcome(spool: Spool, tmp_path: Path) -> None:
    one_of_each(spool, tmp_path)
    (spool.home / "incoming" / "waiting.pdf").write_bytes(b"%PDF-1.4")
    status = json.loads(spool.run("status", "--json", check=True).stdout)
    assert (status["filed"], status["review"], status["failed"], status["duplicate"]) == (
        1, 1, 1, 1)
    assert status["today"] == {"filed": 1, "review": 1, "failed": 1}
    assert status["incoming"] == 1 and status["oldest_waiting_seconds"] is not None
    assert status["last_activity"]


def test_review_list_then_resolve_files_it(spool: Spool, tmp_path: Path) -> None:
    pdf = pdfgen.text_pdf([report("LEGRAND", "Paul", "01/01/1999")], tmp_path / "lg.pdf")
    [out] = spool.process_json(pdf)
    assert out["outcome"] == "review"
    listing = [json.loads(line) for line in spool.run("review", "list", "--json").stdout
               .splitlines()]
    assert [d["document_id"] for d in listing] == [out["document_id"]]
    assert {c["id"] for c in listing[0]["candidates"]} == {"P006", "P007"}
    assert listing[0]["read"]["last_name"] == "LEGRAND"
    human = spool.run("review", "list").stdout
    assert "candidate P006" in human and "candidate P007" in human

    short = str(out["document_id"])[:8]
    done = spool.run("review", "resolve", short, "P007")
    assert done.returncode == 0, done.stderr
    [filed] = [p for p in spool.files("done/P007") if p.suffix == ".pdf"]
    assert filed.read_bytes() == pdf.read_bytes()
    sidecar = json.loads(filed.with_suffix(".json").read_text())
    assert sidecar["patient_id"] == "P007"
    assert sidecar["decision"]["by"].startswith("shell:")
    assert spool.files("review") == []
    assert spool.run("review", "list").stdout.strip() == "nothing waiting for review"
    # Deciding twice is refused, and changes nothing.
    again = spool.run("review", "resolve", short, "P006")
    assert again.returncode == 2 and "not waiting for review" in again.stderr
    assert [p for p in spool.files("done/P006")] == []


def test_resolve_none_keeps_it_unassigned(spool: Spool, tmp_path: Path) -> None:
    pdf = pdfgen.text_pdf([report("NOBODY", "Alice", "01/01/1990")], tmp_path / "n.pdf")
    [out] = spool.process_json(pdf)
    done = spool.run("review", "resolve", str(out["document_id"]), "--none")
    assert done.returncode == 0, done.stderr
    assert [p.suffix for p in spool.files("done/unassigned")] == [".json", ".pdf", ".txt"]


def test_resolve_refuses_unknown_patient_and_document(spool: Spool, tmp_path: Path) -> None:
    pdf = pdfgen.text_pdf([report("NOBODY", "Alice", "01/01/1990")], tmp_path / "n.pdf")
    [out] = spool.process_json(pdf)
    done = spool.run("review", "resolve", str(out["document_id"]), "P999")
    assert done.returncode == 2 and "no patient with id P999" in done.stderr
    done = spool.run("review", "resolve", "ffffffff", "P001")
    assert done.returncode == 2 and "no document" in done.stderr
    assert len([p for p in spool.files("review") if p.suffix == ".pdf"]) == 1


def test_failed_list_and_retry(spool: Spool, tmp_path: Path) -> None:
    bad = tmp_path / "scan.pdf"
    bad.write_bytes(b"")
    [out] = spool.process_json(bad)
    listing = spool.run("failed", "list").stdout
    assert str(out["document_id"]) in listing and "[empty]" in listing
    assert "scan the document again" in listing.lower()
    done = spool.run("retry", str(out["document_id"]))
    assert done.returncode == 0, done.stderr
    assert spool.files("failed") == []
    assert [p.name for p in spool.files("processing")] == [f"{out['document_id']}.pdf"]
    status = json.loads(spool.run("status", "--json").stdout)
    assert status["queued"] == 1 and status["failed"] == 0


def test_patients_import_is_idempotent_and_reports_rejections(spool: Spool, tmp_path: Path) -> None:
    csv = tmp_path / "more.csv"
    csv.write_text(
        "id,last_name,first_name,birth_date,phone\n"
        "P001,DUPONT,Jean,1961-03-12,0600000000\n"   # update: a new extra column value
        "P100,Nouveau,Léa,2001-02-03,\n"             # added
        ",Sans,Id,2000-01-01,\n"                      # line 4: missing id
        "P101,Mauvaise,Date,31/02/2001,\n"            # line 5: bad date
        "../x,Evil,Id,2000-01-01,\n",                 # line 6: unsafe id
        encoding="utf-8")
    done = spool.run("patients", "import", str(csv))
    assert done.returncode == 1
    assert "1 added, 1 updated, 0 unchanged, 3 rejected" in done.stdout
    assert "line 4: no patient id" in done.stdout
    assert "line 5: the birth date '31/02/2001' is impossible: 31 February 2001 does not exist" \
        in done.stdout
    assert "line 6:" in done.stdout
    again = spool.run("patients", "import", str(csv))
    assert "0 added, 0 updated, 2 unchanged, 3 rejected" in again.stdout
    assert json.loads(spool.run("status", "--json").stdout)["patients"] == 8


def test_patients_import_refuses_reserved_ids_and_control_characters(spool: Spool,
                                                                     tmp_path: Path) -> None:
    csv = tmp_path / "reserved.csv"
    csv.write_text(
        "id,last_name,first_name,birth_date\n"
        "unassigned,Piège,Paul,1980-01-01\n"        # line 2: done/unassigned/ is taken
        "UNASSIGNED,Piège,Pierre,1980-01-01\n"      # line 3: the same folder on a share
        '"P200","ROUGE\x1b[31m","Eve",1980-01-01\n'  # line 4: a terminal escape
        "P201,Lignes\u2028P9,Bob,1980-01-01\n"       # line 5: one row, not two
        "P202,Juste,Line,1980-01-01\n",
        encoding="utf-8")
    done = spool.run("patients", "import", str(csv))
    assert done.returncode == 1, done.stderr
    assert "1 added, 0 updated, 0 unchanged, 4 rejected" in done.stdout
    assert "line 2: the patient id 'unassigned' is reserved" in done.stdout
    assert "line 3: the patient id 'UNASSIGNED' is reserved" in done.stdout
    assert "line 4: the last name 'ROUGE\\x1b[31m' holds a control character" in done.stdout
    assert "line 5: the last name 'Lignes\\u2028P9' holds a control character" in done.stdout
    assert "\x1b" not in done.stdout
    assert json.loads(spool.run("status", "--json").stdout)["patients"] == 8
    # done/unassigned/ stays what `review resolve --none` files into, and nothing else.
    pdf = pdfgen.text_pdf([report("NOBODY", "Alice", "01/01/1990")], tmp_path / "n.pdf")
    [out] = spool.process_json(pdf)
    refused = spool.run("review", "resolve", str(out["document_id"]), "unassigned")
    assert refused.returncode == 2 and "no patient with id unassigned" in refused.stderr


def test_patients_import_rejects_a_huge_field_as_one_line(spool: Spool, tmp_path: Path) -> None:
    csv = tmp_path / "huge.csv"
    big = "A" * (200 * 1024)  # over csv's 128 KB field limit
    csv.write_text("id,last_name,first_name,birth_date,notes\n"
                   "P300,Avant,Anne,1980-01-01,\n"
                   f"P301,Gros,Guy,1980-01-01,{big}\n"
                   f'P302,Cité,Claire,1980-01-01,"{big}"\n'
                   "P303,Après,Alain,1980-01-01,\n", encoding="utf-8")
    done = spool.run("patients", "import", str(csv))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stderr == ""
    assert "2 added, 0 updated, 0 unchanged, 2 rejected" in done.stdout
    assert "line 3: not readable as CSV (field larger than field limit (131072))" in done.stdout
    assert "line 4: not readable as CSV" in done.stdout
    header = tmp_path / "huge-header.csv"
    header.write_text(f"id,last_name,first_name,birth_date,{big}\nP1,A,B,1980-01-01,x\n")
    done = spool.run("patients", "import", str(header))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "its first line is not readable as CSV" in done.stderr


def test_patients_import_refuses_a_file_without_the_columns(spool: Spool, tmp_path: Path) -> None:
    csv = tmp_path / "wrong.csv"
    csv.write_text("name,dob\nx,y\n")
    done = spool.run("patients", "import", str(csv))
    assert done.returncode == 2 and "last_name" in done.stderr


def test_under_systemd_stdout_lines_carry_their_priority(spool: Spool, tmp_path: Path) -> None:
    bad = tmp_path / "x.pdf"
    bad.write_bytes(b"")
    incoming = spool.home / "incoming"
    (incoming / "x.pdf").write_bytes(b"%PDF-1.4 junk")
    journal = tmp_path / "journal.txt"
    with open(journal, "w") as stream:
        info = os.fstat(stream.fileno())
        env = {**spool.env, "JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}",
               "DOCAGENT_INCOMPLETE_SECONDS": "1", "DOCAGENT_STABLE_SECONDS": "0.2"}
        proc = subprocess.Popen([DOCAGENT, "run"], env=env, cwd=spool.root, stdout=stream,
                                stderr=subprocess.STDOUT)
    try:
        until(lambda: "failed" in (text := journal.read_text()) and "incomplete" in text, 60,
              "the incomplete file to fail", process=proc, output=journal.read_text)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lines = journal.read_text().splitlines()
    assert all(line.startswith(("<3>", "<4>", "<6>", "<7>")) for line in lines), lines
    assert any(line.startswith("<6>") and "watching" in line for line in lines)
    assert any(line.startswith("<3>") and "incomplete" in line for line in lines)
    assert os.path.exists(spool.logs / "docagent.log")
