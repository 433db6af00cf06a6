"""Whose document this is, as the text says it: the labels first, then the directory's people.

`parse` reads what labels and titles state ("Nom : DUPONT", "Mme DUPONT Marie, née le …");
`spot` finds where the directory's people are named and the part each plays. When no label
gave a whole name, the person found standing as the patient gives it (one named with a patient
cue before one found with none); a last name read by a label keeps the person of that name.
Nothing is decided here: every person found goes with the fields, and the matcher's rules
(a rival patient, the same name signing as a clinician, a name found with no cue needing its
birth date) decide.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from agent.names import is_initial, name_key, word_keys
from agent.patients import name_pairs
from agent.stages import roles, spot
from agent.stages.fields import NamedPerson, ParsedFields
from agent.stages.lines import split_lines
from agent.stages.parse import parse_lines
from agent.store import Store


def read_fields(store: Store, pages: Sequence[str]) -> ParsedFields:
    """The fields of each page's text (page 1 first), with the directory's people in it."""
    lines = split_lines(pages)
    fields = parse_lines(lines)
    people, hints = spot.find(name_pairs(store), lines)
    return dataclasses.replace(choose(fields, people), hints=hints)


def _split_by_the_directory(fields: ParsedFields) -> ParsedFields:
    """A label's name cut where the directory cuts it: "Nom / Prénom : GARCIA LOPEZ /
    Stéphane" is read by the label as GARCIA, LOPEZ; the person found on that line as the
    patient, whose words are all of those read, says GARCIA LOPEZ, Stéphane."""
    last, first = fields.last_name, fields.first_name
    if last is None or first is None:
        return fields
    read = word_keys(last.value, first.value)
    for person in fields.people:
        if (person.role == roles.PATIENT and person.last.page == last.page
                and person.last.snippet == last.snippet
                and read < word_keys(person.last.value, person.first.value)):
            return dataclasses.replace(fields, last_name=person.last, first_name=person.first)
    return fields


def choose(fields: ParsedFields, people: Sequence[NamedPerson]) -> ParsedFields:
    """The fields with `people`, and their names from one of them when no label named the
    patient whole."""
    fields = dataclasses.replace(fields, people=(*fields.people, *people))
    first = fields.first_name
    if fields.last_name is not None and first is not None and not is_initial(first.value):
        return _split_by_the_directory(fields)
    standing = [p for p in fields.people if p.role == roles.PATIENT] or \
        [p for p in fields.people if p.role == roles.UNKNOWN]
    if fields.last_name is not None:
        # "Nom / Prénom : NACIRI / Hamza", the label read as a last name alone.
        read = name_key(fields.last_name.value)
        standing = [p for p in standing if name_key(p.last.value) == read] or standing
    if not standing:
        return fields
    chosen = standing[0]
    keep_birth_name = fields.last_name is not None and \
        name_key(fields.last_name.value) == name_key(chosen.last.value)
    return dataclasses.replace(fields, last_name=chosen.last, first_name=chosen.first,
                               birth_name=chosen.birth_name or
                               (fields.birth_name if keep_birth_name else None),
                               birth_date=fields.birth_date or chosen.birth)
