"""systemctl: whether a unit is active, asked without a shell and after `--`."""

from __future__ import annotations

from agent.errors import ToolFailed
from agent.tools import runner

PROGRAM = runner.Program("systemctl")
UNKNOWN = "unknown"


def argv(unit: str) -> list[str]:
    return [PROGRAM.name, "is-active", "--", unit]


def is_active(unit: str, *, timeout: float = 20.0) -> str:
    """systemd's state of `unit` ("active", "inactive", "failed", ...), UNKNOWN when systemctl
    cannot tell (not installed, no systemd, out of time). The unit name is the caller's to
    vouch for; `--` keeps it from being read as an option.

    Raises LimiterMissing without prlimit, like every tool.
    """
    try:
        done = PROGRAM.run(argv(unit), timeout=timeout)
    except (OSError, runner.NoResult, ToolFailed):
        return UNKNOWN
    # Its exit code is the state again (3 for inactive); the word on stdout says which.
    return done.stdout.decode("utf-8", "replace").strip() or UNKNOWN
