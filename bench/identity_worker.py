"""The identification half of `bench.identity`, run in a process of its own per code version.

    python bench/identity_worker.py identify --corpus C.json --directory D.csv --out R.json
    python bench/identity_worker.py timing --corpus C.json --directory D.csv --out T.json

Run by path with the checkout to measure first on PYTHONPATH, so `agent` is that checkout's:
this file imports nothing else from the bench (another checkout's `bench` package would shadow
it), only the standard library and `agent`. It imports the directory with that checkout's own
importer into a fresh Store, then, on the texts read once by the parent:

* identify: per document, the fields (`agent.stages.identify.read_fields(store, pages)` where
  it exists, else `agent.stages.parse.parse_document(pages)`) and the decision
  (`agent.stages.match.match` with the name confidence of the pages the names came from);
* timing: per page, read_fields and parse_document alternated, many rounds: how much finding
  the directory's people adds to reading a page (0 on a checkout without read_fields).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import agent
from agent.patients import import_csv
from agent.stages.match import match
from agent.stages.parse import parse_document

try:  # where the typed reading lives now; a checkout before that kept it in parse
    from agent.stages.fields import Found, ParsedFields
except ImportError:
    from agent.stages.parse import Found, ParsedFields  # type: ignore[attr-defined]
from agent.stages.record import PageSource, name_confidence
from agent.store import Store

Reader = Callable[[Store, Sequence[str]], ParsedFields]


def reader() -> tuple[str, Reader]:
    """read_fields where this checkout has it, else today's parse (a broken identify module
    is an error, not a fallback)."""
    if importlib.util.find_spec("agent.stages.identify") is not None:
        module = importlib.import_module("agent.stages.identify")
        read_fields = getattr(module, "read_fields", None)
        if read_fields is not None:
            return "read_fields", cast(Reader, read_fields)
    return "parse_document", lambda _store, pages: parse_document(pages)


def load_directory(csv: Path, folder: Path) -> tuple[Store, float, int]:
    store = Store(folder / "state.db")
    started = time.perf_counter()
    report = import_csv(store, csv)
    took = time.perf_counter() - started
    if report.rejected:
        print(f"worker: {len(report.rejected)} directory rows rejected, first: "
              f"{report.rejected[0]}", file=sys.stderr)
    return store, took, report.added


def found(f: Found | None) -> dict[str, Any] | None:
    if f is None:
        return None
    out: dict[str, Any] = {"value": f.value, "page": f.page, "rule": f.rule,
                           "snippet": f.snippet}
    other = getattr(f, "other", None)  # a second reading of a date, where the code has one
    if other:
        out["other"] = other
    return out


def identify(corpus: list[dict[str, Any]], store: Store, read: Reader) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for doc in corpus:
        sources = tuple(PageSource(int(s["page"]), str(s["source"]), s.get("confidence"))
                        for s in doc["sources"])
        fields = read(store, doc["pages"])
        decision = match(store, fields, name_confidence=name_confidence(fields, sources))
        results[doc["key"]] = {
            "outcome": decision.outcome, "patient_id": decision.patient_id,
            "reason": decision.reason, "code": decision.why.as_dict().get("code"),
            "candidates": [c.patient.id for c in decision.candidates],
            "name_confidence": decision.name_confidence,
            "fields": {"last_name": found(fields.last_name),
                       "first_name": found(fields.first_name),
                       "birth_name": found(fields.birth_name),
                       "birth_date": found(fields.birth_date),
                       "age": found(getattr(fields, "age", None))},
        }
    return results


def timing(corpus: list[dict[str, Any]], store: Store, read: Reader, rounds: int,
           seed: int) -> dict[str, Any]:
    pages = [[text] for doc in corpus for text in doc["pages"]]
    started = time.perf_counter()
    read(store, pages[0])  # the first call builds whatever the reader keeps warm
    first_call = (time.perf_counter() - started) * 1000
    rng = random.Random(seed)
    diffs: list[list[float]] = [[] for _ in pages]
    parse_ms: list[list[float]] = [[] for _ in pages]
    clock = time.perf_counter
    for r in range(rounds):
        order = list(range(len(pages)))
        rng.shuffle(order)
        for i in order:
            page = pages[i]
            if (r + i) % 2:  # which goes first alternates, so warm caches favour neither
                t0 = clock()
                read(store, page)
                t1 = clock()
                parse_document(page)
                t2 = clock()
                spent_read, spent_parse = t1 - t0, t2 - t1
            else:
                t0 = clock()
                parse_document(page)
                t1 = clock()
                read(store, page)
                t2 = clock()
                spent_parse, spent_read = t1 - t0, t2 - t1
            diffs[i].append((spent_read - spent_parse) * 1000)
            parse_ms[i].append(spent_parse * 1000)
    return {"first_call_ms": first_call, "diffs_ms": diffs,
            "parse_ms": [statistics.median(v) for v in parse_ms]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=("identify", "timing"))
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--directory", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    corpus = json.loads(args.corpus.read_text(encoding="utf-8"))["docs"]
    path, read = reader()
    with tempfile.TemporaryDirectory(prefix="identity-bench-") as tmp:
        store, imported, added = load_directory(args.directory, Path(tmp))
        out: dict[str, Any] = {"agent": str(Path(agent.__file__).parent), "path": path,
                               "patients": added, "import_seconds": imported}
        if args.mode == "identify":
            out["docs"] = identify(corpus, store, read)
        else:
            out.update(timing(corpus, store, read, args.rounds, args.seed))
        store.close()
    args.out.write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
