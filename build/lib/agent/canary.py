"""The watcher's canary: a file `docagent health` drops in incoming/ and the daemon removes.

Its name starts with a dot, so the stabilizer ignores it (it never becomes a document, a count
or a notification); the daemon recognises the prefix in the raw watcher event and deletes the
file, which is the health check's proof that events arrive and the loop reacts to them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from agent import modes

PREFIX = ".docagent-canary-"


def is_canary(path: Path) -> bool:
    return path.name.startswith(PREFIX)


def drop(folder: Path) -> Path:
    """Write a canary the way a scanner writes a file (create, write, close)."""
    path = folder / f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 modes.FILE)
    with open(fd, "w", encoding="ascii") as handle:
        handle.write("canary\n")
    return path


def acknowledge(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
