"""A document's text as lines: cleaned, and folded so that patterns are written once.

OCR and text layers spell one apostrophe, hyphen or space many ways, and print names in any
case with or without accents. Each line is kept twice: as printed (`text`, what gets returned)
and folded (`fold`: lower case, accents removed, one character for one character), so a
position found by a pattern in the folded copy is a position in the printed line.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

SNIPPET_CHARS = 120


# OCR and PDF text layers spell one apostrophe, hyphen or space many ways; names and labels
# are matched with one of each.
_TRANSLATE = str.maketrans({
    "\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'", "`": "'", "\u2032": "'",
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u00ad": "",
    "\t": " ", "\u00a0": " ", "\u202f": " ", "\u2007": " ", "\u2009": " ", "\u200a": " ",
    "\u2002": " ", "\u2003": " ", "\u3000": " ",
})


# Quotes and bars OCR puts before a line's first word ("‘Nom : SSATADI", "| NOM"): blanked,
# so a label there still opens its line (and positions stay where they were).
_LEADING_NOISE = re.compile(r"^[\s'\"«»|_~]+")


def clean(raw: str) -> str:
    """The line with one spelling of each apostrophe, hyphen and space, no control
    characters, and no OCR specks before its first word."""
    text = unicodedata.normalize("NFC", raw).translate(_TRANSLATE)
    text = "".join(ch if ch.isprintable() else " " for ch in text).rstrip()
    return _LEADING_NOISE.sub(lambda m: " " * len(m.group()), text)


@lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    base = unicodedata.normalize("NFD", ch)[:1] or ch
    low = base.lower()
    # A few characters lower-case to two ("İ"); keeping one keeps positions aligned.
    return low if len(low) == 1 else base


def fold_aligned(text: str) -> str:
    """Lower case, accents removed, the same length as `text`."""
    return "".join(_fold_char(ch) for ch in text)


def letters_key(text: str) -> str:
    """Letters only, folded: how two spellings of one name are compared."""
    return "".join(ch for ch in fold_aligned(text).replace("œ", "oe") if ch.isalpha())


@dataclass(frozen=True)
class Line:
    index: int  # position in the whole document, for "same line" and "next line"
    page: int
    text: str
    fold: str


def split_lines(pages: Sequence[str]) -> list[Line]:
    """Every line of every page (page numbers from 1), in reading order."""
    out: list[Line] = []
    for page_number, page in enumerate(pages, start=1):
        for raw in str(page).splitlines():
            text = clean(raw)
            out.append(Line(len(out), page_number, text, fold_aligned(text)))
    return out


def snippet(line: Line, at: int = 0) -> str:
    """The line, whitespace collapsed, at most SNIPPET_CHARS around position `at`."""
    text = " ".join(line.text.split())
    if len(text) <= SNIPPET_CHARS:
        return text
    # A long line (OCR merging columns) is cut around what was read, not just at its start.
    start = len(" ".join(line.text[:at].split()))
    start = max(0, min(start - 30, len(text) - SNIPPET_CHARS))
    return text[start:start + SNIPPET_CHARS].strip()
