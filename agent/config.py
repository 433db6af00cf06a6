"""Settings: the environment first, then a `.env` file, then systemd credentials.

A value set in the environment wins over the same name in `.env` (python-dotenv's own rule),
and each secret (the bot token, the mail password: `SECRETS`) may instead come from
`$CREDENTIALS_DIRECTORY/<credential>`, which is how systemd's `LoadCredential=` hands over a
secret without putting it in the environment.

Every value is checked here, once: a bad one raises `ConfigError` naming the variable, which
the command line turns into exit 2 and one line on stderr.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from agent import disclosure, i18n
from agent.errors import ConfigError
from agent.tools.runner import DEFAULT_MEMORY as DEFAULT_CHILD_MEMORY
from agent.tools.runner import MIN_MEMORY as MIN_CHILD_MEMORY

DEFAULT_TELEGRAM_API = "https://api.telegram.org"
# DOCAGENT_MIN_NAME_CONFIDENCE: the mean OCR word confidence (0-100) of the page a patient's
# name was read from, under which the document never files by itself (a misread letter can
# turn one patient into another) and its review message says to check the name against the
# scan. Tesseract reads an upright poor scan at 80-90, a page it struggled with at 60 or less.
DEFAULT_MIN_NAME_CONFIDENCE = 70.0


@dataclass(frozen=True)
class Secret:
    """A setting that is a secret: its variable (environment or `.env`) and the name of the
    systemd credential (and of the root-only file under /etc/docagent) that may hold it."""
    variable: str
    credential: str


TELEGRAM_TOKEN = Secret("TELEGRAM_BOT_TOKEN", "telegram-token")
MAIL_PASSWORD = Secret("DOCAGENT_MAIL_PASSWORD", "mail-password")
SECRETS = (TELEGRAM_TOKEN, MAIL_PASSWORD)

# The mail channel (agent.ops.mail).
MAIL_SECURITY = ("imaps", "starttls")  # never plain IMAP: a password and medical documents
MAIL_MARKS = ("move", "flag")
DEFAULT_MAIL_TAKEN_FOLDER = "docagent-taken"
_SENDER = re.compile(r"^(?:[^@\s,;<>]+)?@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class MailSettings:
    """One IMAP mailbox docagent reads (`DOCAGENT_MAIL_*`); absent when no host is set."""
    host: str
    port: int
    user: str
    security: str  # imaps | starttls
    mailbox: str
    mark: str  # move (into taken_folder) | flag (the keyword $DocagentTaken)
    taken_folder: str
    allowed_senders: tuple[str, ...]  # "name@domain" or "@domain", lower case
    poll_seconds: float
    idle: bool  # use IDLE where the server offers it
    ca_file: Path | None = None  # a certificate (or CA) to trust besides the system's
    password: str | None = field(default=None, repr=False)
    # Where the password was read, for the message that says to correct it when refused.
    password_source: str | None = None

    def allows(self, address: str) -> bool:
        """An exact address, or any address at a domain given as `@domain` (that domain only,
        not its subdomains)."""
        address = address.strip().lower()
        if "@" not in address:
            return False
        domain = "@" + address.rpartition("@")[2]
        return address in self.allowed_senders or domain in self.allowed_senders

    @property
    def where(self) -> str:
        """The mailbox as a person names it: user@host:port/MAILBOX."""
        return f"{self.user}@{self.host}:{self.port}/{self.mailbox}"


@dataclass(frozen=True)
class HealthLimits:
    """What `docagent health` tolerates before it says a check fails."""
    heartbeat_max: float = 120.0  # seconds since the daemon's last heartbeat
    min_free: int = 1024**3  # bytes free on the spool's filesystem
    max_wait: float = 900.0  # seconds a file may wait in incoming/
    max_failed: int = 5  # documents failed in the last 24 h
    max_outbox_age: float = 900.0  # seconds the oldest unsent notification may wait
    units: tuple[str, ...] = ()  # the only systemd units health may ask about


@dataclass(frozen=True)
class Settings:
    home: Path
    log_dir: Path
    workers: int
    ocr_langs: str
    ocr_dpi: int
    ocr_timeout: float
    max_pages: int
    max_bytes: int
    max_pixels: int
    watch: str
    phi: str
    stable_seconds: float
    incomplete_seconds: float
    rescan_seconds: float
    max_crashes: int
    log_level: str
    telegram_token: str | None = field(default=None, repr=False)
    telegram_chat_ids: tuple[int, ...] = ()
    telegram_allowed_user_ids: tuple[int, ...] = ()
    telegram_api_base_url: str = DEFAULT_TELEGRAM_API
    # Where the token was read, for the message that says to correct it when Telegram refuses it.
    telegram_token_source: str | None = None
    env_file: Path | None = None
    # Observability: prices for the cost ledger, metrics, digest, log format.
    server_eur_per_month: float = 0.0
    server_cores: int = 1
    unit_prices: tuple[tuple[str, str, float], ...] = ()
    metrics_addr: tuple[str, int] | None = None
    digest_hour: int | None = None
    log_format: str = "text"
    lang: str = i18n.DEFAULT  # what staff read: Telegram, the digest, the CLI (agent.i18n)
    min_name_confidence: float = DEFAULT_MIN_NAME_CONFIDENCE
    health: HealthLimits = HealthLimits()
    child_memory: int = DEFAULT_CHILD_MEMORY  # address space of each external tool (RLIMIT_AS)
    mail: MailSettings | None = None  # the mailbox read for documents, if one is set

    @property
    def incoming(self) -> Path:
        return self.home / "incoming"

    @property
    def processing(self) -> Path:
        return self.home / "processing"

    @property
    def done(self) -> Path:
        return self.home / "done"

    @property
    def review(self) -> Path:
        return self.home / "review"

    @property
    def failed(self) -> Path:
        return self.home / "failed"

    @property
    def db_path(self) -> Path:
        return self.home / "state.db"


def find_env_file(env: Mapping[str, str], cwd: Path) -> Path | None:
    """The `.env` to read: named explicitly, or systemd's configuration folder, or ./.env."""
    explicit = env.get("DOCAGENT_ENV_FILE")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"DOCAGENT_ENV_FILE names {path}, which is not a file")
        return path
    conf_dir = env.get("CONFIGURATION_DIRECTORY")
    if conf_dir:
        candidate = Path(conf_dir.split(":")[0]) / "docagent.env"
        if candidate.is_file():
            return candidate
    candidate = cwd / ".env"
    return candidate if candidate.is_file() else None


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def check_private(path: Path, info: os.stat_result | None = None) -> None:
    """Refuse a secrets file that is not ours (nor root's), or that anyone else may read or
    write: whoever owns the settings decides where the spool is and where messages go."""
    info = info or path.stat()
    me = os.geteuid()
    if info.st_uid not in (me, 0):
        user = _user_name(me)
        raise ConfigError(
            f"{path} belongs to {_user_name(info.st_uid)}, not to {user} who runs docagent"
            f"{'' if me == 0 else ' nor to root'}; fix it with: chown {user} {path}"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"{path} is readable by group or others (mode {mode:04o}); "
            f"fix it with: chmod 600 {path}"
        )


