"""Images taken like PDFs (issue 17, part 3): a phone's JPEG turned by its EXIF orientation, a
scanner's multi-page TIFF, a PNG with transparency and a phone's HEIC are converted into the PDF
that is read and filed; the bytes received stay beside it and judge duplicates; a broken image
fails with a reason of its own. Every image is drawn here, at run time, from tests/pdfgen's
pages, and goes through the real `docagent` command or a real daemon.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pillow_heif
import pytest
from PIL import Image, ImageChops, ImageStat

from agent.watcher import Stabilizer
from tests import pdfgen
from tests.conftest import Spool
from tests.daemonproc import drop, states
from tests.watch import Clock

pytestmark = pytest.mark.ocr

ORIENTATION = 0x0112


def page(last: str = "DUPONT", first: str = "Jean", birth: str = "12/03/1961",
         tag: str = "") -> Image.Image:
    """A clean A4 lab report at 300 dpi (mode L): the paper a phone or a scanner sees."""
    return pdfgen.render_page(pdfgen.report(last, first, birth, tag))


def jpeg(image: Image.Image, *, orientation: int = 1, quality: int = 88) -> bytes:
    """A phone's JPEG: colour, a nominal 72 dpi, the EXIF orientation the camera wrote."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=quality, dpi=(72, 72), exif=exif)
    return out.getvalue()


def stored_for(upright: Image.Image, orientation: int) -> Image.Image:
    """The pixels as a camera stores them when it writes `orientation` (the turn a viewer must
    make to show them upright): 6 = turn 90° clockwise, 3 = 180°, 8 = 90° counter-clockwise."""
    undo = {1: 0, 3: 180, 6: 90, 8: 270}[orientation]  # PIL turns counter-clockwise
    return upright.rotate(undo, expand=True) if undo else upright


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sidecar_of(spool: Spool, out: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    pdf = spool.home / str(out["path"])
    return pdf, json.loads(pdf.with_suffix(".json").read_text(encoding="utf-8"))


def assert_kept_beside(spool: Spool, out: dict[str, Any], received: bytes) -> Path:
    """The filed file is a PDF; beside it, named by the sidecar, the bytes received, whole; the
    record's hash and the document id are the received bytes'."""
    pdf, record = sidecar_of(spool, out)
    assert pdf.suffix == ".pdf" and pdf.read_bytes().startswith(b"%PDF-")
    original = pdf.with_name(record["original"]["file"])
    assert original.name == pdf.stem + ".original" + record["original"]["extension"]
    assert sha256(original.read_bytes()) == sha256(received) == record["sha256"]
    assert out["document_id"] == sha256(received)[:16]
    assert record["original"]["size"] == len(received)
    return original


def rendered(pdf: Path, number: int = 1, dpi: int = 30) -> Image.Image:
    """Page `number` as a viewer shows it (pdftoppm applies the page's /Rotate), grey."""
    done = subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-f", str(number), "-l",
                           str(number), "-singlefile", str(pdf)], capture_output=True,
                          check=True, timeout=60)
    return Image.open(io.BytesIO(done.stdout)).convert("L")


def difference(a: Image.Image, b: Image.Image) -> float:
    return float(ImageStat.Stat(ImageChops.difference(a, b.resize(a.size))).mean[0])


def page_size(pdf: Path) -> tuple[float, float]:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    words = next(line for line in info.stdout.splitlines()
                 if line.startswith("Page size:")).split()
    return float(words[2]), float(words[4])


def pdf_pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    return int(next(line.split()[1] for line in info.stdout.splitlines()
                    if line.startswith("Pages:")))


# --- what is taken, and how it reads -------------------------------------------------------


@pytest.mark.parametrize("orientation", [6, 3])
def test_a_phone_photo_is_turned_by_its_exif_orientation_and_read(
        spool: Spool, tmp_path: Path, orientation: int) -> None:
    upright = page()
    data = jpeg(stored_for(upright, orientation), orientation=orientation)
    [out] = spool.process_json(write(tmp_path, "IMG_2041.jpg", data))
    assert out["outcome"] == "filed" and out["patient_id"] == "P001", out
    assert out["pages"] == 1 and out["text_source"] == "ocr"
    pdf, record = sidecar_of(spool, out)
    assert pdf.name == "2026-11-05_lab-result_IMG_2041.pdf"
    assert record["original"]["rotations"] == [{6: 90, 3: 180}[orientation]]
    assert record["original"]["embedded"] == "as-is"
    # The page reads upright as a viewer shows it: portrait, and the page itself, not its turn.
    shown = rendered(pdf)
    assert shown.height > shown.width
    assert difference(shown, upright) < difference(shown, upright.rotate(180)) / 2
    assert_kept_beside(spool, out, data)


