"""A year of a busy practice: how fast do `docagent costs --day yesterday` and `status` answer?

Generates, in a temporary folder, a state.db and an api_costs.jsonl holding 365 days of
activity (60 documents a day by default: ~70 % read by OCR, a notification each, some
duplicates, failures and reviews, one digest a day), then times the real commands through
subprocess, several runs each, and prints the median with the fastest and slowest run (the
spread a shared machine adds). `--against DIR` times another checkout's code (its `agent/`
under DIR) too, alternating with this one's run by run, so both meet the same noise. Side by
side, the same day's costs read by a full scan of the ledger, to show what the bisection saves.

    .venv/bin/python -m bench.year_bench [--per-day 60] [--days 365] [--runs 20] [--against DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from agent import ledger
from agent.store import Store

DOCAGENT = str(Path(sys.executable).with_name("docagent"))
CPU_SECOND = 20.0 / (ledger.SECONDS_PER_MONTH * 2)  # a 20 EUR/month, 2-core server


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _result(doc_id: str, outcome: str, pages: int, ocr: bool, rng: random.Random) -> str:
    sources = [{"page": n + 1, "source": "ocr" if ocr else "text-layer",
                "confidence": round(rng.uniform(70, 95), 1) if ocr else None,
                "dpi": 300 if ocr else None,
                "seconds": round(rng.uniform(2, 8), 3) if ocr else 0.0}
               for n in range(pages)]
    return json.dumps({
        "document_id": doc_id, "outcome": outcome, "reason": "one patient matched",
        "patient_id": f"P{rng.randint(1, 3000):05d}", "document_type": "lab-report",
        "fields": {"last_name": {"value": "DUPONT", "page": 1, "rule": "label"},
                   "first_name": {"value": "Jean", "page": 1, "rule": "label"},
                   "birth_date": {"value": "1961-03-12", "page": 1, "rule": "label"}},
        "match": {"outcome": outcome, "candidates": [
            {"id": "P00001", "last_name": "DUPONT", "first_name": "Jean",
             "birth_date": "1961-03-12", "agree": ["last_name", "first_name", "birth_date"],
             "disagree": [], "missing": []}]},
        "pages": pages, "text_source": "ocr" if ocr else "text-layer",
        "page_sources": sources,
    })


def generate(home: Path, logs: Path, days: int, per_day: int, seed: int = 7) -> tuple[int, int]:
    """Fill state.db and the ledger; returns (documents, ledger lines)."""
    rng = random.Random(seed)
    home.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    for folder in ("incoming", "processing", "done", "review", "failed"):
        (home / folder).mkdir(exist_ok=True)
    store = Store(home / "state.db")
    documents, receipts, outbox, lines = [], [], [], []
    today = date.today()
    number = 0
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        opening = datetime(day.year, day.month, day.day, 8).astimezone()
        for _ in range(per_day):
            number += 1
            doc_id = f"{number:016x}"
            received = opening + timedelta(seconds=rng.uniform(0, 10 * 3600))
            if back == 0:  # today: a full day's worth so far, whatever the hour
                midnight = opening.replace(hour=0)
                elapsed = (datetime.now().astimezone() - midnight).total_seconds()
                received = midnight + timedelta(seconds=rng.uniform(0, elapsed - 120))
            finished = received + timedelta(seconds=rng.uniform(3, 60))
            roll = rng.random()
            state = "filed" if roll < 0.85 else "review" if roll < 0.97 else "failed"
            ocr = rng.random() < 0.7
            pages = rng.choice((1, 1, 1, 2, 2, 3, 5))
            documents.append((
                doc_id, doc_id * 4, f"scan_{number:06d}.pdf", 120_000, state, _iso(received),
                _iso(finished), 1, f"done/P/{doc_id}.pdf", state,
                "unreadable" if state == "failed" else None,
                "no text could be read" if state == "failed" else "matched",
                pages, "ocr" if ocr else "text-layer", 4000,
                _result(doc_id, state, pages, ocr, rng), _iso(finished)))
            receipts.append((doc_id, f"scan_{number:06d}.pdf", _iso(received), "new",
                             f"k{number}"))
            sent = _iso(finished + timedelta(seconds=1))
            outbox.append((_iso(finished), state, doc_id, "{}", sent))
            if ocr:
                cpu = pages * rng.uniform(2, 6)
                lines.append((finished, {"service": "ocr", "operation": "document",
                                         "duration_ms": int(cpu * 1100),
                                         "outcome": "ok",
                                         "units": {"cpu_seconds": round(cpu, 3),
                                                   "pages": pages},
                                         "cost": round(cpu * CPU_SECOND, 8), "currency": "EUR",
                                         "document_id": doc_id, "cpu_basis": "cpu"}))
            lines.append((finished + timedelta(seconds=1), {
                "service": "telegram", "operation": "sendMessage",
                "duration_ms": rng.randint(80, 400),
                "outcome": "ok" if rng.random() > 0.01 else "error",
                "units": {"message": 1}, "cost": 0.0, "currency": "EUR"}))
            if rng.random() < 0.03:
                receipts.append((doc_id, f"again_{number}.pdf", _iso(finished), "duplicate",
                                 f"d{number}"))
                outbox.append((_iso(finished), "duplicate", doc_id, "{}", sent))
        digest_at = opening - timedelta(hours=1)
        outbox.append((_iso(digest_at), "digest", None, "{}", _iso(digest_at)))
    conn = store.connection()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO documents (id, sha256, original_name, size, state, received_at, "
        "updated_at, attempts, path, outcome, reason_kind, reason, pages, text_source, "
        "duration_ms, result_json, finished_at) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", documents)
    conn.executemany("INSERT INTO receipts (document_id, original_name, received_at, kind, "
                     "source_key) VALUES (?, ?, ?, ?, ?)", receipts)
    conn.executemany("INSERT INTO outbox (created_at, kind, document_id, payload, sent_at) "
                     "VALUES (?, ?, ?, ?, ?)", outbox)
    conn.execute("COMMIT")
    store.close()
    lines.sort(key=lambda pair: pair[0])
    with open(logs / ledger.FILE_NAME, "w", encoding="utf-8") as handle:
        for moment, entry in lines:
            handle.write(json.dumps({"ts": _iso(moment), **entry}, separators=(",", ":")) + "\n")
    return len(documents), len(lines)


ROOT = Path(__file__).resolve().parents[1]


def _timed(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([DOCAGENT, *args], env=env, capture_output=True, text=True,
                          check=True)
    return time.perf_counter() - started, done.stdout


def _runs(args: list[str], envs: dict[str, dict[str, str]], runs: int,
          ) -> tuple[dict[str, list[float]], str]:
    """Each code's run times of `docagent ARGS`, taking turns run by run."""
    timings: dict[str, list[float]] = {name: [] for name in envs}
    out = ""
    for _ in range(runs):
        for name, env in envs.items():
            seconds, out = _timed(args, env)
            timings[name].append(seconds)
    return timings, out


