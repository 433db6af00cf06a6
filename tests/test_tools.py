"""Each tool module on the real program: its command line, its typed answer, its failures.

No program is faked: generated PDFs (a locked one made with qpdf), a PATH with nothing on it
for "not installed", the runner's own limits and deadline for "over limit" and "out of time".
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.errors import OcrEngineMissing, PopplerMissing
from agent.tools import pdfinfo, pdftoppm, pdftotext, runner, systemctl, tesseract
from tests import pdfgen

MiB = 2**20
A4 = (595.276, 841.89)  # pdfgen's page size, in points


@pytest.fixture
def born(tmp_path: Path) -> Path:
    """Two born-digital pages naming DUPONT Jean."""
    lines = pdfgen.lab_report_lines(last="DUPONT", first="Jean", birth="12/03/1961",
                                    doc_date="05/11/2026")
    return pdfgen.text_pdf([lines, ["Page deux", "Conclusion du compte rendu"]],
                           tmp_path / "born.pdf")


@pytest.fixture
def nothing_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A PATH on which no tool is found (prlimit is looked for on the system's folders)."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@pytest.fixture
def memory() -> Iterator[None]:
    """A test may lower the children's memory limit; it is put back after."""
    yield
    runner.configure(memory=runner.DEFAULT_MEMORY)


# --- pdfinfo ---------------------------------------------------------------------------------


def test_pdfinfo_reads_pages_encryption_and_sizes(born: Path) -> None:
    info = pdfinfo.info(born, first=1, last=200, timeout=30)
    assert info.pages == 2 and not info.encrypted
    assert dict(info.page_sizes_pt) == {1: A4, 2: A4}
    assert pdfinfo.info(born, timeout=30).page_sizes_pt == {}  # sizes only when asked


def test_pdfinfo_prints_no_more_sizes_than_asked(tmp_path: Path) -> None:
    pdf = pdfgen.empty_pages_pdf(300, tmp_path / "many.pdf")
    info = pdfinfo.info(pdf, first=1, last=200, timeout=30)
    assert info.pages == 300 and sorted(info.page_sizes_pt) == list(range(1, 201))


def test_a_pdf_that_opens_without_a_password_says_it_is_encrypted(born: Path,
                                                                 tmp_path: Path) -> None:
    locked = pdfgen.encrypted_pdf(born, tmp_path / "open.pdf", user_password="")
    info = pdfinfo.info(locked, timeout=30)
    assert info.pages == 2 and info.encrypted


def test_pdfinfo_refuses_a_pdf_locked_with_a_password(born: Path, tmp_path: Path) -> None:
    locked = pdfgen.encrypted_pdf(born, tmp_path / "locked.pdf")
    with pytest.raises(pdfinfo.Refused) as refused:
        pdfinfo.info(locked, timeout=30)
    assert refused.value.why == "password" and "password" in refused.value.said.lower()


def test_pdfinfo_refuses_a_pdf_without_pages(tmp_path: Path) -> None:
    with pytest.raises(pdfinfo.Refused) as refused:
        pdfinfo.info(pdfgen.zero_pages_pdf(tmp_path / "zero.pdf"), timeout=30)
    assert refused.value.why == "no-pages"


def test_pdfinfo_refuses_a_damaged_pdf(born: Path, tmp_path: Path) -> None:
    with pytest.raises(pdfinfo.Refused) as refused:
        pdfinfo.info(pdfgen.truncated(born, tmp_path / "cut.pdf"), timeout=30)
    assert refused.value.why == "damaged" and refused.value.said
    assert refused.value.cpu_seconds >= 0


def test_pdfinfo_reads_a_passed_descriptor(born: Path) -> None:
    fd = os.open(born, os.O_RDONLY)
    try:
        assert pdfinfo.info(Path(f"/proc/self/fd/{fd}"), timeout=30, pass_fds=[fd]).pages == 2
    finally:
        os.close(fd)


def test_pdfinfo_over_its_memory_limit(tmp_path: Path, memory: None) -> None:
    pdf = pdfgen.empty_pages_pdf(10_000, tmp_path / "many.pdf")
    runner.configure(memory=12 * MiB)  # pdfinfo's libraries alone need about 20 MiB
    with pytest.raises(runner.OverLimit) as over:
        pdfinfo.info(pdf, timeout=30)
    assert over.value.limit == "12 MiB of memory"


