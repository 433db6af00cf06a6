"""Finding documents at the scale of years of a busy practice: how fast, how big, and what the
index costs the filing of each document.

    .venv/bin/python -m bench.find [--documents 100000] [--patients 20000] [--queries 200]
                                   [--runs 20] [--rounds 20] [--per-round 10] [--before REF]
                                   [--only search,size,build,filing]

1. Generates a directory (bench.match_bench's names: common French and Moroccan ones, a long
   tail of generated ones) and N filed documents with generated text (French lab reports,
   imaging reports, letters, prescriptions: a few hundred words each, the vocabulary drawn
   Zipf-like as real text is, with lab values, dates, addresses and the patient's lines); no
   PDF is made or read. Rows go straight into `documents` and the index through
   `agent.spool.index.put`, the function the filing commit calls, in batched transactions.
2. `agent.ops.finding.find` in-process: by a patient's name as typed ("dupont jean", accents
   dropped) and by two words drawn from a document's own text; median, p99, max.
3. The whole `docagent find ... --json` command, a fresh process each time (Python's start,
   the imports, the search and the audit line): median, p99, max.
4. The index's size per document (dbstat: every table and index of the find index), beside
   the other ways FTS5 could have kept the same texts (a 10,000-document sample).
5. The first build from sidecars (the migration's backfill) of 10,000 documents whose .txt
   files are on disk: documents per second, and the longest write transaction (how long the
   daemon's own writes may wait).
6. Filing one document with this code and with the code before the index (`--before`, by
   default the parent of the commit that added agent/spool/index.py, exported with
   `git archive`), each on its own copy of the generated spool, taking turns round by round
   (median, and the rounds' spread): the filing step alone (`spool.place`: link, sidecars,
   fsyncs, audit line, commits), and a born-digital lab report read and filed
   (`pipeline.process`).
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from agent import config
from agent.ops import finding
from agent.patients import import_csv
from agent.spool import index
from agent.store import Store, now_iso
from bench.match_bench import Person, directory

ROOT = Path(__file__).resolve().parents[1]
DOCAGENT = str(Path(sys.executable).with_name("docagent"))
TYPES = ("lab-result", "imaging-report", "referral-letter", "prescription", "other")
# The words of medical letters and reports, most common first (the draw is Zipf-like).
_WORDS = """de la le et les des du en à un une pour au sur avec par est dans patient examen
résultat valeur référence normal normale contrôle traitement bilan analyse sang docteur
madame monsieur date dossier service centre hôpital laboratoire biologie médicale
prélèvement hémoglobine leucocytes plaquettes glycémie créatinine cholestérol triglycérides
ferritine vitamine sodium potassium calcium protéine TSH CRP hématocrite VGM TCMH
neutrophiles lymphocytes monocytes éosinophiles basophiles urée acide urique bilirubine
transaminases ASAT ALAT gamma GT phosphatases alcalines albumine fibrinogène INR TP
compte rendu imagerie radiologie IRM scanner échographie radiographie mammographie
densitométrie genou épaule hanche rachis lombaire cervical thorax abdomen pelvis cheville
poignet coude crâne cerveau sinus foie rein vésicule pancréas rate thyroïde sein utérus
ovaire prostate vessie cœur poumon droit gauche bilatéral antérieur postérieur latéral
ménisque ligament croisé tendon cartilage épanchement articulaire fracture fissure entorse
arthrose hernie discale protrusion sténose kyste nodule lésion masse opacité calcification
séquelle absence anomalie signe aspect compatible évocateur suspect recommandé contrôle
conclusion indication technique injection contraste produit coupes séquences pondérées
lettre cher confrère chère consœur remercie adresse consultation antécédents allergie
hypertension diabète asthme tabac alcool poids taille tension artérielle pouls température
douleur fièvre toux dyspnée fatigue nausées vomissements diarrhée constipation vertiges
céphalées palpitations œdème éruption prurit insomnie anxiété dépression ordonnance
posologie comprimé gélule sachet matin midi soir pendant jours semaines mois renouveler
paracétamol ibuprofène amoxicilline metformine lévothyroxine atorvastatine amlodipine
ramipril oméprazole salbutamol kinésithérapie séances rééducation arrêt travail certificat
aptitude sport vaccin rappel mutuelle sécurité sociale carte vitale remboursement"""
WORDS = _WORDS.split()
STREETS = ["rue de la République", "avenue Jean Jaurès", "boulevard Victor Hugo",
           "place Bellecour", "rue Garibaldi", "cours Lafayette", "quai Saint-Antoine"]
CITIES = ["Lyon", "Villeurbanne", "Vénissieux", "Bron", "Caluire", "Oullins", "Écully"]


def _folded(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def document_text(person: Person, kind: str, day: date, rng: random.Random,
                  weights: list[float]) -> str:
    """One document's text: a header, the patient's lines, a body of a few hundred words."""
    birth = date.fromisoformat(person.birth).strftime("%d/%m/%Y")
    head = [f"CENTRE MÉDICAL {rng.choice(CITIES).upper()}",
            f"{rng.randint(1, 150)} {rng.choice(STREETS)} - {rng.randint(69001, 69009)} "
            f"{rng.choice(CITIES)} - Tél. 04 {rng.randint(10, 99)} {rng.randint(10, 99)} "
            f"{rng.randint(10, 99)} {rng.randint(10, 99)}",
            {"lab-result": "COMPTE RENDU D'ANALYSES", "imaging-report": "COMPTE RENDU D'IRM",
             "referral-letter": "Cher confrère,", "prescription": "ORDONNANCE",
             "other": "CERTIFICAT MÉDICAL"}[kind],
            f"Nom : {person.last}    Prénom : {person.first}", f"Né(e) le : {birth}",
            f"Date : {day.strftime('%d/%m/%Y')}    Dossier n° {rng.randint(1000, 9999)}-"
            f"{rng.randint(100, 999)}"]
    body = []
    for _ in range(rng.randint(8, 20)):
        words = rng.choices(WORDS, weights=weights, k=rng.randint(10, 25))
        if rng.random() < 0.5:
            words.append(f"{rng.randint(1, 400)},{rng.randint(0, 99)}")
        body.append(" ".join(words))
    return "\n".join([*head, *body, f"Dr {rng.choice(['MARTIN', 'LEROY', 'NGUYEN', 'BENALI'])}"])


def generate(root: Path, documents: int, patients: int, seed: int) -> tuple[Path, list[Person],
                                                                           dict[str, str]]:
    """A spool with the directory and `documents` filed documents, indexed; returns the home,
    the people and a sample of texts by document id (for the queries)."""
    rng = random.Random(seed)
    home, logs = root / "home", root / "logs"
    for folder in ("incoming", "processing", "done", "review", "failed"):
        (home / folder).mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    people = directory(patients, rng)
    csv = root / "patients.csv"
    csv.write_text("id,last_name,first_name,birth_date\n" + "".join(
        f"{p.id},{p.last},{p.first},{p.birth}\n" for p in people), encoding="utf-8")
    store = Store(home / "state.db")
    started = time.perf_counter()
    import_csv(store, csv)
    print(f"directory: {patients} patients imported in {time.perf_counter() - started:.1f} s")
    weights = [1 / (rank + 1) for rank in range(len(WORDS))]
    # Some patients have many documents, most a few: a Zipf-like draw of who.
    who = [1 / (rank + 1) ** 0.6 for rank in range(len(people))]
    first_day = date.today() - timedelta(days=3 * 365)
    sample: dict[str, str] = {}
    started = time.perf_counter()
    conn = store.connection()
    batch = 5000
    for start in range(0, documents, batch):
        conn.execute("BEGIN")
        for number in range(start, min(documents, start + batch)):
            person = rng.choices(people, weights=who)[0]
            kind = rng.choice(TYPES)
            day = first_day + timedelta(days=rng.randrange(3 * 365))
            text = document_text(person, kind, day, rng, weights)
            doc_id = f"{number:016x}"
            received = f"{day.isoformat()}T09:{number % 60:02d}:00.000+00:00"
            name = f"scan_{number:06d}.pdf"
            path = f"done/{person.id}/{day.isoformat()}_{kind}_scan_{number:06d}.pdf"
            result = {"document_id": doc_id, "original_name": name, "received_at": received,
                      "outcome": "filed", "patient_id": person.id, "document_type": kind,
                      "document_date": day.isoformat(), "pages": rng.choice((1, 1, 2, 3))}
            conn.execute(
                "INSERT INTO documents (id, sha256, original_name, size, state, received_at,"
                " updated_at, path, outcome, patient_id, reason, pages, text_source,"
                " result_json, finished_at) VALUES (?, ?, ?, ?, 'filed', ?, ?, ?, 'filed', ?,"
                " 'one patient matched', ?, 'text-layer', ?, ?)",
                (doc_id, doc_id * 4, name, 120_000, received, received, path, person.id,
                 result["pages"], json.dumps(result), received))
            index.put(conn, document_id=doc_id, state="filed", path=path,
                      patient_id=person.id, result=result, original_name=name,
                      received_at=received, text=text)
            if number % max(1, documents // 1000) == 0:
                sample[doc_id] = text
        conn.execute("COMMIT")
    store.set_meta(index.BACKFILLED, index.COMPLETE)
    seconds = time.perf_counter() - started
    print(f"documents: {documents} generated and indexed in {seconds:.1f} s "
          f"({documents / seconds:.0f}/s, text and index together)")
    store.close()
    return home, people, sample


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def figures(values: list[float]) -> str:
    return (f"median {statistics.median(values):6.1f} ms, p99 {pct(values, 0.99):6.1f} ms, "
            f"max {max(values):6.1f} ms")


def name_queries(people: list[Person], store: Store, count: int,
                 rng: random.Random) -> list[str]:
    """Names of patients who have documents, as staff type them: lower case, no accents,
    the last name first or the first name first."""
    having = {str(r[0]) for r in store.read("SELECT DISTINCT patient_id FROM find_documents")}
    chosen = rng.sample([p for p in people if p.id in having], count)
    return [_folded(f"{p.last} {p.first}" if rng.random() < 0.7 else f"{p.first} {p.last}")
            .lower() for p in chosen]


def word_queries(sample: dict[str, str], count: int, rng: random.Random) -> list[str]:
    """Two words of one document's own text (4 letters or more), as typed."""
    texts = list(sample.values())
    out = []
    while len(out) < count:
        words = [w for w in rng.choice(texts).split()[6:] if len(w) >= 4 and w.isalpha()]
        if len(words) >= 2:
            out.append(" ".join(rng.sample(words, 2)).lower())
    return out


