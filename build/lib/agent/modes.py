"""The modes of what docagent creates: the `docagent` user and group, nobody else.

The unit sets `UMask=0027`, but a shell (`dev.sh run`, the command line) usually has 022, so
the command line sets the umask itself and every file and folder is created with its mode
spelled out: a library caller with a looser umask still gets these.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

UMASK = 0o027
FOLDER = 0o750  # the group (staff) may read and enter; others nothing
FILE = 0o640  # the group may read; others nothing
PRIVATE = 0o600  # locks and secrets: the owner alone


def make_folder(path: Path) -> None:
    """`mkdir -p` where every folder it makes is 0750 (pathlib's parents get 0777 & ~umask)."""
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process
            os.mkdir(folder, FOLDER)


def create_file(path: Path, mode: int = FILE) -> None:
    """Make `path` an empty file of `mode` unless it exists (an existing one is left as it
    is): for files another library creates with its own default mode, such as SQLite's."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, mode))
