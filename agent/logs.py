"""One logger for every module: a rotating file plus standard output.

Every line carries the id of the document being worked on (or `-`), taken from a context
variable the pipeline sets, so `grep DOC_ID docagent.log` tells one document's whole story.

One format per file: text lines go to `docagent.log`, JSON lines (`DOCAGENT_LOG_FORMAT=json`)
to `docagent.jsonl`. Switching the setting starts the other file, and a command run with a
setting other than the daemon's writes to its own format's file, so `jq` over the JSON log
never meets a text line and a text log never holds JSON.
Under systemd (detected by `JOURNAL_STREAM`) each stdout line starts with its syslog priority,
`<3>` for errors, so `journalctl -p err -u docagent` finds them.

Text from outside (a file's name, a CSV field, a Telegram command, what a document says) may
hold a newline or a terminal escape: every record's message is escaped (`escape`) before any
handler writes it, so one record is one line and a terminal shows the escape instead of
obeying it. The command line prints such text through the same function.
"""

from __future__ import annotations

import contextvars
import io
import json
import logging
import logging.handlers
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO
from urllib.parse import quote

from agent import modes

LOGGER_NAME = "docagent"
TEXT_FILE = "docagent.log"
JSON_FILE = "docagent.jsonl"
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


# C0, DEL and C1 controls; the line and paragraph separators some viewers break lines at; the
# bidirectional overrides that make a text display in another order than it reads; lone
# surrogates (an undecodable file name), which a UTF-8 log or terminal cannot even write.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                     "\u2066-\u2069\ud800-\udfff]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _SHORT.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape(text: str) -> str:
    """`text` on one line, harmless to a terminal: a newline reads `\\n`, ESC `\\x1b`.

    A backslash is left as it is: names are read by people, and `\\n` typed in a name is
    still on the same line as the rest of it, so it cannot pass for a line of its own.
    """
    return _UNSAFE.sub(_escaped, text)


def escape_json(line: str) -> str:
    """A line from `json.dumps(..., ensure_ascii=False)` with what it leaves raw (DEL, C1,
    separators, bidirectional controls, lone surrogates) as `\\uXXXX`: still the same JSON."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


class _EscapeFilter(logging.Filter):
    """One record, one line: the message with its arguments escaped; a traceback keeps its
    newlines and loses every other control character."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: the handler reports it as logging always does
            return True
        if _UNSAFE.search(message):
            record.msg, record.args = escape(message), ()
        if record.exc_info and not record.exc_text:
            trace = logging.Formatter().formatException(record.exc_info)
            record.exc_text = "\n".join(escape(line) for line in trace.split("\n"))
        if record.stack_info:
            record.stack_info = "\n".join(escape(line) for line in record.stack_info.split("\n"))
        return True


class _PrivateFileHandler(logging.handlers.RotatingFileHandler):
    """Opens the log file 0640 whatever the umask (rotated files keep the mode by rename)."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                     modes.FILE)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


class _DocumentFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "doc"):
            record.doc = current_document.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, the document id a field of its own (`jq 'select(.doc==…)'`)."""

    def __init__(self, *, stamp: bool = True, priority: bool = False) -> None:
        super().__init__()
        self.stamp, self.priority = stamp, priority

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {}
        if self.stamp:
            entry["ts"] = datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds")
        entry.update({"level": record.levelname, "doc": getattr(record, "doc", "-"),
                      "logger": record.name, "message": record.getMessage()})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        line = escape_json(json.dumps(entry, ensure_ascii=False))
        return f"<{_PRIORITY.get(record.levelno, 6)}>{line}" if self.priority else line


class _JournalFormatter(logging.Formatter):
    """Prefix `<N>` so journald stores the line at its real priority."""

    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 6)
        text = super().format(record)
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines() or [""])


def is_journal(stream: TextIO) -> bool:
    """True when `stream` is systemd's journal: JOURNAL_STREAM names its device and inode."""
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return os.environ.get("JOURNAL_STREAM", "") == f"{info.st_dev}:{info.st_ino}"


def with_priority(line: str, level: int) -> str:
    """`line` as journald stores it at `level`'s priority (for lines printed, not logged)."""
    return f"<{_PRIORITY.get(level, 6)}>{line}"


def file_name(json_lines: bool) -> str:
    """The log file of a format: each format has its own (see the module's docstring)."""
    return JSON_FILE if json_lines else TEXT_FILE


def setup(
    log_dir: Path | None, level: str = "INFO", *, stream: TextIO | None = sys.stdout,
    json_lines: bool = False,
) -> logging.Logger:
    """Install the handlers once; later calls replace them (tests run several setups)."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(level)
    logger.propagate = False
    doc_filter = _DocumentFilter()
    # Added first, so the Redactor (added later by `redact`) works on the escaped text.
    escape_filter = _EscapeFilter()
    fmt = "%(asctime)s %(levelname)s [%(doc)s] %(name)s: %(message)s"

    if log_dir is not None:
        modes.make_folder(log_dir)
        file_handler = _PrivateFileHandler(
            log_dir / file_name(json_lines), maxBytes=10 * 1024 * 1024, backupCount=5,
            encoding="utf-8")
        file_handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(fmt))
        file_handler.addFilter(doc_filter)
        file_handler.addFilter(escape_filter)
        logger.addHandler(file_handler)

    if stream is not None:
        console = logging.StreamHandler(stream)
        under_journal = is_journal(stream)
        if json_lines:
            console.setFormatter(JsonFormatter(stamp=not under_journal, priority=under_journal))
        elif under_journal:
            # journald adds its own timestamp; ours would only repeat it.
            console.setFormatter(_JournalFormatter("%(levelname)s [%(doc)s] %(name)s: %(message)s"))
        else:
            console.setFormatter(logging.Formatter(fmt))
        console.addFilter(doc_filter)
        console.addFilter(escape_filter)
        logger.addHandler(console)
    return logger


class Redactor(logging.Filter):
    """Replaces secrets in every record a handler emits: message, arguments and traceback.

    httpx logs each request URL, and a Telegram URL holds the bot token; an exception's text
    may hold it too. A handler filter sees every record, whichever logger it came from.
    """

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "<token>")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            trace = logging.Formatter().formatException(record.exc_info)
            if any(s in trace for s in self.secrets):
                message = f"{message}\n{trace}"
                record.exc_info, record.exc_text = None, None
        if record.stack_info and any(s in record.stack_info for s in self.secrets):
            record.stack_info = self._clean(record.stack_info)
        if any(s in message for s in self.secrets):
            record.msg, record.args = self._clean(message), ()
        return True


def redact(*secrets: str) -> None:
    """Keep `secrets` out of every line docagent's handlers write (and Python's last resort)."""
    variants = [v for s in secrets if s for v in {s, quote(s, safe="")}]
    redactor = Redactor(variants)
    for handler in [*logging.getLogger(LOGGER_NAME).handlers, logging.lastResort]:
        if handler is not None:
            handler.addFilter(redactor)


def adopt(name: str, level: str | int) -> None:
    """Route a library's logger through docagent's handlers (format, file, redaction)."""
    logger = logging.getLogger(name)
    logger.handlers = list(logging.getLogger(LOGGER_NAME).handlers)
    logger.setLevel(level)
    logger.propagate = False
