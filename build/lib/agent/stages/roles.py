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


# --------------------------------------------------------------------------------------------
# The role of a name found in free text
# --------------------------------------------------------------------------------------------

PATIENT, CLINICIAN, COMPANION, UNKNOWN = "patient", "clinician", "companion", "unknown"

# The civilities written before a person's name, longest first (a regex alternation tries
# them in order): "Mme", "Monsieur", "Mrs", and the bare "M" of "M DUPONT" and of OCR's "M,".
CIVILITIES = ("monsieur", "madame", "mademoiselle", "mme", "mlle", "melle", "mrs", "mr", "ms",
              "miss", "m")
CIVILITY = "|".join(CIVILITIES)
_CIVILITY_SLIPS = {"mne", "nme", "mrne", "mmc", "mrs.", "mlie", "mile", "mrn", "wr", "nr"}


def is_civility(word: str) -> bool:
    """A civility as printed or as OCR misreads it ("Mne", "Mrne" for "Mme"), folded."""
    return word in CIVILITIES or word in _CIVILITY_SLIPS

# A title right before a name makes it a clinician's: "Dr Pierre MARTIN", "Pr. EL IDRISSI",
# "IDE Sophie LEGRAND". Only right before: "à la demande du Dr MARTIN, Mme Fatima EL AMRANI"
# names one clinician and one patient.
CLINICIAN_TITLE = re.compile(
    r"(?<![a-z0-9])(?:dr|docteur|doctor|doct|pr|professeur|prof|ide|iade|ibode"
    r"|sage[\s-]femme|infirmiere?|kinesitherapeute|kine)\.?[\s,:]*$"
)
# Phrases after which the next name written is a clinician's, a companion's or the
# patient's: a cue speaks for the first name after it, so a name met in between ends it.
_CUES: tuple[tuple[str, str, str], ...] = (
    (CLINICIAN, "clinician", r"prescripteur|prescriber|prescrit\s+par|prescribed\s+by"
     r"|medecins?(?:\s+(?:traitant|prescripteur|demandeur|referent|correspondant))?"
     r"|biologistes?|radiologues?|radiologist|interne|chef\s+de\s+(?:clinique|service)"
     r"|(?:signe|valide|redige|dicte|adresse|envoye|demande|effectue|realise|preleve)e?s?"
     r"\s+par"
     r"|de\s+la\s+part\s+du?|referred\s+by|ordered\s+by|requested\s+by|signed\s+by"
     r"|reported\s+by|dictated\s+by|authori[sz]ed\s+by|consultant|physician|gp|nurse"
     # Not "cc:" (a letter is copied to the patient as often as to a doctor), not "cher
     # confrère" (a greeting, which names nobody).
     r"|correspondants?|operateur|anesthesiste"
     r"|cardiologue|pediatre|gynecologue|chirurgien|surgeon"),
    (COMPANION, "companion", r"mere|pere|maman|papa|parents?|accompagnee?s?\s+(?:de|par)"
     r"|(?:epouse|epoux|mari|veuve|veuf|fils|fille|frere|soeur)\s+de|conjointe?"
     r"|tuteur|tutrice|representant\s+legal|personne\s+a\s+prevenir|assuree?"
     r"|mother|father|mum|dad|accompanied\s+by|(?:wife|husband|son|daughter)\s+of"
     r"|guardian|next\s+of\s+kin|insured|policy\s*holder"),
    (PATIENT, "patient", r"patiente?s?|nom\s+(?:du|de\s+la)\s+patiente?|identite|enfant|bebe"
     r"|nourrisson|(?:objet|re|ref|subject)\s*:|concerne|concernant|au\s+sujet\s+de|name"
     r"|nom(?:\s*(?:,|/|-|et|&)?\s*prenoms?)?|prenoms?(?:\s*(?:,|/|-|et|&)?\s*nom)?"
     r"|je\s+(?:vous|te)\s+(?:adresse|confie|envoie|remercie\s+de\s+recevoir)"
     r"|j'\s?ai\s+(?:recu|vu|examine|revu|hospitalise)|(?:vue?|recue?)\s+en\s+consultation"
     r"|(?:votre|notre|mon|ma)\s+(?:jeune\s+)?patiente?|certifie\s+avoir\s+examine"
     r"|atteste\s+avoir\s+examine|certifie\s+que|atteste\s+que|hospitalisation\s+de"
     r"|sejour\s+de|ordonnance\s+(?:pour|de)|i\s+(?:saw|reviewed|examined|have\s+seen|met)"
     r"|we\s+(?:saw|reviewed|examined|admitted)|your\s+patient|our\s+patient"
     r"|thank\s+you\s+for\s+(?:seeing|referring)|certify\s+that|prescription\s+for"),
)
_CUE_RE = re.compile(
    r"(?<![a-z0-9'])(?:" + "|".join(f"(?P<{group}>{pattern})" for _role, group, pattern in _CUES)
    + r")(?![a-z0-9])"
)
# Right after a clinician's name, on its line or starting the next: "Pierre MARTIN, MD",
# "Pierre MARTIN" / "Médecin généraliste".
_SPECIALTY = (r"md|m\.d\.|phd|frcp|mrcgp|ide|iade|ibode|medecin|docteur|generaliste"
              r"|cardiologue|pediatre"
              r"|gynecologue|obstetricien|chirurgien|radiologue|biologiste|dermatologue"
              r"|pneumologue|neurologue|rhumatologue|psychiatre|ophtalmologiste|orl"
              r"|gastro[\s-]?enterologue|endocrinologue|nephrologue|urologue|oncologue"
              r"|anesthesiste|interne|chef\s+de\s+(?:clinique|service)|infirmiere?|sage[\s-]femme"
              r"|kinesitherapeute|consultant|physician|surgeon|gp|general\s+practitioner"
              r"|cardiologist|paediatrician|pediatrician|radiologist|specialist|registrar")