def _read_env_file(path: Path) -> dict[str, str]:
    """Checked and read through one descriptor: the file checked is the file read, even if
    someone who may write the folder swaps the name meanwhile."""
    # A file we may not open raises PermissionError as it is: the command line says, once for
    # every file, whose it is and how to run the command instead (agent.privileges.explain).
    with open(path, encoding="utf-8") as handle:
        check_private(path, os.fstat(handle.fileno()))
        return {k: v for k, v in dotenv_values(stream=handle).items() if v is not None}


def read_credential(env: Mapping[str, str], name: str) -> str | None:
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if not cred_dir:
        return None
    path = Path(cred_dir) / name
    if not path.is_file():
        return None
    # Group may read it (the install gives it to root:docagent 0640); others never.
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o007:
        raise ConfigError(f"{path} is readable or writable by others (mode {mode:04o}); "
                          f"fix it with: chmod 640 {path}")
    return path.read_text(encoding="utf-8").strip() or None


def _secret(secret: Secret, env: Mapping[str, str], values: Mapping[str, str],
            env_file: Path | None) -> tuple[str | None, str | None]:
    """A secret and where it was read: the environment, the `.env`, or the credential."""
    name = secret.variable
    if env.get(name, "").strip():
        return env[name].strip(), f"{name} in the environment"
    if values.get(name, "").strip():
        return values[name].strip(), f"{name} in {env_file}"
    value = read_credential(env, secret.credential)
    if value is None:
        return None, None
    # LoadCredential= hands over a copy: the file to correct is the one the unit names.
    return value, (f"the credential {secret.credential} ({env['CREDENTIALS_DIRECTORY']}/"
                   f"{secret.credential}, a copy of /etc/docagent/{secret.credential} on an "
                   "installed server)")