def in_process(home: Path, people: list[Person], sample: dict[str, str], count: int,
               rng: random.Random) -> tuple[list[str], list[str]]:
    store = Store(home / "state.db")
    names, words = name_queries(people, store, count, rng), word_queries(sample, count, rng)
    for label, queries, ask in (("by name", names, lambda q: finding.Ask(patient=q)),
                                ("by two words", words, lambda q: finding.Ask(words=q))):
        timings, found = [], []
        for query in queries:
            started = time.perf_counter()
            answer = finding.find(store, ask(query))
            timings.append((time.perf_counter() - started) * 1000)
            found.append(answer.total)
        print(f"  find {label:<13} {figures(timings)}  (documents found: median "
              f"{statistics.median(found):.0f}, max {max(found)}; e.g. {queries[0]!r})")
    store.close()
    return names, words


def whole_command(root: Path, names: list[str], words: list[str], runs: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCAGENT_")}
    env.update({"DOCAGENT_HOME": str(root / "home"), "DOCAGENT_LOG_DIR": str(root / "logs"),
                "PYTHONPATH": str(ROOT), "DOCAGENT_LANG": "en"})
    timings: dict[str, list[float]] = {"by name": [], "by two words": []}
    for run in range(runs):  # taking turns
        for label, args in (("by name", names[run].split()),
                            ("by two words", ["--text", words[run]])):
            started = time.perf_counter()
            subprocess.run([DOCAGENT, "find", *args, "--json"], env=env, check=True,
                           capture_output=True)
            timings[label].append((time.perf_counter() - started) * 1000)
    for label, values in timings.items():
        print(f"  docagent find {label:<13} {figures(values)}  ({runs} runs)")


def index_size(home: Path, documents: int) -> None:
    with sqlite3.connect(home / "state.db") as db:
        rows = db.execute("SELECT name, SUM(pgsize) FROM dbstat WHERE name LIKE 'find%' OR"
                          " name LIKE 'sqlite_autoindex_find%' GROUP BY name").fetchall()
        total_db = sum(r[0] for r in db.execute("SELECT SUM(pgsize) FROM dbstat"))
    size = sum(r[1] for r in rows)
    print(f"  the index: {size / 1e6:.1f} MB, {size / documents:.0f} bytes per document "
          f"(state.db {total_db / 1e6:.1f} MB in all); "
          + ", ".join(f"{name} {pages / documents:.0f} B" for name, pages in sorted(rows)))


def fts_options(sample_texts: list[str]) -> None:
    """The same texts under the ways FTS5 could keep them."""
    ways = {"contentless, detail=none (kept)": "content='', detail=none",
            "contentless, detail=full": "content=''",
            "text kept, detail=full": ""}
    sizes = []
    for label, options in ways.items():
        with tempfile.TemporaryDirectory() as tmp:
            db = sqlite3.connect(Path(tmp) / "x.db")
            extra = f", {options}" if options else ""
            db.execute(f"CREATE VIRTUAL TABLE t USING fts5(text{extra}, "
                       "tokenize='unicode61 remove_diacritics 2')")
            db.executemany("INSERT INTO t (rowid, text) VALUES (?, ?)",
                           enumerate(sample_texts, 1))
            db.commit()
            size = db.execute("SELECT SUM(pgsize) FROM dbstat").fetchone()[0]
            db.close()
        sizes.append(f"{label} {size / len(sample_texts):.0f} B")
    text = sum(len(t.encode()) for t in sample_texts) / len(sample_texts)
    print(f"  full-text part per document, {len(sample_texts)} texts of {text:.0f} bytes: "
          + "; ".join(sizes))


def first_build(root: Path, count: int, seed: int) -> None:
    """The migration's backfill of `count` documents whose text is on disk beside them."""
    rng = random.Random(seed)
    home = root / "build" / "home"
    home.mkdir(parents=True)
    settings = config.load(env={"DOCAGENT_HOME": str(home),
                                "DOCAGENT_LOG_DIR": str(root / "build" / "logs")}, cwd=root)
    store = Store(settings.db_path)
    people = directory(2000, rng)
    weights = [1 / (rank + 1) for rank in range(len(WORDS))]
    conn = store.connection()
    conn.execute("BEGIN")
    for number in range(count):
        person = rng.choice(people)
        day = date(2026, 1, 1) + timedelta(days=rng.randrange(300))
        folder = home / "done" / person.id
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{day.isoformat()}_lab-result_scan_{number:06d}"
        (folder / f"{stem}.txt").write_text(
            document_text(person, "lab-result", day, rng, weights), encoding="utf-8")
        result = {"patient_id": person.id, "document_type": "lab-result",
                  "document_date": day.isoformat(), "pages": 1}
        conn.execute(
            "INSERT INTO documents (id, sha256, original_name, size, state, received_at,"
            " updated_at, path, outcome, patient_id, result_json) VALUES (?, ?, ?, 1, 'filed',"
            " ?, ?, ?, 'filed', ?, ?)",
            (f"{number:016x}", f"{number:064x}", f"scan_{number:06d}.pdf", now_iso(),
             now_iso(), f"done/{person.id}/{stem}.pdf", person.id, json.dumps(result)))
    conn.execute("COMMIT")
    os.sync()
    longest, after, total = 0.0, "", 0
    started = time.perf_counter()
    while True:
        before_write = time.perf_counter()
        done, last = index.backfill(settings, store, after)
        longest = max(longest, time.perf_counter() - before_write)
        if last is None:
            break
        total, after = total + done, last
    seconds = time.perf_counter() - started
    print(f"  first build from the sidecars: {total} documents in {seconds:.1f} s "
          f"({total / seconds:.0f}/s), batches of {index.BATCH}; the longest batch "
          f"(files read, then one write transaction) {longest * 1000:.0f} ms")
    store.close()


def before_code(ref: str | None, into: Path) -> Path:
    """The code before the find index, exported from git (never a worktree)."""
    if ref is None:
        added = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "--",
                                "agent/spool/index.py"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.split()
        ref = f"{added[-1]}^"
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", ref, "agent"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    short = subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, text=True,
                           capture_output=True, check=True).stdout.strip()
    print(f"  the code before: {ref} ({short})")
    return into


