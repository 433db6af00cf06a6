"""A name swapped for a symlink or a FIFO at the instant a file is judged or claimed.

Judging a name by `lstat` and then moving it by path leaves a window: a symlink swapped in
between would be filed into done/ (the archive then changed with the file it pointed at, which was
read and OCR'd), and a FIFO stalled intake for seconds. A thread swaps the name back and forth
while the intake works on it: whatever it takes must be the regular file's bytes, in a file of
its own, and no call may block.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from agent import config, spool
from agent.store import Store
from agent.watcher import Stabilizer
from tests import pdfgen
from tests.watch import until

pytestmark = pytest.mark.proof
ROUNDS = 300


@pytest.fixture
def site(local_site: tuple[config.Settings, Store]) -> tuple[config.Settings, Store]:
    return local_site


# The adversary is another process, as a dropper is: a thread would share the interpreter's lock
# with the intake and only ever run between its system calls, never inside a race window.
_SWAP = """
import os, sys, itertools, shutil, time
name, other, kind, *masters = sys.argv[1:]
folder = os.path.dirname(name)
real, odd = os.path.join(folder, ".swap-real"), os.path.join(folder, ".swap-odd")
# Each state is held a moment, the same for both, so that a claim meets either as often. A
# fresh copy each time, not a hard link: a file with one link is the one that used to be moved.
files = itertools.cycle(masters)
shutil.copyfile(next(files), real)
while True:
    os.replace(real, name)
    if kind == "symlink":
        os.symlink(other, odd)
    else:
        os.mkfifo(odd)
    time.sleep(0.0002)
    os.replace(odd, name)
    shutil.copyfile(next(files), real)
    time.sleep(0.0002)
"""


class Swapper:
    """Swaps `name` between regular files (each of `masters` in turn) and a symlink to `other`
    or a FIFO, as fast as it can, from another process, until stopped."""

    def __init__(self, name: Path, masters: list[Path], kind: str, other: Path) -> None:
        self.name = name
        self.argv = [sys.executable, "-c", _SWAP, str(name), str(other), kind,
                     *map(str, masters)]

    def __enter__(self) -> Swapper:
        self.proc = subprocess.Popen(self.argv)
        # The race starts once the name exists.
        until(lambda: os.path.lexists(self.name), 30, "the swapper to start", process=self.proc,
              interval=0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.proc.kill()
        self.proc.wait()


def bounded(call: Callable[[], object], seconds: float = 60.0) -> object:
    """Run `call` in a thread; fail if it has not returned after `seconds` (it blocked: a FIFO
    opened for reading waits forever, so the bound need only be far above a loaded machine's
    slowest claim, a few hundred milliseconds)."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{call} blocked for {seconds:.0f} s"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


def masters(tmp_path: Path, count: int) -> list[Path]:
    """`count` PDFs with different bytes: each one taken is a new document, so every round
    meets the race again (a copy of bytes already taken would end as a duplicate)."""
    folder = tmp_path / "masters"
    folder.mkdir()
    base = pdfgen.text_pdf([pdfgen.report("DUPONT", "Jean", "12/03/1961")],
                           folder / "base.pdf").read_bytes()
    made = []
    for n in range(count):
        path = folder / f"m{n}.pdf"
        path.write_bytes(base + f"% copy {n}\n".encode())
        made.append(path)
    return made


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_claim_takes_only_a_regular_files_bytes_and_never_blocks(site, tmp_path,
                                                                 kind) -> None:
    settings, store = site
    pdfs = masters(tmp_path, 40)
    secret = tmp_path / "outside-secret.pdf"
    secret.write_bytes(pdfs[0].read_bytes().replace(b"DUPONT", b"SECRET"))
    name = settings.incoming / "scan.pdf"
    taken = refused = 0
    with Swapper(name, pdfs, kind, secret):
        for _ in range(ROUNDS):
            try:
                bounded(lambda: spool.claim(settings, store, name))
                taken += 1
            except (spool.NotTaken, FileNotFoundError):
                refused += 1
    assert taken > 0 and refused > 0, "the race was never met: nothing was tested"
    allowed = {hashlib.sha256(p.read_bytes()).hexdigest() for p in pdfs}
    kept = list(settings.processing.iterdir())
    assert kept and all(p.is_file() and not p.is_symlink() and p.suffix == ".pdf"
                        for p in kept), kept
    assert {hashlib.sha256(p.read_bytes()).hexdigest() for p in kept} <= allowed
    assert {row[0] for row in store.read("SELECT sha256 FROM documents")} <= allowed


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_judging_a_name_swapped_for_a_symlink_or_fifo_never_blocks(site, tmp_path,
                                                                   kind) -> None:
    settings, _ = site
    pdfs = masters(tmp_path, 1)
    name = settings.incoming / "scan.pdf"
    # The symlink points at a FIFO outside: a judge that followed it would block there.
    trap = tmp_path / "outside-fifo"
    os.mkfifo(trap)
    verdicts: list[str] = []
    with Swapper(name, pdfs, kind, trap):
        for _ in range(ROUNDS):
            stabilizer = Stabilizer(stable_seconds=0.0, incomplete_seconds=600)
            stabilizer.note(name, settled=True)
            ready = bounded(stabilizer.ready)
            verdicts += [verdict for _, verdict in ready]  # type: ignore[attr-defined]
    assert set(verdicts) <= {"take"}
