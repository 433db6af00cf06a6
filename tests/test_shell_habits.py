"""The command line as a shell user meets it: pipes that close early, one log format per file,
a quick start, `process` beside a running daemon."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests import pdfgen
from tests.conftest import DOCAGENT, Spool
from tests.daemonproc import documents, drop, one_of_each, states
from tests.pdfgen import report
from tests.watch import until


def piped(spool: Spool, command: list[str], reader: list[str] | None) -> tuple[int, str]:
    """`docagent COMMAND | READER` through a real pipe (READER None: a pipe whose reader is
    gone before docagent writes); docagent's exit code and stderr."""
    read_end, write_end = os.pipe()
    consumer = None
    if reader is None:
        os.close(read_end)
    else:
        consumer = subprocess.Popen(reader, stdin=read_end, stdout=subprocess.DEVNULL)
        os.close(read_end)
    try:
        writer = subprocess.run([DOCAGENT, *command], stdout=write_end, stderr=subprocess.PIPE,
                                env=spool.env, cwd=spool.root, timeout=120, check=False)
    finally:
        os.close(write_end)
        if consumer is not None:
            consumer.wait(timeout=120)
    return writer.returncode, writer.stderr.decode()


def test_a_reader_that_stops_early_ends_the_command_quietly(spool: Spool,
                                                            tmp_path: Path) -> None:
    one_of_each(spool, tmp_path)
    # The reader gone before docagent writes: the pipe is closed for sure, exit 0.
    for command in (["status"], ["review", "list"], ["failed", "list", "--json"], ["costs"],
                    ["health"], ["health", "--json"]):
        code, err = piped(spool, command, None)
        assert (code, err) == (0, ""), (command, code, err)
    # Readers as people use them: whether the pipe closes before docagent is done is a
    # matter of timing; either way no traceback, and health's own verdict (1: no daemon
    # runs) when it did not.
    for command, reader, own in ((["review", "list"], ["head", "-1"], 0),
                                 (["failed", "list", "--json"], ["head", "-c", "1"], 0),
                                 (["health"], ["grep", "-q", "daemon"], 1)):
        code, err = piped(spool, command, reader)
        assert err == "" and code in (0, own), (command, reader, code, err)


def test_importing_the_command_line_loads_no_daemon_machinery() -> None:
    """What `status` and `costs` do not need is imported by the command that needs it."""
    probe = ("import sys, agent.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('asyncio', 'telegram', 'prometheus_client', 'watchdog', 'agent')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[1])
    loaded = set(json.loads(done.stdout.replace("'", '"')))
    heavy = {"asyncio", "telegram", "prometheus_client", "watchdog", "agent.daemon",
             "agent.ops.pipeline", "agent.stages.parse", "agent.spool.claiming",
             "agent.notify.outbox"}
    assert loaded & heavy == set(), sorted(loaded & heavy)


@pytest.mark.parametrize("command", [["status"], ["costs", "--day", "today"]])
def test_status_and_costs_load_only_what_they_read(spool: Spool, command: list[str]) -> None:
    probe = ("import sys, runpy; sys.argv = ['docagent', *sys.argv[1:]]\n"
             "from agent.cli import main\n"
             "code = main()\n"
             "print('MODULES', sorted(m for m in sys.modules if m.split('.')[0] in "
             "('asyncio', 'telegram', 'prometheus_client', 'watchdog', 'agent')), flush=True)")
    done = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True,
                          text=True, env=spool.env, cwd=spool.root, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("MODULES "))
    loaded = set(json.loads(line.removeprefix("MODULES ").replace("'", '"')))
    assert {"asyncio", "telegram", "prometheus_client", "watchdog", "agent.daemon",
            "agent.stages.parse", "agent.spool.claiming", "agent.spool.placing"} & loaded == set()


def test_the_spool_packages_lazy_names_are_its_public_ones() -> None:
    from agent import spool

    home = spool._HOME  # type: ignore[attr-defined]
    assert sorted(home) == sorted(spool.__all__)
    for name in spool.__all__:
        assert getattr(spool, name) is not None
    with pytest.raises(AttributeError):
        spool.no_such_thing  # type: ignore[attr-defined]  # noqa: B018


def test_the_day_words_are_the_costs_reports() -> None:
    from agent import cli
    from agent.ops import costs

    assert cli.DAY_WORDS == costs.DAY_WORDS


# --- process beside a running daemon ------------------------------------------------------


