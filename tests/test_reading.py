"""Reading pages: per-page text source, orientation, bounds, child CPU and the shared cap."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from agent.errors import PageTooLarge
from agent.notify.messages import render
from agent.stages import ocr
from agent.stages.fields import Found, ParsedFields
from agent.stages.record import PageSource, identity_confidence
from agent.tools import runner
from tests import pdfgen
from tests.conftest import Spool

JUNK = [" ~ ,; ll|I 1l1 :: .. ^^ -- __ ii '' ,, ;;", "|| Il !! 11 rn :: ~~ .. ll ,, ^ --",
        " , . ; : ll 1I I1 '' ~ _ | ii jj --"] * 12


def short_scan(last: str, first: str, birth: str, *, seed: int, rotate180: bool = False,
               ) -> Image.Image:
    """A small poor scan (few lines, so tesseract is quick) naming one patient."""
    lines = ["# COMPTE RENDU D'ANALYSES", "", f"Nom : {last}    Prénom : {first}",
             f"Né(e) le : {birth}", "Date du prélèvement : 05/11/2026", "",
             "Hémoglobine         13,8          g/dL"]
    return pdfgen.degrade(pdfgen.render_page(lines), seed=seed, rotate180=rotate180)


# --- which pages have a real text layer (no OCR) ------------------------------------------


def test_a_real_text_layer_counts() -> None:
    text = "\n".join(pdfgen.report("DUPONT", "Jean", "12/03/1961"))
    assert ocr.has_text_layer(text)
    assert ocr.has_text_layer("Compte rendu de consultation du patient, suivi cardiologique.")


@pytest.mark.parametrize("layer", [
    "",
    "   \n\f  ",
    "12/03/1961 04 78 00 00 00 69002 2611-0457",
    "\n".join(JUNK),
    "rn ll ii jj Il ~~ mm nn rr tt ss",
])
def test_garbage_text_layer_counts_as_absent(layer: str) -> None:
    assert not ocr.has_text_layer(layer)


# --- sizes and the pixel cap (no OCR) ------------------------------------------------------


def test_an_enormous_page_is_rendered_at_a_lower_dpi() -> None:
    options = ocr.OcrOptions(dpi=300, max_pixels=50_000_000)
    a4 = (595.276, 841.89)
    assert ocr.check_size(1, a4, options) == 300
    a0 = (2383.94, 3370.39)  # 33 x 47 in: 140 MP at 300 dpi
    dpi = ocr.check_size(1, a0, options)
    assert dpi < 300
    assert (a0[0] / 72 * dpi) * (a0[1] / 72 * dpi) <= options.max_pixels


def test_a_page_over_the_pixel_cap_even_at_the_lowest_dpi_is_refused() -> None:
    options = ocr.OcrOptions(max_pixels=1_000_000)
    with pytest.raises(PageTooLarge) as raised:
        ocr.check_size(2, (2160.0, 2160.0), options)  # 30 x 30 in: 1.17 MP at 36 dpi
    assert "page 2" in raised.value.message and "pixel cap" in raised.value.message


# --- child processes: exact CPU, deadline, shared cap --------------------------------------


def test_child_cpu_seconds_are_the_childs_own() -> None:
    busy = "import time\nwhile time.process_time() < 0.3: pass\n"
    done = runner.run([sys.executable, "-c", busy], timeout=60)
    assert done.returncode == 0
    assert done.cpu_seconds >= 0.3


def test_a_child_past_its_deadline_is_killed() -> None:
    with pytest.raises(runner.ChildTimeout):
        runner.run(["sleep", "30"], timeout=0.2)


def test_slots_never_let_more_children_run_than_cores() -> None:
    inside = 0
    most = 0
    lock = threading.Lock()

    def page() -> None:
        nonlocal inside, most
        with runner.slot():
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.02)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=page) for _ in range(4 * runner.slot_count())]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= most <= runner.slot_count()


# --- confidence in the review notification -------------------------------------------------


def _fields(page: int) -> ParsedFields:
    return ParsedFields(Found("DUPONT", page, "", "t"), Found("Jean", page, "", "t"),
                        Found("1961-03-12", page, "", "t"), None, "lab", "analyses")


def test_identity_confidence_is_that_of_the_page_the_identity_was_read_on() -> None:
    pages = [PageSource(1, "text-layer"), PageSource(2, "ocr", 55.0, 300),
             PageSource(3, "ocr", 91.0, 300)]
    assert identity_confidence(_fields(2), pages) == 55.0
    assert identity_confidence(_fields(3), pages) == 91.0
    assert identity_confidence(_fields(1), pages) is None


def test_review_message_says_when_the_identity_was_read_with_low_confidence() -> None:
    payload = {"document_id": "d1", "original_name": "a.pdf", "reason": "no patient matches",
               "fields": {"last_name": {"value": "DUPONT"}}}
    assert "Low-confidence" in render("review", payload | {"identity_confidence": 55.0})
    assert "Low-confidence" not in render("review", payload | {"identity_confidence": 91.0})
    assert "Low-confidence" not in render("review", payload | {"identity_confidence": None})


def test_the_doubt_follows_the_threshold_the_match_was_decided_with() -> None:
    payload = {"document_id": "d1", "original_name": "a.pdf", "identity_confidence": 80.0,
               "fields": {"last_name": {"value": "DUPONT"}}}
    assert "Low-confidence" not in render("review", payload)  # the default, 70
    assert "Low-confidence" in render("review", payload | {"match": {"min_name_confidence": 85}})
    lenient = payload | {"identity_confidence": 55.0, "match": {"min_name_confidence": 50}}
    assert "Low-confidence" not in render("review", lenient)


# --- real OCR, kept small -------------------------------------------------------------------


@pytest.mark.ocr
def test_mixed_pdf_takes_each_pages_own_source_and_reads_an_upside_down_page(
        spool: Spool, tmp_path: Path) -> None:
    cover = ["# CENTRE HOSPITALIER", "", "Bordereau de transmission des résultats",
             "Le présent envoi comporte les pages suivantes du dossier médical."]
    upright = short_scan("MARTIN", "Hélène", "03/04/1975", seed=11)
    upside_down = short_scan("MARTIN", "Hélène", "03/04/1975", seed=12, rotate180=True)
    scan = pdfgen.image_pdf([short_scan("MARTIN", "Hélène", "03/04/1975", seed=13)],
                            tmp_path / "s.pdf")
    junk = pdfgen.text_pdf([JUNK], tmp_path / "junk.pdf", invisible=True)
    junk_on_scan = pdfgen.overlay_pdf(scan, junk, tmp_path / "junk-on-scan.pdf")
    body = pdfgen.mixed_pdf([cover, upright, upside_down], tmp_path / "body.pdf")
    pdf = tmp_path / "mixed.pdf"
    subprocess.run(["qpdf", "--empty", "--pages", str(body), str(junk_on_scan), "--", str(pdf)],
                   check=True)

    [out] = spool.process_json(pdf)
    assert out["outcome"] == "filed" and out["patient_id"] == "P002", out
    assert out["text_source"] == "mixed"
    [meta] = [p for p in spool.files("done/P002") if p.suffix == ".json"]
    sources = json.loads(meta.read_text())["page_sources"]
    assert [p["source"] for p in sources] == ["text-layer", "ocr", "ocr", "ocr"]
    assert all(p["cpu_seconds"] > 0 for p in sources[1:])
    assert all(p["confidence"] > 70 for p in sources[1:])
    text = next(p for p in spool.files("done/P002") if p.suffix == ".txt").read_text()
    pages = text.split("\f")
    assert "Bordereau de transmission" in pages[0]
    for page in pages[1:]:
        assert "MARTIN" in page and "03/04/1975" in page


@pytest.mark.ocr
def test_a_page_over_the_ocr_time_limit_fails_its_document(spool: Spool, tmp_path: Path) -> None:
    # 600 dpi of a noisy full page is several seconds of tesseract: far over a 1 s limit.
    lines = pdfgen.report("DUPONT", "Jean", "12/03/1961")
    pdf = pdfgen.image_pdf([pdfgen.degrade(pdfgen.render_page(lines), seed=5, noise=0.2)],
                           tmp_path / "slow.pdf")
    done = spool.run("process", "--json", str(pdf),
                     env={"DOCAGENT_OCR_TIMEOUT": "1", "DOCAGENT_OCR_DPI": "600"})
    out = json.loads(done.stdout)
    assert out["outcome"] == "failed", out
    reason = json.loads((spool.home / "failed" / "slow.pdf.reason.json").read_text())
    assert reason["kind"] == "ocr-timeout"
    assert "time limit" in reason["message"] and "page 1" in reason["message"]


def test_a_page_over_the_pixel_cap_fails_its_document(spool: Spool, tmp_path: Path) -> None:
    big = Image.new("L", (1500, 1500), 255)  # at 50 dpi: a 30 x 30 inch page
    pdf = pdfgen.image_pdf([big], tmp_path / "poster.pdf", dpi=50)
    done = spool.run("process", "--json", str(pdf), env={"DOCAGENT_MAX_PIXELS": "1000000"})
    out = json.loads(done.stdout)
    assert out["outcome"] == "failed", out
    reason = json.loads((spool.home / "failed" / "poster.pdf.reason.json").read_text())
    assert reason["kind"] == "page-too-large"
    assert "pixel cap" in reason["message"]


@pytest.mark.ocr
@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_a_turned_page_is_read_as_an_upright_one(tmp_path: Path, degrees: int) -> None:
    """A page scanned upside down or on its side (a phone photo, a landscape feed) reads like
    the same page upright: its orientation is told before it is read."""
    upright = short_scan("MARTIN", "Hélène", "03/04/1975", seed=14)
    turned = upright.rotate(degrees, expand=True)
    pdf = pdfgen.image_pdf([upright, turned], tmp_path / f"turned-{degrees}.pdf")
    size = (595.276, 841.89)
    sizes = (size, size if degrees == 180 else size[::-1])
    first, second = ocr.read_pages(pdf, sizes, ocr.OcrOptions())
    for page in (first, second):
        assert "MARTIN" in page.text and "03/04/1975" in page.text, page.text
        assert page.confidence is not None and page.confidence > 70
    assert abs(first.confidence - second.confidence) < 5  # type: ignore[operator]
