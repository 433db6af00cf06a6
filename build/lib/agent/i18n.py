"""The staff's language: French or English (`DOCAGENT_LANG`), from a gettext catalogue.

The English text in the code is the key (`_("Filed")`, `ngettext("%(n)d page", "%(n)d pages",
n)`); `agent/locale/fr/LC_MESSAGES/docagent.po` holds the French and is compiled by `msgfmt` to
`docagent.mo` beside it, which is what runs (stdlib `gettext`, nothing to install).
`tests/test_i18n.py` fails when the `.mo` is not the `.po`'s, or when a string marked in the code
has no French.

French is the default: docagent's users are francophone practices and the staff who decide on
the phone read French; an English-reading practice sets `DOCAGENT_LANG=en`.

What is translated is what staff read: Telegram messages, buttons and answers, the digest, the
CLI's human output, the `message` and `action` of reason files. What is not: log lines and
audit lines (read by whoever operates the server, and searched for as they are), and every JSON
key and machine value.

One language a process, set once from the settings (`use`) before anything is rendered.
"""

from __future__ import annotations

import gettext
from pathlib import Path

DOMAIN = "docagent"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("fr", "en")
DEFAULT = "fr"

_active: gettext.NullTranslations = gettext.NullTranslations()
_language = "en"


def use(language: str) -> None:
    """Speak `language` (one of LANGUAGES) from now on, in this process."""
    global _active, _language
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}: one of {', '.join(LANGUAGES)}")
    if language == "en":  # the code's own strings
        _active = gettext.NullTranslations()
    else:
        _active = gettext.translation(DOMAIN, LOCALE_DIR, languages=[language])
    _language = language


def language() -> str:
    return _language


def _(message: str) -> str:
    return _active.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _active.ngettext(singular, plural, n)
