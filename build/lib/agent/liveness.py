"""When the daemon may tell systemd's watchdog it is alive.

A ping is earned, not scheduled: it is sent from the intake loop's own iteration (so a blocked
event loop sends nothing) and only while no worker has held one document longer than any
document could honestly take (so a worker stuck in a thread stops the pings too). The bound
follows from the limits already configured: every page of that document (its page count when
pdfinfo can tell, else the page limit) may be rendered and OCR'd, each step capped by the OCR
timeout, plus a margin for inspection and filing.

The test-only fault switch `DOCAGENT_TEST_HANG_FILE` lets the boot test prove the watchdog
fires: when that variable names a file and the file appears, the loop deletes it and blocks.
It is read from the process environment only (never from docagent.env), nothing sets it in
production, and it does nothing unless someone also creates that exact file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from agent.config import Settings
from agent.logs import get_logger

log = get_logger("liveness")
MARGIN = 300.0  # seconds: pdfinfo, text layer, parsing, filing, a slow disk
HANG_SWITCH = "DOCAGENT_TEST_HANG_FILE"


def hung_after(settings: Settings, pages: int | None = None) -> float:
    """Seconds after which a document of `pages` pages still in hand means a stuck worker."""
    count = settings.max_pages if pages is None else max(1, min(pages, settings.max_pages))
    return count * 2 * settings.ocr_timeout + MARGIN


class Liveness:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.in_hand: dict[int, float] = {}  # worker number -> when its document is overdue
        self._said_stuck = False

    def took(self, worker: int, pages: int | None = None) -> None:
        self.in_hand[worker] = self.clock() + hung_after(self.settings, pages)

    def released(self, worker: int) -> None:
        self.in_hand.pop(worker, None)

    def stuck(self) -> list[int]:
        now = self.clock()
        return sorted(w for w, overdue in self.in_hand.items() if now > overdue)

    def may_ping(self) -> bool:
        stuck = self.stuck()
        if stuck and not self._said_stuck:
            log.error("worker(s) %s have held a document longer than it could take: "
                      "no more watchdog pings", ", ".join(map(str, stuck)))
        self._said_stuck = bool(stuck)
        return not stuck


def hang_if_asked() -> None:
    """The test-only fault switch (see the module's docstring)."""
    named = os.environ.get(HANG_SWITCH)
    if not named:
        return
    switch = Path(named)
    try:
        switch.unlink()  # one shot: the restarted daemon must not hang again
    except FileNotFoundError:
        return
    log.error("test fault switch %s: blocking the loop on purpose", HANG_SWITCH)
    while True:
        time.sleep(3600)
