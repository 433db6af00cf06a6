"""Other users for the tests that need two uids: a daemon user and a drop user.

Made with `useradd` (root only; elsewhere the tests skip with the reason) and removed after.
A command runs as one of them through `setpriv`, inside a private mount namespace where every
path the run needs (the interpreter, the virtual environment, the checkout) is reachable: on
this machine Python lives under /root (mode 0700), which no other user may enter, and the
test must not loosen /root for the rest of the machine.
"""

from __future__ import annotations

import atexit
import contextlib
import grp
import os
import pwd
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOLS = ("useradd", "userdel", "groupadd", "groupdel", "setpriv", "unshare", "mount")


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class Accounts:
    daemon: Account  # runs docagent; a member of the drop group, as install.sh makes it
    scanner: Account  # drops files; a member of the drop group only
    drop_group: str
    drop_gid: int


def why_not() -> str | None:
    """None when other users can be made here, else the reason (for a skip)."""
    if os.geteuid() != 0:
        return "making other users (useradd) needs root"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed"
    return None


def require() -> None:
    """Skip the calling test, with the reason, where other users cannot be made."""
    import pytest

    reason = why_not()
    if reason is not None:
        pytest.skip(reason)


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@contextlib.contextmanager
def group(prefix: str) -> Iterator[tuple[str, int]]:
    """A new system group (name, gid), removed afterwards."""
    name = f"{prefix}{secrets.token_hex(3)}"
    _run("groupadd", "--system", name)
    try:
        yield name, grp.getgrnam(name).gr_gid
    finally:
        subprocess.run(["groupdel", name], capture_output=True, check=False)


@contextlib.contextmanager
def user(prefix: str, *, groups: Sequence[str] = (), login_shell: str = "/usr/sbin/nologin",
         system: bool = True) -> Iterator[Account]:
    """A new account with a group of its own (and `groups` besides), removed afterwards."""
    name = f"{prefix}{secrets.token_hex(3)}"
    argv = ["useradd", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
            "--shell", login_shell]
    if system:
        argv.append("--system")
    if groups:
        argv += ["--groups", ",".join(groups)]
    _run(*argv, name)
    try:
        yield _account(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True, check=False)
        subprocess.run(["groupdel", name], capture_output=True, check=False)


@contextlib.contextmanager
def accounts() -> Iterator[Accounts]:
    with group("dgdrop") as (drop, drop_gid), \
            user("dgd", groups=[drop]) as daemon, user("dgs", groups=[drop]) as scanner:
        yield Accounts(daemon, scanner, drop, drop_gid)


def _account(name: str) -> Account:
    entry = pwd.getpwnam(name)
    return Account(name, entry.pw_uid, entry.pw_gid)


def _blocked_ancestor(path: Path) -> Path | None:
    """The first folder on the way to `path` that others may not enter, if any."""
    for folder in reversed(path.parents):
        if not os.stat(folder).st_mode & 0o001:
            return folder
    return None


def _reachability_script(stash: Path) -> str:
    """Shell lines that, in a private mount namespace, hide each folder others may not enter
    behind an open tmpfs and bind back only the paths a docagent run needs."""
    needed = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), REPO}
    lines: list[str] = []
    hidden: dict[Path, list[Path]] = {}
    for path in sorted(needed):
        blocked = _blocked_ancestor(path)
        if blocked is not None:
            hidden.setdefault(blocked, []).append(path)
    for number, (blocked, paths) in enumerate(sorted(hidden.items())):
        saved = [(stash / f"{number}-{i}", p) for i, p in enumerate(paths)]
        for handle, path in saved:
            lines.append(f"mkdir -p {shlex.quote(str(handle))} && "
                         f"mount --bind {shlex.quote(str(path))} {shlex.quote(str(handle))}")
        lines.append(f"mount -t tmpfs -o mode=0755 tmpfs {shlex.quote(str(blocked))}")
        for handle, path in saved:
            lines.append(f"mkdir -p {shlex.quote(str(path))} && "
                         f"mount --bind {shlex.quote(str(handle))} {shlex.quote(str(path))}")
    return "\n".join(lines)


_stash: list[Path] = []


def _stash_folder() -> Path:
    """An empty folder of root's for the mount handles, made once per test run."""
    if not _stash:
        folder = Path(tempfile.mkdtemp(prefix="docagent-uids-"))
        atexit.register(shutil.rmtree, folder, True)
        _stash.append(folder)
    return _stash[0]


def command(account: Account | None, argv: Sequence[str], *, umask: int = 0o022) -> list[str]:
    """`argv` as `account` (its groups included), with the given umask: a list for Popen.

    With `account` None the command stays root's, in the same namespace: a docagent run as
    root that gives up root itself must still find its interpreter afterwards."""
    become = ("" if account is None else
              f"setpriv --reuid={account.uid} --regid={account.gid} --init-groups -- ")
    script = "\n".join([
        "set -e",
        _reachability_script(_stash_folder()),
        f"umask {umask:03o}",
        f'exec {become}"$@"',
    ])
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *argv]
