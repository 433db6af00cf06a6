"""Identity in the wild (issue 15): whose is each letter and form, and what it costs to find out.

    .venv/bin/python -m bench.identity                              # this checkout (~6 min cold)
    .venv/bin/python -m bench.identity --against /tmp/bench-main    # side by side with another
    .venv/bin/python -m bench.identity --only corpus                # make and read the documents
    .venv/bin/python -m bench.identity --only identify --against DIR
    .venv/bin/python -m bench.identity --only timing --patients 100000
    options: --seed 7  --per-shape 15 (documents per shape, each born-digital and scanned)
             --rounds 5 (timing rounds over every page, per worker run; two runs a checkout)

A second checkout to compare with: `git worktree add --detach /tmp/bench-main i14-spool`.

1. Corpus (bench/identity_corpus.py, deterministic from --seed): 16 shapes of document,
   French and English, each in several wordings and layouts drawn per document: the five of
   the issue (a referral letter without a birth date; the same with the civility mistyped or
   misread, "M," "Mme." "MME"; "Objet : NOM Prénom - DDN ..."; "Nom / Prénom : X / Y" then a
   two-digit-year DDN; a lab table whose header row names the columns) and consultation
   reports, certificates in capitals, imaging reports, prescriptions, nursing forms, discharge
   letters, English letters, a child with a parent named, a referral signed by a doctor who is
   a patient, two patients in one document, married names with "née". Each is written twice:
   born-digital (tests/pdfgen.text_pdf) and scanned (render_page + degrade, light to heavy,
   some at 200 dpi, + image_pdf). PDFs are kept under bench/out/identity/seed<S>-n<N>/pdf/.
2. Directory: 4,000 people from bench.match_bench's generator (namesakes come with its common
   names) plus every person the corpus made: its patients, their namesakes and twins, parents,
   doctors who are patients, married women with birth and usage names; some patients are left
   out on purpose. Imported by each checkout's own `agent.patients.import_csv`.
3. Truth per document, from how it was made: the patient's id (None when not in the directory
   or when two patients share the document), `allows` (the README's rules on what is printed:
   a last name and a whole first name, the patient in the directory, exactly one record of
   that name or a birth date that tells namesakes apart; a date that reads two ways counts if
   exactly one namesake fits either reading), `named`, and `not_patient` (directory ids named
   on it that are not its patient: doctors, parents, the other patient, a clinician's
   namesake).
4. Reading, once: this checkout's inspect + read_pages with default Settings; each copy's
   pages text and page sources are cached in bench/out/identity/texts/ (keyed by the copy's
   content and the reader's source), so later runs and other checkouts use the same texts.
5. Identification, in a worker process per checkout (bench/identity_worker.py, that
   checkout's `agent` first on PYTHONPATH): read_fields where it exists, else parse_document;
   then match with the name confidence of the pages the names came from.
6. Report, per checkout, per shape and in total, born-digital and scanned apart: wrong files
   (target 0), filed by itself where the evidence allows (target >= 95 %), right patient in
   the first three for review documents whose patient is named and in the directory (target
   >= 90 %), documents filed under a not-patient id (target 0); then every wrong file and
   every miss, with what was read, so a person can look.
7. Timing: the directory grown to --patients with match_bench's generator; per page,
   read_fields and parse_document alternated for --rounds rounds: median and p90 of the
   difference (target median <= 5 ms), with the spread of the per-round medians.

Writes the figures to bench/out/identity/seed<S>-n<N>/figures.json. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from rapidfuzz.distance import Levenshtein

from agent import config
from agent.config import DEFAULT_MIN_NAME_CONFIDENCE
from agent.errors import DocagentError
from agent.names import name_key
from agent.ops import pipeline
from agent.stages import inspection, ocr
from agent.tools import runner
from bench import match_bench
from bench.identity_corpus import SHAPES, Corpus, Doc, Person, build, write_csv, write_pdf

HERE = Path(__file__).resolve().parents[1]  # this checkout
OUT = HERE / "bench" / "out" / "identity"
WORKER = Path(__file__).resolve().with_name("identity_worker.py")
FORMS = ("digital", "scan")
FORM_TITLE = {"digital": "born-digital", "scan": "scanned"}
READER_SOURCES = ("agent/stages/inspection.py", "agent/stages/ocr.py", "agent/tools/pdftoppm.py",
                  "agent/tools/pdftotext.py", "agent/tools/tesseract.py")


# --- reading, once ---------------------------------------------------------------------------


@dataclass
class Copy:
    """One copy of a document (born-digital or scanned) and its text, as this checkout read it."""

    doc: Doc
    form: str
    pdf: Path
    cache: Path
    pages: list[str] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    @property
    def key(self) -> str:
        return f"{self.doc.id}-{self.form}"


def reader_fingerprint() -> str:
    digest = hashlib.sha256()
    for rel in READER_SOURCES:
        digest.update((HERE / rel).read_bytes())
    digest.update(subprocess.run(["tesseract", "--version"], capture_output=True, text=True,
                                 check=True).stdout.encode())
    return digest.hexdigest()[:16]


def cache_name(doc: Doc, form: str, fingerprint: str) -> str:
    made = {"form": form, "pages": doc.draft.pages, "reader": fingerprint,
            "scan": doc.scan if form == "scan" else None}
    return hashlib.sha256(json.dumps(made, sort_keys=True, ensure_ascii=False)
                          .encode()).hexdigest()[:24] + ".json"


def read_corpus(corpus: Corpus, run_dir: Path) -> list[Copy]:
    """Every copy's text: from the cache, or written to PDF and read now (in parallel)."""
    settings = config.load(env={}, cwd=run_dir)  # the defaults, whatever this shell exports
    options = pipeline._options(settings)
    texts = OUT / "texts"
    texts.mkdir(parents=True, exist_ok=True)
    (run_dir / "pdf").mkdir(parents=True, exist_ok=True)
    fingerprint = reader_fingerprint()
    copies = [Copy(doc, form, run_dir / "pdf" / f"{doc.id}-{form}.pdf",
                   texts / cache_name(doc, form, fingerprint))
              for doc in corpus.docs for form in FORMS]

    def one(copy: Copy) -> bool:
        if not copy.pdf.exists():
            write_pdf(copy.doc, copy.form, copy.pdf)
        if copy.cache.exists():
            cached = json.loads(copy.cache.read_text(encoding="utf-8"))
            copy.pages, copy.sources = cached["pages"], cached["sources"]
            copy.seconds, copy.error = cached["seconds"], cached.get("error")
            return False
        started = time.perf_counter()
        try:
            info = inspection.inspect(copy.pdf, max_bytes=settings.max_bytes,
                                      max_pages=settings.max_pages)
            pages = ocr.read_pages(copy.pdf, info.page_sizes_pt, options)
        except DocagentError as error:  # kept as the daemon would: a failed document
            copy.error = f"{type(error).__name__}: {error}"
        else:
            copy.pages = [p.text for p in pages]
            copy.sources = [{"page": p.number, "source": p.source, "confidence": p.confidence}
                            for p in pages]
        copy.seconds = time.perf_counter() - started
        copy.cache.write_text(json.dumps({"pages": copy.pages, "sources": copy.sources,
                                          "seconds": copy.seconds, "error": copy.error},
                                         ensure_ascii=False), encoding="utf-8")
        return True

    started = time.perf_counter()
    done = read = 0
    with ThreadPoolExecutor(max_workers=runner.slot_count()) as pool:
        for was_read in pool.map(one, copies):
            done += 1
            read += was_read
            if done % 100 == 0 or done == len(copies):
                print(f"  {done}/{len(copies)} copies ready ({read} read now, "
                      f"{time.perf_counter() - started:.0f} s)", flush=True)
    return copies


