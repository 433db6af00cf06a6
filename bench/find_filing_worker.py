"""One side of bench.find's filing figures, and print the milliseconds as a JSON list:

- `place`: file COUNT new documents, timing each `spool.place` (the filing step: the PDF
  linked into done/, its sidecars written and fsync'd, the audit line, the commits);
- `process`: take each PDF of a folder in and time `pipeline.process` on it (the whole reading
  and filing of a born-digital document: pdfinfo, pdftotext, parse, match, place).

Run as a script with PYTHONPATH naming the code to time (this checkout, or the code before the
find index, exported by bench.find), so that it uses only what both have: config.load,
Store, spool.claim, spool.start, spool.place, Placement and pipeline.process.

    python bench/find_filing_worker.py place HOME LOGS COUNT SEED TEXT_FILE
    python bench/find_filing_worker.py process HOME LOGS PDF_FOLDER
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from agent import config, spool
from agent.store import Store


def process(home: str, logs: str, folder: str) -> list[float]:
    from agent.ops import pipeline

    settings = config.load(env={"DOCAGENT_HOME": home, "DOCAGENT_LOG_DIR": logs,
                                "DOCAGENT_LANG": "en"}, cwd=Path(home).parent)
    store = Store(settings.db_path)
    timings = []
    for pdf in sorted(Path(folder).glob("*.pdf")):
        claimed = spool.claim(settings, store, pdf, keep_source=True)
        doc = spool.start(store, claimed.document_id)
        assert doc is not None
        started = time.perf_counter()
        pipeline.process(settings, store, doc)  # filed, or review for a namesake
        timings.append((time.perf_counter() - started) * 1000)
    store.close()
    return timings


def main() -> None:
    if sys.argv[1] == "process":
        print(json.dumps(process(*sys.argv[2:5])))
        return
    home, logs, count, seed, text_file = sys.argv[2:7]
    settings = config.load(env={"DOCAGENT_HOME": home, "DOCAGENT_LOG_DIR": logs,
                                "DOCAGENT_LANG": "en"}, cwd=Path(home).parent)
    store = Store(settings.db_path)
    text = Path(text_file).read_bytes()
    timings = []
    with tempfile.TemporaryDirectory(prefix="docagent-filing-") as tmp:
        for number in range(int(count)):
            pdf = Path(tmp) / f"scan-{seed}-{number}.pdf"
            pdf.write_bytes(b"%PDF-1.4\n% " + uuid.uuid4().hex.encode() + b"\n%%EOF\n")
            claimed = spool.claim(settings, store, pdf, keep_source=True)
            doc = spool.start(store, claimed.document_id)
            assert doc is not None
            patient = f"P{(int(seed) * 7919 + number) % 20000:06d}"
            result = {"document_id": doc.id, "sha256": doc.sha256,
                      "original_name": doc.original_name, "received_at": doc.received_at,
                      "attempts": 1, "outcome": "filed", "reason": "one patient matched",
                      "patient_id": patient, "document_type": "lab-result",
                      "document_date": "2026-11-05", "pages": 1, "text_source": "text-layer"}
            placement = spool.Placement(
                state="filed", folder=settings.done / patient, stem=f"2026-11-05_{pdf.stem}",
                suffix=".pdf", result=result, text=text, patient_id=patient,
                reason="one patient matched", message_kind="filed")
            started = time.perf_counter()
            spool.place(settings, store, doc, placement)
            timings.append((time.perf_counter() - started) * 1000)
            os.unlink(pdf)
    store.close()
    print(json.dumps(timings))


if __name__ == "__main__":
    main()
