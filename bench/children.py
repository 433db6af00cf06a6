"""What each external tool needs: peak memory, address space and CPU, per case.

    .venv/bin/python -m bench.children            # about 15 minutes on 2 busy cores
    .venv/bin/python -m bench.children --quick    # no bisection: peaks only

Sizes DOCAGENT_CHILD_MEMORY (the RLIMIT_AS each child gets) and the unit's MemoryMax=. Every
tool runs the way docagent runs it, through `agent.tools.runner.run` (prlimit, minimal
environment, OMP_THREAD_LIMIT=1), on generated files: a degraded A4 scan, a 6-page born-digital
report, a page of six A4 scans rendered at the 50-megapixel cap (DOCAGENT_MAX_PIXELS), A4 and
A3 colour scans at 600 dpi in progressive JPEG and JPEG 2000 (decoded whole in memory), the
hostile files of tests/hostile.py (a 2 GiB FlateDecode bomb of blanks, a 20,000-pixel-square
image page, 10,000 pages) and the text bomb (32 MiB of text in a 250 KB PDF).

For each case: the tool's peak resident memory and address space (VmHWM, VmPeak, read from
/proc every 10 ms; "-" for a tool done before the first reading) with no practical limit, its
CPU and wall seconds, and, by bisection to 8 MiB, the smallest address-space limit under which
it still gives the same output: the figure RLIMIT_AS has to cover. Writes
bench/out/children.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

from agent.stages import ocr
from agent.tools import pdfinfo, pdftoppm, pdftotext, runner, tesseract
from bench.reading import OUT
from tests import hostile, pdfgen

MiB = 2**20
UNLIMITED = 64 * 1024 * MiB  # no practical bound: the peak is the tool's own
STEP = 8 * MiB
LANGS = "fra+eng"


@dataclass
class Figure:
    tool: str
    case: str
    peak_rss_mib: float | None  # VmHWM: the most memory it held (None: too quick to sample)
    peak_as_mib: float | None  # VmPeak: the most address space it mapped
    cpu_s: float
    wall_s: float
    outcome: str  # "ok", "exit N", "timeout"
    min_as_mib: float | None = None  # the smallest RLIMIT_AS that gives the same result


@dataclass
class Sampled:
    outcome: str
    hwm: int  # bytes
    peak: int  # bytes
    cpu: float
    wall: float
    stdout: bytes


def _status(pid: int) -> dict[str, int]:
    """VmHWM and VmPeak of the tool, in bytes ({} while it is still prlimit, or has exited)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    if text.startswith("Name:\tprlimit"):
        return {}
    return {line.split(":")[0]: int(line.split()[1]) * 1024 for line in text.splitlines()
            if line.startswith(("VmHWM:", "VmPeak:"))}


def sample(argv: list[str], timeout: float) -> Sampled:
    """Run `argv` as docagent would but with no practical memory limit, its high-water marks
    read from /proc every 10 ms (they only grow: only the last 10 ms can be missed)."""
    runner.configure(memory=UNLIMITED)
    env = runner.child_env()
    command = runner.limited(argv, timeout=timeout, path=env["PATH"])
    hwm = peak = 0
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.DEVNULL, env=env)
        started = time.perf_counter()
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            marks = _status(proc.pid)
            hwm, peak = max(hwm, marks.get("VmHWM", 0)), max(peak, marks.get("VmPeak", 0))
            if not timed_out and time.perf_counter() - started > timeout:
                timed_out = True
                proc.kill()
            time.sleep(0.01)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        outcome = ("timeout" if timed_out else
                   "ok" if proc.returncode == 0 else f"exit {proc.returncode}")
        return Sampled(outcome, hwm, peak, usage.ru_utime + usage.ru_stime, wall, out.read())


def passes(argv: list[str], memory: int, timeout: float, want: bytes, output: Path | None,
           ) -> bool:
    """Through `runner.run` with `memory` as the limit: the same output as unbounded?"""
    if output is not None:
        output.unlink(missing_ok=True)
    runner.configure(memory=memory)
    try:
        done = runner.run(argv, timeout=timeout)
    except runner.ChildTimeout:
        return False
    if done.returncode != 0:
        return False
    return (output.read_bytes() if output is not None else done.stdout) == want