@pytest.mark.daemon
def test_process_beside_a_running_daemon_hands_the_file_to_it(spool: Spool, daemon,
                                                              tmp_path: Path) -> None:
    run = daemon()
    pdf = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975")], tmp_path / "scan.pdf")
    done = spool.run("process", "--json", str(pdf))
    assert done.returncode == 0, done.stderr
    [out] = [json.loads(line) for line in done.stdout.splitlines()]
    assert (out["outcome"], out["patient_id"]) == ("filed", "P002")
    assert (f"scan.pdf: handed to the running daemon as document {out['document_id']}; "
            "waiting for its verdict") in done.stderr
    # The daemon read it (its worker's line), not the command.
    run.wait_for(lambda: f"{out['document_id']}: filed in" in run.own_output(), 30,
                 "the daemon's line for it")
    assert pdf.exists()  # the original is never touched
    assert run.stop() == 0


@pytest.mark.daemon
def test_process_says_deferred_when_the_daemon_goes_away_before_reading_it(
        spool: Spool, daemon, tmp_path: Path) -> None:
    run = daemon()
    run.proc.send_signal(signal.SIGSTOP)  # alive and holding the lock, but reading nothing
    pdf = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975")], tmp_path / "scan.pdf")
    err = tmp_path / "err.txt"
    with open(err, "w") as stderr:
        command = subprocess.Popen([DOCAGENT, "process", "--json", str(pdf)], env=spool.env,
                                   cwd=spool.root, stdout=subprocess.PIPE, stderr=stderr,
                                   text=True)
        until(lambda: "handed to the running daemon" in err.read_text(), 30, "the hand-over")
        time.sleep(1.5)
        assert command.poll() is None  # waiting for the daemon's verdict
        run.proc.send_signal(signal.SIGKILL)
        out, _ = command.communicate(timeout=30)
    [verdict] = [json.loads(line) for line in out.splitlines()]
    assert command.returncode == 1
    assert verdict["outcome"] == "deferred"
    assert "the daemon stopped before it read the document" in verdict["reason"]
    assert states(spool) == {"scan.pdf": "queued"}  # still in the queue for the next start
    run = daemon()
    run.wait_for(lambda: states(spool) == {"scan.pdf": "filed"}, 30, "the next daemon")
    assert run.stop() == 0


# --- one log format per file ----------------------------------------------------------------


@pytest.mark.daemon
def test_each_log_file_holds_one_format_whatever_the_switches(spool: Spool, daemon,
                                                              tmp_path: Path) -> None:
    as_json = {"DOCAGENT_LOG_FORMAT": "json"}
    spool.run("status", check=True)  # text, before the switch (the import wrote text too)
    run = daemon(**as_json)
    drop(pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975")], tmp_path / "a.pdf"),
         spool.home / "incoming")
    run.wait_for(lambda: states(spool).get("a.pdf") == "filed", 30, "a.pdf")
    # Commands beside it, with and without the daemon's setting.
    spool.run("review", "list", check=True)
    spool.run("status", check=True, env=as_json)
    [out] = spool.process_json(pdfgen.text_pdf([report("DUPONT", "Jean", "12/03/1961")],
                                                tmp_path / "b.pdf"))
    assert run.stop() == 0
    run = daemon()  # switched back to text
    drop(pdfgen.text_pdf([report("NOBODY", "Alice", "01/01/1990")], tmp_path / "c.pdf"),
         spool.home / "incoming")
    run.wait_for(lambda: states(spool).get("c.pdf") == "review", 30, "c.pdf")
    assert run.stop() == 0

    json_log = spool.logs / "docagent.jsonl"
    entries = [json.loads(line) for line in json_log.read_text().splitlines()]
    assert any(e["doc"] == states_id(spool, "a.pdf") for e in entries)  # the daemon's
    assert subprocess.run(["jq", "-e", ".", str(json_log)], capture_output=True).returncode == 0
    text = (spool.logs / "docagent.log").read_text().splitlines()
    assert text and not [line for line in text if line.lstrip().startswith("{")]
    assert any(str(out["document_id"]) in line for line in text)  # the command's own run
    assert any(states_id(spool, "c.pdf") in line for line in text)  # the daemon after it


def states_id(spool: Spool, name: str) -> str:
    return documents(spool.home)[name].id


# --- a folder inside incoming/ ----------------------------------------------------------------


@pytest.mark.daemon
def test_a_pdf_in_a_folder_inside_incoming_is_said_once_and_shown_by_health(
        spool: Spool, daemon, tmp_path: Path) -> None:
    run = daemon()  # conftest: a full rescan every second
    folder = spool.home / "incoming" / "2026-12"
    folder.mkdir()
    (folder / ".hidden").mkdir()
    pdf = pdfgen.text_pdf([report("MARTIN", "Hélène", "03/04/1975")], tmp_path / "scan.pdf")
    drop(pdf, folder)
    drop(pdf, folder, "again.pdf")
    said = "file(s) in the folder '2026-12' inside incoming/ are not taken"
    run.wait_for(lambda: said in run.own_output(), 30, "the warning")
    time.sleep(3.5)  # several rescans more
    assert run.own_output().count(said) == 1
    assert "2 file(s) in the folder '2026-12'" in run.own_output()
    checks = spool.health()
    assert not checks["incoming"]["ok"]
    assert ("2 files inside folders of incoming/ are never taken (only files directly in "
            "incoming/ are): '2026-12/' (2); move them up into incoming/"
            in checks["incoming"]["detail"]), checks["incoming"]
    assert states(spool) == {}  # never taken
    human = spool.run("health", env={"DOCAGENT_LANG": "fr"}).stdout
    assert "2 fichiers rangés dans des dossiers de incoming/ ne seront jamais pris" in human

    # Moved up, they are taken, and the folder (empty now) is no longer a problem.
    for name in ("scan.pdf", "again.pdf"):
        (folder / name).rename(spool.home / "incoming" / name)
    run.wait_for(lambda: sorted(states(spool).values()) == ["filed"], 30, "the moved file")
    assert spool.health()["incoming"]["ok"]
    assert run.stop() == 0