def _int(values: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = values.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number (got {raw!r})") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high} (got {value})")
    return value


def _float(values: Mapping[str, str], name: str, default: float, *, low: float) -> float:
    raw = values.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds (got {raw!r})") from None
    if value < low or value != value:  # NaN compares unequal to itself
        raise ConfigError(f"{name} must be at least {low} (got {raw})")
    return value


_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def _bytes(values: Mapping[str, str], name: str, default: int) -> int:
    raw = values.get(name, "").strip()
    if not raw:
        return default
    match = _SIZE.match(raw)
    if not match or int(match.group(1)) == 0:
        raise ConfigError(f"{name} must be a size such as 52428800, 50M or 1G (got {raw!r})")
    unit = (match.group(2) or "").upper()[:1]
    return int(match.group(1)) * _UNITS[unit]


def _choice(values: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = values.get(name, "").strip().lower() or default
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)} (got {raw!r})")
    return raw


def _ids(values: Mapping[str, str], name: str) -> tuple[int, ...]:
    raw = values.get(name, "").strip()
    if not raw:
        return ()
    try:
        return tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigError(
            f"{name} must be comma-separated numeric Telegram ids (got {raw!r})"
        ) from None


_LANGS = re.compile(r"^[a-z_]{3,}(\+[a-z_]{3,})*$")