def corpus_json(copies: list[Copy], path: Path) -> Path:
    docs = [{"key": c.key, "pages": c.pages, "sources": c.sources} for c in copies]
    path.write_text(json.dumps({"docs": docs}, ensure_ascii=False), encoding="utf-8")
    return path


# --- the workers -----------------------------------------------------------------------------


def describe(checkout: Path) -> str:
    """`folder@commit` (+dirty) of a checkout, to tell the columns apart."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True,
                              text=True, check=False).stdout.strip()

    dirty = "+dirty" if git("status", "--porcelain", "--untracked-files=no") else ""
    return f"{checkout.name}@{git('rev-parse', '--short', 'HEAD') or '?'}{dirty}"


def run_worker(checkout: Path, mode: str, corpus: Path, directory: Path, out: Path,
               *extra: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    started = time.perf_counter()
    subprocess.run([sys.executable, str(WORKER), mode, "--corpus", str(corpus), "--directory",
                    str(directory), "--out", str(out), *extra], env=env, cwd=checkout,
                   check=True)
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    if Path(result["agent"]).resolve() != (checkout / "agent").resolve():
        raise SystemExit(f"the worker imported {result['agent']}, not {checkout}/agent")
    print(f"  {mode} with {describe(checkout)} ({result['path']}): "
          f"{time.perf_counter() - started:.1f} s, {result['patients']} patients imported in "
          f"{result['import_seconds']:.1f} s", flush=True)
    return result


# --- scoring ---------------------------------------------------------------------------------


@dataclass
class Tally:
    docs: int = 0
    wrong: int = 0
    allows: int = 0
    auto: int = 0
    named: int = 0  # review documents whose patient is named and in the directory
    top3: int = 0
    np_docs: int = 0  # documents that name someone of the directory who is not their patient
    np_filed: int = 0
    allows_legible: int = 0  # allowed, and the name's page was not read under the OCR bound
    auto_legible: int = 0
    named_readable: int = 0  # review documents whose patient's name the text holds, give or
    top3_readable: int = 0  # take two letters in each part (the "legible")

    def add(self, other: Tally) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Scores:
    tallies: dict[tuple[str, str], Tally]  # (form, shape)
    wrong: list[tuple[Copy, dict[str, Any], str]]
    misses: list[tuple[Copy, dict[str, Any], str]]  # allowed but not filed, or not in the top 3


def legible(copy: Copy) -> bool:
    """The patient's name (always on page 1 here) was not read under the confidence below
    which a name never files (README): what is left is the identification's to win."""
    first = copy.sources[0]["confidence"] if copy.sources else 0.0
    return first is None or first >= DEFAULT_MIN_NAME_CONFIDENCE


