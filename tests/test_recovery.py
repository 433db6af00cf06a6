"""A crash between any two steps of a move leaves a state that recover() finishes or undoes.

Each test stops the process at one step (a `Crash` raised where the next system call would
be), throws the in-memory state away as a `kill -9` would, then recovers with a fresh Store
and checks the file is in exactly one final place with the database agreeing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent import audit, config, spool
from agent.ops import decisions, pipeline
from agent.patients import import_csv
from agent.spool import FAILED, FILED, QUEUED, REVIEW
from agent.spool import files as spool_files
from agent.spool import placing as spool_placing
from agent.store import Store
from tests import pdfgen
from tests.conftest import PATIENTS_CSV


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so no handler of ours catches it."""


@pytest.fixture
def site(local_site: tuple[config.Settings, Store],
         tmp_path: Path) -> tuple[config.Settings, Store]:
    settings, store = local_site
    csv = tmp_path / "p.csv"
    csv.write_text(PATIENTS_CSV, encoding="utf-8")
    import_csv(store, csv)
    return settings, store


def restart(settings: config.Settings, store: Store) -> Store:
    store.close()
    fresh = Store(settings.db_path)
    spool.recover(settings, fresh)
    return fresh


def crash_on(monkeypatch: pytest.MonkeyPatch, target: Any, name: str, *, after: int = 0,
             run_first: bool = False) -> None:
    """Make `target.name` crash on its call number `after` (0 = the first call)."""
    real: Callable[..., Any] = getattr(target, name)
    calls = {"n": 0}

    def fake(*args: Any, **kwargs: Any) -> Any:
        n = calls["n"]
        calls["n"] += 1
        if n == after:
            if run_first:
                real(*args, **kwargs)
            raise Crash(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, fake)


def incoming_pdf(settings: config.Settings, tmp_path: Path, name: str = "r.pdf",
                 last: str = "MARTIN", first: str = "Hélène", birth: str = "03/04/1975") -> Path:
    src = pdfgen.text_pdf([pdfgen.report(last, first, birth)], tmp_path / f"src-{name}")
    target = settings.incoming / name
    src.rename(target)
    return target


def only_final_copy(settings: config.Settings, store: Store, state: str) -> Path:
    docs = spool.by_state(store, state)
    assert len(docs) == 1, spool.by_state(store, FILED, REVIEW, FAILED, QUEUED)
    path = settings.home / (docs[0].path or "")
    assert path.is_file()
    pdfs = [p for p in settings.home.rglob("*.pdf") if p.is_file()]
    assert pdfs == [path], pdfs
    return path


def run_queue(settings: config.Settings, store: Store) -> None:
    while (doc := spool.start_next(store)) is not None:
        pipeline.process(settings, store, doc)


# --- claim -------------------------------------------------------------------------------


def test_crash_after_claim_row_before_rename(site, tmp_path, monkeypatch) -> None:
    settings, store = site
    src = incoming_pdf(settings, tmp_path)
    crash_on(monkeypatch, os, "rename")
    with pytest.raises(Crash):
        spool.claim(settings, store, src)
    monkeypatch.undo()
    store = restart(settings, store)
    assert src.exists() and spool.by_state(store, QUEUED) == []  # undone: taken again from incoming
    spool.claim(settings, store, src)
    run_queue(settings, store)
    only_final_copy(settings, store, FILED)


@pytest.mark.parametrize(("target", "name"), [(spool_files, "fsync_dir"), (os, "unlink")],
                         ids=["after-rename-before-queued", "after-queued-before-unlink"])