def test_every_page_of_a_multipage_tiff_is_in_the_pdf(spool: Spool, tmp_path: Path) -> None:
    pages = [page("MARTIN", "Hélène", "03/04/1975"),
             pdfgen.render_page(["Suite du compte rendu", "", "Commentaire : RAS"]),
             pdfgen.render_page(["Troisième feuillet", "", "Fin du document"])]
    out_tiff = io.BytesIO()
    pages[0].save(out_tiff, format="TIFF", save_all=True, append_images=pages[1:],
                  compression="tiff_lzw", dpi=(300, 300))
    data = out_tiff.getvalue()
    [out] = spool.process_json(write(tmp_path, "scan0042.tif", data))
    assert out["outcome"] == "filed" and out["patient_id"] == "P002", out
    assert out["pages"] == 3
    pdf, record = sidecar_of(spool, out)
    assert pdf_pages(pdf) == 3 and record["original"]["pages"] == 3
    text = pdf.with_suffix(".txt").read_text(encoding="utf-8").split("\n\f")
    assert len(text) == 3 and "Fin du document" in text[2] and "Suite" in text[1]
    # A scanner's TIFF states its resolution: the page is its paper, A4 (595 x 842 pt).
    assert [round(x) for x in page_size(pdf)] == [595, 842]
    assert_kept_beside(spool, out, data)


def test_a_png_with_transparency_is_flattened_onto_white_and_read(spool: Spool,
                                                                  tmp_path: Path) -> None:
    # Black ink on a transparent sheet, its colour black everywhere: dropping the alpha
    # would make a black page; a viewer shows it on white.
    ink = page().point(lambda v: 255 - v)
    sheet = Image.new("RGBA", ink.size, (0, 0, 0, 0))
    sheet.putalpha(ink)
    out_png = io.BytesIO()
    sheet.save(out_png, format="PNG")
    data = out_png.getvalue()
    [out] = spool.process_json(write(tmp_path, "capture.png", data))
    assert out["outcome"] == "filed" and out["patient_id"] == "P001", out
    pdf, record = sidecar_of(spool, out)
    assert record["original"]["flattened"] is True
    shown = rendered(pdf)
    assert ImageStat.Stat(shown).mean[0] > 200  # white paper, black ink
    assert difference(shown, page()) < 20
    assert_kept_beside(spool, out, data)


def test_a_heic_from_a_phone_is_read(spool: Spool, tmp_path: Path) -> None:
    pillow_heif.register_heif_opener()
    out_heic = io.BytesIO()
    page("BEN ALI", "Mohamed", "21/07/1990").convert("RGB").save(out_heic, format="HEIF",
                                                                 quality=85)
    data = out_heic.getvalue()
    [out] = spool.process_json(write(tmp_path, "IMG_0007.HEIC", data))
    assert out["outcome"] == "filed" and out["patient_id"] == "P004", out
    _pdf, record = sidecar_of(spool, out)
    assert record["original"]["format"] == "HEIC"
    assert record["original"]["embedded"] == "decoded-lossless"
    original = assert_kept_beside(spool, out, data)
    assert original.name.endswith(".original.heic")


def test_the_same_photo_twice_is_a_duplicate_judged_on_the_bytes_received(
        spool: Spool, tmp_path: Path) -> None:
    data = jpeg(page())
    first = write(tmp_path, "photo.jpg", data)
    again = write(tmp_path, "photo (1).jpg", data)
    [one] = spool.process_json(first)
    [two] = spool.process_json(again)
    assert one["outcome"] == "filed"
    assert two["outcome"] == "duplicate" and two["document_id"] == one["document_id"]
    assert one["document_id"] == sha256(data)[:16]
    assert len([p for p in spool.files("done") if p.suffix == ".pdf"]) == 1


def test_an_image_put_to_a_person_keeps_its_original_when_it_is_filed(
        spool: Spool, tmp_path: Path) -> None:
    data = jpeg(page("NOBODY", "Zoé", "01/01/2001"))
    [out] = spool.process_json(write(tmp_path, "zoe.jpeg", data))
    assert out["outcome"] == "review", out
    assert_kept_beside(spool, out, data)
    spool.run("review", "resolve", str(out["document_id"]), "P003", check=True)
    [pdf] = [p for p in spool.files("done/P003") if p.suffix == ".pdf"]
    record = json.loads(pdf.with_suffix(".json").read_text(encoding="utf-8"))
    assert pdf.with_name(record["original"]["file"]).read_bytes() == data
    assert spool.files("review") == []
    assert [p.name for p in spool.files("processing")] == []