READABLE_EDITS = 2  # "even misread by one or two letters"


def name_readable(copy: Copy) -> bool:
    """The text read holds the patient's last name and first name as printed, each within
    READABLE_EDITS letters (case, accents, spaces and hyphens aside): the name is there for a
    person, or a fuzzy suggestion, to recognise."""
    draft = copy.doc.draft
    if not draft.shown_last or draft.shown_first is None:
        return False
    words = [name_key(w) for w in " ".join(copy.pages).split()]
    words = [w for w in words if w]

    def near(name: str) -> bool:
        key, width = name_key(name), len(name.split()) + 1
        return any(Levenshtein.distance(key, "".join(words[i:i + n])) <= READABLE_EDITS
                   for n in range(1, width + 1) for i in range(len(words)))

    return any(near(last) for last in draft.shown_last) and near(draft.shown_first)


def score(copies: list[Copy], results: dict[str, Any]) -> Scores:
    tallies: dict[tuple[str, str], Tally] = defaultdict(Tally)
    scores = Scores(tallies, [], [])
    for copy in copies:
        truth = copy.doc.truth
        got = results["docs"][copy.key]
        t = tallies[(copy.form, copy.doc.shape)]
        t.docs += 1
        filed = got["outcome"] == "filed"
        right = filed and got["patient_id"] == truth.patient_id
        if filed and not right:
            t.wrong += 1
            scores.wrong.append((copy, got, "WRONG"))
        missed = []
        if truth.allows:
            t.allows += 1
            t.auto += right
            if legible(copy):
                t.allows_legible += 1
                t.auto_legible += right
            if not filed:
                missed.append("allowed, not filed")
        if not filed and truth.named and truth.patient_id is not None:
            t.named += 1
            ranked = truth.patient_id in got["candidates"][:3]
            t.top3 += ranked
            readable = name_readable(copy)
            t.named_readable += readable
            t.top3_readable += ranked and readable
            if not ranked:
                missed.append("not in top 3" + (", its name in the text" if readable else ""))
        if missed:
            scores.misses.append((copy, got, ", ".join(missed)))
        if truth.not_patient:
            t.np_docs += 1
            t.np_filed += filed and got["patient_id"] in truth.not_patient
    return scores


