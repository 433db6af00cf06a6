"""agent.stages.pgm: the page image's bytes, turned and cut, checked against Pillow's own."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from agent.stages import pgm
from tests import pdfgen


def _page(tmp_path: Path) -> Path:
    image = pdfgen.degrade(pdfgen.render_page(pdfgen.report("DUPONT", "Jean", "12/03/1961")),
                           seed=5).convert("L")
    path = tmp_path / "page.pgm"
    image.save(path)  # Pillow writes an 8-bit binary PGM, as pdftoppm -gray does
    return path


@pytest.mark.parametrize("clockwise", [0, 90, 180, 270])
def test_turned_is_the_image_turned_clockwise(tmp_path: Path, clockwise: int) -> None:
    path = _page(tmp_path)
    turned = pgm.turned(path, clockwise, tmp_path / "turned.pgm")
    with Image.open(path) as original, Image.open(turned) as ours:
        expected = original.rotate(-clockwise, expand=True)  # Pillow turns counter-clockwise
        assert ours.size == expected.size
        assert ours.tobytes() == expected.tobytes()


def test_the_inkiest_band_is_where_the_text_is_at_half_resolution(tmp_path: Path) -> None:
    blank = Image.new("L", (800, 1600), 255)
    blank.paste(0, (100, 1250, 700, 1350))  # ink in the seventh eighth only
    path = tmp_path / "sparse.pgm"
    blank.save(path)
    with Image.open(pgm.inkiest_band(path, tmp_path / "band.pgm")) as band:
        assert band.size == (400, 100)
        expected = blank.crop((0, 6 * 200, 800, 7 * 200)).resize((400, 100), Image.NEAREST)
        assert band.tobytes() == expected.tobytes()  # every other pixel of every other row
        assert min(band.tobytes()) == 0  # the ink came along


def test_a_file_that_is_not_an_8_bit_pgm_is_said_so(tmp_path: Path) -> None:
    png = tmp_path / "page.png"
    Image.new("L", (10, 10), 255).save(png)
    with pytest.raises(pgm.NotPgm):
        pgm.turned(png, 180, tmp_path / "out.pgm")
    short = tmp_path / "short.pgm"
    short.write_bytes(b"P5\n10 10\n255\n" + b"\x00" * 50)
    with pytest.raises(pgm.NotPgm):
        pgm.inkiest_band(short, tmp_path / "out.pgm")
