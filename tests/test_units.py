"""The unit files, checked by the real systemd tools without booting anything.

`systemd-analyze verify` only warns about unknown keys or bad values and still exits 0, so the
output must be empty too; `systemd-analyze security --offline=true` scores the hardening, and
`--threshold` (ten times the exposure) makes it fail above the target.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNITS = ("docagent.service", "docagent-health.service", "docagent-health.timer")
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed "
                                   "(apt-get install systemd; ./deploy/dev.sh test does it)")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A fake root: the distribution's units, ours, and a stub at the ExecStart= path."""
    root = tmp_path / "root"
    (root / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(REPO / "systemd" / unit, root / "etc/systemd/system" / unit)
    stub = root / "opt/docagent/venv/bin/docagent"
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    return root


def analyze(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run([ANALYZE, *args, f"--root={root}"], capture_output=True, text=True,
                          cwd=root / "etc/systemd/system", check=False)


def exposure(output: str) -> float:
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", output)
    assert found, output
    return float(found.group(1))


@needs_analyze
def test_units_verify_without_a_single_warning(root: Path) -> None:
    done = analyze(root, "verify", "--man=no", *UNITS)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@needs_analyze
def test_verify_does_report_a_broken_unit(root: Path) -> None:
    # The check above would pass vacuously if verify printed nothing whatever the unit said.
    unit = root / "etc/systemd/system/docagent.service"
    unit.write_text(unit.read_text().replace("Type=notify", "Type=notify\nWatchdogSecs=5"))
    done = analyze(root, "verify", "--man=no", "docagent.service")
    assert "WatchdogSecs" in done.stdout + done.stderr


@needs_analyze
def test_daemon_exposure_is_at_most_1_5(root: Path) -> None:
    done = analyze(root, "security", "--offline=true", "--threshold=15", "docagent.service")
    assert done.returncode == 0, done.stdout
    assert exposure(done.stdout) <= 1.5


@needs_analyze
def test_health_check_exposure_is_at_most_1_5(root: Path) -> None:
    done = analyze(root, "security", "--offline=true", "--threshold=15",
                   "docagent-health.service")
    assert done.returncode == 0, done.stdout
    assert exposure(done.stdout) <= 1.5


@needs_analyze
def test_threshold_fails_an_unhardened_unit(root: Path) -> None:
    unit = root / "etc/systemd/system/docagent.service"
    unit.write_text(unit.read_text().split("# --- hardening")[0])
    done = analyze(root, "security", "--offline=true", "--threshold=15", "docagent.service")
    assert done.returncode != 0 and exposure(done.stdout) > 5


def settings_of(unit: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (REPO / "systemd" / unit).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


def test_daemon_unit_says_what_the_contract_asks() -> None:
    unit = settings_of("docagent.service")
    for key, value in {"Type": "notify", "Restart": "always", "RestartSec": "10",
                       "User": "docagent", "StateDirectory": "docagent",
                       "LogsDirectory": "docagent", "ConfigurationDirectory": "docagent",
                       "ProtectSystem": "strict", "CapabilityBoundingSet": "",
                       "NoNewPrivileges": "yes"}.items():
        assert unit[key] == [value], key
    assert unit["LoadCredential"] == ["telegram-token:/etc/docagent/telegram-token",
                                      "mail-password:/etc/docagent/mail-password"]
    assert int(unit["WatchdogSec"][0]) > 0 and int(unit["TimeoutStopSec"][0]) >= 200


def _size(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([KMG]?)", text).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[unit]


def test_daemon_unit_bounds_memory_and_tasks_above_the_measured_peaks() -> None:
    unit = settings_of("docagent.service")
    worst_peak = 280 * 1024**2  # the hostile-files proof, the largest tree measured
    heaviest_page = 872 * 1024**2  # pdftoppm on a colour JPEG 2000 A3 at 600 dpi (bench.children)
    high, hard = _size(unit["MemoryHigh"][0]), _size(unit["MemoryMax"][0])
    assert worst_peak + heaviest_page <= high < hard <= 8 * worst_peak
    assert worst_peak + 2 * heaviest_page <= hard
    assert unit["OOMPolicy"] == ["continue"]  # the tool is killed, not the whole service
    assert 4 * 21 <= int(unit["TasksMax"][0]) <= 1024  # 21 tasks measured with 4 workers


def test_units_share_the_drop_layout_and_keep_the_token_out_of_reach() -> None:
    for name in ("docagent.service", "docagent-health.service"):
        unit = settings_of(name)
        # 0751: a drop account may pass through the home to incoming/, never list it.
        assert unit["StateDirectoryMode"] == ["0751"], name
        assert unit["LogsDirectoryMode"] == ["0750"], name
        assert unit["UMask"] == ["0027"], name
        assert unit["LoadCredential"] == ["telegram-token:/etc/docagent/telegram-token",
                                          "mail-password:/etc/docagent/mail-password"], name
        assert "DOCAGENT_SERVICE_USER=docagent" in unit["Environment"], name
        assert unit["PrivateUsers"] == ["yes"], name


def test_an_unhealthy_result_fails_the_health_unit() -> None:
    service = settings_of("docagent-health.service")
    # `docagent health` exits 1 when unhealthy: the unit must fail for systemctl --failed
    # and OnFailure= to see it.
    assert "SuccessExitStatus" not in service


def test_timer_runs_the_health_check_every_15_minutes() -> None:
    timer = settings_of("docagent-health.timer")
    assert timer["OnCalendar"] == ["*:0/15"] and timer["Persistent"] == ["true"]
    service = settings_of("docagent-health.service")
    assert service["Type"] == ["oneshot"]
    assert service["ExecStart"] == ["/opt/docagent/venv/bin/docagent health --notify"]