def share(k: int, n: int) -> str:
    return f"{100 * k / n:5.1f}%" if n else "    -"


def cell(t: Tally, totals: bool) -> str:
    auto = f"{t.auto}/{t.allows}"
    top3 = f"{t.top3}/{t.named}"
    np = f"{t.np_filed}/{t.np_docs}"
    if totals:
        auto += " " + share(t.auto, t.allows).strip()
        top3 += " " + share(t.top3, t.named).strip()
    return f"{t.wrong:>5}  {auto:>13}  {top3:>13}  {np:>6}"


def legible_cell(t: Tally) -> str:
    return f"{t.auto_legible}/{t.allows_legible} {share(t.auto_legible, t.allows_legible).strip()}"


def readable_cell(t: Tally) -> str:
    return (f"{t.top3_readable}/{t.named_readable} "
            f"{share(t.top3_readable, t.named_readable).strip()}")


def print_tables(labels: list[str], scores: list[Scores]) -> None:
    shapes = [name for name, _ in SHAPES]
    head = f"{'wrong':>5}  {'auto':>13}  {'top-3':>13}  {'np':>6}"
    for form in FORMS:
        print(f"\n{FORM_TITLE[form]} copies")
        print(f"{'':<28}{'':>5}" + "".join(f" | {label[:40]:<43}" for label in labels))
        print(f"{'shape':<28}{'docs':>5}" + "".join(f" | {head}" for _ in labels))
        totals = [Tally() for _ in labels]
        for shape in shapes:
            row = [s.tallies.get((form, shape), Tally()) for s in scores]
            for total, t in zip(totals, row, strict=True):
                total.add(t)
            print(f"{shape:<28}{row[0].docs:>5}" + "".join(f" | {cell(t, False)}" for t in row))
        print(f"{'total':<28}{totals[0].docs:>5}"
              + "".join(f" | {cell(t, True)}" for t in totals))
        if form == "scan":
            print(f"{'  auto, name page read >= ' + str(int(DEFAULT_MIN_NAME_CONFIDENCE)):<33}"
                  + "".join(f" | {'':>5}  {legible_cell(t):>13}  {'':>13}  {'':>6}"
                            for t in totals))
            print(f"{'  top-3, name in the text read':<33}"
                  + "".join(f" | {'':>5}  {'':>13}  {readable_cell(t):>13}  {'':>6}"
                            for t in totals))
    print("\nwrong: filed under another patient, or filed when it is no one's (target 0); "
          "auto: filed under its patient / documents whose evidence allows it (target >= "
          "95%); top-3: its patient among the first three candidates / review documents whose "
          "patient is named and in the directory (target >= 90%); np: filed under a directory "
          "person named on it who is not its patient / documents naming one (target 0). "
          "'name page read >= 70': the scanned copies whose evidence allows filing and whose "
          "name was not read under the OCR confidence below which nothing files; 'name in the "
          "text read': the scanned review copies whose text holds the patient's last and first "
          f"name within {READABLE_EDITS} letters each")


def short_fields(got: dict[str, Any]) -> str:
    parts = []
    for name, label in (("last_name", "last"), ("first_name", "first"),
                        ("birth_name", "née"), ("birth_date", "born"), ("age", "age")):
        f = got["fields"].get(name)
        if f:
            parts.append(f"{label}={f['value']!r}[{f['rule']}]")
    return " ".join(parts) or "nothing read"


def print_list(title: str, rows: list[tuple[Copy, dict[str, Any], str]]) -> None:
    """Two lines a document: what it is and what happened; what was read and where it is."""
    print(f"\n  {title}: {len(rows)}")
    if rows:
        by_code = Counter(got["code"] for _c, got, _f in rows)
        print("    by reason: " + ", ".join(f"{code} {n}" for code, n in by_code.most_common()))
    for copy, got, flag in rows:
        truth = copy.doc.truth
        conf = f" (OCR {got['name_confidence']:.0f})" if got["name_confidence"] else ""
        outcome = f"{got['outcome']} {got['patient_id'] or ''}".strip()
        print(f"    {copy.doc.id} {copy.form:<7} {copy.doc.shape:<26} [{flag}] {outcome}: "
              f"{got['code']}{conf}; truth {truth.patient_id or 'none'} ({truth.why})")
        print(f"        read: {short_fields(got)}; top-3 "
              f"{','.join(got['candidates'][:3]) or '-'}; {copy.doc.draft.variant!r}; "
              f"{copy.pdf.relative_to(HERE)}")


