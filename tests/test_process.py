"""Every outcome end to end through `docagent process --json`, with real poppler and tesseract."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests import pdfgen
from tests.conftest import Spool
from tests.pdfgen import report

JSON_FIELDS = {"file", "document_id", "outcome", "reason", "patient_id", "pages",
               "text_source", "duration_ms"}


def test_born_digital_report_is_filed_under_the_one_patient(spool: Spool, tmp_path: Path) -> None:
    pdf = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975")], tmp_path / "bilan.pdf")
    before = pdf.read_bytes()
    [out] = spool.process_json(pdf)
    assert set(out) >= JSON_FIELDS
    assert out["outcome"] == "filed", out
    assert out["patient_id"] == "P002"
    assert out["text_source"] == "text-layer" and out["pages"] == 1
    assert pdf.read_bytes() == before  # the original is never touched
    [filed] = [p for p in spool.files("done/P002") if p.suffix == ".pdf"]
    assert filed.read_bytes() == before  # the archive keeps the original bytes
    assert filed.name == "2026-11-05_lab-result_bilan.pdf"
    sidecar = json.loads(filed.with_suffix(".json").read_text())
    assert sidecar["patient_id"] == "P002"
    assert sidecar["fields"]["birth_date"]["value"] == "1975-04-03"
    assert sidecar["text_source"] == "text-layer"
    assert "Hélène" in filed.with_suffix(".txt").read_text()
    assert spool.files("processing") == []


@pytest.mark.ocr
def test_scanned_french_lab_report_is_read_by_ocr_and_filed(spool: Spool, tmp_path: Path) -> None:
    pdf = pdfgen.write_sample_scan(tmp_path / "scan.pdf", last="DUPONT", first="Jean",
                                   birth="12/03/1961", seed=3)
    [out] = spool.process_json(pdf)
    assert out["outcome"] == "filed", out
    assert out["patient_id"] == "P001"
    assert out["text_source"] == "ocr"
    sidecar = json.loads(next(p for p in spool.files("done/P001") if p.suffix == ".json")
                         .read_text())
    [page] = sidecar["page_sources"]
    assert page["source"] == "ocr" and page["confidence"] > 50


def test_unknown_patient_goes_to_review_with_why(spool: Spool, tmp_path: Path) -> None:
    pdf = pdfgen.text_pdf([report("NOBODY", "Alice", "01/01/1990")], tmp_path / "x.pdf")
    [out] = spool.process_json(pdf)
    assert out["outcome"] == "review" and out["patient_id"] is None
    assert "NOBODY" in str(out["reason"])
    assert [p.suffix for p in spool.files("review")] == [".json", ".pdf", ".txt"]


def test_homonyms_without_birth_date_agreement_go_to_review(spool: Spool, tmp_path: Path) -> None:
    # Two Paul LEGRAND in the directory, and the document's birth date matches neither.
    pdf = pdfgen.text_pdf([report("LEGRAND", "Paul", "01/01/1999")], tmp_path / "p.pdf")
    [out] = spool.process_json(pdf)
    assert out["outcome"] == "review"
    pdf2 = pdfgen.text_pdf([report("LEGRAND", "Paul", "14/09/1982")], tmp_path / "p2.pdf")
    [out2] = spool.process_json(pdf2)
    assert out2["outcome"] == "filed" and out2["patient_id"] == "P007"


def test_birth_date_conflict_is_never_filed(spool: Spool, tmp_path: Path) -> None:
    pdf = pdfgen.text_pdf([report("DUPONT", "Jean", "13/03/1961")], tmp_path / "d.pdf")
    [out] = spool.process_json(pdf)
    assert out["outcome"] == "review"


def test_same_bytes_twice_is_a_duplicate_naming_the_first(spool: Spool, tmp_path: Path) -> None:
    pdf = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975")], tmp_path / "a.pdf")
    copy = tmp_path / "copie.pdf"
    copy.write_bytes(pdf.read_bytes())
    first, second = spool.process_json(pdf, copy)
    assert first["outcome"] == "filed"
    assert second["outcome"] == "duplicate"
    assert second["document_id"] == first["document_id"]
    assert "a.pdf" in str(second["reason"])
    assert len([p for p in spool.files("done") if p.suffix == ".pdf"]) == 1


def test_name_clash_gets_a_suffix_never_an_overwrite(spool: Spool, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975")], tmp_path / "a" / "r.pdf")
    two = pdfgen.text_pdf([[*report("MARTIN", "Hélène", "03/04/1975"), "Page 2 bis"]],
                          tmp_path / "b" / "r.pdf")
    outs = spool.process_json(one, two)
    assert [o["outcome"] for o in outs] == ["filed", "filed"]
    names = sorted(p.name for p in spool.files("done/P002") if p.suffix == ".pdf")
    assert names == ["2026-11-05_lab-result_r (2).pdf", "2026-11-05_lab-result_r.pdf"]


BAD_INPUTS = {
    "zero-bytes.pdf": ("empty", "inspect", lambda d: (d / "zero-bytes.pdf").write_bytes(b"")),
    # A JPEG's first bytes and nothing of an image after them: converted as the image it says
    # it is, it fails as a damaged one (tests/test_images.py has the real photos).
    "photo.pdf": ("corrupt-image", "convert",
                  lambda d: (d / "photo.pdf").write_bytes(b"\xff\xd8\xff\xe0JFIF" + b"\0" * 500)),
    "notes.pdf": ("not-pdf", "inspect",
                  lambda d: (d / "notes.pdf").write_text("just some text\n" * 50)),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_files_fail_with_a_reason_file(spool: Spool, tmp_path: Path, name: str) -> None:
    kind, stage, make = BAD_INPUTS[name]
    make(tmp_path)
    [out] = spool.process_json(tmp_path / name)
    assert out["outcome"] == "failed" and out["reason"]
    reason = json.loads((spool.home / "failed" / f"{name}.reason.json").read_text())
    assert reason["kind"] == kind and reason["message"] and reason["action"]
    assert reason["sha256"] and reason["stage"] == stage
    assert (spool.home / "failed" / name).exists()


def test_hostile_pdfs_each_get_their_reason(spool: Spool, tmp_path: Path) -> None:
    good = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975")], tmp_path / "good.pdf")
    cases = {
        "locked.pdf": pdfgen.encrypted_pdf(good, tmp_path / "locked.pdf", user_password="pw"),
        "cut.pdf": pdfgen.truncated(good, tmp_path / "cut.pdf", keep=0.3),
        "nopages.pdf": pdfgen.zero_pages_pdf(tmp_path / "nopages.pdf"),
        "long.pdf": pdfgen.empty_pages_pdf(500, tmp_path / "long.pdf"),
    }
    outs = {Path(str(o["file"])).name: o for o in spool.process_json(*cases.values())}
    kinds = {}
    for name in cases:
        assert outs[name]["outcome"] == "failed", outs[name]
        kinds[name] = json.loads((spool.home / "failed" / f"{name}.reason.json")
                                 .read_text())["kind"]
    assert kinds["locked.pdf"] == "encrypted"
    assert "password" in str(outs["locked.pdf"]["reason"])
    assert kinds["cut.pdf"] in ("corrupt", "unreadable")
    assert kinds["nopages.pdf"] == "no-pages"
    assert kinds["long.pdf"] == "too-many-pages"


def test_empty_user_password_is_read_normally(spool: Spool, tmp_path: Path) -> None:
    good = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975")], tmp_path / "g.pdf")
    opened = pdfgen.encrypted_pdf(good, tmp_path / "open.pdf", user_password="")
    [out] = spool.process_json(opened)
    assert out["outcome"] == "filed"


def test_limits_from_configuration(spool: Spool, tmp_path: Path) -> None:
    pdf = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975")] * 3, tmp_path / "m.pdf")
    done = spool.run("process", "--json", str(pdf), env={"DOCAGENT_MAX_PAGES": "2"})
    assert json.loads(done.stdout)["outcome"] == "failed"
    assert "3 pages" in json.loads(done.stdout)["reason"]
    assert done.returncode == 1
    big = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975"), ["x"]], tmp_path / "b.pdf")
    done = spool.run("process", "--json", str(big), env={"DOCAGENT_MAX_BYTES": "100"})
    out = json.loads(done.stdout)
    assert out["outcome"] == "failed" and "limit" in out["reason"]


def test_awkward_names_are_kept_readable_and_safe(spool: Spool, tmp_path: Path) -> None:
    lines = report("MARTIN", "Hélène", "03/04/1975")
    names = ["compte rendu é.pdf", "a\nb.pdf", "..pdf", "x" * 240 + ".pdf"]
    paths = [pdfgen.text_pdf([[*lines, f"ref {i}"]], tmp_path / f"{i}.pdf")
             for i in range(len(names))]
    weird = []
    for path, name in zip(paths, names, strict=True):
        target = tmp_path / "w" / name
        target.parent.mkdir(exist_ok=True)
        path.rename(target)
        weird.append(target)
    bad_utf8 = os.fsencode(tmp_path / "w") + b"/caf\xe9.pdf"
    os.rename(pdfgen.text_pdf([[*lines, "ref x"]], tmp_path / "u.pdf"), bad_utf8)
    weird.append(Path(os.fsdecode(bad_utf8)))
    outs = spool.process_json(*weird)
    assert [o["outcome"] for o in outs] == ["filed"] * 5
    stored = [p.name for p in spool.files("done/P002") if p.suffix == ".pdf"]
    assert len(stored) == 5
    for name in stored:
        assert "\n" not in name and "/" not in name and not name.startswith(".")
        assert len(name.encode()) <= 200
    assert any("compte rendu é" in n for n in stored)
    assert any("caf\ufffd" in n for n in stored)


def test_missing_engine_defers_instead_of_failing(spool: Spool, tmp_path: Path) -> None:
    scan = pdfgen.write_sample_scan(tmp_path / "scan.pdf", seed=5)
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    done = spool.run("process", "--json", str(scan), env={"PATH": str(empty_bin)})
    assert done.returncode == 1
    out = json.loads(done.stdout)
    assert out["outcome"] == "deferred" and "retried by itself" in str(out["reason"])
    assert spool.files("failed") == []
    status = json.loads(spool.run("status", "--json").stdout)
    assert status["queued"] == 1 and status["deferred"] == 1
