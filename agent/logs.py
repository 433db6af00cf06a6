"""One logger for every module: a rotating file plus standard output.

Every line carries the id of the document being worked on (or `-`), taken from a context
variable the pipeline sets, so `grep DOC_ID docagent.log` tells one document's whole story.
Under systemd (detected by `JOURNAL_STREAM`) each stdout line starts with its syslog priority,
`<3>` for errors, so `journalctl -p err -u docagent` finds them.
"""

from __future__ import annotations

import contextvars
import logging
import logging.handlers
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

LOGGER_NAME = "docagent"
current_document: contextvars.ContextVar[str] = contextvars.ContextVar(
    "current_document", default="-"
)

_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def get_logger(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


@contextmanager
def document_context(document_id: str) -> Iterator[None]:
    token = current_document.set(document_id)
    try:
        yield
    finally:
        current_document.reset(token)


class _DocumentFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "doc"):
            record.doc = current_document.get()
        return True


class _JournalFormatter(logging.Formatter):
    """Prefix `<N>` so journald stores the line at its real priority."""

    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 6)
        text = super().format(record)
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines() or [""])


def setup(
    log_dir: Path | None, level: str = "INFO", *, stream: TextIO | None = sys.stdout
) -> logging.Logger:
    """Install the handlers once; later calls replace them (tests run several setups)."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(level)
    logger.propagate = False
    doc_filter = _DocumentFilter()
    fmt = "%(asctime)s %(levelname)s [%(doc)s] %(name)s: %(message)s"

    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            log_dir / "docagent.log", maxBytes=10 * 1024 * 1024, backupCount=5, encoding="utf-8"
        )
        file_handler.setFormatter(logging.Formatter(fmt))
        file_handler.addFilter(doc_filter)
        logger.addHandler(file_handler)

    if stream is not None:
        console = logging.StreamHandler(stream)
        if os.environ.get("JOURNAL_STREAM") and stream is sys.stdout:
            # journald adds its own timestamp; ours would only repeat it.
            console.setFormatter(_JournalFormatter("%(levelname)s [%(doc)s] %(name)s: %(message)s"))
        else:
            console.setFormatter(logging.Formatter(fmt))
        console.addFilter(doc_filter)
        logger.addHandler(console)
    return logger