def smallest_as(argv: list[str], want: bytes, timeout: float, low: int, high: int,
                output: Path | None) -> int:
    """The smallest address-space limit (to STEP) under which `argv` gives `want` again."""
    while not passes(argv, high, timeout, want, output):
        low, high = high, high * 2
        if high > 16 * 1024 * MiB:
            raise RuntimeError(f"{argv[0]} fails even with 16 GiB")
    low = max(low - STEP, STEP)
    while high - low > STEP:
        middle = (low + high) // 2 // STEP * STEP
        if passes(argv, middle, timeout, want, output):
            high = middle
        else:
            low = middle
    return high


def measure(tool: str, case: str, argv: list[str], *, timeout: float, bisect: bool,
            output: Path | None = None) -> Figure:
    if output is not None:
        output.unlink(missing_ok=True)
    got = sample(argv, timeout)
    sampled = got.hwm >= MiB  # else only caught mid-exec, or not at all
    figure = Figure(tool, case, round(got.hwm / MiB, 1) if sampled else None,
                    round(got.peak / MiB, 1) if sampled else None, round(got.cpu, 2),
                    round(got.wall, 2), got.outcome)
    if bisect and got.outcome == "ok":
        want = output.read_bytes() if output is not None else got.stdout
        high = (got.peak + STEP) // STEP * STEP + STEP
        figure.min_as_mib = smallest_as(argv, want, timeout, got.hwm, high, output) / MiB
    print(f"  {tool:9s} {case:54s} RSS {_mib(figure.peak_rss_mib)}  AS "
          f"{_mib(figure.peak_as_mib)}  min RLIMIT_AS {_mib(figure.min_as_mib)}  "
          f"CPU {figure.cpu_s:6.2f} s  wall {figure.wall_s:6.2f} s  {got.outcome}", flush=True)
    return figure


def _mib(value: float | None) -> str:
    return f"{value:7.1f}" if value is not None else "      -"


def colour_scan(path: Path, lines: list[str], page_mm: tuple[float, float], fmt: str,
                **save: object) -> Path:
    """A 600 dpi colour scan saved as `fmt` (JPEG, JPEG2000) and put in a PDF as it is: JPEG 2000
    and progressive JPEG are decoded whole in memory, whatever the DPI they are rendered at."""
    image = pdfgen.render_page(lines, dpi=600, page_size_mm=page_mm).convert("RGB")
    data = io.BytesIO()
    image.save(data, fmt, **save)
    width, height = image.width * 72 / 600, image.height * 72 / 600
    codec = b"JPXDecode" if fmt == "JPEG2000" else b"DCTDecode"
    return pdfgen._write_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f]"
        b" /Resources << /XObject << /Im0 5 0 R >> >> /Contents 4 0 R >>" % (width, height),
        pdfgen._stream(b"q %.2f 0 0 %.2f 0 0 cm /Im0 Do Q" % (width, height)),
        pdfgen._stream(data.getvalue(), b" /Type /XObject /Subtype /Image /Width %d /Height %d"
                       b" /BitsPerComponent 8 /ColorSpace /DeviceRGB /Filter /%s"
                       % (image.width, image.height, codec)),
    ], path)


