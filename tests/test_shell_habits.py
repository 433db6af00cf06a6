"""The command line as a shell user meets it: pipes that close early, one log format per file,
a quick start, `process` beside a running daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DOCAGENT, Spool
from tests.daemonproc import one_of_each


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