def test_crash_before_the_dropped_file_is_removed(site, tmp_path, monkeypatch, target,
                                                  name) -> None:
    settings, store = site
    src = incoming_pdf(settings, tmp_path)
    crash_on(monkeypatch, target, name)
    with pytest.raises(Crash):
        spool.claim(settings, store, src)
    monkeypatch.undo()
    store = restart(settings, store)
    assert src.exists() and len(spool.by_state(store, QUEUED)) == 1
    # Seen again by the watcher: the receipt says this very file was taken, so it is removed
    # without a second document, a duplicate message or a duplicate audit line.
    again = spool.claim(settings, store, src)
    assert again.again and not src.exists()
    assert store.read("SELECT COUNT(*) FROM outbox")[0][0] == 0
    events = [e["event"] for e in audit.entries(settings.log_dir)]
    assert events == ["taken"], events
    run_queue(settings, store)
    only_final_copy(settings, store, FILED)


# --- processing and place ------------------------------------------------------------------


def test_crash_while_processing_counts_and_poison_pill_ends_in_failed(site, tmp_path, monkeypatch):
    settings, store = site
    spool.claim(settings, store, incoming_pdf(settings, tmp_path))
    for attempt in range(settings.max_crashes):
        crash_on(monkeypatch, pipeline.inspection, "inspect")
        doc = spool.start_next(store)
        assert doc is not None
        with pytest.raises(Crash):
            pipeline.process(settings, store, doc)
        monkeypatch.undo()
        store = restart(settings, store)
        assert spool.by_state(store, QUEUED)[0].crashes == attempt + 1
    run_queue(settings, store)
    path = only_final_copy(settings, store, FAILED)
    reason = json.loads(path.with_name(path.name + ".reason.json").read_text())
    assert reason["kind"] == "crashed"


@pytest.mark.parametrize(("target", "name", "after", "run_first"), [
    ("os", "link", 0, False),          # after the `filing` commit, before the link
    ("files", "write_file", 0, False),    # linked, before the sidecars
    ("files", "write_file", 1, True),     # one sidecar written
    ("placing", "now_iso", 0, False),     # everything on disk, before the final commit
])
def test_crash_during_place(site, tmp_path, monkeypatch, target, name, after, run_first) -> None:
    settings, store = site
    spool.claim(settings, store, incoming_pdf(settings, tmp_path))
    doc = spool.start_next(store)
    assert doc is not None
    # Let the pipeline run up to place(), then crash inside it.
    real_place = spool.place

    def place_with_crash(*args: Any, **kwargs: Any) -> Path:
        crash_on(monkeypatch, {"os": os, "files": spool_files, "placing": spool_placing}[target],
                 name, after=after,
                 run_first=run_first)
        return real_place(*args, **kwargs)

    monkeypatch.setattr(spool, "place", place_with_crash)
    with pytest.raises(Crash):
        pipeline.process(settings, store, doc)
    monkeypatch.undo()
    store = restart(settings, store)
    run_queue(settings, store)
    path = only_final_copy(settings, store, FILED)
    assert path.with_suffix(".json").is_file() and path.with_suffix(".txt").is_file()
    assert list(settings.processing.iterdir()) == []
    assert json.loads(path.with_suffix(".json").read_text())["patient_id"] == "P002"
    # The notification exists exactly once.
    rows = store.read("SELECT kind FROM outbox")
    assert [r["kind"] for r in rows] == ["filed"]


def test_crash_after_final_commit_before_unlink(site, tmp_path, monkeypatch) -> None:
    settings, store = site
    spool.claim(settings, store, incoming_pdf(settings, tmp_path))
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self.parent == settings.processing and self.suffix == ".pdf":
            raise Crash("unlink")
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    doc = spool.start_next(store)
    assert doc is not None
    with pytest.raises(Crash):
        pipeline.process(settings, store, doc)
    monkeypatch.undo()
    store = restart(settings, store)
    only_final_copy(settings, store, FILED)


# --- a person's decisions ------------------------------------------------------------------


def review_doc(settings: config.Settings, store: Store, tmp_path: Path) -> str:
    spool.claim(settings, store, incoming_pdf(settings, tmp_path, last="LEGRAND", first="Paul",
                                              birth="01/01/1999"))
    run_queue(settings, store)
    [doc] = spool.by_state(store, REVIEW)
    return doc.id


