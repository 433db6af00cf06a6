"""Text from outside cannot forge a log line nor drive a terminal.

A file's name, a Telegram command, a CSV field may hold a newline or an escape sequence: the
log writes one line per record with the escapes visible, and the command line prints them
the same way.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import logs
from tests import pdfgen
from tests.botapi import BotApi
from tests.conftest import Spool
from tests.pdfgen import report
from tests.telegram_helpers import GROUP, STRANGER, audit_lines, botapi, tg

__all__ = ["botapi", "tg"]  # fixtures

FORGED = "2026-11-28 10:00:00,000 ERROR [-] docagent.daemon: the database is corrupt"
# ESC and CSI (C0 and C1 forms), a bidirectional override, a line separator.
HOSTILE = "\x1b[31mred\x1b[0m \x9b2J \u202etxt.exe \u2028"


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    logger = logs.setup(tmp_path / "logs", "DEBUG", stream=stream)
    yield logger, stream
    logs.setup(None, stream=None)


def test_a_log_argument_with_a_newline_and_escapes_stays_one_line(
        logged: tuple[logging.Logger, io.StringIO], tmp_path: Path) -> None:
    logger, stream = logged
    logger.warning("rejected %s from Telegram user %s", f"/status\n{FORGED}", HOSTILE)
    logger.info(f"an f-string too: {HOSTILE}\r\n{FORGED}")
    for text in ((tmp_path / "logs" / "docagent.log").read_text(encoding="utf-8"),
                 stream.getvalue()):
        lines = text.splitlines()
        assert len(lines) == 2, lines
        assert not any(line.startswith(FORGED) for line in lines)
        assert "/status\\n2026-11-28" in lines[0] and "\\x1b[31mred\\x1b[0m" in lines[0]
        assert "\\x9b2J" in lines[0] and "\\u202etxt.exe" in lines[0] and "\\u2028" in lines[0]
        assert "\\r\\n2026-11-28" in lines[1]
        assert not any(c in text for c in "\x1b\x9b\u202e\u2028\r")


def test_a_traceback_keeps_its_lines_but_not_its_escapes(
        logged: tuple[logging.Logger, io.StringIO], tmp_path: Path) -> None:
    logger, _ = logged
    try:
        raise ValueError(f"bad name {HOSTILE}")
    except ValueError:
        logger.exception("could not take %s", "a\nb.pdf")
    text = (tmp_path / "logs" / "docagent.log").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert "could not take a\\nb.pdf" in lines[0]
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: bad name \\x1b[31mred\\x1b[0m \\x9b2J \\u202etxt.exe \\u2028"


def test_the_json_log_format_is_one_object_per_line_with_nothing_raw(tmp_path: Path) -> None:
    stream = io.StringIO()
    logger = logs.setup(tmp_path / "logs", "INFO", stream=stream, json_lines=True)
    try:
        logger.warning("rejected %s", f"/status\n{FORGED} {HOSTILE}")
    finally:
        logs.setup(None, stream=None)
    [line] = stream.getvalue().splitlines()
    assert not any(c in line for c in "\x1b\x9b\u202e\u2028")
    assert json.loads(line)["message"].startswith("rejected /status\\n2026-11-28")


def test_review_list_and_process_print_a_hostile_file_name_escaped(spool: Spool,
                                                                    tmp_path: Path) -> None:
    name = f"scan {HOSTILE}\nforged.pdf"
    pdf = pdfgen.text_pdf([report("NOBODY", "Alice", "01/01/1990")], tmp_path / name)
    done = spool.run("process", str(pdf))
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    assert line.startswith("review") and "\\x1b[31mred" in line and "\\nforged.pdf" in line

    listing = spool.run("review", "list", check=True).stdout
    assert not any(c in listing for c in "\x1b\x9b\u202e\u2028")
    first = listing.splitlines()[0]
    assert "scan \\x1b[31mred\\x1b[0m \\x9b2J \\u202etxt.exe \\u2028\\nforged.pdf" in first
    assert listing.splitlines()[1].startswith("    read: NOBODY Alice")

    raw = spool.run("review", "list", "--json", check=True).stdout
    assert not any(c in raw for c in "\x1b\x9b\u202e\u2028")
    assert json.loads(raw)["file"] == name  # JSON readers get the name back exactly


def test_failed_list_prints_a_hostile_name_escaped(spool: Spool, tmp_path: Path) -> None:
    bad = tmp_path / f"bad {HOSTILE}.pdf"
    bad.write_bytes(b"")
    [out] = spool.process_json(bad)
    assert out["outcome"] == "failed"
    listing = spool.run("failed", "list", check=True).stdout
    assert not any(c in listing for c in "\x1b\x9b\u202e\u2028")
    assert "\\x9b2J \\u202etxt.exe" in listing.splitlines()[0]
    raw = spool.run("failed", "list", "--json", check=True).stdout
    assert not any(c in raw for c in "\x1b\x9b\u202e\u2028")


@pytest.mark.daemon
def test_a_telegram_command_cannot_forge_a_log_line(spool: Spool, botapi: BotApi, tg) -> None:
    run = tg()
    forged = "2026-11-28 10:00:00,000 ERROR [-] x: corrupt"  # the command is cut at 64
    botapi.inject_message(GROUP, STRANGER, f"/status\n{forged}\x1b[2J")
    run.wait_for(lambda: "rejected /status" in run.own_output(), 30, "the log line")
    run.wait_for(lambda: (spool.logs / "audit.jsonl").exists()
                 and any(a["event"] == "rejected" for a in audit_lines(spool)), 30, "the audit")
    assert run.stop() == 0
    for text in (run.own_output(), (spool.logs / "docagent.log").read_text(encoding="utf-8")):
        assert not any(line.startswith(forged) for line in text.splitlines())
        assert "\x1b" not in text
        [rejected] = [line for line in text.splitlines() if "rejected /status" in line]
        assert f"rejected /status\\n{forged}\\x1b[2J from Telegram user {STRANGER}" in rejected
