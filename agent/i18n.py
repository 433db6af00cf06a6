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

One language a process, set once from the settings (`use`) before anything is rendered. What
is kept rather than shown (a reason's sentence in the sidecar, the database and the audit line)
is rendered inside `english()`, whatever the staff read.

A text that is defined before the language is known (a class's `action`, a table of words) is
marked `N_("...")`, which only marks it for the catalogue, and translated where it is shown
(`translate(text)`). A message with values is an English template with `%(name)s`, formatted
once it is translated.
"""

from __future__ import annotations

import contextlib
import gettext
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path

DOMAIN = "docagent"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("fr", "en")
DEFAULT = "fr"

_active: gettext.NullTranslations = gettext.NullTranslations()
_language = "en"
_CODE = gettext.NullTranslations()  # the code's own English
# Inside `english()`: this context only (a thread, a task), never the process's other threads.
_override: ContextVar[gettext.NullTranslations | None] = ContextVar("i18n_override",
                                                                    default=None)


def use(language: str) -> None:
    """Speak `language` (one of LANGUAGES) from now on, in this process."""
    global _active, _language
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}: one of {', '.join(LANGUAGES)}")
    if language == "en":  # the code's own strings
        _active = _CODE
    else:
        _active = gettext.translation(DOMAIN, LOCALE_DIR, languages=[language])
    _language = language


def language() -> str:
    return _language


@contextlib.contextmanager
def english() -> Iterator[None]:
    """The code's English for what is rendered in this block, in this thread or task only: the
    sentences kept in records, logs and the audit line."""
    token = _override.set(_CODE)
    try:
        yield
    finally:
        _override.reset(token)


def _translations() -> gettext.NullTranslations:
    return _override.get() or _active


def _(message: str) -> str:
    return _translations().gettext(message)


def translate(text: str) -> str:
    """A text marked N_ where it was written (a table's, a class's), in the staff's language;
    `_` itself is kept for literals, which the catalogue is extracted from."""
    return _translations().gettext(text)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translations().ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """`message` where the same English says something else elsewhere (a table's "filed" is
    "classés", a document's is "classé")."""
    return _translations().pgettext(context, message)


class Term(str):
    """A value of a message that is itself said in the staff's language where the message is
    (its English is a msgid, marked N_ where it is written): the state in "it is %(state)s"."""

    __slots__ = ()


def N_(message: str) -> str:
    """Mark a text for the catalogue without translating it yet (it is translated where it is
    shown, with `translate(text)`)."""
    return message


def listing(words: Sequence[str]) -> str:
    """"a, b and c", in the staff's language."""
    if len(words) < 2:
        return "".join(words)
    return _("%(head)s and %(last)s") % {"head": ", ".join(words[:-1]), "last": words[-1]}


def day(iso: str | None) -> str:
    """An ISO date as the staff write it: 12/03/1961 in French, 1961-03-12 in English (ISO,
    which neither a British nor an American reader misreads). Anything else is given back as
    it is."""
    text = str(iso or "")
    parts = text.split("-")
    if [len(p) for p in parts] != [4, 2, 2] or not all(p.isdigit() for p in parts):
        return text
    return _("%(year)s-%(month)s-%(day)s") % dict(zip(("year", "month", "day"), parts,
                                                       strict=True))


def decimal(text: str) -> str:
    """A number written with a decimal point ("0.50") as the staff write it: "0,50" in
    French (the mark is the catalogue's, so `english()` keeps the point)."""
    mark = pgettext("decimal mark", ".")
    return text if mark == "." else text.replace(".", mark)
