"""A page photographed by a phone beside the same page scanned, read by docagent (issue 17).

    PYTHONPATH=$PWD .venv/bin/python -m bench.photo            # about 5 minutes on 2 cores
    PYTHONPATH=$PWD .venv/bin/python -m bench.photo --only own # the 7 lab reports only

The same clean pages (bench.reading's own corpus of lab reports, 7 patients, and its unseen
corpus of 8 letters, forms and tables, each rendered at 300 dpi with its known text) are given
to `docagent process` twice, each in a fresh home with bench.reading's patient directory:

- scanned: as bench.reading scans each corpus, upright (the photo is upright too): the lab
  reports by tests/pdfgen's `degrade` (skew up to 2 degrees, grain, specks, blur 0.8 px, JPEG
  35), the unseen pages by bench.reading's harder `scanned` (uneven lighting at 88-100 %, dust,
  blur 1-1.2 px, a Gaussian grain, JPEG 40-50, two pages at 200 dpi); an image-only PDF;
- photographed: the page lying on a table, taken by a 12-megapixel phone held a little
  askew (`photographed`): a slight perspective (the far edge 3-5 % narrower, a degree of turn),
  uneven light (a falloff to 65-75 % across the page and a soft shadow), a warm tint, the
  camera's blur, noise and sharpening, then the phone's JPEG (quality 88, 4:2:0), stored
  sideways with EXIF orientation 6 as a phone held upright stores it; the .jpg is what is
  dropped (docagent converts it itself).

For each: the character error rate against the known text (bench.reading's `cer`: edits over
characters, whitespace folded), the words missed in any order (`words_missed`), the share of
the lab reports filed under their patient, and the wall time of the command. Then what the
conversion itself costs, on one photo: the converter run alone, its CPU and the PDF's size
beside the original's, for the phone's JPEG and the same photo as a HEIC.

Public tools only: Pillow and pillow-heif draw and encode; docagent reads (tesseract, poppler).
Writes bench/out/photo.json.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pillow_heif
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from bench.reading import (
    OUT,
    PATIENTS,
    ROOT,
    UNSEEN_LAYOUTS,
    cer,
    docagent_checkout,
    docagent_process,
    sidecars,
    unseen_page,
    words_missed,
)
from tests import pdfgen

SENSOR = (3024, 4032)  # a 12-megapixel phone held upright
TABLE = (118, 92, 66)  # the wood the page lies on
ORIENTATION = 0x0112


@dataclass
class Clean:
    name: str
    lines: list[str]
    image: Image.Image  # 300 dpi, upright, "L" or "RGB"
    patient: str | None  # the directory id it should be filed under, if any
    scan: Image.Image  # the same page as bench.reading scans it, upright
    dpi: int = 300

    @property
    def truth(self) -> str:
        return "\n".join(line[2:] if line.startswith("# ") else line for line in self.lines)


def own_pages() -> list[Clean]:
    pages = []
    skews = (-1.5, 1.0, 2.0, -0.7, 1.5, -2.0, 0.5)  # bench.reading's make_pages, seed 100
    for i, (pid, last, first, _iso, birth, lang, _expected) in enumerate(PATIENTS[:7]):
        lines = pdfgen.lab_report_lines(last=last, first=first, birth=birth,
                                        doc_date=f"{5 + i:02d}/11/2026", lang=lang)
        clean = pdfgen.render_page(lines)
        scan = pdfgen.degrade(clean, seed=100 + i, skew_deg=skews[(i + 100) % len(skews)])
        pages.append(Clean(f"own-{i}", lines, clean, pid, scan))
    return pages


def unseen_pages() -> list[Clean]:
    out = []
    for index, layout in enumerate(UNSEEN_LAYOUTS):
        sheet = layout()
        scan = unseen_page(index, turn=0)
        out.append(Clean(f"unseen-{layout.__name__}", sheet.lines, sheet.image, None,
                         scan.image, scan.dpi))
    return out


# --- the phone -------------------------------------------------------------------------------


def _solve(matrix: list[list[float]], values: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (8 unknowns: no numpy needed)."""
    n = len(values)
    rows = [[*row, value] for row, value in zip(matrix, values, strict=True)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(n):
            if r != col:
                factor = rows[r][col] / rows[col][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col], strict=True)]
    return [rows[i][n] / rows[i][i] for i in range(n)]