# --- costs too small for four decimals ---------------------------------------------------------


def test_a_cost_of_millionths_of_a_euro_shows_its_digits(spool: Spool) -> None:
    from agent.ledger import Ledger
    from agent.notify.digest_text import render_digest
    from agent.ops import costs

    page = 4.7e-06  # one OCR page: 1.2 s of a 2-core server at 20 EUR a month
    ledger = Ledger(spool.logs)
    ledger.record("ocr", "document", duration_ms=1200, units={"pages": 1}, cost=page)
    ledger.record("telegram", "sendMessage", duration_ms=90, units={"message": 1}, cost=0.0)
    shown = spool.run("costs", "--day", "today", check=True).stdout
    assert "0.0000047" in shown and "0.0000 " not in shown and "0.0000\n" not in shown, shown
    [ocr] = [line for line in shown.splitlines() if line.startswith("ocr")]
    assert ocr.split() == ["ocr", "1", "0", "0.0000047"]
    [total] = [line for line in shown.splitlines() if line.startswith("total")]
    assert total.split() == ["total", "2", "0", "0.0000047"]
    report = json.loads(spool.run("costs", "--day", "today", "--json", check=True).stdout)
    assert report["services"]["ocr"]["cost"] == page  # not rounded away to 0.000005
    chat = costs.render(report, chat=True)  # what /costs answers on Telegram
    assert chat.splitlines()[0].startswith(f"Costs {report['day']}: 0.0000047 EUR")
    assert "- ocr: 0.0000047" in chat and "- telegram: 0.00 " in chat
    digest = render_digest({"day": report["day"], "counts": {}, "cost": {
        "total": 1.25 + page, "currency": "EUR", "services": {"ocr": page, "other": 1.25}}})
    assert "Cost: 1.25 EUR (ocr 0.0000047, other 1.25)." in digest


# --- a document date in doubt is marked in the file name ------------------------------------


def filed_name(spool: Spool, pdf: Path, **env: str) -> str:
    done = spool.run("process", "--json", str(pdf), env=env)
    [out] = [json.loads(line) for line in done.stdout.splitlines()]
    return Path(str(out["path"])).name


def test_the_file_name_says_when_its_date_is_not_the_documents_own(spool: Spool,
                                                                   tmp_path: Path) -> None:
    def text(name: str, doc_date: str) -> Path:
        return pdfgen.text_pdf([pdfgen.lab_report_lines(
            last="MARTIN", first="Hélène", birth="03/04/1975", doc_date=doc_date)],
            tmp_path / name)

    # A text layer states its date exactly: the name starts with it, unmarked.
    assert filed_name(spool, text("read.pdf", "05/11/2026")) == \
        "2026-11-05_lab-result_read.pdf"
    # No date read (a misread one reads as none): the day it came in, said to be that.
    received = date.today().isoformat()
    assert filed_name(spool, text("none.pdf", "")) == f"{received}-received_lab-result_none.pdf"
    # A date after the day it came in is a misreading.
    later = (date.today() + timedelta(days=400)).strftime("%d/%m/%Y")
    iso = (date.today() + timedelta(days=400)).isoformat()
    assert filed_name(spool, text("later.pdf", later)) == \
        f"{iso}-unsure_lab-result_later.pdf"


@pytest.mark.ocr
def test_a_date_read_on_a_poorly_read_page_is_marked_unsure(spool: Spool,
                                                            tmp_path: Path) -> None:
    scan = pdfgen.write_sample_scan(tmp_path / "scan.pdf", seed=3)
    again = tmp_path / "again.pdf"
    again.write_bytes(scan.read_bytes() + b"\n")  # other bytes, the same page
    # The page's mean OCR confidence (about 90 here) against the bound names need.
    assert filed_name(spool, scan) == "2026-11-05_lab-result_scan.pdf"
    assert filed_name(spool, again, DOCAGENT_MIN_NAME_CONFIDENCE="99") == \
        "2026-11-05-unsure_lab-result_again.pdf"