def load(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Read and check every setting; raises ConfigError naming the first bad one."""
    env = dict(os.environ if env is None else env)
    cwd = cwd or Path.cwd()
    env_file = find_env_file(env, cwd)
    values: dict[str, str] = {}
    if env_file is not None:
        values.update(_read_env_file(env_file))
    values.update(env)  # the environment wins over the file

    langs = values.get("DOCAGENT_OCR_LANGS", "").strip() or "fra+eng"
    if not _LANGS.match(langs):
        raise ConfigError(f"DOCAGENT_OCR_LANGS must look like fra+eng (got {langs!r})")
    level = values.get("DOCAGENT_LOG_LEVEL", "").strip().upper() or "INFO"
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(
            f"DOCAGENT_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR (got {level!r})"
        )
    api = (values.get("TELEGRAM_API_BASE_URL", "").strip() or DEFAULT_TELEGRAM_API).rstrip("/")
    if not re.match(r"^https?://[^\s/]+", api):
        raise ConfigError(f"TELEGRAM_API_BASE_URL must be an http(s) URL (got {api!r})")
    token, token_source = _secret(TELEGRAM_TOKEN, env, values, env_file)

    return Settings(
        home=Path(values.get("DOCAGENT_HOME", "").strip() or cwd / "var").absolute(),
        log_dir=Path(values.get("DOCAGENT_LOG_DIR", "").strip() or cwd / "logs").absolute(),
        workers=_int(values, "DOCAGENT_WORKERS", os.cpu_count() or 1, low=1, high=64),
        ocr_langs=langs,
        ocr_dpi=_int(values, "DOCAGENT_OCR_DPI", 300, low=72, high=1200),
        ocr_timeout=_float(values, "DOCAGENT_OCR_TIMEOUT", 180.0, low=1.0),
        max_pages=_int(values, "DOCAGENT_MAX_PAGES", 200, low=1, high=100_000),
        max_bytes=_bytes(values, "DOCAGENT_MAX_BYTES", 100 * 1024**2),
        # 50 megapixels is an A3 page at 400 dpi; anything larger is downscaled before OCR.
        max_pixels=_int(values, "DOCAGENT_MAX_PIXELS", 50_000_000, low=1_000_000, high=10**9),
        watch=_choice(values, "DOCAGENT_WATCH", "inotify", ("inotify", "polling")),
        phi=_choice(values, "DOCAGENT_PHI", disclosure.FULL, disclosure.SETTINGS),
        lang=_choice(values, "DOCAGENT_LANG", i18n.DEFAULT, i18n.LANGUAGES),
        stable_seconds=_float(values, "DOCAGENT_STABLE_SECONDS", 2.0, low=0.0),
        incomplete_seconds=_float(values, "DOCAGENT_INCOMPLETE_SECONDS", 600.0, low=1.0),
        rescan_seconds=_float(values, "DOCAGENT_RESCAN_SECONDS", 30.0, low=0.2),
        max_crashes=_int(values, "DOCAGENT_MAX_CRASHES", 3, low=1, high=100),
        log_level=level,
        telegram_token=token,
        telegram_chat_ids=_ids(values, "TELEGRAM_CHAT_IDS"),
        telegram_allowed_user_ids=_ids(values, "TELEGRAM_ALLOWED_USER_IDS"),
        telegram_api_base_url=api,
        telegram_token_source=token_source,
        env_file=env_file,
        server_eur_per_month=_amount(values, "DOCAGENT_SERVER_EUR_PER_MONTH"),
        server_cores=_int(values, "DOCAGENT_SERVER_CORES", os.cpu_count() or 1, low=1, high=1024),
        unit_prices=_unit_prices(values),
        metrics_addr=_metrics_addr(values.get("DOCAGENT_METRICS_ADDR", "")),
        digest_hour=_optional_hour(values, "DOCAGENT_DIGEST_HOUR"),
        log_format=_choice(values, "DOCAGENT_LOG_FORMAT", "text", ("text", "json")),
        min_name_confidence=float(_int(values, "DOCAGENT_MIN_NAME_CONFIDENCE",
                                       int(DEFAULT_MIN_NAME_CONFIDENCE), low=0, high=100)),
        health=HealthLimits(
            heartbeat_max=_float(values, "DOCAGENT_HEALTH_HEARTBEAT_MAX", 120.0, low=1.0),
            min_free=_bytes(values, "DOCAGENT_HEALTH_MIN_FREE", 1024**3),
            max_wait=_float(values, "DOCAGENT_HEALTH_MAX_WAIT", 900.0, low=1.0),
            max_failed=_int(values, "DOCAGENT_HEALTH_MAX_FAILED", 5, low=0, high=1_000_000),
            max_outbox_age=_float(values, "DOCAGENT_HEALTH_MAX_OUTBOX_AGE", 900.0, low=1.0),
            units=unit_names(values.get("DOCAGENT_HEALTH_UNITS", "")),
        ),
        child_memory=_child_memory(values),
        mail=_mail(env, values, env_file),
    )


def _mail(env: Mapping[str, str], values: Mapping[str, str],
          env_file: Path | None) -> MailSettings | None:
    """The mailbox to read, or None when DOCAGENT_MAIL_HOST is not set (no mail channel)."""
    host = values.get("DOCAGENT_MAIL_HOST", "").strip()
    if not host:
        return None
    if not re.match(r"^[A-Za-z0-9.:\[\]-]+$", host):
        raise ConfigError(f"DOCAGENT_MAIL_HOST must be a host name such as imap.example.org "
                          f"(got {host!r})")
    user = values.get("DOCAGENT_MAIL_USER", "").strip()
    if not user:
        raise ConfigError("DOCAGENT_MAIL_USER must name the mailbox's login (often its "
                          "address) when DOCAGENT_MAIL_HOST is set")
    security = _choice(values, "DOCAGENT_MAIL_SECURITY", "imaps", MAIL_SECURITY)
    senders = []
    for entry in re.split(r"[\s,;]+", values.get("DOCAGENT_MAIL_ALLOWED_SENDERS", "").strip()):
        if not entry:
            continue
        if not _SENDER.match(entry):
            raise ConfigError(f"DOCAGENT_MAIL_ALLOWED_SENDERS: {entry!r} is neither an address "
                              "(resultats@labo.fr) nor a domain (@labo.fr)")
        senders.append(entry.lower())
    ca_raw = values.get("DOCAGENT_MAIL_CA_FILE", "").strip()
    ca_file = Path(ca_raw) if ca_raw else None
    if ca_file is not None and not ca_file.is_file():
        raise ConfigError(f"DOCAGENT_MAIL_CA_FILE names {ca_file}, which is not a file")
    mark = _choice(values, "DOCAGENT_MAIL_MARK", "move", MAIL_MARKS)
    taken = values.get("DOCAGENT_MAIL_TAKEN_FOLDER", "").strip() or DEFAULT_MAIL_TAKEN_FOLDER
    mailbox = values.get("DOCAGENT_MAIL_MAILBOX", "").strip() or "INBOX"
    if mark == "move" and taken == mailbox:
        raise ConfigError("DOCAGENT_MAIL_TAKEN_FOLDER must differ from DOCAGENT_MAIL_MAILBOX: "
                          "taken mail is moved out of the mailbox read")
    password, source = _secret(MAIL_PASSWORD, env, values, env_file)
    idle = _choice(values, "DOCAGENT_MAIL_IDLE", "yes", ("yes", "no"))
    return MailSettings(
        host=host, port=_int(values, "DOCAGENT_MAIL_PORT",
                             993 if security == "imaps" else 143, low=1, high=65535),
        user=user, security=security, mailbox=mailbox, mark=mark, taken_folder=taken,
        allowed_senders=tuple(senders),
        poll_seconds=_float(values, "DOCAGENT_MAIL_POLL_SECONDS", 60.0, low=1.0),
        idle=idle == "yes", ca_file=ca_file, password=password, password_source=source,
    )


def _child_memory(values: Mapping[str, str]) -> int:
    memory = _bytes(values, "DOCAGENT_CHILD_MEMORY", DEFAULT_CHILD_MEMORY)
    if memory < MIN_CHILD_MEMORY:
        raise ConfigError(f"DOCAGENT_CHILD_MEMORY must be at least {MIN_CHILD_MEMORY // 2**20}M "
                          f"(got {values['DOCAGENT_CHILD_MEMORY'].strip()!r}): tesseract "
                          "alone needs about that much to start")
    return memory


# A systemd unit name and nothing else: health hands these to `systemctl is-active`.
UNIT_NAME = re.compile(r"^[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]*)?"
                       r"\.(service|socket|timer|mount|path|target)$")


def unit_names(raw: str) -> tuple[str, ...]:
    """The allowlist from DOCAGENT_HEALTH_UNITS; a malformed name is a configuration error."""
    names = tuple(n for n in re.split(r"[\s,]+", raw.strip()) if n)
    for name in names:
        if not UNIT_NAME.match(name):
            raise ConfigError(f"DOCAGENT_HEALTH_UNITS: {name!r} is not a unit name such as "
                              "cups.service")
    return names


_PRICE = re.compile(r"^DOCAGENT_PRICE_([A-Z0-9]+)_([A-Z0-9_]+)$")


def _unit_prices(values: Mapping[str, str]) -> tuple[tuple[str, str, float], ...]:
    """`DOCAGENT_PRICE_<SERVICE>_<UNIT>=EUR per unit`; a service name has no underscore."""
    prices = []
    for name in sorted(values):
        match = _PRICE.match(name)
        if match and values[name].strip():
            value = _amount(values, name)
            prices.append((match.group(1).lower(), match.group(2).lower(), value))
    return tuple(prices)


def _amount(values: Mapping[str, str], name: str) -> float:
    raw = values.get(name, "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ConfigError(f"{name} must be an amount in euros such as 12.50 (got {raw!r})")
    return value


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _metrics_addr(raw: str) -> tuple[str, int] | None:
    """`host:port` (or `[::1]:port`, or a bare port on 127.0.0.1); loopback only.

    The metrics say how busy the practice is and when; they carry no patient data, but
    nothing outside the machine needs them: a Prometheus elsewhere reaches them through an
    SSH tunnel or a reverse proxy that the administrator secures.
    """
    raw = raw.strip()
    if not raw:
        return None
    host, _, port = raw.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"DOCAGENT_METRICS_ADDR must look like 127.0.0.1:9108 (got {raw!r})")
    if host not in _LOOPBACK:
        raise ConfigError(f"DOCAGENT_METRICS_ADDR must be a loopback address such as "
                          f"127.0.0.1:{port} (got {raw!r}); reach it from elsewhere through "
                          "an SSH tunnel or a reverse proxy")
    return host, int(port)


def _optional_hour(values: Mapping[str, str], name: str) -> int | None:
    if not values.get(name, "").strip():
        return None
    return _int(values, name, 0, low=0, high=23)