def cases(work: Path) -> dict[str, Path]:
    """Every input, generated: name -> PDF."""
    scan = pdfgen.write_sample_scan(work / "scan.pdf")
    lines = pdfgen.report("DUPONT", "Jean", "12/03/1961")
    born = pdfgen.text_pdf([lines] * 6, work / "born.pdf")
    # Six A4 scans on one page (63 x 89 cm): rendered at 239 dpi, just under 50 megapixels,
    # with text all over it: tesseract's worst case under the pixel cap.
    tile = pdfgen.degrade(pdfgen.render_page(lines), seed=3)
    sheet = Image.new("L", (tile.width * 2, tile.height * 3), 255)
    for i in range(6):
        sheet.paste(tile, (i % 2 * tile.width, i // 2 * tile.height))
    big = pdfgen.image_pdf([sheet], work / "six-on-one.pdf")
    return {
        "A4 scan, 1 page": scan,
        "born-digital, 6 pages": born,
        "six A4 scans on one page (50 MP cap)": big,
        "A4 colour scan, 600 dpi, progressive JPEG": colour_scan(
            work / "a4-prog.pdf", lines, (210, 297), "JPEG", quality=85, progressive=True),
        "A3 colour scan, 600 dpi, progressive JPEG": colour_scan(
            work / "a3-prog.pdf", lines, (297, 420), "JPEG", quality=85, progressive=True),
        "A4 colour scan, 600 dpi, JPEG 2000": colour_scan(
            work / "a4-jpx.pdf", lines, (210, 297), "JPEG2000", quality_mode="rates",
            quality_layers=[40]),
        "A3 colour scan, 600 dpi, JPEG 2000": colour_scan(
            work / "a3-jpx.pdf", lines, (297, 420), "JPEG2000", quality_mode="rates",
            quality_layers=[40]),
        "20,000-pixel image page (50 MP cap)": hostile.huge_image(work / "huge.pdf", dpi=300),
        "2 GiB FlateDecode bomb of blanks": hostile.bomb(work / "bomb.pdf"),
        "10,000 pages": pdfgen.empty_pages_pdf(10_000, work / "10k.pdf"),
        "text bomb, 32 MiB of text": hostile.text_bomb(work / "text-bomb.pdf"),
    }


def page_size(pdf: Path) -> tuple[float, float]:
    from agent.stages import inspection

    return inspection.inspect(pdf, max_bytes=2**40, max_pages=100_000).page_sizes_pt[0]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="peaks only, no bisection")
    bisect = not parser.parse_args().quick
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="docagent-children-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        inputs = cases(work)
        for case, pdf in inputs.items():
            figures.append(measure("pdfinfo", case, pdfinfo.argv(pdf), timeout=60,
                                   bisect=bisect))
        figures.append(measure(
            "pdfinfo", "page sizes of 200 pages (-f 1 -l 200)",
            pdfinfo.argv(inputs["10,000 pages"], first=1, last=200),
            timeout=60, bisect=bisect))
        for case in ("A4 scan, 1 page", "born-digital, 6 pages",
                     "2 GiB FlateDecode bomb of blanks", "text bomb, 32 MiB of text"):
            # The text bomb is measured as it ran before the limits: 120 s, no bound.
            figures.append(measure(
                "pdftotext", case, pdftotext.argv(inputs[case]),
                timeout=ocr.PDFTOTEXT_TIMEOUT, bisect=bisect and "text bomb" not in case))
        for case in ("A4 scan, 1 page", "six A4 scans on one page (50 MP cap)",
                     "20,000-pixel image page (50 MP cap)", "2 GiB FlateDecode bomb of blanks",
                     "text bomb, 32 MiB of text"):
            figures += render_and_read(case, inputs[case], work, ocr.OcrOptions(), bisect)
        for case in [c for c in inputs if "colour" in c]:  # the same text: rendering only
            figures.append(render(case, inputs[case], work, ocr.OcrOptions(), bisect)[0])
    OUT.mkdir(exist_ok=True)
    (OUT / "children.json").write_text(json.dumps([asdict(f) for f in figures], indent=1))
    print(f"\nfigures written to {OUT / 'children.json'}")
    return 0


def render(case: str, pdf: Path, work: Path, options: ocr.OcrOptions, bisect: bool,
           ) -> tuple[Figure, Path]:
    """pdftoppm as docagent runs it: grey, at the configured DPI lowered to the pixel cap."""
    dpi = ocr.dpi_for(page_size(pdf), options)
    base = work / "page"
    argv = pdftoppm.argv(pdf, 1, dpi=dpi, base=base, fmt="pgm")
    image = base.with_suffix(".pgm")
    return measure("pdftoppm", f"{case}, {dpi} dpi", argv, timeout=options.timeout,
                   bisect=bisect and not case.startswith("text bomb"), output=image), image


def render_and_read(case: str, pdf: Path, work: Path, options: ocr.OcrOptions, bisect: bool,
                    ) -> list[Figure]:
    """pdftoppm at the DPI docagent would use, then tesseract --psm 3 and --psm 1 on it."""
    rendered, image = render(case, pdf, work, options, bisect)
    out = [rendered]
    if rendered.outcome != "ok":
        return out
    kept = image.read_bytes()
    for psm in (3, 1):
        image.write_bytes(kept)
        out.append(measure("tesseract", f"{case}, --psm {psm}",
                           tesseract.argv(image, langs=LANGS, psm=psm),
                           timeout=options.timeout, bisect=bisect))
    image.unlink()
    return out


if __name__ == "__main__":
    sys.exit(main())