def _spread(values: list[float]) -> str:
    return (f"{statistics.median(values) * 1000:5.0f} ms [{min(values) * 1000:.0f}-"
            f"{max(values) * 1000:.0f}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=60)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--against", type=Path, metavar="DIR",
                        help="another checkout (or a copy of its agent/) to time as well")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="docagent-year-") as tmp:
        root = Path(tmp)
        home, logs = root / "home", root / "logs"
        started = time.perf_counter()
        docs, entries = generate(home, logs, args.days, args.per_day)
        print(f"generated {docs} documents and {entries} ledger lines in "
              f"{time.perf_counter() - started:.1f} s: state.db "
              f"{(home / 'state.db').stat().st_size / 1e6:.1f} MB, api_costs.jsonl "
              f"{(logs / ledger.FILE_NAME).stat().st_size / 1e6:.1f} MB")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCAGENT_")}
        env.update({"DOCAGENT_HOME": str(home), "DOCAGENT_LOG_DIR": str(logs)})
        envs = {"this": {**env, "PYTHONPATH": str(ROOT)}}
        if args.against is not None:
            envs["against"] = {**env, "PYTHONPATH": str(args.against.resolve())}
        print(f"median [fastest-slowest] of {args.runs} runs, each a fresh process (python "
              f"start-up included); {' | '.join(envs)}:")
        bare = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            bare.append(time.perf_counter() - started)
        print(f"  {'python -c pass (start-up alone)':<38} {_spread(bare)}")
        out = ""
        for command in (["--help"], ["costs", "--day", "yesterday"],
                        ["costs", "--month", date.today().strftime("%Y-%m")],
                        ["status"], ["status", "--json"]):
            timings, out = _runs(command, envs, args.runs)
            print(f"  docagent {' '.join(command):<29} "
                  + " | ".join(_spread(timings[name]) for name in envs))
        print(out.splitlines()[0][:200])

        start, end = ledger.day_bounds(date.today() - timedelta(days=1))
        timings = {"bisect": [], "full scan": []}
        for _ in range(args.runs):
            t0 = time.perf_counter()
            bisected = ledger.summarize(ledger.read_range(logs, start, end))
            t1 = time.perf_counter()
            with open(logs / ledger.FILE_NAME, "rb") as handle:
                scanned = ledger.summarize(
                    e for e in map(json.loads, handle) if start <= e["ts"] < end)
            t2 = time.perf_counter()
            timings["bisect"].append(t1 - t0)
            timings["full scan"].append(t2 - t1)
            assert bisected == scanned
        print("yesterday's costs in-process, same answer both ways:")
        for name, values in timings.items():
            print(f"  {name:<10} {statistics.median(values) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