def test_pdfinfo_version() -> None:
    assert pdfinfo.version().startswith("pdfinfo version ")


def test_pdfinfo_not_installed(born: Path, nothing_installed: None) -> None:
    assert not pdfinfo.PROGRAM.installed()
    with pytest.raises(PopplerMissing) as missing:
        pdfinfo.info(born, timeout=30, stage="inspect")
    assert missing.value.message == "pdfinfo (poppler) is not installed"
    assert missing.value.stage == "inspect"
    assert PopplerMissing.install in missing.value.advice


# --- pdftotext -------------------------------------------------------------------------------


def test_pdftotext_gives_each_pages_layer(born: Path) -> None:
    layers = pdftotext.layers(born, pages=3, timeout=30)
    assert len(layers.pages) == 3
    assert "DUPONT" in layers.pages[0] and "Conclusion" in layers.pages[1]
    assert "\f" not in layers.pages[0] and layers.pages[2] == ""
    assert layers.cpu_seconds > 0


def test_pdftotext_on_a_damaged_pdf_fails(born: Path, tmp_path: Path) -> None:
    with pytest.raises(runner.Failed):
        pdftotext.layers(pdfgen.truncated(born, tmp_path / "cut.pdf", keep=0.2), pages=1,
                         timeout=30)


def test_pdftotext_not_installed(born: Path, nothing_installed: None) -> None:
    with pytest.raises(PopplerMissing, match=r"^pdftotext \(poppler\) is not installed$"):
        pdftotext.layers(born, pages=2, timeout=30)


# --- pdftoppm --------------------------------------------------------------------------------


def test_pdftoppm_renders_a_grey_pgm_at_the_dpi_asked(born: Path, tmp_path: Path) -> None:
    image = pdftoppm.render(born, 2, dpi=144, base=tmp_path / "page", fmt="pgm", timeout=60)
    assert image.path == tmp_path / "page.pgm"
    head = image.path.read_bytes()[:20].split()
    assert head[0] == b"P5"  # binary greymap
    width, height = int(head[1]), int(head[2])
    assert abs(width - A4[0] * 2) <= 1 and abs(height - A4[1] * 2) <= 1  # 144 dpi: 2 px a point
    assert image.cpu_seconds > 0


def test_pdftoppm_renders_a_png(born: Path, tmp_path: Path) -> None:
    image = pdftoppm.render(born, 1, dpi=50, base=tmp_path / "first", fmt="png", timeout=60)
    assert image.path == tmp_path / "first.png"
    assert image.path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pdftoppm_fails_on_a_page_that_is_not_there(born: Path, tmp_path: Path) -> None:
    with pytest.raises(runner.Failed) as failed:
        pdftoppm.render(born, 5, dpi=72, base=tmp_path / "page", fmt="pgm", timeout=60)
    assert failed.value.said  # pdftoppm said why
    assert not (tmp_path / "page.pgm").exists()


def test_pdftoppm_out_of_time(born: Path, tmp_path: Path) -> None:
    with pytest.raises(runner.ChildTimeout):
        pdftoppm.render(born, 1, dpi=300, base=tmp_path / "page", fmt="pgm", timeout=0)


def test_pdftoppm_not_installed(born: Path, tmp_path: Path, nothing_installed: None) -> None:
    assert not pdftoppm.PROGRAM.installed()
    with pytest.raises(PopplerMissing, match=r"^pdftoppm \(poppler\) is not installed$"):
        pdftoppm.render(born, 1, dpi=72, base=tmp_path / "page", fmt="png", timeout=60)


# --- tesseract -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scan_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("scan")
    scan = pdfgen.write_sample_scan(work / "scan.pdf")
    return pdftoppm.render(scan, 1, dpi=300, base=work / "page", fmt="pgm", timeout=120).path


@pytest.mark.ocr
def test_tesseract_reads_words_with_their_place_and_confidence(scan_page: Path) -> None:
    read = tesseract.read(scan_page, langs="fra+eng", psm=3, timeout=120)
    texts = [w.text for w in read.words]
    assert "DUPONT" in texts
    assert all(w.text.strip() == w.text and w.text for w in read.words)
    assert all(-1 <= w.confidence <= 100 for w in read.words)
    dupont = read.words[texts.index("DUPONT")]
    assert dupont.page == 1 and dupont.block >= 1 and dupont.line >= 1
    assert read.cpu_seconds > 0