SPECIALTY_WORDS = 4
_CLINICIAN_AFTER = re.compile(rf"\s*[,(\-]\s*(?:{_SPECIALTY})(?![a-z0-9])")
_CLINICIAN_LINE = re.compile(rf"^[^a-z0-9]*(?:{_SPECIALTY})(?![a-z0-9])")
_CUE_AT_END = re.compile(_CUE_RE.pattern + r"[\s:.,\-]*$")
# Right after a name: "Khadija EL AMRANI (mère)", "Jean DUPONT, son père".
_COMPANION_AFTER = re.compile(
    r"\s*[,(\-]\s*(?:(?:sa\s+|son\s+|la\s+|le\s+|his\s+|her\s+)?(?:mere|pere|maman|papa"
    r"|mother|father|parent)"
    # "DUPONT Marie, épouse de M. TAZI" is Marie, the wife of someone: only a spouse word that
    # does not go on to name whose spouse makes the name a companion's ("TAZI Karim, époux").
    r"|(?:son\s+|sa\s+|his\s+|her\s+)?(?:epouse|epoux|mari|conjointe?|wife|husband)"
    r"(?!\s+(?:de|d'|du|of)(?![a-z0-9])))(?![a-z0-9])"
)
# A letter's closing formula: what follows is the signature, a clinician's name.
SIGN_OFF = re.compile(
    r"^[^a-z0-9]*(?:(?:bien\s+|tres\s+)?confraternellement|(?:bien\s+|tres\s+)?cordialement"
    r"|amicalement|respectueusement|veuillez\s+agreer"
    r"|je\s+vous\s+prie\s+(?:d'\s?agreer|de\s+(?:croire|recevoir))"
    r"|bien\s+a\s+vous|avec\s+mes\s+(?:remerciements|salutations|amities)"
    r"|(?:yours\s+)?sincerely|yours\s+(?:faithfully|truly)|(?:kind|best|warm)\s+regards"
    r"|with\s+(?:best\s+|kind\s+)?(?:wishes|regards))(?![a-z0-9])"
)
# A header row of a table: only column labels, a name among them ("NOM  PRÉNOM  NÉ(E) LE
# N° DOSSIER"). The row below holds the values.
_HEADER_NAME = (r"noms?|prenoms?|nom\s+de\s+naissance|nom\s+d'\s?usage|name|surname"
                r"|forenames?|(?:first|last|given|family)\s+names?|patiente?|identite")
_HEADER_BIRTH = (r"nee?\s*(?:[(\[]\s*e\s*[)\]])?\s*le|nee?\s*(?:[(\[]\s*e\s*[)\]])?"
                 r"|date\s+(?:de\s+)?naiss(?:ance|\.)?|naissance|ddn|dob|d\.o\.b\.?"
                 r"|date\s+of\s+birth|birth\s*date")
_HEADER_DATE = r"date(?:\s+(?:de\s+|du\s+|d'\s?)?(?:prelevement|examen|edition))?|prelevement"
_HEADER_OTHER = (r"sexe|sex|gender|age|n\s*°|no\.?|num\.?|numero|dossier|ipp|id|mrn|nip|nhs"
                 r"|adresse|address|tel|telephone|chambre|lit|room|bed|service|ward|unit|examen"
                 r"|code|medecin|prescripteur|doctor|hospital|ins|nir|nss|ref|reference|s")
_HEADER_WORD = re.compile(
    rf"(?<![a-z0-9])(?:(?P<name>{_HEADER_NAME})|(?P<birth>{_HEADER_BIRTH})"
    rf"|(?P<date>{_HEADER_DATE})|{_HEADER_OTHER})(?![a-z0-9])")
TABLE_ROWS = 12  # rows under a header read as its values, up to a blank line
HEADER_UNKNOWN_WORDS = 2


