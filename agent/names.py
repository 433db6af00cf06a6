"""Name keys: how two spellings of one name are made equal, and nothing more.

Accents are stripped *before* anything else is removed, so "Hélène" becomes "helene" and not
"hlne"; hyphens, apostrophes and runs of spaces all become one space, so "Martin-Dubois",
"MARTIN DUBOIS" and "martin  dubois" share a key.
"""

from __future__ import annotations

import re
import unicodedata

_NOT_LETTER = re.compile(r"[^a-z0-9]+")
# Letters that do not decompose into a base letter plus an accent.
_SPECIAL = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l"})


def fold(text: str) -> str:
    """Lower case, accents removed, every run of non-letters turned into one space."""
    lowered = text.casefold().translate(_SPECIAL)
    decomposed = unicodedata.normalize("NFKD", lowered)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NOT_LETTER.sub(" ", bare).strip()


def name_key(text: str) -> str:
    """The key stored and searched: folded, with hyphen/space differences gone."""
    return fold(text).replace(" ", "")


def is_initial(first_name: str) -> bool:
    """True for "J", "J.", "J.-P." — a first name that is only initials identifies nobody."""
    words = fold(first_name).split()
    return bool(words) and all(len(w) == 1 for w in words)