def perspective_coeffs(dest: Sequence[tuple[float, float]],
                       source: Sequence[tuple[float, float]]) -> list[float]:
    """PIL's PERSPECTIVE coefficients mapping each `dest` corner (output) to its `source`
    corner (input)."""
    matrix, values = [], []
    for (x, y), (u, v) in zip(dest, source, strict=True):
        matrix.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        values.append(u)
        matrix.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        values.append(v)
    return _solve(matrix, values)


def photographed(page: Image.Image, rng: random.Random) -> Image.Image:
    """`page` lying on a table as a phone held upright sees it (see the module docstring);
    returned upright, as the viewer shows the photo."""
    width, height = SENSOR
    paper = page.convert("RGB")
    # Where the page's corners land in the frame: ~88 % of its width, the top edge (further
    # from the lens) narrower, a slight turn, off centre by a little.
    span = width * rng.uniform(0.86, 0.90)
    tall = span * paper.height / paper.width
    if tall > height * 0.95:
        span, tall = span * height * 0.95 / tall, height * 0.95
    narrow = span * rng.uniform(0.03, 0.05) / 2
    cx, cy = width / 2 + rng.uniform(-30, 30), height / 2 + rng.uniform(-30, 30)
    turn = math.radians(rng.uniform(-1.2, 1.2))
    corners = [(-span / 2 + narrow, -tall / 2), (span / 2 - narrow, -tall / 2),
               (span / 2, tall / 2), (-span / 2, tall / 2)]
    placed = [(cx + x * math.cos(turn) - y * math.sin(turn),
               cy + x * math.sin(turn) + y * math.cos(turn)) for x, y in corners]
    source = [(0, 0), (paper.width, 0), (paper.width, paper.height), (0, paper.height)]
    coeffs = perspective_coeffs(placed, source)
    frame = Image.new("RGB", SENSOR, TABLE)
    flat = paper.transform(SENSOR, Image.Transform.PERSPECTIVE, coeffs,
                           Image.Resampling.BICUBIC, fillcolor=TABLE)
    mask = Image.new("L", paper.size, 255).transform(
        SENSOR, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR, fillcolor=0)
    frame.paste(flat, mask=mask)
    # Uneven light: a falloff from one side to 65-75 %, and a soft shadow (the phone, a hand).
    low = rng.uniform(0.65, 0.75)
    grid = Image.new("L", (8, 8))
    angle = rng.uniform(0, 2 * math.pi)
    for gx in range(8):
        for gy in range(8):
            along = ((gx - 3.5) * math.cos(angle) + (gy - 3.5) * math.sin(angle)) / 4.95
            grid.putpixel((gx, gy), round(255 * (1 - (1 - low) * (along + 1) / 2)))
    light = grid.resize(SENSOR, Image.Resampling.BICUBIC)
    shadow = Image.new("L", SENSOR, 255)
    sx, sy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.5, 0.9) * height
    ImageDraw.Draw(shadow).ellipse([sx - 700, sy - 450, sx + 700, sy + 450], fill=200)
    light = ImageChops.multiply(light, shadow.filter(ImageFilter.GaussianBlur(220)))
    frame = ImageChops.multiply(frame, Image.merge("RGB", (light, light, light)))
    # A warm tint, the lens and the sensor, the phone's sharpening.
    r, g, b = frame.split()
    frame = Image.merge("RGB", (r, g.point(lambda v: v * 246 // 255),
                                b.point(lambda v: v * 226 // 255)))
    frame = frame.filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 1.4)))
    noise = Image.frombytes("L", SENSOR, rng.randbytes(width * height)).point(
        lambda v: v * 14 // 255)
    frame = ImageChops.subtract(ImageChops.add(frame, Image.merge("RGB", (noise,) * 3)),
                                Image.merge("RGB", (noise.rotate(180),) * 3))
    return frame.filter(ImageFilter.UnsharpMask(radius=2, percent=60, threshold=2))


def phone_jpeg(upright: Image.Image) -> bytes:
    """The photo as the phone writes it: sideways pixels, EXIF orientation 6, 72 dpi, q88."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    out = io.BytesIO()
    upright.rotate(90, expand=True).save(out, format="JPEG", quality=88, dpi=(72, 72),
                                         exif=exif)
    return out.getvalue()


# --- running ---------------------------------------------------------------------------------


def read(work: Path, path: Path, tag: str) -> dict[str, Any]:
    took, texts = docagent_process(work, path, tag)
    home = work / f"home-{tag}"
    [sidecar] = sidecars(home)
    record = json.loads(sidecar.read_text(encoding="utf-8"))
    return {"seconds": took, "texts": texts, "patient_id": record.get("patient_id"),
            "outcome": record.get("outcome"),
            "confidence": [p.get("confidence") for p in record.get("page_sources") or []]}


def conversion_cost(work: Path, photo: Image.Image) -> dict[str, Any]:
    """The converter alone on one photo, as a JPEG and as a HEIC: CPU and sizes."""
    main = ROOT / "agent" / "tools" / "imagepdf_main.py"
    pillow_heif.register_heif_opener()
    heic = io.BytesIO()
    photo.save(heic, format="HEIF", quality=80)
    out: dict[str, Any] = {}
    for fmt, data in (("JPEG", phone_jpeg(photo)), ("HEIC", heic.getvalue())):
        src = work / f"cost.{fmt.lower()}"
        src.write_bytes(data)
        cpu, wall, size = [], [], 0
        for _ in range(3):
            dest = work / f"cost-{fmt}.pdf"
            dest.unlink(missing_ok=True)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run([sys.executable, "-I", str(main), "--format", fmt, "--max-pixels",
                            "50000000", "--max-pages", "200", str(src), str(dest)],
                           check=True, capture_output=True)
            wall.append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            size = dest.stat().st_size
        out[fmt] = {"original_bytes": len(data), "pdf_bytes": size,
                    "cpu_seconds": statistics.median(cpu), "wall_seconds": statistics.median(wall)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("own", "unseen"), help="one corpus")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    print(f"measuring {docagent_checkout(Path(tempfile.gettempdir()))}", flush=True)
    pages = ([] if args.only == "unseen" else own_pages()) + \
            ([] if args.only == "own" else unseen_pages())
    results: dict[str, dict[str, list[Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-photo-") as tmp:
        work = Path(tmp)
        for n, page in enumerate(pages):
            rng = random.Random(f"{args.seed}-{page.name}")
            pdf = pdfgen.image_pdf([page.scan], work / f"{page.name}-scan.pdf", dpi=page.dpi)
            jpg = work / f"{page.name}-photo.jpg"
            jpg.write_bytes(phone_jpeg(photographed(page.image, rng)))
            # Alternated, so the machine's noise hits both.
            order = (("scanned", pdf), ("photographed", jpg)) if n % 2 == 0 else \
                (("photographed", jpg), ("scanned", pdf))
            for how, path in order:
                got = read(work, path, f"{how}-{page.name}")
                corpus = page.name.split("-")[0]
                row = results.setdefault(f"{corpus}:{how}", {"truths": [], "texts": [],
                                                             "seconds": [], "right": []})
                row["truths"].append(page.truth)
                row["texts"].append("\n".join(got["texts"]))
                row["seconds"].append(got["seconds"])
                if page.patient:
                    row["right"].append(got["outcome"] == "filed"
                                        and got["patient_id"] == page.patient)
                print(f"  {page.name:32} {how:13} CER "
                      f"{cer([page.truth], [row['texts'][-1]]) * 100:5.1f} %  "
                      f"{got['outcome']:7} {got['patient_id'] or '':4} {got['seconds']:.1f} s",
                      flush=True)
        cost = conversion_cost(work, photographed(pages[0].image, random.Random(args.seed)))
    summary: dict[str, Any] = {}
    print("\ncorpus  reading       CER      words missed  filed right  median s/page")
    for key, row in sorted(results.items()):
        corpus, how = key.split(":")
        figure = {"cer": cer(row["truths"], row["texts"]),
                  "words_missed": words_missed(row["truths"], row["texts"]),
                  "pages": len(row["truths"]),
                  "filed_right": f"{sum(row['right'])}/{len(row['right'])}" if row["right"]
                  else None,
                  "median_seconds": statistics.median(row["seconds"])}
        summary[key] = figure
        print(f"{corpus:7} {how:13} {figure['cer'] * 100:5.2f} %   "
              f"{figure['words_missed'] * 100:5.2f} %       {figure['filed_right'] or '-':11}  "
              f"{figure['median_seconds']:.2f}")
    print("\nthe conversion alone, one 12-megapixel photo (median of 3):")
    for fmt, c in cost.items():
        print(f"  {fmt}: {c['cpu_seconds']:.2f} s CPU, {c['wall_seconds']:.2f} s; original "
              f"{c['original_bytes'] / 1e6:.2f} MB, PDF {c['pdf_bytes'] / 1e6:.2f} MB")
    OUT.mkdir(exist_ok=True)
    (OUT / "photo.json").write_text(json.dumps({"seed": args.seed, "figures": summary,
                                                "conversion": cost}, indent=2) + "\n")
    print(f"\n(also in {OUT / 'photo.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