def cue_before(fold: str, start: int, end: int) -> tuple[str, str] | None:
    """(role, cue) of the last cue written in fold[start:end], or None."""
    last: tuple[str, str] | None = None
    for m in _CUE_RE.finditer(fold, start, end):
        last = _role(m)
    return last


def _role(m: re.Match[str]) -> tuple[str, str]:
    return (next(r for r, group, _p in _CUES if m.group(group) is not None),
            " ".join(m.group().strip(" :.,-").split()))


def patient_cue_ends(fold: str) -> list[int]:
    """Where each cue that names the patient ends on the line."""
    return [m.end() for m in _CUE_RE.finditer(fold) if m.group(PATIENT) is not None]


def cue_ending(fold: str) -> tuple[str, str] | None:
    """(role, cue) when the line ends with a cue ("Patient :", "je vous adresse")."""
    m = _CUE_AT_END.search(fold)
    return _role(m) if m else None


def clinician_after(fold: str, end: int, below: Line | None) -> bool:
    """A specialty right after the name, or opening the line below when the name ends its
    line."""
    if _CLINICIAN_AFTER.match(fold, end):
        return True
    # Only a line that is a specialty and nothing else ("Médecin généraliste"), not a field
    # ("Médecin traitant : …") that names someone else.
    return (below is not None and not fold[end:].strip(" ,.") and ":" not in below.fold
            and len(below.fold.split()) <= SPECIALTY_WORDS
            and _CLINICIAN_LINE.match(below.fold) is not None)


def companion_after(fold: str, end: int) -> bool:
    return _COMPANION_AFTER.match(fold, end) is not None


def is_table_header(line: Line) -> bool:
    """Only column labels, at least two of them, one a name's."""
    words = list(_HEADER_WORD.finditer(line.fold))
    if len(words) < 2 or not any(m.group("name") for m in words):
        return False
    # A column we have no word for ("Analyses", "Service demandeur") is allowed beside three
    # labels we know, a name's and a birth date's among them.
    others = re.findall(r"[a-z0-9]+", _HEADER_WORD.sub(" ", line.fold))
    known_birth = any(m.group("birth") for m in words)
    return not others or (len(others) <= HEADER_UNKNOWN_WORDS and len(words) >= 3 and known_birth)


# A row of a list of people: an optional row number, a name's capitalised words, then a date
# ("1 SAINT CLAIR  Stéphane  13/06/1949  CRP"). Two such lines in a row are a list of people
# even when its header is not one we know.
# Each word starts with a capital and is separated from the next by what cannot be in it, so
# the pattern matches in one pass (no backtracking over how to cut the words).
_PERSON_ROW = re.compile(
    r"^\s*(?:\d{1,3}[.)]?\s+)?(?:[A-ZÀ-ÖØ-Þ][^\W\d_'\-]*(?:['\-][^\W\d_]+)*[\s,/]+){2,6}"
    r"(?:[fmhFMH]\s+)?\d{1,2}\s?[/.\-]\s?\d{1,2}\s?[/.\-]\s?\d{2,4}(?!\d)")
PERSON_ROWS = 2


def table_rows(lines: Sequence[Line]) -> dict[int, Line | None]:
    """The value rows of the tables in `lines` (index -> its header row, None for a list of
    people without a header we know): the lines under a header of column labels, up to a
    blank line after them, a line without the dates its header announces, a new page or
    TABLE_ROWS rows; and runs of PERSON_ROWS or more lines that are each a row of a list of
    people."""
    rows: dict[int, Line | None] = {}
    header: Line | None = None
    left = 0
    run: list[Line] = []
    for line in lines:
        person_row = _PERSON_ROW.match(line.text) is not None
        if person_row and (not run or run[-1].index == line.index - 1):
            run.append(line)
        else:
            if len(run) >= PERSON_ROWS:
                rows.update((row.index, None) for row in run)
            run = [line] if person_row else []
        if header is not None and line.page != header.page:
            header = None
        if not line.text.strip():
            # OCR often leaves a blank line between a header and its first row.
            if header is not None and left < TABLE_ROWS:
                header = None
        elif is_table_header(line):
            header, left = line, TABLE_ROWS
        elif header is not None and left:
            if date_columns(header) and not any(ch.isdigit() for ch in line.text):
                header = None  # a row of people has its dates: this is the next table's head
                continue
            rows[line.index] = header
            left -= 1
    if len(run) >= PERSON_ROWS:
        rows.update((row.index, None) for row in run)
    return rows


def date_columns(header: Line) -> list[bool]:
    """For each column of dates in a header row, left to right: is it the birth date's?"""
    return [m.group("birth") is not None for m in _HEADER_WORD.finditer(header.fold)
            if m.group("birth") is not None or m.group("date") is not None]
