"""Evidence in words: which fields of a record agreed with what was read, which differed, which
had nothing to be compared with, and the notes that say why, in the staff's language.

The evidence is kept as data, in English (field names, and notes as sentences: the sidecar,
the database, the audit line); this module is the one that says it to a person, for every place
that shows it (Telegram messages, `docagent review list`). `agent.stages.match` writes each note
from a template here (`note`), so that a note kept in English can be said again in the staff's
language (`say_note`), in records written before there was any other language too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from agent.disclosure import minimal
from agent.i18n import N_, _, listing, ngettext, translate

# The fields a comparison names, as the staff call them.
FIELDS = {
    "last_name": N_("last name"),
    "first_name": N_("first name"),
    "birth_name": N_("birth name"),
    "usage_name": N_("usage name"),
    "birth_date": N_("birth date"),
    "age": N_("age"),
}
INITIAL_ONLY = "first_name (initial only)"  # a "missing" entry: only an initial was read

# The notes, as `agent.stages.match` writes them (English, with %(name)s for the values).
BIRTH_NAME = N_("last name agrees with the birth name on record")
USAGE_NAME = N_("last name agrees with the usage (married) name on record")
PARTICLE = N_("last name differs only by a particle or a part of a compound name")
DAY_MONTH = N_("birth date has day and month exchanged")
READ_DAY_FIRST = N_("birth date %(date)s read day first (UK)")
READ_MONTH_FIRST = N_("birth date %(date)s read month first (US)")
BOTH_READINGS = N_("birth date %(date)s reads two ways and namesakes were born on each: it "
                   "decides nothing")
NEITHER_READING = N_("birth date %(date)s reads two ways and neither is on record")
AGE = N_("age %(age)s on the document, %(years)s from the record")
SWAPPED = N_("names agree only in the other order (first name read as last name)")
AFTER_LABEL = N_("names read after a label on page %(page)s")
AFTER_TITLE = N_("names read after a title, with a birth date, on page %(page)s")
IN_TABLE = N_("names read in a table row, under its header, on page %(page)s")
SPOTTED = N_("names found in the text, with nothing saying whose they are, on page %(page)s")
AFTER_CUE = N_("names found in the text after «%(cue)s» on page %(page)s")
AFTER_CIVILITY = N_("names found in the text after a civility on page %(page)s")
NOTES = (BIRTH_NAME, USAGE_NAME, PARTICLE, DAY_MONTH, READ_DAY_FIRST, READ_MONTH_FIRST,
         BOTH_READINGS, NEITHER_READING, AGE, SWAPPED, AFTER_LABEL, AFTER_TITLE, IN_TABLE,
         SPOTTED, AFTER_CUE, AFTER_CIVILITY)
# A value that names the patient, kept out of a chat under DOCAGENT_PHI=minimal.
IDENTIFYING = ("date",)


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"%\((\w+)\)s", template)  # text, name, text, name, ..., text
    return re.compile("".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)"
                              for i, part in enumerate(parts)) + r"\Z", re.DOTALL)


_PATTERNS = tuple((template, _pattern(template)) for template in NOTES)


def note(template: str, **values: object) -> str:
    """A note as it is kept: the template's English with its values."""
    return template % values


def say_note(kept: str, phi: str) -> str:
    """A kept note in the staff's language; one this version did not write, as it is."""
    for template, pattern in _PATTERNS:
        found = pattern.match(kept)
        if found:
            values = found.groupdict()
            if minimal(phi):
                values.update({k: _("(hidden)") for k in IDENTIFYING if k in values})
            return translate(template) % values
    return kept


def field(name: str) -> str:
    return translate(FIELDS[name]) if name in FIELDS else name.replace("_", " ")


def fields(names: Sequence[str]) -> str:
    """"last name, first name and birth date"."""
    return listing([field(n) for n in names])


def in_words(evidence: Mapping[str, Sequence[str]] | None, phi: str) -> str:
    """"last name and first name agree; birth date differs; ..." ("" for no evidence)."""
    evidence = evidence or {}
    agree = list(evidence.get("agree") or [])
    disagree = list(evidence.get("disagree") or [])
    missing = [m for m in evidence.get("missing") or [] if m != INITIAL_ONLY]
    parts = []
    if agree:
        parts.append(ngettext("%(fields)s agrees", "%(fields)s agree", len(agree))
                     % {"fields": fields(agree)})
    if disagree:
        parts.append(ngettext("%(fields)s differs", "%(fields)s differ", len(disagree))
                     % {"fields": fields(disagree)})
    if INITIAL_ONLY in (evidence.get("missing") or []):
        parts.append(_("the first name is only an initial"))
    if missing:
        parts.append(_("%(fields)s: nothing to compare") % {"fields": fields(missing)})
    parts.extend(say_note(str(n), phi) for n in evidence.get("notes") or [])
    return _("; ").join(parts)


def sentence(text: str) -> str:
    """A phrase made the start of a sentence: "Last name and first name agree"."""
    return text[:1].upper() + text[1:]
