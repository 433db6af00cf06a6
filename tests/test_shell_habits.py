"""The command line as a shell user meets it: pipes that close early, one log format per file,
a quick start, `process` beside a running daemon."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import pdfgen
from tests.conftest import DOCAGENT, Spool
from tests.daemonproc import one_of_each, states
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
    for command, reader in ((["review", "list"], ["head", "-1"]),
                            (["failed", "list", "--json"], ["head", "-c", "1"]),
                            (["health"], ["grep", "-q", "daemon"]),
                            (["status"], None), (["review", "list"], None),
                            (["costs"], None), (["health", "--json"], None)):
        code, err = piped(spool, command, reader)
        assert (code, err) == (0, ""), (command, reader, code, err)


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