def _sides(root: Path) -> dict[str, Path]:
    """Two copies of the generated spool: the code before on a database without the index's
    tables, this code on one with it; both laid out afresh (VACUUM), so that neither meets
    the other's pages."""
    sides = {}
    for side in ("before", "after"):
        copy = root / f"filing-{side}"
        shutil.copytree(root / "home", copy / "home")
        (copy / "logs").mkdir()
        with sqlite3.connect(copy / "home" / "state.db") as db:
            if side == "before":
                db.execute("DROP TABLE find_documents")
                db.execute("DROP TABLE find_text")
                db.execute("PRAGMA user_version = 3")
            db.execute("VACUUM")
        sides[side] = copy
    return sides


def _alternated(rounds: int, run: Callable[[str, int], list[float]]) -> None:
    """`run(side, round)` for both sides, taking turns (the first alternately), round 0 to
    warm both up and not counted; prints each side's median and the rounds' spread."""
    timings: dict[str, list[float]] = {"before": [], "after": []}
    medians: dict[str, list[float]] = {"before": [], "after": []}
    for number in range(rounds + 1):
        for side in ("before", "after") if number % 2 == 0 else ("after", "before"):
            values = run(side, number)
            if number:
                timings[side] += values
                medians[side].append(statistics.median(values))
    for side in ("before", "after"):
        print(f"    {side} the index: median {statistics.median(timings[side]):.1f} ms over "
              f"{len(timings[side])}, the rounds' medians {min(medians[side]):.1f}-"
              f"{max(medians[side]):.1f} ms")
    ratios = [a / b for a, b in zip(medians["after"], medians["before"], strict=True)]
    ratio = statistics.median(timings["after"]) / statistics.median(timings["before"])
    print(f"    after / before: {ratio:.3f} (round by round: median "
          f"{statistics.median(ratios):.3f}, {min(ratios):.3f}-{max(ratios):.3f})")


