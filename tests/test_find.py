"""Finding a patient's documents from the shell, and the record of every access.

The real `docagent` command on a real spool: documents read and filed by the pipeline, then
found by name (accents, hyphens, particles as matching compares them), directory id, birth
date, words of the text (prefix, accents and case do not count), type and dates; found under
the patient a person or a re-match filed them under; `show` with the evidence and the history;
each find, show and download an audit line, the chain whole; documents filed before the index
existed indexed by the migration's backfill, from the command and from the daemon.
"""

from __future__ import annotations

import getpass
import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent import config
from agent.spool import index
from agent.store import SCHEMA_VERSION, Store
from tests import pdfgen
from tests.conftest import DOCAGENT, Spool
from tests.daemonproc import documents, states

EXTRA_PATIENTS = """id,last_name,first_name,birth_date
P008,ALI,Mohamed,1985-02-02
P009,EL AMRANI,Fatima,1979-06-15
"""


def imaging(last: str, first: str, birth: str, day: str, *body: str) -> list[str]:
    """A French MRI report of `day` for one patient."""
    return ["# CABINET DE RADIOLOGIE DU PARC", "# COMPTE RENDU D'IRM", "",
            f"Nom : {last}    Prénom : {first}", f"Né(e) le : {birth}",
            f"Date de l'examen : {day}", "", *body]


def lab(last: str, first: str, birth: str, day: str, tag: str = "") -> list[str]:
    lines = pdfgen.lab_report_lines(last=last, first=first, birth=birth, doc_date=day)
    return [*lines, tag] if tag else lines


def process(spool: Spool, tmp: Path, pages: dict[str, list[str]]) -> dict[str, str]:
    """Each page as a PDF named by its key, through `docagent process`: name -> document id."""
    paths = [pdfgen.text_pdf([lines], tmp / name) for name, lines in pages.items()]
    return {str(out["file"]): str(out["document_id"]) for out in spool.process_json(*paths)}


