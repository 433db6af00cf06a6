"""Who the `docagent` command acts as: the caller for its input files, the service user for
the spool.

The installed command (`/usr/local/bin/docagent`, written by `deploy/install.sh`) is run by an
administrator, usually as root (`sudo docagent patients import patients.csv`). The spool must
only ever hold files the service user owns, yet the CSV or PDF named on the command line is
often in root's home, which the service user cannot read. So, when root runs it and
`DOCAGENT_SERVICE_USER` names the service user, the command:

1. opens its input files as the caller (root) and keeps the descriptors;
2. reads the secrets only root may read and the command needs (the Telegram token and the mail
   password files, handed to the settings in memory, never through the environment);
3. becomes the service user for good (supplementary groups, group, user; `/` as working folder
   when the current one is out of its reach), before reading the settings or the spool.

Run by anyone else, nothing changes identity; a permission problem is then one line naming the
path and the fix (`sudo docagent ...`), never a traceback.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import pwd
import shlex
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent import config
from agent.errors import UsageError

SERVICE_USER = "DOCAGENT_SERVICE_USER"


@dataclass(frozen=True)
class Opened:
    """An input file opened by the caller: its path as given, and the descriptor."""

    path: Path
    fd: int


def service_user(env: Mapping[str, str]) -> str | None:
    """The user to become, when root runs the installed command; None otherwise."""
    name = env.get(SERVICE_USER, "").strip()
    return name if name and os.geteuid() == 0 else None


def open_input(path: Path, *, follow_symlinks: bool = True) -> Opened:
    """Open a file named on the command line, as whoever runs the command.

    O_NONBLOCK: a FIFO given by mistake must not hang the command before fstat says what it is.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UsageError(f"{path} is a symbolic link, not a regular file") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UsageError(f"{path} is not a regular file")
    os.set_blocking(fd, True)
    return Opened(path, fd)


def read_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """The secrets in `$CONFIGURATION_DIRECTORY/<credential>` (`telegram-token`,
    `mail-password`), read while we are still root, by credential name.

    Each file is root's alone (0600); the service gets it from systemd's LoadCredential=, the
    command from here. The same rules as for a systemd credential apply (config).
    """
    conf_dir = env.get("CONFIGURATION_DIRECTORY", "").split(":")[0]
    if not conf_dir:
        return {}
    found = {}
    for secret in config.SECRETS:
        # config's own reader, so each file obeys the rules of a systemd credential.
        value = config.read_credential({"CREDENTIALS_DIRECTORY": conf_dir}, secret.credential)
        if value is not None:
            found[secret.credential] = value
    return found


def with_secrets(settings: config.Settings, secrets: Mapping[str, str]) -> config.Settings:
    """The settings with root's secrets, where the settings name none themselves (a variable
    wins over a credential, as in config)."""
    token = secrets.get(config.TELEGRAM_TOKEN.credential)
    if token and not settings.telegram_token:
        settings = dataclasses.replace(settings, telegram_token=token)
    password = secrets.get(config.MAIL_PASSWORD.credential)
    if password and settings.mail is not None and not settings.mail.password:
        mail = dataclasses.replace(
            settings.mail, password=password,
            password_source=(f"{config.MAIL_PASSWORD.credential} in the configuration folder "
                             f"(/etc/docagent/{config.MAIL_PASSWORD.credential} on an "
                             "installed server)"))
        settings = dataclasses.replace(settings, mail=mail)
    return settings


def become(name: str) -> None:
    """Become the service user for the rest of the process; there is no way back."""
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        raise UsageError(f"{SERVICE_USER} names {name!r}, which is not a user here: "
                         "install docagent (deploy/install.sh) or unset it") from None
    os.initgroups(name, user.pw_gid)  # the drop group too: dropped files are group-readable
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    os.environ["HOME"] = user.pw_dir
    # ./.env is looked for in the working folder; the service user may not reach root's.
    if not os.access(os.getcwd(), os.X_OK):
        os.chdir("/")


def explain(path: str | os.PathLike[str] | None, argv: Sequence[str]) -> str:
    """One line for a permission refused on `path`: what, to whom, and the fix."""
    where = os.fspath(path) if path is not None else "a file docagent needs"
    me = _me()
    if os.geteuid() == 0:
        return (f"{where}: permission denied, even to root: a read-only mount, or an "
                f"immutable file (lsattr {where})")
    cwd = _cwd()
    if cwd is not None and os.path.dirname(where) == cwd and not os.access(cwd, os.X_OK):
        # ./.env is looked for in the working folder: the folder is the problem, not the file.
        return (f"the current folder {cwd} is closed to {me}: cd to a folder you may read, or "
                f"run it as root: {_sudo(argv)}")
    if me == os.environ.get(SERVICE_USER, "").strip():
        # The service user itself: the path was taken from it (a chown by hand, a copy by root).
        return (f"{where}: permission denied to the service user {me}: give it back with "
                f"chown {me}: {where}")
    return f"{where}: permission denied to {me}: run it as root: {_sudo(argv)}"


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:
        return None


def _sudo(argv: Sequence[str]) -> str:
    return shlex.join(["sudo", "docagent", *argv])


def _me() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"
