"""Name keys: how two spellings of one name are made equal; and which words are particles,
for the parser that reads a name and the keys that compare it alike.

Accents are stripped *before* anything else is removed, so "Hélène" becomes "helene" and not
"hlne"; hyphens, apostrophes and runs of spaces all become one space, so "Martin-Dubois",
"MARTIN DUBOIS" and "martin  dubois" share a key.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_NOT_LETTER = re.compile(r"[^a-z0-9]+")
# Letters that do not decompose into a base letter plus an accent.
_SPECIAL = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l"})


@lru_cache(maxsize=65536)  # the same few thousand names are folded over and over
def fold(text: str) -> str:
    """Lower case, accents removed, every run of non-letters turned into one space."""
    lowered = text.casefold().translate(_SPECIAL)
    decomposed = unicodedata.normalize("NFKD", lowered)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NOT_LETTER.sub(" ", bare).strip()


def name_key(text: str) -> str:
    """The key stored and searched: folded, with hyphen/space differences gone."""
    return fold(text).replace(" ", "")


def word_keys(*names: str) -> set[str]:
    """The key of each word of these names: "EL AMRANI Fatima" -> {"el", "amrani", "fatima"};
    how two writings of one person are compared word by word, in any order."""
    return {k for name in names for w in fold(name).split() if (k := name_key(w))}


def is_initial(first_name: str) -> bool:
    """True for "J", "J.", "J.-P." — a first name that is only initials identifies nobody."""
    words = fold(first_name).split()
    return bool(words) and all(len(w) == 1 for w in words)


# Particles of the family names a French practice meets: French (de, du, le, saint...),
# Arabic and Berber (el, ben, ait, ould...), Spanish and Portuguese (del, dos, da...), Dutch
# and German (van, von, der...). Whether a particle is written is not a spelling detail:
# "EL AMRANI" and "AMRANI", "BEN ALI" and "ALI" may be two families. So a name read without
# its particle (or with one the record lacks) never *agrees*: the key without particles is
# only a search key, for suggestions a person confirms. The parser reads the same words as
# the start of a surname ("Mohamed Ould SALEM" is Mohamed of the Ould Salem family), so what
# it reads as the surname is what the matcher compares, particles and all.
# "Abou"/"Abu" are not in the list: as often a first name (Abou DIALLO) as the start of a
# family name, where they are mostly written joined (Aboutaleb); and a name such as
# "Abou Khalil" is still found by each of its parts.
PARTICLES = frozenset({
    "de", "du", "des", "la", "le", "les", "el", "al", "ben", "bent", "bin", "ibn", "ait",
    "ou", "bou", "oulad", "ould", "van", "von", "der", "den", "da", "di", "dos", "das",
    "del", "della", "saint", "st", "sainte", "ste",
})
# Particles that, opening a name, are as likely a first name (Ben Smith, Al Martin) as the
# start of a surname (Ben Ali): the parser does not take them for the surname's start there.
FIRST_NAME_PARTICLES = frozenset({"ben", "bin", "al", "ou"})
# The elided articles, written joined to the next word: "d'Alembert", "L'Hermite". `fold`
# splits them off, so the keys know them as words; the parser keeps "d'Alembert" one word,
# and a "D." standing alone there is a middle initial, not a particle.
ELIDED_PARTICLES = frozenset({"d", "l"})
_KEY_PARTICLES = PARTICLES | ELIDED_PARTICLES
MIN_PART_LETTERS = 3


def loose_keys(text: str) -> set[str]:
    """Search-only keys: the name without its particles, and each part of a compound name.

    "El Amrani" -> {"amrani"}; "Martin-Dubois" -> {"martin", "dubois"}; "de la Fontaine" ->
    {"fontaine"}. The exact key (`name_key`) is not included. These keys find a record for a
    person to confirm; they never make a name agree.
    """
    words = fold(text).split()
    meaningful = [w for w in words if w not in _KEY_PARTICLES]
    keys: set[str] = set()
    if meaningful and len(meaningful) < len(words):
        keys.add("".join(meaningful))
    if len(meaningful) > 1:
        keys.update(w for w in meaningful if len(w) >= MIN_PART_LETTERS)
    keys.discard(name_key(text))
    keys.discard("")
    return keys


def record_keys(last_name: str, birth_name: str | None = None,
                usage_name: str | None = None) -> set[tuple[str, str]]:
    """Every (key, kind) a patient is found by: "last", "birth", "usage" keys can agree;
    "loose" keys (particles dropped, parts of compound names) only find."""
    keys: set[tuple[str, str]] = set()
    for kind, name in (("last", last_name), ("birth", birth_name), ("usage", usage_name)):
        if name and name_key(name):
            keys.add((name_key(name), kind))
            keys.update((k, "loose") for k in loose_keys(name))
    exact = {k for k, kind in keys if kind != "loose"}
    return {(k, kind) for k, kind in keys if kind != "loose" or k not in exact}