def _worker(code: Path, *args: str) -> list[float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCAGENT_")}
    env["PYTHONPATH"] = str(code)
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "find_filing_worker.py"),
                          *args], env=env, capture_output=True, text=True, check=True).stdout
    return [float(v) for v in json.loads(out)]


def filing(root: Path, before: Path, rounds: int, per_round: int, sample: list[str],
           people: list[Person]) -> None:
    """The filing step alone, then the whole reading and filing of a born-digital document,
    with this code and the code before the index, taking turns round by round."""
    from tests import pdfgen  # the test suite's PDF maker: only here, where PDFs are made

    sides = _sides(root)
    code = {"before": before, "after": ROOT}
    text = root / "text.txt"
    text.write_text(max(sample, key=len), encoding="utf-8")
    print(f"  the filing step (spool.place, a text of {len(text.read_bytes())} bytes):")
    _alternated(rounds, lambda side, number: _worker(
        code[side], "place", str(sides[side] / "home"), str(sides[side] / "logs"),
        str(per_round), str(number), str(text)))
    rng = random.Random(11)

    def born_digital(side: str, number: int) -> list[float]:
        folder = root / f"pdfs-{side}-{number}"
        folder.mkdir()
        for n in range(per_round):
            person = rng.choice(people)
            birth = date.fromisoformat(person.birth).strftime("%d/%m/%Y")
            lines = pdfgen.lab_report_lines(last=person.last, first=person.first, birth=birth,
                                            doc_date="05/11/2026", extra_names=False)
            pdfgen.text_pdf([[*lines, f"{side} {number} {n}"]], folder / f"{n:03d}.pdf")
        return _worker(code[side], "process", str(sides[side] / "home"),
                       str(sides[side] / "logs"), str(folder))

    print("  a born-digital lab report read and filed (pipeline.process):")
    _alternated(rounds, born_digital)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--runs", type=int, default=20, help="whole commands of each kind")
    parser.add_argument("--rounds", type=int, default=20, help="filing: rounds alternated")
    parser.add_argument("--per-round", type=int, default=10, help="filing: documents a round")
    parser.add_argument("--before", metavar="REF", help="the code before the index (git ref)")
    parser.add_argument("--only", default="search,size,build,filing",
                        help="some of search,size,build,filing")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR and keep it")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="docagent-find-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        only = set(args.only.split(","))
        home, people, sample = generate(root, args.documents, args.patients, args.seed)
        if "search" in only:
            print(f"searching {args.documents} documents ({args.queries} queries of each "
                  "kind):")
            names, words = in_process(home, people, sample, args.queries, rng)
            whole_command(root, names, words, args.runs)
        texts = [document_text(p, rng.choice(TYPES), date(2026, 1, 1), rng,
                               [1 / (r + 1) for r in range(len(WORDS))])
                 for p in rng.choices(people, k=10_000)]
        if "size" in only:
            print("size:")
            index_size(home, args.documents)
            fts_options(texts)
        if "build" in only:
            print("the first build (migration):")
            first_build(root, 10_000, args.seed)
        if "filing" in only:
            print("filing, alternated:")
            before = before_code(args.before, root / "before")
            filing(root, before, args.rounds, args.per_round, texts, people)


if __name__ == "__main__":
    main()