def find(spool: Spool, *args: str) -> dict[str, Any]:
    done = spool.run("find", *args, "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def ids(found: dict[str, Any]) -> list[str]:
    return [d["document_id"] for d in found["documents"]]


def audit_lines(spool: Spool) -> list[dict[str, Any]]:
    path = spool.logs / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def filed(spool: Spool, tmp_path: Path) -> dict[str, str]:
    """Five documents of five kinds of name, filed by the pipeline."""
    extra = spool.root / "extra.csv"
    extra.write_text(EXTRA_PATIENTS, encoding="utf-8")
    spool.run("patients", "import", str(extra), check=True)
    docs = process(spool, tmp_path, {
        "bilan-martin.pdf": lab("MARTIN", "Hélène", "03/04/1975", "05/11/2026"),
        "irm-martin.pdf": imaging("MARTIN", "Hélène", "03/04/1975", "12/09/2026",
                                  "IRM du GENOU droit : épanchement articulaire.",
                                  "Les deux genoux sont comparés."),
        "bilan-benali.pdf": lab("BEN ALI", "Mohamed", "21/07/1990", "02/10/2026"),
        "bilan-ali.pdf": lab("ALI", "Mohamed", "02/02/1985", "03/10/2026"),
        "bilan-elamrani.pdf": lab("EL AMRANI", "Fatima", "15/06/1979", "04/10/2026"),
    })
    assert set(states(spool).values()) == {"filed"}, states(spool)
    return docs


def test_find_by_each_key_with_accents_and_particles(spool: Spool, filed: dict[str, str]
                                                     ) -> None:
    martin = [filed["bilan-martin.pdf"], filed["irm-martin.pdf"]]  # newest first
    # A name as typed: accents, case, word order and hyphens do not count.
    for query in (["martin"], ["Hélène", "MARTIN"], ["helene"], ["MARTIN", "helene"]):
        assert ids(find(spool, *query)) == martin, query
    # The directory id, in any case; the birth date, day first or ISO.
    for query in ("P002", "p002", "03/04/1975", "1975-04-03"):
        found = find(spool, query)
        assert ids(found) == martin, query
        assert [p["id"] for p in found["patients"]] == ["P002"]
    # Particles count: "ben ali" is BEN ALI, never ALI; the name written joined or hyphenated
    # is the same name; "ali" alone finds both (as a suggestion would), "amrani" EL AMRANI.
    for query in (["ben", "ali"], ["BEN-ALI"], ["benali"], ["Ben", "Ali", "Mohamed"]):
        assert ids(find(spool, *query)) == [filed["bilan-benali.pdf"]], query
    assert ids(find(spool, "ali")) == [filed["bilan-ali.pdf"], filed["bilan-benali.pdf"]]
    assert ids(find(spool, "el-amrani")) == ids(find(spool, "amrani")) == \
        [filed["bilan-elamrani.pdf"]]
    # Words of the text: all of them, any case, accents or not, a word finds those it begins.
    irm = [filed["irm-martin.pdf"]]
    for words in ("IRM genou", "irm GENOU", "epanchement", "Épanchement articul", "genoux"):
        assert ids(find(spool, "--text", words)) == irm, words
    assert ids(find(spool, "--text", "irm hémoglobine")) == []  # both words, or nothing
    assert ids(find(spool, "martin", "--text", "hemoglobine")) == [filed["bilan-martin.pdf"]]
    # A type, dates (the document's own), and the newest first across patients.
    assert ids(find(spool, "--type", "imaging-report")) == irm
    assert ids(find(spool, "--from", "2026-10-01", "--to", "03/10/2026")) == [
        filed["bilan-ali.pdf"], filed["bilan-benali.pdf"]]
    everything = find(spool, "--from", "01/01/2026")
    assert ids(everything)[0] == filed["bilan-martin.pdf"] and everything["total"] == 5
    assert [d["document_date"] for d in everything["documents"]] == [
        "2026-11-05", "2026-10-04", "2026-10-03", "2026-10-02", "2026-09-12"]
    one = find(spool, "p002", "--type", "imaging-report")["documents"][0]
    assert one["patient"]["last_name"] == "Martin" and one["pages"] == 1
    assert one["source"] == {"channel": "folder", "detail": "irm-martin.pdf"}
    assert (spool.home / one["path"]).is_file() and one["path"].startswith("done/P002/")
    # The table a person reads; a query that finds nobody says so, exit 0; bad usage exits 2.
    table = spool.run("find", "martin", check=True).stdout
    assert "MARTIN Hélène, born 1975-04-03 (#P002)" in table
    assert "2026-11-05  lab result" in table and "imaging report" in table
    assert "2 documents, newest first" in table
    nobody = spool.run("find", "zorro", check=True).stdout
    assert "No patient in the directory matches 'zorro'." in nobody
    assert spool.run("find").returncode == 2
    wrong = spool.run("find", "--type", "mri")
    assert wrong.returncode == 2 and "unknown document type" in wrong.stderr


def review_page(name: str, tag: str) -> list[str]:
    # Two LEGRAND Paul on record (P006, P007), neither born that day: a person decides.
    return lab("LEGRAND", "Paul", "01/02/1976", "05/11/2026", tag)


def test_a_resolved_and_a_rematched_document_are_found_under_their_new_patient(
        spool: Spool, tmp_path: Path) -> None:
    docs = process(spool, tmp_path, {
        "legrand.pdf": review_page("legrand.pdf", "Marqueur cardiaque troponine"),
        "zorro.pdf": lab("ZORRO", "Diego", "09/09/1999", "05/11/2026", "Sérologie zorro"),
    })
    legrand, zorro = docs["legrand.pdf"], docs["zorro.pdf"]
    assert states(spool) == {"legrand.pdf": "review", "zorro.pdf": "review"}
    # In review: found by its words, under no patient; under neither candidate.
    [waiting] = find(spool, "--text", "troponine")["documents"]
    assert (waiting["state"], waiting["patient_id"]) == ("review", None)
    assert waiting["path"].startswith("review/")
    assert ids(find(spool, "P006")) == ids(find(spool, "P007")) == []

    spool.run("review", "resolve", legrand[:8], "P007", check=True)
    [moved] = find(spool, "--text", "troponine")["documents"]
    assert (moved["state"], moved["patient_id"]) == ("filed", "P007")
    assert moved["path"].startswith("done/P007/") and (spool.home / moved["path"]).is_file()
    assert ids(find(spool, "P007")) == [legrand] and ids(find(spool, "P006")) == []
    assert ids(find(spool, "legrand", "paul")) == [legrand]  # both namesakes: one document

    # The patient arrives in the directory: the re-match files it, and the index follows.
    csv = spool.root / "zorro.csv"
    csv.write_text("id,last_name,first_name,birth_date\nP010,ZORRO,Diego,1999-09-09\n",
                   encoding="utf-8")
    spool.run("patients", "import", str(csv), check=True)
    assert states(spool)["zorro.pdf"] == "filed"
    assert ids(find(spool, "zorro")) == [zorro]
    [rematched] = find(spool, "--text", "serologie")["documents"]
    assert (rematched["state"], rematched["patient_id"]) == ("filed", "P010")
    assert rematched["path"].startswith("done/P010/")
    # One row per document, none left half moved, and no review document any more.
    with sqlite3.connect(spool.home / "state.db") as db:
        rows = db.execute("SELECT document_id, state FROM find_documents ORDER BY 1").fetchall()
    assert rows == sorted([(legrand, "filed"), (zorro, "filed")])


def test_show_gives_the_evidence_the_file_and_its_history(spool: Spool, filed: dict[str, str]
                                                         ) -> None:
    doc = filed["irm-martin.pdf"]
    out = spool.run("show", doc[:6], check=True).stdout
    lines = out.splitlines()
    assert lines[0] == f"Document {doc} — filed under MARTIN Hélène, born 1975-04-03 (#P002)"
    pdf = next(p for p in spool.files("done/P002") if p.name.endswith("irm-martin.pdf"))
    assert f"  file       {pdf}" in lines
    assert f"  beside it  {pdf.with_suffix('.json')}" in lines
    assert "  type       imaging report («radiologie»)" in lines
    assert "  date       2026-09-12" in lines
    assert any(line.startswith("  evidence   Last name, first name and birth date agree")
               for line in lines)
    history = lines[lines.index("History (audit log):") + 1:]
    assert [line.split()[2] for line in history] == ["taken", "filed"]
    shown = json.loads(spool.run("show", doc, "--json", check=True).stdout)
    assert shown["patient"]["id"] == "P002" and shown["record"]["document_type"] == \
        "imaging-report"
    assert [h["event"] for h in shown["history"]] == ["taken", "filed", "shown"]


def test_every_access_is_an_audit_line_and_the_chain_stays_whole(
        spool: Spool, filed: dict[str, str], tmp_path: Path) -> None:
    who = f"shell:{getpass.getuser()}"
    martin, irm = filed["bilan-martin.pdf"], filed["irm-martin.pdf"]
    spool.run("find", "hélène", "--text", "genou", check=True)
    spool.run("find", "--text", "hemoglobine", "--from", "01/11/2026", check=True)
    spool.run("show", irm, check=True)
    out = tmp_path / "copy.pdf"
    with open(out, "wb") as stdout:
        done = subprocess.run([DOCAGENT, "show", irm, "--pdf"], stdout=stdout, env=spool.env,
                              cwd=spool.root, timeout=60, check=False)
    assert done.returncode == 0
    original = next(p for p in spool.files("done/P002") if p.name.endswith("irm-martin.pdf"))
    assert out.read_bytes() == original.read_bytes()

    accesses = [a for a in audit_lines(spool)
                if a["event"] in ("searched", "shown", "downloaded", "opened")]
    assert [(a["event"], a["actor"]) for a in accesses] == [
        ("searched", who), ("searched", who), ("shown", who), ("downloaded", who)]
    first, second = accesses[0], accesses[1]
    assert first["query"] == {"patient": "hélène", "words": "genou"}
    assert first["patients"] == ["P002"] and first["channel"] == "shell"
    assert first["documents"] == [{"document_id": irm, "patient_id": "P002"}]
    assert second["query"] == {"words": "hemoglobine", "from": "2026-11-01"}
    assert second["documents"] == [{"document_id": martin, "patient_id": "P002"}]
    assert second["patients"] == [] and second["total"] == 1
    assert (accesses[2]["document_id"], accesses[2]["patient_id"]) == (irm, "P002")

    # Who saw Mrs MARTIN's documents, and when: each access, with her documents only.
    listed = json.loads(spool.run("audit", "access", "--patient", "P002", "--json",
                                  check=True).stdout)
    assert [(a["event"], a["actor"], a["documents"]) for a in listed] == [
        ("searched", who, [irm]), ("searched", who, [martin]), ("shown", who, [irm]),
        ("downloaded", who, [irm])]
    assert listed[0]["ts"] == first["ts"]
    table = spool.run("audit", "access", "--patient", "P002", check=True).stdout
    assert f"{who}  searched  “hélène genou” 1 document: {irm}" in table
    assert json.loads(spool.run("audit", "access", "--patient", "P008", "--json",
                                check=True).stdout) == []  # ALI: nobody saw his
    verify = spool.run("audit", "verify")
    assert verify.returncode == 0 and "audit log intact" in verify.stdout, verify.stdout


def _before_the_index(home: Path) -> None:
    """The database as the version before the index left it: no index tables, version 4."""
    with sqlite3.connect(home / "state.db") as db:
        db.execute("DROP TABLE find_documents")
        db.execute("DROP TABLE find_text")
        db.execute("DELETE FROM meta WHERE key = 'find_index'")
        db.execute("PRAGMA user_version = 4")


def test_the_migration_indexes_documents_filed_before_it(spool: Spool, tmp_path: Path,
                                                         daemon: Any) -> None:
    docs = process(spool, tmp_path, {
        f"bilan-{n}.pdf": lab("MARTIN", "Hélène", "03/04/1975", f"0{n}/11/2026", f"tag{n}")
        for n in range(1, 6)} | {"legrand.pdf": review_page("legrand.pdf", "tag6")})
    _before_the_index(spool.home)
    # The command finds them all: it indexes what was filed before (once), and says so.
    done = spool.run("find", "martin", "--json")
    assert done.returncode == 0, done.stderr
    assert "indexing 6 documents filed before the search index existed" in done.stderr
    assert ids(json.loads(done.stdout)) == [docs[f"bilan-{n}.pdf"] for n in (5, 4, 3, 2, 1)]
    assert ids(find(spool, "--text", "tag6")) == [docs["legrand.pdf"]]
    assert "indexing" not in spool.run("find", "martin").stderr  # once

    # In small batches, each checked against the row as it is when it is written.
    _before_the_index(spool.home)
    settings = config.load(env=spool.env, cwd=spool.root)
    store = Store(settings.db_path)
    try:
        assert store.read("PRAGMA user_version")[0][0] == SCHEMA_VERSION
        assert not index.complete(store)
        assert index.waiting(store) == 6
        indexed, after = index.backfill(settings, store, "", batch=4)
        assert indexed == 4 and after is not None and index.waiting(store) == 2
        assert index.backfill_all(settings, store) == 2 and index.complete(store)
        assert index.backfill(settings, store, "")[1] is None
    finally:
        store.close()

    # The daemon does it at its start, beside its own work.
    _before_the_index(spool.home)
    run = daemon()
    run.wait_for(lambda: "search index built: 6 document(s)" in run.output(), 30,
                 "the index to be built")
    assert ids(find(spool, "hélène")) == [docs[f"bilan-{n}.pdf"] for n in (5, 4, 3, 2, 1)]
    assert len(documents(spool.home)) == 6


def test_words_in_many_documents_give_the_same_answer_by_either_road(
        local_site: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Words found in many documents are answered by walking the documents newest first;
    in few, by joining them all: the same documents, in the same order, the same total."""
    _settings, store = local_site
    with store.write() as conn:
        for number in range(40):
            kind = "lab-result" if number % 3 else "imaging-report"
            day = f"2026-{1 + number % 12:02d}-{1 + number % 27:02d}"
            index.put(conn, document_id=f"{number:016x}", state="filed",
                      path=f"done/P{number % 4}/{number}.pdf", patient_id=f"P{number % 4}",
                      result={"document_type": kind, "document_date": day, "pages": 1},
                      original_name=f"{number}.pdf", received_at=f"{day}T10:00:{number:02d}",
                      text=f"Compte rendu numéro {number} GÉNÉRAL" + (" rare" * (number < 5)))
        index.moving(conn, f"{7:016x}")  # one in the middle of a move: not shown

    def answers() -> list[tuple[list[str], int]]:
        asks = [{"words": "general compte"}, {"words": "général", "document_type": "lab-result"},
                {"words": "compte", "since": "2026-06-01"}, {"words": "rare"},
                {"words": "compte", "patient_ids": ["P1", "P2"]}]
        out = []
        for ask in asks:
            found, total = index.search(store, limit=7, **ask)
            out.append(([f.document_id for f in found], total))
        return out

    joined = answers()
    monkeypatch.setattr(index, "FEW", 3)
    walked = answers()
    assert [ids for ids, _total in walked] == [ids for ids, _total in joined]
    # The full-text index's own count stands for the total when no other criterion is given
    # (it counts a document in the middle of a move); with one, the rows are counted.
    assert [total for _ids, total in joined] == [39, 25, 20, 5, 20]
    assert [total for _ids, total in walked] == [40, 25, 20, 5, 20]
    dates = [index.get(store, i) for i in joined[0][0]]
    assert [d.sort_date for d in dates if d] == sorted((d.sort_date for d in dates if d),
                                                       reverse=True)
    assert f"{7:016x}" not in joined[0][0] + walked[0][0]
