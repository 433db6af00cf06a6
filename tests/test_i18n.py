"""The staff's language: the French catalogue is the code's, whole, and compiled as it runs.

Checked with GNU gettext's own tools (msgfmt, xgettext, msgcmp), not by re-reading the files
by hand: a string marked in the code without its French, a `.mo` left behind its `.po`, or a
marked string that cannot be extracted (an f-string) fails here.
"""

from __future__ import annotations

import ast
import gettext
import subprocess
from pathlib import Path

import pytest

from agent import config, i18n

ROOT = Path(__file__).resolve().parents[1]
PO = i18n.LOCALE_DIR / "fr" / "LC_MESSAGES" / f"{i18n.DOMAIN}.po"
MO = PO.with_suffix(".mo")
# function -> how many leading string arguments it takes (`translate` takes a variable: a
# text marked N_ where it was written)
MARKERS = {"_": 1, "N_": 1, "ngettext": 2, "pgettext": 2}
KEYWORDS = ["--keyword=_", "--keyword=N_", "--keyword=ngettext:1,2", "--keyword=pgettext:1c,2"]


def _sources() -> list[Path]:
    return sorted((ROOT / "agent").rglob("*.py"))


def _catalogue(mo: Path) -> dict[object, str]:
    with mo.open("rb") as file:
        return dict(gettext.GNUTranslations(file)._catalog)  # type: ignore[attr-defined]


def test_the_compiled_catalogue_is_the_po_file(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.mo"
    subprocess.run(["msgfmt", "--check", "-o", str(fresh), str(PO)], check=True)
    assert _catalogue(MO) == _catalogue(fresh), (
        f"{MO.relative_to(ROOT)} is not {PO.relative_to(ROOT)} compiled: run "
        f"msgfmt -o {MO.relative_to(ROOT)} {PO.relative_to(ROOT)}")


def test_every_marked_string_has_its_french(tmp_path: Path) -> None:
    pot = tmp_path / "docagent.pot"
    subprocess.run(["xgettext", "--language=Python", "--from-code=UTF-8", *KEYWORDS,
                    "-o", str(pot), *map(str, _sources())], check=True, cwd=ROOT)
    done = subprocess.run(["msgcmp", str(PO), str(pot)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_marked_strings_are_literals() -> None:
    """`_(f"...")` would be looked up with its values in it, and never found."""
    wrong = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in MARKERS:
                args = node.args[:MARKERS[node.func.id]]
                if not all(isinstance(a, ast.Constant) and isinstance(a.value, str)
                           for a in args):
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not wrong, f"marked strings that are not literals: {wrong}"


def test_french_is_the_default_and_english_is_asked_for() -> None:
    assert config.load(env={}, cwd=ROOT).lang == "fr"
    assert config.load(env={"DOCAGENT_LANG": "en"}, cwd=ROOT).lang == "en"
    with pytest.raises(config.ConfigError):
        config.load(env={"DOCAGENT_LANG": "de"}, cwd=ROOT)


def test_plurals_follow_french_rules() -> None:
    try:
        i18n.use("fr")
        # French: 0 and 1 are singular, as in "0 page".
        assert [i18n.ngettext("%(n)d page", "%(n)d pages", n) % {"n": n} for n in (0, 1, 2)] \
            == ["0 page", "1 page", "2 pages"]
        i18n.use("en")
        assert [i18n.ngettext("%(n)d page", "%(n)d pages", n) % {"n": n} for n in (0, 1, 2)] \
            == ["0 pages", "1 page", "2 pages"]
    finally:
        i18n.use("en")
