"""What the intake does with a file that cannot be dealt with the usual way."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from agent import config, spool
from agent.notify.messages import render
from agent.spool import QUEUED
from agent.spool import rows as spool_rows
from agent.store import Store
from agent.watcher import Stabilizer
from tests import pdfgen


@pytest.fixture
def site(local_site: tuple[config.Settings, Store]) -> tuple[config.Settings, Store]:
    return local_site


def dropped(settings: config.Settings, tmp_path: Path, name: str, content: str = "") -> Path:
    """A PDF dropped as `name`; two drops with the same `content` have the same bytes."""
    pdf = pdfgen.text_pdf([pdfgen.report("DUPONT", "Jean", "12/03/1961", content or name)],
                          tmp_path / f"src-{name}")
    target = settings.incoming / name
    os.replace(pdf, target)
    return target


def test_a_copy_of_a_deferred_document_brings_it_forward(site, tmp_path) -> None:
    """A fresh copy of a document stuck in the queue is a person trying again: it must not be
    deleted as a mere duplicate while the document goes on waiting for its next retry."""
    settings, store = site
    first = spool.claim(settings, store, dropped(settings, tmp_path, "first.pdf", "same"))
    with store.write() as conn:
        spool_rows.update(conn, first.document_id, deferrals=3, next_attempt_at=time.time() + 3600,
                     reason="the disk is full")
    again = dropped(settings, tmp_path, "again.pdf", "same")
    claim = spool.claim(settings, store, again)
    assert claim.duplicate_of is not None and not again.exists()
    doc = spool.get(store, first.document_id)
    assert doc is not None and doc.state == QUEUED and doc.next_attempt_at == 0
    row = store.read("SELECT payload FROM outbox WHERE kind = 'duplicate'")[0]
    payload: dict[str, Any] = json.loads(row["payload"])
    assert payload["retried_now"] is True
    assert "tried again now" in render("duplicate", {**payload, "document_id": doc.id})


def test_a_file_that_cannot_be_removed_is_copied_once_and_left(site, tmp_path,
                                                               monkeypatch) -> None:
    settings, store = site
    source = dropped(settings, tmp_path, "kept.pdf")

    real_unlink = os.unlink

    def refuse(path: Any, *args: Any, **kwargs: Any) -> None:
        if Path(path) != source:
            return real_unlink(path, *args, **kwargs)
        raise PermissionError(errno.EPERM, "Operation not permitted", str(path))

    monkeypatch.setattr(os, "unlink", refuse)
    first = spool.claim(settings, store, source)
    monkeypatch.undo()
    assert first.left == "Operation not permitted" and source.exists()
    # Seen again (a rescan, a restart): the same file, nothing new, no second document.
    second = spool.claim(settings, store, source)
    assert second.again and second.document_id == first.document_id
    assert store.read("SELECT COUNT(*) FROM documents")[0][0] == 1
    assert store.read("SELECT COUNT(*) FROM outbox")[0][0] == 0


def test_a_file_passed_over_is_looked_at_again_only_once_it_changes(site, tmp_path) -> None:
    settings, _ = site
    source = dropped(settings, tmp_path, "left.pdf")
    stabilizer = Stabilizer(stable_seconds=0.0, incomplete_seconds=600)
    stabilizer.pass_over(source)
    stabilizer.scan(settings.incoming)
    assert stabilizer.candidates == {}
    source.chmod(0o600)  # a chmod (or a new owner, or new content) makes it worth a new look
    stabilizer.scan(settings.incoming)
    assert list(stabilizer.candidates) == [source]


def test_a_file_is_never_judged_incomplete_for_a_fault_of_the_machine(site, tmp_path,
                                                                      monkeypatch) -> None:
    """pdfinfo missing says nothing of the file: it waits, however long, and is taken once
    poppler is back (it used to be failed as `incomplete` after DOCAGENT_INCOMPLETE_SECONDS)."""
    settings, _ = site
    source = dropped(settings, tmp_path, "waits.pdf")
    empty = tmp_path / "no-tools"
    empty.mkdir()
    stabilizer = Stabilizer(stable_seconds=0.0, incomplete_seconds=0.0)  # overdue at once
    monkeypatch.setenv("PATH", str(empty))
    stabilizer.note(source, settled=True)
    assert stabilizer.ready() == []
    monkeypatch.undo()
    stabilizer.candidates[source].last_probe = 0.0  # no wait between probes in a test
    assert stabilizer.ready() == [(source, "take")]
