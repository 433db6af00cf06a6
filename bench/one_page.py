"""`docagent process` on one scanned page, beside the raw tools on the same page.

    .venv/bin/python -m bench.one_page [--runs 5]

Runs, alternating so drift hits all equally: (a) `docagent process --json` on a one-page
scanned PDF, each run on a fresh spool; (b) `tesseract` alone on the page image already
rendered (grey PGM at 300 dpi); (c) the raw pipeline by hand, `pdftoppm -r 300 -gray` then
`tesseract`. Prints each median and the ratios a/b and a/c. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests import pdfgen

DOCAGENT = str(Path(sys.executable).with_name("docagent"))


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="docagent-bench-"))
    try:
        pdf = pdfgen.write_sample_scan(work / "page.pdf", seed=7)
        subprocess.run(["pdftoppm", "-r", "300", "-gray", "-singlefile", str(pdf),
                        str(work / "page")], check=True)
        image = work / "page.pgm"
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        a: list[float] = []
        b: list[float] = []
        c: list[float] = []
        for run in range(args.runs + 1):  # the first round warms caches and is dropped
            home = work / f"home{run}"
            spool_env = {**env, "DOCAGENT_HOME": str(home), "DOCAGENT_LOG_DIR": str(home / "l")}
            ta = timed([DOCAGENT, "process", "--json", str(pdf)], spool_env)
            tb = timed(["tesseract", str(image), "-", "-l", "fra+eng"], env)
            tc = timed(["sh", "-c", f"pdftoppm -r 300 -gray -singlefile '{pdf}' '{work}/raw' && "
                        f"tesseract '{work}/raw.pgm' - -l fra+eng"], env)
            if run:
                a.append(ta)
                b.append(tb)
                c.append(tc)
        ma, mb, mc = (statistics.median(x) for x in (a, b, c))
        print(f"runs: {args.runs} (after one warm-up), one A4 scanned page, 300 dpi, fra+eng")
        print(f"(a) docagent process --json page.pdf            median {ma:6.2f} s  "
              f"[{min(a):.2f}-{max(a):.2f}]")
        print(f"(b) tesseract page.pgm - -l fra+eng               median {mb:6.2f} s  "
              f"[{min(b):.2f}-{max(b):.2f}]")
        print(f"(c) pdftoppm -r 300 -gray + tesseract             median {mc:6.2f} s  "
              f"[{min(c):.2f}-{max(c):.2f}]")
        print(f"ratio a/b {ma / mb:.2f}   a/c {ma / mc:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