def test_tesseract_tsv_words() -> None:
    tsv = ("level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\t"
           "height\tconf\ttext\n"
           "1\t1\t0\t0\t0\t0\t0\t0\t100\t100\t-1\t\n"
           "5\t1\t1\t1\t1\t1\t10\t10\t50\t12\t96.5\tNom\n"
           "5\t1\t1\t1\t1\t2\t70\t10\t50\t12\t-1\t   \n"
           "5\t1\t2\t1\t1\t1\t10\t40\t50\t12\t88\tDUPONT \n")
    assert tesseract.words(tsv) == (tesseract.Word(1, 1, 1, 1, "Nom", 96.5),
                                    tesseract.Word(1, 2, 1, 1, "DUPONT", 88.0))


def test_tesseract_languages() -> None:
    assert {"fra", "eng"} <= tesseract.languages()
    assert tesseract.install_languages(["por", "spa"]) == (
        "apt-get install tesseract-ocr-por tesseract-ocr-spa")


def test_tesseract_without_a_language_asked_for(scan_page: Path) -> None:
    with pytest.raises(OcrEngineMissing, match="lacks a configured language") as missing:
        tesseract.read(scan_page, langs="zzz", psm=3, timeout=60, stage="text")
    assert missing.value.stage == "text" and "zzz" in missing.value.detail


def test_tesseract_fails_on_an_image_that_is_not_one(tmp_path: Path) -> None:
    bad = tmp_path / "page.pgm"
    bad.write_bytes(b"P5\nthis is not an image\n")
    with pytest.raises(runner.Failed):
        tesseract.read(bad, langs="eng", psm=3, timeout=60)


def test_tesseract_not_installed(scan_page: Path, nothing_installed: None) -> None:
    assert not tesseract.PROGRAM.installed()
    with pytest.raises(OcrEngineMissing, match=r"^tesseract is not installed$") as missing:
        tesseract.read(scan_page, langs="eng", psm=3, timeout=60)
    assert OcrEngineMissing.install in missing.value.advice
    with pytest.raises(OcrEngineMissing):
        tesseract.languages()


# --- systemctl -------------------------------------------------------------------------------


def test_systemctl_command_line_keeps_the_unit_from_being_an_option() -> None:
    assert systemctl.argv("--host=x.service") == ["systemctl", "is-active", "--",
                                                   "--host=x.service"]


def test_systemctl_state_of_a_unit_that_does_not_exist() -> None:
    # "inactive" where systemd runs; UNKNOWN where it does not (a container without it).
    assert systemctl.is_active("docagent-no-such-unit.service") in ("inactive",
                                                                   systemctl.UNKNOWN)


def test_systemctl_not_installed_is_unknown(nothing_installed: None) -> None:
    assert not systemctl.PROGRAM.installed()
    assert systemctl.is_active("cups.service") == systemctl.UNKNOWN


# --- the command lines bench/children.py measures are those run ------------------------------


def test_command_lines(tmp_path: Path) -> None:
    pdf, base, image = tmp_path / "a.pdf", tmp_path / "page", tmp_path / "page.pgm"
    assert pdfinfo.argv(pdf) == ["pdfinfo", "--", str(pdf)]
    assert pdfinfo.argv(pdf, first=1, last=200) == ["pdfinfo", "-f", "1", "-l", "200", "--",
                                                    str(pdf)]
    assert pdftotext.argv(pdf) == ["pdftotext", "-layout", "-enc", "UTF-8", "--", str(pdf),
                                   "-"]
    assert pdftoppm.argv(pdf, 3, dpi=300, base=base, fmt="pgm") == [
        "pdftoppm", "-r", "300", "-gray", "-f", "3", "-l", "3", "-singlefile", "--", str(pdf),
        str(base)]
    assert tesseract.argv(image, langs="fra+eng", psm=1) == [
        "tesseract", str(image), "stdout", "-l", "fra+eng", "--psm", "1", "tsv"]
