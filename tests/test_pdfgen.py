"""The fixture generators make what they claim, checked with the real poppler/qpdf/tesseract."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from tests.pdfgen import (
    corrupt,
    degrade,
    empty_pages_pdf,
    encrypted_pdf,
    image_pdf,
    lab_report_lines,
    mixed_pdf,
    render_page,
    text_pdf,
    truncated,
    write_sample_scan,
    zero_pages_pdf,
)

REPO = Path(__file__).resolve().parent.parent


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing tools: {', '.join(missing)} (./deploy/dev.sh test installs them)")


def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, check=False, timeout=120
    )


def pdfinfo(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    _need("pdfinfo")
    return run("pdfinfo", *extra, path)


def pages(path: Path) -> int:
    proc = pdfinfo(path)
    assert proc.returncode == 0, proc.stderr
    for line in proc.stdout.splitlines():
        if line.startswith("Pages:"):
            return int(line.split(":", 1)[1])
    raise AssertionError(f"no Pages: line in {proc.stdout!r}")


def pdftotext(path: Path, *extra: str) -> str:
    _need("pdftotext")
    proc = run("pdftotext", "-enc", "UTF-8", *extra, path, "-")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def font_rows(path: Path) -> list[str]:
    """The pdffonts table rows (below the two header lines)."""
    _need("pdffonts")
    proc = run("pdffonts", path)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines()[2:] if line.strip()]


LINES_FR = [
    "# COMPTE RENDU",
    "Nom : MARTIN    Prénom : Hélène",
    "Patiente née le 02/07/1948 à Besançon",
    "Cœur, garçon, côte, à jeun (contrôle) C:\\dossier",
]


@pytest.fixture(scope="module")
def small_scan() -> Image.Image:
    """A cheap degraded page (100 dpi) for PDF-structure tests that need an image."""
    lines = lab_report_lines(last="DUPONT", first="Jean", birth="12/03/1961", doc_date="05/11/2026")
    return degrade(render_page(lines, dpi=100), seed=7, blur=0.4)


# --- page images -----------------------------------------------------------------------------


def test_render_page_is_a4_grayscale_with_ink() -> None:
    img = render_page(["# TITRE", "ligne", "", "a    b"], dpi=100)
    assert img.mode == "L"
    assert img.size == (827, 1169)
    lo, hi = img.getextrema()
    assert (lo, hi) == (0, 255)
    assert render_page([], dpi=300).size == (2480, 3508)


def test_degrade_is_seeded_and_keeps_size() -> None:
    page = render_page(["Nom : DUPONT"], dpi=100)
    a = degrade(page, seed=1)
    assert a.mode == "L" and a.size == page.size
    assert a.tobytes() == degrade(page, seed=1).tobytes()
    assert a.tobytes() != degrade(page, seed=2).tobytes()
    colour = degrade(page, seed=1, colour=True, rotate180=True)
    assert colour.mode == "RGB" and colour.size == page.size
    # Paper is yellowish: blue channel darker than red in a blank corner.
    r, _g, b = ImageStat.Stat(colour.crop((0, 0, 50, 50))).mean
    assert r > b + 10


def test_lab_report_lines_shapes() -> None:
    fr = lab_report_lines(last="DUPONT", first="Jean", birth="12/03/1961", doc_date="05/11/2026")
    text = "\n".join(fr)
    assert fr[0] == "# LABORATOIRE DE BIOLOGIE MÉDICALE DU CENTRE"
    for want in ("Nom : DUPONT", "Prénom : Jean", "Né(e) le : 12/03/1961",
                 "Date du prélèvement : 05/11/2026", "Prescripteur : Dr Paul LEROY",
                 "Hémoglobine", "Glycémie", "Dr Anne ROUX, biologiste"):
        assert want in text
    en = "\n".join(lab_report_lines(last="Smith", first="John", birth="1961-03-12",
                                    doc_date="2026-11-05", lang="en"))
    for want in ("Patient: John Smith", "DOB: 1961-03-12", "Date of report: 2026-11-05",
                 "Ordered by: Dr"):
        assert want in en
    bare = "\n".join(lab_report_lines(last="DUPONT", first="Jean", birth="x", doc_date="y",
                                      extra_names=False))
    assert "LEROY" not in bare and "ROUX" not in bare and "DUPONT" in bare


# --- PDFs ------------------------------------------------------------------------------------


def test_text_pdf_has_text_layer_with_accents(tmp_path: Path) -> None:
    pdf = text_pdf([LINES_FR, ["page deux"]], tmp_path / "t.pdf")
    text = pdftotext(pdf)
    for want in ("Hélène", "Prénom", "née le", "Besançon", "Cœur", "garçon", "côte",
                 "(contrôle)", "C:\\dossier", "COMPTE RENDU", "page deux"):
        assert want in text, want
    assert "# " not in text
    assert pages(pdf) == 2
    assert any("Helvetica" in row and "WinAnsi" in row for row in font_rows(pdf))
    _need("qpdf")
    check = run("qpdf", "--check", pdf)
    assert check.returncode == 0, check.stdout + check.stderr


def test_image_pdf_has_no_fonts_and_no_text(tmp_path: Path, small_scan: Image.Image) -> None:
    pdf = image_pdf([small_scan, small_scan, small_scan], tmp_path / "i.pdf", dpi=100)
    assert font_rows(pdf) == []
    assert pdftotext(pdf).strip() == ""
    assert pages(pdf) == 3
    info = pdfinfo(pdf).stdout
    assert "(A4)" in info


def test_mixed_pdf_keeps_page_order_and_kinds(tmp_path: Path, small_scan: Image.Image) -> None:
    pdf = mixed_pdf([LINES_FR, small_scan, ["# DERNIÈRE PAGE"]], tmp_path / "m.pdf")
    assert pages(pdf) == 3
    assert "Hélène" in pdftotext(pdf, "-f", "1", "-l", "1")
    assert pdftotext(pdf, "-f", "2", "-l", "2").strip() == ""
    assert "DERNIÈRE PAGE" in pdftotext(pdf, "-f", "3", "-l", "3")


def test_empty_pages_pdf_10000_is_fast_and_small(tmp_path: Path) -> None:
    start = time.perf_counter()
    pdf = empty_pages_pdf(10_000, tmp_path / "e.pdf")
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0
    assert pdf.stat().st_size < 3_000_000
    assert pages(pdf) == 10_000
    assert pdftotext(pdf, "-f", "1", "-l", "3").strip() == ""


def test_zero_pages_pdf(tmp_path: Path) -> None:
    pdf = zero_pages_pdf(tmp_path / "z.pdf")
    _need("qpdf")
    assert run("qpdf", "--check", pdf).returncode == 0
    assert run("qpdf", "--show-npages", pdf).stdout.strip() == "0"
    # poppler 22.12 refuses it: "Syntax Error: Invalid page count 0" and exit 99. Others may
    # print "Pages: 0"; either way it must not claim a page.
    proc = pdfinfo(pdf)
    if proc.returncode == 0:
        assert "Pages:           0" in proc.stdout
    else:
        assert "page count 0" in proc.stderr or "page range" in proc.stderr, proc.stderr


def test_encrypted_pdf_with_user_password(tmp_path: Path) -> None:
    src = text_pdf([LINES_FR], tmp_path / "src.pdf")
    locked = encrypted_pdf(src, tmp_path / "locked.pdf")
    proc = pdfinfo(locked)
    assert proc.returncode != 0
    assert "password" in proc.stderr.lower()
    opened = pdfinfo(locked, "-upw", "secret")
    assert opened.returncode == 0 and "AES-256" in opened.stdout


def test_encrypted_pdf_with_empty_user_password(tmp_path: Path) -> None:
    src = text_pdf([LINES_FR], tmp_path / "src.pdf")
    pdf = encrypted_pdf(src, tmp_path / "open.pdf", user_password="")
    proc = pdfinfo(pdf)
    assert proc.returncode == 0, proc.stderr
    assert "Encrypted:       yes" in proc.stdout
    assert "Hélène" in pdftotext(pdf)


def test_truncated_is_a_prefix_and_unreadable(tmp_path: Path) -> None:
    src = text_pdf([LINES_FR] * 3, tmp_path / "src.pdf")
    cut = truncated(src, tmp_path / "cut.pdf")
    data, whole = cut.read_bytes(), src.read_bytes()
    assert len(data) == len(whole) // 2 and whole.startswith(data)
    # No xref or trailer left: poppler 22.12 says "Couldn't read xref table" and exits 1.
    proc = pdfinfo(cut)
    assert proc.returncode != 0
    assert "xref" in proc.stderr or "trailer" in proc.stderr, proc.stderr


def test_corrupt_is_seeded_and_spares_the_header(tmp_path: Path) -> None:
    src = text_pdf([LINES_FR], tmp_path / "src.pdf")
    a = corrupt(src, tmp_path / "a.pdf", seed=3, flips=20).read_bytes()
    b = corrupt(src, tmp_path / "b.pdf", seed=3, flips=20).read_bytes()
    c = corrupt(src, tmp_path / "c.pdf", seed=4, flips=20).read_bytes()
    whole = src.read_bytes()
    assert a == b != c
    assert len(a) == len(whole)
    assert a.startswith(b"%PDF-1.4\n")
    changed = sum(x != y for x, y in zip(a, whole, strict=True))
    assert 0 < changed <= 20


def test_sample_cli_writes_a_scanned_report(tmp_path: Path) -> None:
    out = tmp_path / "sample.pdf"
    proc = subprocess.run(
        [sys.executable, "-m", "tests.pdfgen", "sample", str(out), "--last", "MARTIN",
         "--first", "Hélène", "--birth", "02/07/1948"],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert pages(out) == 1
    assert font_rows(out) == []
    assert write_sample_scan(tmp_path / "api.pdf", seed=2).stat().st_size > 10_000


@pytest.mark.ocr
def test_degraded_lab_report_is_ocr_readable(tmp_path: Path) -> None:
    _need("tesseract")
    langs = run("tesseract", "--list-langs").stdout.split()
    if "fra" not in langs:
        pytest.fail("tesseract has no fra data (apt-get install tesseract-ocr-fra)")
    lines = lab_report_lines(last="DUPONT", first="Jean", birth="12/03/1961", doc_date="05/11/2026")
    png = tmp_path / "page.png"
    degrade(render_page(lines), seed=11).save(png)
    proc = run("tesseract", png, "-", "-l", "fra", "--psm", "1")
    assert proc.returncode == 0, proc.stderr
    assert "DUPONT" in proc.stdout
    assert "1961" in proc.stdout