@pytest.mark.parametrize("step", ["take_back", "place"])
def test_crash_during_resolve_rolls_back_or_finishes(site, tmp_path, monkeypatch, step) -> None:
    settings, store = site
    doc_id = review_doc(settings, store, tmp_path)
    if step == "take_back":
        crash_on(monkeypatch, os, "link", after=0, run_first=True)
    else:
        crash_on(monkeypatch, os, "link", after=1)
    with pytest.raises(Crash):
        decisions.resolve(settings, store, doc_id, "P006", who="test")
    monkeypatch.undo()
    store = restart(settings, store)
    if step == "take_back":
        path = only_final_copy(settings, store, REVIEW)
        assert path.parent == settings.review
        assert path.with_suffix(".json").exists()
        decisions.resolve(settings, store, doc_id, "P006", who="test")
    path = only_final_copy(settings, store, FILED)
    assert path.parent == settings.done / "P006"
    assert path.with_suffix(".txt").read_text().count("LEGRAND") >= 1
    assert list(settings.review.iterdir()) == []


def test_retry_crash_rolls_back_to_failed(site, tmp_path, monkeypatch) -> None:
    settings, store = site
    bad = settings.incoming / "bad.pdf"
    bad.write_bytes(b"not a pdf at all")
    spool.claim(settings, store, bad)
    run_queue(settings, store)
    [doc] = spool.by_state(store, FAILED)
    crash_on(monkeypatch, spool_files, "fsync_dir", after=1)  # after the unlinks of take_back
    with pytest.raises(Crash):
        decisions.retry(settings, store, doc.id, who="test")
    monkeypatch.undo()
    store = restart(settings, store)
    path = only_final_copy(settings, store, FAILED)
    assert path.with_name("bad.pdf.reason.json").exists()
    decisions.retry(settings, store, doc.id, who="test")
    assert spool.get(store, doc.id).state == QUEUED  # type: ignore[union-attr]
    run_queue(settings, store)
    only_final_copy(settings, store, FAILED)


def test_machine_fault_defers_and_never_quarantines(site, tmp_path, monkeypatch) -> None:
    settings, store = site
    src = incoming_pdf(settings, tmp_path)
    spool.claim(settings, store, src)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no poppler, no tesseract
    doc = spool.start_next(store)
    assert doc is not None
    out = pipeline.process(settings, store, doc)
    assert out.outcome == "deferred"
    queued = spool.get(store, doc.id)
    assert queued is not None and queued.state == QUEUED and queued.deferrals == 1
    assert queued.reason_kind == "poppler-missing" and queued.next_attempt_at > 0
    assert list(settings.failed.iterdir()) == []
    assert spool.start_next(store) is None  # not due yet: backoff
    monkeypatch.undo()
    doc = spool.start_next(store, now=queued.next_attempt_at + 1)
    assert doc is not None
    assert pipeline.process(settings, store, doc).outcome == "filed"


def test_crash_mid_sidecar_write_leaves_no_temporary_file(site, tmp_path, monkeypatch) -> None:
    settings, store = site
    spool.claim(settings, store, incoming_pdf(settings, tmp_path))
    doc = spool.start_next(store)
    assert doc is not None
    real_place = spool.place

    def place_with_crash(*args: Any, **kwargs: Any) -> Path:
        # rename #0 is the text kept in processing/; #1 the first sidecar beside the PDF.
        crash_on(monkeypatch, os, "rename", after=1)
        return real_place(*args, **kwargs)

    monkeypatch.setattr(spool, "place", place_with_crash)
    with pytest.raises(Crash):
        pipeline.process(settings, store, doc)
    monkeypatch.undo()
    assert [p for p in settings.done.rglob(".*.tmp")], "the crash left no temporary file"
    store = restart(settings, store)
    only_final_copy(settings, store, FILED)
    assert [p.name for p in settings.done.rglob(".*")] == []
