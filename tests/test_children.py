"""Every external program docagent runs is bounded and gets a minimal environment.

Real children throughout: `env`, python, pdfinfo, pdftotext, pdftoppm under real limits set by
prlimit; the text bomb of tests/hostile.py against a real pdftotext.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import config
from agent.errors import ConfigError, LimiterMissing, TooComplex, ToolFailed
from agent.stages import inspection, ocr
from agent.tools import runner
from tests import hostile, pdfgen
from tests.conftest import Spool, recording_tools

MiB = 2**20
TOKEN = "123456:AAE-not-a-real-token-0123456789abcdef"
MINIMAL = {"PATH", "LANG", "LC_ALL", "OMP_THREAD_LIMIT", "TESSDATA_PREFIX"}


@pytest.fixture(autouse=True)
def default_limits() -> Iterator[None]:
    """Each test starts from the default limit and leaves it so."""
    runner.configure(memory=runner.DEFAULT_MEMORY)
    yield
    runner.configure(memory=runner.DEFAULT_MEMORY)


def child_environ(done: runner.Finished) -> dict[str, str]:
    return dict(line.split("=", 1) for line in done.stdout.decode().splitlines() if "=" in line)


# --- the environment ---------------------------------------------------------------------


def test_a_token_in_the_daemons_environment_reaches_no_child(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("DOCAGENT_HOME", "/somewhere")
    monkeypatch.setenv("LANG", "C.UTF-8")
    done = runner.run(["env"], timeout=30)
    seen = child_environ(done)
    assert TOKEN not in done.stdout.decode()
    assert set(seen) <= MINIMAL, set(seen) - MINIMAL
    assert seen["OMP_THREAD_LIMIT"] == "1" and seen["LANG"] == "C.UTF-8"
    assert seen["PATH"] == os.environ["PATH"]


def test_extra_variables_add_to_the_minimal_environment_never_replace_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    seen = child_environ(runner.run(["env"], timeout=30, env={"TESSDATA_PREFIX": "/t"}))
    assert seen["TESSDATA_PREFIX"] == "/t" and seen["OMP_THREAD_LIMIT"] == "1"
    assert "TELEGRAM_BOT_TOKEN" not in seen


def test_the_real_pipeline_hands_no_token_to_its_tools(spool: Spool, tmp_path: Path) -> None:
    """`docagent process` with a token in its environment: pdfinfo and pdftotext are wrapped
    by scripts that write down the environment they were given."""
    bindir, seen = recording_tools(tmp_path, "pdfinfo", "pdftotext")
    pdf = pdfgen.text_pdf([pdfgen.report("DUPONT", "Jean", "12/03/1961")],
                          tmp_path / "report.pdf")
    path = f"{bindir}:{os.environ['PATH']}"
    done = spool.run("process", "--json", str(pdf),
                     env={"PATH": path, "TELEGRAM_BOT_TOKEN": TOKEN})
    assert done.returncode in (0, 1), done.stderr
    dumps = sorted(seen.iterdir())
    assert {d.name.split(".")[0] for d in dumps} == {"pdfinfo", "pdftotext"}, dumps
    for dump in dumps:
        text = dump.read_text()
        assert TOKEN not in text and "TELEGRAM" not in text and "DOCAGENT_" not in text, dump


# --- the limits --------------------------------------------------------------------------


def test_each_child_runs_under_its_address_space_and_cpu_limits() -> None:
    runner.configure(memory=512 * MiB)
    probe = ("import resource as r; print(r.getrlimit(r.RLIMIT_AS), "
             "r.getrlimit(r.RLIMIT_CPU))")
    done = runner.run([sys.executable, "-c", probe], timeout=30)
    cpu = runner.cpu_limit(30)
    assert cpu > 30  # past the deadline: while it holds, the deadline decides
    assert done.stdout.decode().split() == (
        f"({512 * MiB}, {512 * MiB}) ({cpu}, {cpu + runner.CPU_GRACE})").split()


def test_the_pid_waited_on_is_the_tool_itself() -> None:
    """prlimit execs the tool: wait4's CPU figure is the tool's, as the cost ledger needs."""
    busy = "import time\nwhile time.process_time() < 0.3: pass\nimport os; print(os.getppid())"
    done = runner.run([sys.executable, "-c", busy], timeout=60)
    assert int(done.stdout) == os.getpid()
    assert done.cpu_seconds >= 0.3


def test_a_child_over_its_address_space_limit_is_reported_as_such(tmp_path: Path) -> None:
    bomb = hostile.text_bomb(tmp_path / "bomb.pdf", mib=8)
    runner.configure(memory=256 * MiB)
    done = runner.run(["pdftotext", "-layout", "--", str(bomb), "-"], timeout=240)
    assert done.over_limit == "memory", (done.returncode, done.stderr[-300:])
    assert done.returncode != 0


def test_a_render_spoilt_by_the_limit_counts_even_when_the_tool_exits_0(
        tmp_path: Path) -> None:
    """pdftoppm prints 'Out of memory' and writes a blank page with exit code 0."""
    huge = hostile.huge_image(tmp_path / "huge.pdf", dpi=300)
    runner.configure(memory=96 * MiB)
    done = runner.run(["pdftoppm", "-r", "106", "-gray", "-singlefile", "--", str(huge),
                         str(tmp_path / "page")], timeout=120)
    assert done.over_limit == "memory", (done.returncode, done.stderr[-300:])


def test_a_child_under_the_limit_is_not_reported(tmp_path: Path) -> None:
    scan = pdfgen.write_sample_scan(tmp_path / "scan.pdf")
    runner.configure(memory=runner.MIN_MEMORY)
    done = runner.run(["pdftoppm", "-r", "300", "-gray", "-singlefile", "--", str(scan),
                         str(tmp_path / "page")], timeout=120)
    assert done.returncode == 0 and done.over_limit == ""
    read = runner.run(["tesseract", str(tmp_path / "page.pgm"), "stdout", "-l", "fra+eng",
                         "--psm", "1"], timeout=120)
    assert read.returncode == 0 and read.over_limit == "" and b"DUPONT" in read.stdout


def test_a_child_stopped_by_its_cpu_limit_is_reported_as_such() -> None:
    # The same kernel limit as prlimit's, lowered by the child itself to one second so the
    # test need not outlast a deadline: SIGXCPU, then reported as the CPU limit.
    spin = ("import resource as r\nr.setrlimit(r.RLIMIT_CPU, (1, 3))\nwhile True: pass\n")
    done = runner.run([sys.executable, "-c", spin], timeout=60)
    assert done.returncode == -signal.SIGXCPU
    assert done.over_limit == "cpu"


def test_a_child_killed_from_outside_is_the_machines_fault_not_the_documents(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """SIGKILL from elsewhere (the OOM killer under the unit's MemoryMax=, a person): the
    document is kept queued (ToolFailed), never failed as damaged."""
    done = runner.run([sys.executable, "-c", "import os; os.kill(os.getpid(), 9)"],
                        timeout=30)
    assert done.killed and done.over_limit == ""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("pdfinfo", "pdftoppm"):
        (bindir / tool).write_text("#!/bin/sh\nkill -9 $$\n")
        (bindir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    scan = pdfgen.write_sample_scan(tmp_path / "scan.pdf")
    with pytest.raises(ToolFailed, match="pdfinfo was killed from outside"):
        inspection.inspect(scan, max_bytes=2**30, max_pages=200)
    with pytest.raises(ToolFailed, match="pdftoppm was killed from outside"):
        ocr.read_pages(scan, ((595.0, 842.0),), ocr.OcrOptions())


def test_a_plain_failure_is_not_a_limit() -> None:
    done = runner.run([sys.executable, "-c", "import sys; sys.exit(3)"], timeout=30)
    assert done.returncode == 3 and done.over_limit == ""


# --- finding the programs -----------------------------------------------------------------


def test_a_missing_tool_is_still_file_not_found() -> None:
    with pytest.raises(FileNotFoundError):
        runner.run(["docagent-no-such-tool"], timeout=10)


def test_prlimit_is_found_whatever_path_the_daemon_was_given(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "env").symlink_to(shutil.which("env") or "/usr/bin/env")
    monkeypatch.setenv("PATH", str(bindir))
    done = runner.run(["env"], timeout=30)
    assert child_environ(done)["PATH"] == str(bindir)


def test_without_prlimit_nothing_runs_unbounded(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setattr(runner, "SYSTEM_PATH", str(tmp_path))
    with pytest.raises(LimiterMissing) as raised:
        runner.run(["env"], timeout=10)
    assert "util-linux" in raised.value.advice


# --- descriptors --------------------------------------------------------------------------


def test_a_passed_descriptor_is_readable_through_proc_self_fd(tmp_path: Path) -> None:
    pdf = pdfgen.empty_pages_pdf(3, tmp_path / "three.pdf")
    fd = os.open(pdf, os.O_RDONLY)
    try:
        assert inspection.page_count(Path(f"/proc/self/fd/{fd}"), pass_fds=[fd]) == 3
        assert inspection.opens(Path(f"/proc/self/fd/{fd}"), pass_fds=[fd])
        # Not passed: the child does not have it.
        assert inspection.page_count(Path(f"/proc/self/fd/{fd}")) is None
    finally:
        os.close(fd)


# --- what the pipeline makes of a limit ---------------------------------------------------


def test_a_text_bomb_fails_the_document_as_too_complex(tmp_path: Path) -> None:
    bomb = hostile.text_bomb(tmp_path / "bomb.pdf", mib=8)
    runner.configure(memory=256 * MiB)
    with pytest.raises(TooComplex) as raised:
        ocr.read_pages(bomb, ((595.0, 842.0),), ocr.OcrOptions())
    assert raised.value.kind == "too-complex" and "MiB of memory" in raised.value.message


def test_pdftotext_out_of_time_fails_the_document_instead_of_ocr_of_every_page(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bomb = hostile.text_bomb(tmp_path / "bomb.pdf", mib=8)
    monkeypatch.setattr(ocr, "PDFTOTEXT_TIMEOUT", 0.5)
    with pytest.raises(TooComplex) as raised:
        ocr.text_layers(bomb, 1)
    assert "took more than" in raised.value.message


def test_the_gate_fails_a_pdf_whose_pdfinfo_is_over_the_limit(tmp_path: Path) -> None:
    pdf = pdfgen.empty_pages_pdf(10_000, tmp_path / "many.pdf")
    # pdfinfo needs about 20 MiB of address space for 10,000 pages, most of it its libraries.
    runner.configure(memory=12 * MiB)
    with pytest.raises(TooComplex) as raised:
        inspection.inspect(pdf, max_bytes=2**30, max_pages=200)
    assert raised.value.stage == inspection.STAGE
    # The watcher takes it (waiting would not help) so inspect can give this reason.
    assert inspection.opens(pdf)


# --- the setting --------------------------------------------------------------------------


def test_child_memory_setting(tmp_path: Path) -> None:
    base = {"DOCAGENT_HOME": str(tmp_path)}
    assert config.load(base, tmp_path).child_memory == runner.DEFAULT_MEMORY == 1024 * MiB
    assert config.load({**base, "DOCAGENT_CHILD_MEMORY": "2G"}, tmp_path).child_memory == 2**31
    with pytest.raises(ConfigError, match="DOCAGENT_CHILD_MEMORY must be at least 256M"):
        config.load({**base, "DOCAGENT_CHILD_MEMORY": "100M"}, tmp_path)
    with pytest.raises(ConfigError, match="DOCAGENT_CHILD_MEMORY"):
        config.load({**base, "DOCAGENT_CHILD_MEMORY": "lots"}, tmp_path)
