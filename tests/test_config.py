"""Configuration: precedence, refusals with exit 2, and the `.env` permission rule."""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import config
from agent.errors import ConfigError
from tests import uids
from tests.conftest import DOCAGENT, base_env


def test_defaults_are_the_documented_ones(tmp_path: Path) -> None:
    s = config.load(env={}, cwd=tmp_path)
    assert s.home == tmp_path / "var"
    assert s.log_dir == tmp_path / "logs"
    assert s.ocr_langs == "fra+eng"
    assert s.watch == "inotify" and s.phi == "full"
    assert s.workers == (os.cpu_count() or 1)
    assert s.telegram_token is None
    assert s.telegram_api_base_url == "https://api.telegram.org"
    assert s.min_name_confidence == 70.0
    assert config.load(env={"DOCAGENT_MIN_NAME_CONFIDENCE": "85"},
                       cwd=tmp_path).min_name_confidence == 85.0


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DOCAGENT_WORKERS=3\nDOCAGENT_OCR_DPI=200\n")
    env_file.chmod(0o600)
    s = config.load(env={"DOCAGENT_WORKERS": "5"}, cwd=tmp_path)
    assert s.workers == 5  # from the environment
    assert s.ocr_dpi == 200  # from the file
    assert s.env_file == env_file


def test_credential_gives_the_token_when_nothing_else_does(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "telegram-token").write_text("123:abc\n")
    (creds / "telegram-token").chmod(0o640)
    s = config.load(env={"CREDENTIALS_DIRECTORY": str(creds)}, cwd=tmp_path)
    assert s.telegram_token == "123:abc"
    assert "123:abc" not in repr(s)  # the token never shows in a repr (and so in a log)


@pytest.mark.parametrize(("name", "value"), [
    ("DOCAGENT_WORKERS", "many"),
    ("DOCAGENT_WORKERS", "0"),
    ("DOCAGENT_OCR_DPI", "10"),
    ("DOCAGENT_MAX_BYTES", "lots"),
    ("DOCAGENT_WATCH", "fanotify"),
    ("DOCAGENT_PHI", "some"),
    ("DOCAGENT_OCR_LANGS", "fra;rm -rf"),
    ("TELEGRAM_CHAT_IDS", "12,abc"),
    ("DOCAGENT_STABLE_SECONDS", "nan"),
    ("TELEGRAM_API_BASE_URL", "ftp://x"),
    ("DOCAGENT_MIN_NAME_CONFIDENCE", "101"),
    ("DOCAGENT_MIN_NAME_CONFIDENCE", "high"),
])
def test_bad_value_names_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        config.load(env={name: value}, cwd=tmp_path)


def test_sizes_accept_units(tmp_path: Path) -> None:
    assert config.load(env={"DOCAGENT_MAX_BYTES": "50M"}, cwd=tmp_path).max_bytes == 50 * 2**20
    assert config.load(env={"DOCAGENT_MAX_BYTES": "1024"}, cwd=tmp_path).max_bytes == 1024


def test_readable_dotenv_is_refused_with_exit_2_and_one_line(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("TELEGRAM_BOT_TOKEN=123:secret\n")
    env_file.chmod(0o644)
    env = base_env(tmp_path)
    import subprocess

    done = subprocess.run([DOCAGENT, "status"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(env_file) in lines[0] and f"chmod 600 {env_file}" in lines[0]
    assert "Traceback" not in done.stderr and "secret" not in done.stderr

    env_file.chmod(0o600)
    done = subprocess.run([DOCAGENT, "status"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr


def test_bad_value_from_the_shell_exits_2(tmp_path: Path) -> None:
    import subprocess

    env = base_env(tmp_path) | {"DOCAGENT_WORKERS": "lots"}
    done = subprocess.run([DOCAGENT, "status"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "DOCAGENT_WORKERS" in done.stderr


def test_bad_usage_exits_2_without_traceback(tmp_path: Path) -> None:
    import subprocess

    env = base_env(tmp_path)
    for argv in (["frobnicate"], ["review", "resolve"], ["process", str(tmp_path / "nope.pdf")]):
        done = subprocess.run([DOCAGENT, *argv], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=60)
        assert done.returncode == 2, (argv, done.stderr)
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.fixture
def other_user() -> Iterator[int]:
    """A real account that is neither us nor root, removed afterwards."""
    uids.require()
    with uids.user("dagt") as made:
        yield made.uid


def test_a_dotenv_owned_by_another_user_is_refused(other_user: int, tmp_path: Path) -> None:
    """Whoever owns the settings chooses the spool and where messages go: only we or root."""
    env_file = tmp_path / ".env"
    env_file.write_text(f"DOCAGENT_HOME={tmp_path / 'theirs'}\n")
    env_file.chmod(0o600)
    os.chown(env_file, other_user, -1)
    env = base_env(tmp_path)
    del env["DOCAGENT_HOME"]  # let the file choose it, as an attacker's file would
    done = subprocess.run([DOCAGENT, "status"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stdout
    [line] = done.stderr.strip().splitlines()
    owner = pwd.getpwuid(other_user).pw_name
    assert f"{env_file} belongs to {owner}, not to root" in line
    assert f"chown root {env_file}" in line and "Traceback" not in done.stderr
    assert not (tmp_path / "theirs").exists()

    os.chown(env_file, 0, -1)
    done = subprocess.run([DOCAGENT, "status"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "theirs" / "state.db").exists()


