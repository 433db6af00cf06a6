"""When a file in incoming/ is whole enough to take: the stability wait and its fast path."""

from __future__ import annotations

import threading
from pathlib import Path

from agent.watcher import Stabilizer
from tests import pdfgen
from tests.watch import Clock


def whole_pdf(tmp_path: Path) -> bytes:
    lines = pdfgen.report("MARTIN", "Hélène", "03/04/1975")
    return pdfgen.text_pdf([lines], tmp_path / "src.pdf").read_bytes()


def setup(tmp_path: Path, data: bytes) -> tuple[Stabilizer, Clock, Path]:
    clock = Clock()
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    path = incoming / "scan.pdf"
    path.write_bytes(data)
    return Stabilizer(30.0, 600.0, clock=clock), clock, path


def test_a_file_renamed_in_or_closed_whole_is_taken_without_the_wait(tmp_path: Path) -> None:
    stabilizer, _clock, path = setup(tmp_path, whole_pdf(tmp_path))
    stabilizer.note(path, settled=True)
    assert stabilizer.ready() == [(path, "take")]


def test_without_a_settling_event_the_stability_wait_applies(tmp_path: Path) -> None:
    stabilizer, clock, path = setup(tmp_path, whole_pdf(tmp_path))
    stabilizer.note(path)
    assert stabilizer.ready() == []
    clock.now += 29
    assert stabilizer.ready() == []
    clock.now += 2
    assert stabilizer.ready() == [(path, "take")]


def test_a_copy_closed_before_its_end_waits(tmp_path: Path) -> None:
    data = whole_pdf(tmp_path)
    stabilizer, clock, path = setup(tmp_path, data[: len(data) // 2])
    stabilizer.note(path, settled=True)  # a writer that closes between chunks
    assert stabilizer.ready() == []
    with open(path, "ab") as handle:
        handle.write(data[len(data) // 2:])
    clock.now += 1
    stabilizer.note(path, settled=True)
    assert stabilizer.ready() == [(path, "take")]


def test_a_write_after_the_close_takes_the_fast_path_away(tmp_path: Path) -> None:
    stabilizer, clock, path = setup(tmp_path, whole_pdf(tmp_path))
    stabilizer.note(path, settled=True)
    stabilizer.note(path)  # reopened and modified: the writer is not done after all
    assert stabilizer.ready() == []
    clock.now += 31
    assert stabilizer.ready() == [(path, "take")]


def test_ready_gives_at_most_its_limit_oldest_first(tmp_path: Path) -> None:
    stabilizer, _clock, first = setup(tmp_path, whole_pdf(tmp_path))
    stabilizer.note(first, settled=True)
    others = []
    for n in range(3):
        path = first.with_name(f"later-{n}.pdf")
        path.write_bytes(first.read_bytes())
        stabilizer.note(path, settled=True)
        others.append(path)
    assert stabilizer.ready(limit=2) == [(first, "take"), (others[0], "take")]
    assert stabilizer.ready(limit=2) == [(others[1], "take"), (others[2], "take")]


def test_events_noted_while_ready_runs_in_another_thread_are_kept(tmp_path: Path) -> None:
    # ready() runs in a worker thread while file events are noted on the event loop.
    stabilizer, clock, _path = setup(tmp_path, b"not a pdf, never taken")
    folder = tmp_path / "incoming"
    for n in range(300):
        (folder / f"f{n}.txt").write_bytes(b"x")
    errors: list[BaseException] = []

    def judge() -> None:
        try:
            for _ in range(50):
                stabilizer.ready()
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    worker = threading.Thread(target=judge)
    worker.start()
    for n in range(300):
        stabilizer.note(folder / f"f{n}.txt")
    worker.join()
    assert errors == []
    assert {folder / f"f{n}.txt" for n in range(300)} <= set(stabilizer.candidates)
    clock.now += 31  # and once stable, every one of them is taken
    assert len(stabilizer.ready()) == 300


def test_a_rescan_does_not_take_the_fast_path_away(tmp_path: Path) -> None:
    data = whole_pdf(tmp_path)
    stabilizer, clock, path = setup(tmp_path, data[: len(data) // 2])
    stabilizer.note(path, settled=True)
    stabilizer.scan(path.parent)  # the periodic listing knows nothing of the writer
    with open(path, "ab") as handle:
        handle.write(data[len(data) // 2:])
    clock.now += 1
    assert stabilizer.ready() == [(path, "take")]