def print_lists(labels: list[str], scores: list[Scores], outcomes: list[dict[str, Any]]
                ) -> None:
    for i, (label, s) in enumerate(zip(labels, scores, strict=True)):
        print(f"\n{label}")
        if i and outcomes[i] == outcomes[0]:
            print(f"  every decision the same as {labels[0]}'s: lists above")
            continue
        print_list("wrong files", s.wrong)
        print_list("misses (allowed but not filed by itself; review with the patient named and "
                   "in the directory but not in the first three)", s.misses)


def decisions(result: dict[str, Any]) -> dict[str, Any]:
    return {k: (v["outcome"], v["patient_id"], v["candidates"][:3])
            for k, v in result["docs"].items()}


def summary(scores: Scores) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for form in FORMS:
        total = Tally()
        shapes = {}
        for (f, shape), t in scores.tallies.items():
            if f == form:
                total.add(t)
                shapes[shape] = t.__dict__
        out[form] = {"total": total.__dict__, "shapes": shapes}
    return out


# --- timing ----------------------------------------------------------------------------------


def big_directory(corpus: Corpus, patients: int, seed: int, path: Path) -> Path:
    """The corpus directory grown to `patients` with match_bench's generator."""
    grown = match_bench.directory(max(0, patients - len(corpus.people.people)),
                                  random.Random(seed + 1))
    extra = [Person(f"T{i:06d}", p.last, p.first, date.fromisoformat(p.birth))
             for i, p in enumerate(grown)]
    return write_csv([*corpus.people.people, *extra], path)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def merge_timing(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The rounds of several runs of one checkout, as if one run."""
    merged = dict(runs[0])
    merged["diffs_ms"] = [[d for r in runs for d in r["diffs_ms"][i]] for i in
                          range(len(runs[0]["diffs_ms"]))]
    merged["parse_ms"] = [statistics.median(r["parse_ms"][i] for r in runs) for i in
                          range(len(runs[0]["parse_ms"]))]
    merged["first_call_ms"] = max(r["first_call_ms"] for r in runs)
    merged["import_seconds"] = statistics.median(r["import_seconds"] for r in runs)
    return merged


def print_timing(label: str, result: dict[str, Any]) -> dict[str, Any]:
    diffs: list[list[float]] = result["diffs_ms"]
    per_page = [statistics.median(d) for d in diffs]
    rounds = len(diffs[0])
    per_round = [statistics.median(d[r] for d in diffs) for r in range(rounds)]
    figures = {"path": result["path"], "patients": result["patients"], "pages": len(diffs),
               "rounds": rounds, "median_ms": statistics.median(per_page),
               "p90_ms": pct(per_page, 0.9), "round_medians_ms": [min(per_round),
                                                                  max(per_round)],
               "parse_median_ms": statistics.median(result["parse_ms"]),
               "first_call_ms": result["first_call_ms"],
               "import_seconds": result["import_seconds"]}
    print(f"  {label} ({result['path']}): median {figures['median_ms']:.3f} ms, p90 "
          f"{figures['p90_ms']:.3f} ms per page [per-round medians "
          f"{min(per_round):.3f} to {max(per_round):.3f}]; parse_document alone "
          f"{figures['parse_median_ms']:.2f} ms; first call {result['first_call_ms']:.0f} ms; "
          f"import {result['import_seconds']:.1f} s -> target median <= 5 ms "
          f"{'met' if figures['median_ms'] <= 5 else 'NOT met'}")
    return figures


# --- main ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--per-shape", type=int, default=15,
                        help="documents per shape (each made born-digital and scanned)")
    parser.add_argument("--against", type=Path, help="another checkout, side by side")
    parser.add_argument("--only", choices=("corpus", "identify", "timing"))
    parser.add_argument("--patients", type=int, default=100_000, help="timing directory size")
    parser.add_argument("--rounds", type=int, default=5,
                        help="timing rounds over every page, per worker run (two per checkout)")
    args = parser.parse_args(argv)
    checkouts = [HERE]
    if args.against is not None:
        other = args.against.resolve()
        if not (other / "agent" / "stages" / "match.py").exists():
            parser.error(f"{other} is not a docagent checkout")
        checkouts.append(other)
    labels = [describe(c) for c in checkouts]
    if len(set(labels)) < len(labels):
        labels = [f"{label} ({i + 1})" for i, label in enumerate(labels)]

    started = time.perf_counter()
    run_dir = OUT / f"seed{args.seed}-n{args.per_shape}"
    run_dir.mkdir(parents=True, exist_ok=True)
    corpus = build(args.seed, args.per_shape)
    directory = write_csv(corpus.people.people, run_dir / "directory.csv")
    truths = Counter((d.truth.allows, d.truth.patient_id is None) for d in corpus.docs)
    print(f"corpus: {len(corpus.docs)} documents x {len(FORMS)} copies, {len(SHAPES)} shapes; "
          f"directory {len(corpus.people.people)} people; evidence allows filing "
          f"{truths[(True, False)]}, patient not in the directory or not one "
          f"{truths[(False, True)]}; reading with {describe(HERE)}", flush=True)
    copies = read_corpus(corpus, run_dir)
    scans = [c for c in copies if c.form == "scan"]
    confidences = [s["confidence"] for c in scans for s in c.sources if s["confidence"]]
    print(f"read: {sum(c.seconds for c in copies):.0f} s of reading in all; scanned pages' mean "
          f"OCR confidence median {statistics.median(confidences):.0f}, "
          f"{sum(1 for x in confidences if x < 70)} of {len(confidences)} under 70; "
          f"{sum(1 for c in copies if c.error)} unreadable", flush=True)
    for level in ("light", "medium", "heavy"):
        got = [s["confidence"] for c in scans if c.doc.scan["level"] == level
               for s in c.sources if s["confidence"]]
        if got:
            print(f"  {level} damage: {len(got)} pages, confidence median "
                  f"{statistics.median(got):.0f}, min {min(got):.0f}, "
                  f"{sum(1 for x in got if x < 70)} under 70")
    texts = corpus_json(copies, run_dir / "corpus.json")
    figures: dict[str, Any] = {"seed": args.seed, "per_shape": args.per_shape,
                               "checkouts": labels}
    if args.only in (None, "identify"):
        print("\nidentifying", flush=True)
        results = [run_worker(c, "identify", texts, directory,
                              run_dir / f"identify-{i}.json")
                   for i, c in enumerate(checkouts)]
        scores = [score(copies, r) for r in results]
        print_tables(labels, scores)
        print_lists(labels, scores, [decisions(r) for r in results])
        figures["identify"] = {label: {"path": r["path"], **summary(s)}
                               for label, r, s in zip(labels, results, scores, strict=True)}
    if args.only in (None, "timing"):
        print(f"\ntiming: directory of {args.patients} patients, every page's text, "
              f"{args.rounds} rounds", flush=True)
        big = big_directory(corpus, args.patients, args.seed, run_dir / "directory-big.csv")
        # Each checkout twice, in the order A B B A (A A alone): the machine's moods fall on
        # both; the figure itself is a difference taken within each worker, call by call.
        order = [*range(len(checkouts)), *reversed(range(len(checkouts)))]
        runs: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for n, i in enumerate(order):
            runs[i].append(run_worker(checkouts[i], "timing", texts, big,
                                      run_dir / f"timing-{i}-{n}.json", "--rounds",
                                      str(args.rounds), "--seed", str(args.seed + n)))
        timed = [merge_timing(runs[i]) for i in range(len(checkouts))]
        print("time finding names adds per page (read_fields - parse_document):")
        figures["timing"] = {label: print_timing(label, r)
                             for label, r in zip(labels, timed, strict=True)}
    (run_dir / "figures.json").write_text(json.dumps(figures, indent=1), encoding="utf-8")
    print(f"\nfigures in {(run_dir / 'figures.json').relative_to(HERE)}; "
          f"{time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