def test_an_image_with_nothing_to_read_fails_kept_as_it_came(spool: Spool,
                                                             tmp_path: Path) -> None:
    data = jpeg(Image.new("L", (1200, 1600), 250))
    [out] = spool.process_json(write(tmp_path, "blank.jpg", data))
    assert out["outcome"] == "failed", out
    assert (spool.home / "failed" / "blank.jpg").read_bytes() == data
    reason = json.loads((spool.home / "failed" / "blank.jpg.reason.json").read_text())
    assert reason["kind"] == "unreadable"
    assert sorted(p.name for p in spool.files("failed")) == ["blank.jpg", "blank.jpg.reason.json"]
    # Retried, it goes back to be converted again from what was received.
    spool.run("retry", str(out["document_id"]), check=True)
    assert spool.files("failed") == []
    assert (spool.home / "processing" / f"{out['document_id']}.pdf").read_bytes() == data


# --- what fails, and why -------------------------------------------------------------------


def _cut_jpeg(tmp_path: Path) -> Path:
    data = jpeg(page())
    return write(tmp_path, "cut.jpg", data[: len(data) * 2 // 3])


def _bad_crc_png(tmp_path: Path) -> Path:
    out = io.BytesIO()
    page().save(out, format="PNG")
    data = bytearray(out.getvalue())
    at = data.find(b"IDAT")
    data[at + 4 + int.from_bytes(data[at - 4:at], "big")] ^= 0xFF  # the chunk's CRC
    return write(tmp_path, "crc.png", bytes(data))


BROKEN: dict[str, tuple[Callable[[Path], Path], str, str]] = {
    "cut.jpg": (_cut_jpeg, "corrupt-image", "the JPEG image is cut short: its end is missing"),
    "crc.png": (_bad_crc_png, "corrupt-image",
                "the PNG image is damaged and cannot be read"),
    "text.jpg": (lambda d: write(d, "text.jpg", b"Compte rendu de consultation\n" * 40),
                 "corrupt-image", "the file is named as a JPEG image but is not one"),
    "letter.docx": (lambda d: write(d, "letter.docx", b"PK\x03\x04" + b"\0" * 400),
                    "not-pdf", "the file is not a document docagent reads (it looks like a "
                               "ZIP archive or an Office document)"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_image_fails_with_its_own_reason(spool: Spool, tmp_path: Path,
                                                  name: str) -> None:
    make, kind, message = BROKEN[name]
    path = make(tmp_path)
    [out] = spool.process_json(path)
    assert out["outcome"] == "failed" and out["reason"] == message, out
    reason = json.loads((spool.home / "failed" / f"{name}.reason.json").read_text())
    assert reason["kind"] == reason["reason_code"]["code"] == kind
    assert reason["message"] == message and reason["action"]
    assert (spool.home / "failed" / name).read_bytes() == path.read_bytes()
    assert spool.files("processing") == []


def test_a_broken_image_is_explained_in_french(spool: Spool, tmp_path: Path) -> None:
    path = _cut_jpeg(tmp_path)
    done = spool.run("process", str(path), env={"DOCAGENT_LANG": "fr"})
    assert done.returncode == 1
    assert "l'image JPEG est incomplète : sa fin manque" in done.stdout
    reason = json.loads((spool.home / "failed" / "cut.jpg.reason.json").read_text())
    assert reason["message"] == "l'image JPEG est incomplète : sa fin manque"
    assert reason["action"].startswith("L'image est endommagée ou incomplète")
    assert reason["reason"] == "the JPEG image is cut short: its end is missing"


def test_limits_hold_for_images_before_they_are_decoded(spool: Spool, tmp_path: Path) -> None:
    big = write(tmp_path, "big.png", _png(Image.new("L", (3000, 2000), 255)))
    pages = [pdfgen.render_page([f"page {n}"], dpi=100) for n in range(3)]
    tiff = io.BytesIO()
    pages[0].save(tiff, format="TIFF", save_all=True, append_images=pages[1:])
    long = write(tmp_path, "long.tif", tiff.getvalue())
    done = spool.run("process", "--json", str(big), str(long),
                     env={"DOCAGENT_MAX_PIXELS": "5000000", "DOCAGENT_MAX_PAGES": "2"})
    outs = {Path(o["file"]).name: o for o in map(json.loads, done.stdout.splitlines())}
    assert outs["big.png"]["outcome"] == "failed"
    assert outs["big.png"]["reason"] == ("the PNG image is 6.0 megapixels, over the limit of "
                                         "5.0")
    assert outs["long.tif"]["reason"] == "the TIFF image has 3 pages, over the limit of 2"
    kinds = {n: json.loads((spool.home / "failed" / f"{n}.reason.json").read_text())["kind"]
             for n in outs}
    assert kinds == {"big.png": "page-too-large", "long.tif": "too-many-pages"}


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


# --- the running daemon --------------------------------------------------------------------


@pytest.mark.daemon
def test_a_photo_dropped_into_incoming_is_filed_by_the_daemon(
        spool: Spool, tmp_path: Path, daemon: Callable[..., Any]) -> None:
    data = jpeg(stored_for(page(), 6), orientation=6)
    run = daemon()
    drop(write(tmp_path, "IMG_3001.JPG", data), spool.home / "incoming")
    run.wait_for(lambda: states(spool) == {"IMG_3001.JPG": "filed"}, 120, "the photo filed")
    names = sorted(p.name for p in spool.files("done/P001"))
    assert names == ["2026-11-05_lab-result_IMG_3001.json",
                     "2026-11-05_lab-result_IMG_3001.original.jpg",
                     "2026-11-05_lab-result_IMG_3001.pdf",
                     "2026-11-05_lab-result_IMG_3001.txt"]
    original = spool.home / "done" / "P001" / "2026-11-05_lab-result_IMG_3001.original.jpg"
    assert original.read_bytes() == data
    assert list((spool.home / "incoming").iterdir()) == []
    assert run.stop() == 0


@pytest.mark.daemon
def test_an_image_deferred_after_its_conversion_is_filed_from_its_original(
        spool: Spool, tmp_path: Path, daemon: Callable[..., Any]) -> None:
    # Poppler but no tesseract: converted, then deferred (the machine's fault) with the PDF
    # and the original both in processing/.
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("pdfinfo", "pdftotext", "pdftoppm"):
        (tools / tool).symlink_to(str(shutil.which(tool)))
    data = jpeg(page())
    photo = write(tmp_path, "photo.jpg", data)
    done = spool.run("process", "--json", str(photo), env={"PATH": str(tools)})
    [out] = [json.loads(line) for line in done.stdout.splitlines()]
    assert out["outcome"] == "deferred", out
    waiting = spool.home / "processing"
    doc_id = str(out["document_id"])
    assert (waiting / f"{doc_id}.pdf").read_bytes().startswith(b"%PDF-")
    assert (waiting / f"{doc_id}.original").read_bytes() == data
    # The same photo dropped again asks for it now: converted again from the original, read,
    # filed, the original beside the PDF, nothing left behind.
    run = daemon()
    drop(photo, spool.home / "incoming", "photo-again.jpg")
    run.wait_for(lambda: states(spool).get("photo.jpg") == "filed", 120, "the photo filed")
    [pdf] = [p for p in spool.files("done/P001") if p.suffix == ".pdf"]
    record = json.loads(pdf.with_suffix(".json").read_text(encoding="utf-8"))
    assert pdf.with_name(record["original"]["file"]).read_bytes() == data
    assert record["sha256"] == sha256(data)
    assert spool.files("processing") == []
    assert run.stop() == 0


# --- when a dropped image is whole ---------------------------------------------------------


def test_a_jpeg_or_png_closed_whole_is_taken_without_the_wait(tmp_path: Path) -> None:
    clock = Clock()
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    stabilizer = Stabilizer(30.0, 600.0, clock=clock)
    photo = jpeg(page())
    whole = write(incoming, "whole.jpg", photo)
    scan = write(incoming, "scan.png", _png(pdfgen.render_page(["x"], dpi=50)))
    cut = write(incoming, "cut.jpg", photo[: len(photo) // 2])
    for path in (whole, scan, cut):
        stabilizer.note(path, settled=True)
    assert sorted(stabilizer.ready()) == [(scan, "take"), (whole, "take")]
    # One closed before its end waits for its size to settle, then goes to be converted.
    clock.now += 31
    assert stabilizer.ready() == [(cut, "take")]
