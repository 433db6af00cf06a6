"""Prometheus metrics, served by the daemon only when `DOCAGENT_METRICS_ADDR` is set.

The counters live in this process and start from zero at each start (Prometheus' `rate()`
and `increase()` expect that); the depths are read from state.db at each scrape, so they are
never stale. Nothing here names a patient or a file: counts and durations only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

DOCUMENTS = Counter("docagent_documents", "Documents finished, by outcome", ["outcome"])
STAGE_SECONDS = Histogram(
    "docagent_stage_seconds", "Time spent in each pipeline stage", ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
QUEUE_DEPTH = Gauge("docagent_queue_depth", "Documents waiting to be processed (incl. deferred)")
OUTBOX_DEPTH = Gauge("docagent_outbox_depth", "Notifications not sent yet")
OCR_PAGES = Counter("docagent_ocr_pages", "Pages read by OCR")
TESSERACT_FAILURES = Counter("docagent_tesseract_failures",
                             "Pages tesseract could not read (failed, timed out, missing)")
LAST_SUCCESS = Gauge("docagent_last_success_timestamp_seconds",
                     "When a document was last filed or sent to review (Unix time)")

# Error kinds that mean tesseract itself failed (errors.py's closed set).
TESSERACT_KINDS = frozenset({"ocr-timeout", "ocr-engine-missing", "tool-failed"})
SUCCESS = frozenset({"filed", "review"})


class StageTimer:
    """Laps through the pipeline: `lap("inspect")` observes the time since the last lap."""

    def __init__(self) -> None:
        self._last = time.monotonic()

    def lap(self, stage: str) -> None:
        now = time.monotonic()
        STAGE_SECONDS.labels(stage).observe(now - self._last)
        self._last = now


def document_done(outcome: str) -> None:
    DOCUMENTS.labels(outcome).inc()
    if outcome in SUCCESS:
        LAST_SUCCESS.set(time.time())


def ocr_pages(count: int) -> None:
    if count:
        OCR_PAGES.inc(count)


def failure(kind: str) -> None:
    if kind in TESSERACT_KINDS:
        TESSERACT_FAILURES.inc()


def serve(addr: tuple[str, int], queue_depth: Callable[[], float],
          outbox_depth: Callable[[], float]) -> Any:
    """Start the exposition endpoint in a thread; returns the server (call `.shutdown()`)."""
    QUEUE_DEPTH.set_function(queue_depth)
    OUTBOX_DEPTH.set_function(outbox_depth)
    host, port = addr
    server, _thread = start_http_server(port, addr=host)
    return server
