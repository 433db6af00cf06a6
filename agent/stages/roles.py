"""Who a line is about: the patient, a clinician or place, or someone with the patient.

A name is only the patient's when nothing around it says it is someone else's. These cues are
read by the parser (which labels count) and by the spotter (which role a name found in free
text plays), so each is written once, here, in folded text (`agent.stages.lines`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from agent.stages.lines import Line

# People and places that are never the patient. A line that starts with one of these is about
# the prescriber, the lab or the hospital; a name read there would be theirs.
STAFF = (
    r"dr\.?|docteur|doctor|doct\.?|pr\.?|professeur|prof\.?|prescripteur|prescriber|medecins?"
    r"|physician|laboratoires?|laboratory|labo|lab|hopital|hospital|clinique|clinic|centre"
    r"|center|service|cabinet|referring\s+physician|ordered\s+by|signed\s+by|requested\s+by"
    r"|referred\s+by|authori[sz]ed\s+by|biologistes?|radiologues?|radiologist|consultant"
    r"|etablissement|chu|infirmiere?|nurse"
)
STAFF_WORD = re.compile(rf"(?<![a-z0-9])(?:{STAFF})(?![a-z0-9])")
STAFF_LINE = re.compile(rf"^[^a-z0-9]*(?:{STAFF})(?![a-z0-9])")
# A heading alone on its line, in capitals or ending in a colon ("MÉDECIN TRAITANT",
# "Prescripteur :"), opens a block about someone else: the "Nom :" lines under it are not the
# patient's, until a blank line, a patient heading or STAFF_BLOCK_LINES lines. A doctor's own
# name line ("Dr Pierre MARTIN") or specialty ("Médecin généraliste") is not such a heading.
STAFF_BLOCK_LINES = 4
STAFF_HEADING = re.compile(
    r"^[^a-z0-9]*(?:medecins?|prescripteur|prescriber|physician|referring\s+physician"
    r"|biologistes?|radiologues?|radiologist|consultant|ordered\s+by|requested\s+by"
    r"|referred\s+by|correspondants?)(?:\s+[a-z'\-]+){0,2}\s*:?\s*$"
)
# Lines about someone else the document names with the patient: a parent, a spouse, the
# insured person. Their names and birth dates are theirs.
OTHER_PERSON_LINE = re.compile(
    r"^[^a-z0-9]*(?:mere|pere|conjoint|epoux|assure(?:e|\s*\(\s*e\s*\))?|parents?|tuteur"
    r"|tutrice|representant\s+legal|personne\s+a\s+prevenir|mother|father|spouse|guardian"
    r"|next\s+of\s+kin|insured|policy\s*holder)(?![a-z0-9])"
)
PATIENT_HEADING = re.compile(
    r"^[^a-z0-9]*(?:patiente?|patient\s*\(\s*e\s*\)|identite(?:\s+du\s+patient)?"
    r"|patient\s+(?:information|details|identification))\s*:?\s*$"
)


@dataclass(frozen=True)
class LineContext:
    staff_led: bool  # the line starts with a clinician, a lab or a place
    staff_block: bool  # the line sits under a heading such as "MÉDECIN TRAITANT"
    other_person: bool  # the line is about a parent, a spouse, the insured person

    @property
    def not_patient(self) -> bool:
        return self.staff_led or self.staff_block or self.other_person


def contexts(lines: Sequence[Line]) -> list[LineContext]:
    """Each line's context, in the order of `lines`."""
    out: list[LineContext] = []
    staff_block = 0  # lines left in a block headed "MÉDECIN TRAITANT"
    for line in lines:
        if not line.text.strip():
            staff_block = 0
            out.append(LineContext(False, False, False))
            continue
        staff_block = max(0, staff_block - 1)
        if PATIENT_HEADING.match(line.fold):
            staff_block = 0
        elif STAFF_HEADING.match(line.fold) and (
                line.fold.rstrip().endswith(":") or not any(ch.islower() for ch in line.text)):
            staff_block = STAFF_BLOCK_LINES + 1
        out.append(LineContext(STAFF_LINE.match(line.fold) is not None, staff_block > 0,
                               OTHER_PERSON_LINE.match(line.fold) is not None))
    return out
