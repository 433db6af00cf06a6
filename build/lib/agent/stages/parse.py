"""What a document's text says: whose it is, when it was written, what kind of document it is.

A misread name can file a document under the wrong person, so every rule here only reads what
the text states outright: a value after a label ("Nom :", "DOB"), or a name after a title
("Mme", "Mr") that a birth date follows. A value that does not look right is dropped, never
repaired, and readings that disagree cancel out (two different patients in one PDF read as
no patient). None is always an acceptable answer; the matcher and a person deal with it.

Labels, month names and keywords are written once, in lower case without accents, and matched
against a "folded" copy of each line: same length, one character for one character, lower case,
accents removed. A position in the folded copy is therefore a position in the original line,
whose letters (accents and case as printed) are what gets returned.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from agent.names import FIRST_NAME_PARTICLES, PARTICLES
from agent.stages import roles
from agent.stages.dates import (
    DATE_RE,
    TODAY,
    ages_on,
    birth_found,
    date_at,
    date_readings,
    judged_on,
    narrowed,
    to_date,
    valid_birth_date,
)
from agent.stages.doctype import document_type
from agent.stages.fields import Found, NamedPerson, ParsedFields, found_at
from agent.stages.lines import Line, fold_aligned, letters_key, split_lines
from agent.stages.roles import STAFF_WORD

MAX_NAME_WORDS = 8


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------

# (kind, rule, readable anywhere on a line, pattern on folded text). Order matters: at one
# position the first pattern that fits wins, so longer labels come before their prefixes
# ("date de naissance" before "date", "nom de naissance" before "nom").
_LABEL_SPECS: tuple[tuple[str, str, bool, str], ...] = (
    ("dob", "label:date-naissance", True,
     r"date\s*de\s+naissance|date\s+de\s+naiss\.?|date\s+naissance|date\s+naiss\.?"),
    ("dob", "label:dob", True, r"date\s+of\s+birth|birth\s*date|d\.\s?o\.\s?b\.?|dob"),
    ("dob", "label:ddn", True, r"d\.\s?d\.\s?n\.?|ddn|d\.\s?n\."),
    ("dob", "label:born", True, r"born(?:\s+on)?"),
    ("dob", "label:ne-le", True,
     r"nee?\s*[(\[{]\s*e\s*[)\]}]\s*le|nee?\s+le"
     r"|nee?(?:\s*[(\[{]\s*e\s*[)\]}])?\s+(?:a|au|en)\s+[a-z' \-]{1,40}?,?\s+le"),
    # "née MARTIN le 03.04.1975": a birth date and, in passing, the maiden name.
    ("dob-nee", "label:nee", True,
     r"nee\s+(?P<neename>(?!(?:a|au|en|le)\s)[a-z][a-z' \-]{0,40}?),?\s+le"),
    ("dob", "label:ne-le", True, r"nee?\s*[(\[{]\s*e\s*[)\]}]"),
    ("nee", "label:nee", True, r"nee?"),
    # Not a bare "EP": in a report that is far more often "embolie pulmonaire".
    ("epouse", "label:epouse", True, r"epouse|epse|ep\."),
    ("usage", "label:nom-usage", False,
     r"nom\s+d'\s?usage|nom\s+usuel|nom\s+marital|nom\s+d'\s?epouse|nom\s+epouse"
     r"|nom\s+utilise|married\s+name"),
    ("birthname", "label:nom-naissance", False,
     r"nom\s+de\s+naissance|nom\s+de\s+naiss\.?|nom\s+de\s+jeune\s+fille|nom\s+patronymique"
     r"|birth\s+name|maiden\s+name"),
    ("full-lf", "label:nom-prenom", False,
     r"nom\s*(?:,|/|-|et|&)?\s*prenoms?(?:\s*\(\s*s\s*\))?"
     r"(?:\s+(?:du|de\s+la)\s+patiente?)?"),
    ("full-fl", "label:prenom-nom", False, r"prenoms?\s*(?:,|/|-|et|&)?\s*nom"),
    ("full", "label:patient", False,
     r"nom\s+(?:du|de\s+la)\s+patiente?|nom\s+patiente?"
     r"|identite\s+(?:du|de\s+la)\s+patiente?|identite"
     r"|patient\s*\(\s*e\s*\)|patient\s*/\s*e|patiente?(?:'s)?\s+name|patiente?"),
    ("full", "label:name", False, r"full\s+name|name\s+of\s+(?:the\s+)?patient|name"),
    ("last", "label:nom", False, r"nom\s+de\s+famille|nom|last\s*name|surname|family\s+name"),
    ("first", "label:prenom", False,
     r"prenoms?(?:\s*\(\s*s\s*\))?|first\s*names?|given\s+names?|forenames?"),
    ("doc1", "label:prelevement", True,
     r"date\s+(?:du|de)\s+prelevement|date\s+prelevement|prelevee?s?\s+le|prelevement\s+du"),
    ("doc1", "label:examen", True,
     r"date\s+de\s+l'\s?examen|date\s+d'\s?examen|date\s+examen|examen\s+du"
     r"|date\s+of\s+(?:exam(?:ination)?|service|visit|procedure)|exam(?:ination)?\s+date"),
    ("doc1", "label:compte-rendu", True,
     r"date\s+du\s+(?:compte[\s-]rendu|cr)|date\s+de\s+(?:la\s+)?consultation"
     r"|consultation\s+du"),
    ("doc1", "label:report-date", True,
     r"date\s+of\s+report|report(?:ed)?\s+date|date\s+reported|reported(?:\s+on)?"),
    ("doc1", "label:collected", True,
     r"collect(?:ed|ion)\s+(?:on|date)|date\s+collected|collected|specimen\s+date"
     r"|sample\s+date"),
    ("doc2", "label:edite-le", True, r"(?:edite|imprime|valide|signe|redige|etabli)e?s?\s+le"),
    ("doc2", "label:fait-le", True, r"fait\s+a\s+[a-z' \-]{1,30}?,?\s+le|fait\s+le"),
    ("doc2", "label:date", False, r"dated|date\s+d'\s?edition|date"),
)
_LABEL_RE = re.compile(
    r"(?<![a-z0-9'])(?:"
    + "|".join(f"(?P<L{i}>{spec[3]})" for i, spec in enumerate(_LABEL_SPECS))
    + r")(?![a-z0-9])"
)
_SEPARATOR = re.compile(r"\s*(?:\.?\s*[:;=]+|\.(?=\s|$)|-(?=\s))")
_NAME_KINDS = frozenset({"usage", "birthname", "full-lf", "full-fl", "full", "last", "first"})

# "Nom du médecin", "Name of referring physician": someone else's name field.
_OTHER_NAME_FIELD = re.compile(r"\s+(?:du|de|des|d'|of)\s*(?:la\s+|l'\s?|the\s+)?(?P<w>\w)")
# "Test name:", "Doctor's name:", "Type de patient :": a field about something else.
_OTHER_NAME_BEFORE = re.compile(
    r"(?:^|[^a-z0-9])(?:test|drug|product|brand|file|user|company|practice|hospital|doctor"
    r"|gp|consultant|clinic|lab|laboratory|specimen|sample|exam|examination|procedure|study"
    r"|physician|provider|facility|insurer|insurance|plan|employer|school|contact|kin"
    r"|emergency|father|mother|spouse|partner|parent|sender|recipient|medication|medicine"
    r"|type|categorie|category|statut|status|n°|no|numero|number|num|code|id|etiquette"
    r"|dossier|transport|regime|mode|classe|groupe)(?:'s)?(?:\s+(?:de|du|des|d'|of))?\s*$"
)



@dataclass(frozen=True)
class _Label:
    kind: str
    rule: str
    start: int
    end: int
    value_start: int
    value_end: int
    has_separator: bool
    nee_name: tuple[int, int] | None  # span of the maiden name inside "née X le"


def _labels(line: Line, staff_context: bool, other_person: bool = False) -> list[_Label]:
    """The labels on a line that are taken as labels, each with the span of its value.

    A name label with no colon counts only at the start of the line (or of a column), or after
    another label: "NOM DUPONT Prénom Jean" is a form, "au nom de" in a sentence is not.
    """
    fold = line.fold
    first_word = re.search(r"[^\W_]", fold)
    first_at = first_word.start() if first_word else len(fold)
    found: list[tuple[str, str, int, int, int, bool, tuple[int, int] | None]] = []
    patient_seen = False
    for m in _LABEL_RE.finditer(fold):
        # The spec groups are named L<i>; the inner "neename" group is not one of them.
        index = int(next(k for k, v in m.groupdict().items()
                         if v is not None and k.startswith("L"))[1:])
        kind, rule, anywhere, _pattern = _LABEL_SPECS[index]
        sep = _SEPARATOR.match(fold, m.end())
        has_sep = sep is not None
        value_start = sep.end() if sep else m.end()
        if not anywhere and not has_sep:
            at_start = m.start() <= first_at or fold[max(0, m.start() - 2):m.start()] == "  "
            if not (at_start or found):
                continue
        if kind == "full" and _OTHER_NAME_BEFORE.search(fold, max(0, m.start() - 60),
                                                         m.start()):
            kind, rule = "other", ""
        if kind in ("last", "full") and m.group().strip() in ("nom", "name"):
            other = _OTHER_NAME_FIELD.match(line.text, m.end())
            if other and (other.group("w").islower()
                          or STAFF_WORD.match(fold, other.start("w"))):
                kind, rule = "other", ""
        if rule == "label:patient":
            patient_seen = True
        # On a line about a doctor, a lab or a relative, names and birth dates are theirs;
        # only what follows an explicit "Patient :" on that line is the patient's.
        if ((staff_context and not patient_seen) or other_person) \
                and kind in _NAME_KINDS | {"nee", "epouse", "dob-nee", "dob"}:
            kind, rule = ("other-dob" if kind.startswith("dob") else "other"), ""
        nee = m.span("neename") if m.group("neename") is not None else None
        found.append((kind, rule, m.start(), m.end(), value_start, has_sep, nee))
    labels: list[_Label] = []
    for i, (kind, rule, start, end, value_start, has_sep, nee) in enumerate(found):
        value_end = found[i + 1][2] if i + 1 < len(found) else len(fold)
        labels.append(_Label(kind, rule, start, end, min(value_start, value_end), value_end,
                             has_sep, nee))
    return labels


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------

# Words that end a name: field labels, titles, staff and places, and the little words of the
# sentences around a name.
NAME_STOPS = frozenset({
    "ne", "nee", "epouse", "epse", "ep", "date", "dob", "ddn", "born", "sexe", "sex", "age",
    "ans", "years", "yo", "tel", "telephone", "phone", "adresse", "address", "ipp",
    "nip", "id", "ins", "nir", "nss", "dossier", "file", "ref", "n", "no", "num", "numero",
    "chambre", "room", "lit", "bed", "service", "dr", "docteur", "doctor", "pr",
    "professeur", "prof", "prescripteur", "prescriber", "medecin", "physician", "laboratoire",
    "laboratory", "lab", "labo", "hopital", "hospital", "clinique", "clinic", "centre",
    "center", "cabinet", "biologiste", "radiologue", "nom", "prenom", "prenoms", "name",
    "surname", "patient", "patiente", "mr", "mrs", "ms", "mme", "mlle", "melle", "monsieur",
    "madame", "mademoiselle", "miss", "m", "et", "and", "pour", "for", "a", "au", "en", "par",
    "by", "sur", "on", "in", "at", "of", "the", "qui", "who", "est", "is", "was", "seen",
    "information", "informations", "details", "identification", "mutuelle", "securite",
})
_TITLE = re.compile(rf"(?<![a-z0-9])(?P<t>{roles.CIVILITY})(?:\.|(?=\s))\s*")
_DOCTOR_TITLE = re.compile(r"(?:dr|docteur|doctor|pr|professeur|prof)(?![a-z])")
_TOKEN = re.compile(r"(?:[dl]'\s?)?[^\W\d_]+(?:['\-][^\W\d_]+)*\.?", re.IGNORECASE)
_VALUE_LEAD = re.compile(r"[\s:;.,=_\-|>*•·]*")


@dataclass(frozen=True)
class _Tok:
    text: str
    start: int

    @property
    def fold(self) -> str:
        return fold_aligned(self.text).rstrip(".")

    @property
    def particle(self) -> bool:
        return self.fold in PARTICLES

    @property
    def kind(self) -> str:
        word = self.text
        if len(word) > 2 and word[1] == "'" and word[0].lower() in "dl":
            word = word[2:].lstrip()
        letters = [ch for ch in word if ch.isalpha()]
        if len(letters) <= 1:
            return "initial"
        if all(ch.isupper() for ch in letters):
            return "caps"
        if letters[0].islower():
            return "lower"
        return "cap"  # Capitalised, or a script without case


@dataclass(frozen=True)
class _NameRead:
    tokens: tuple[_Tok, ...]
    comma_tokens: tuple[_Tok, ...]  # "Smith, John": the part after the comma
    title: str  # "mme", "mr"... or ""


def _tokens(line: Line, pos: int, end: int, strict: bool) -> tuple[list[_Tok], int, bool]:
    """Name words from pos; (words, where they stop, True if prose followed them)."""
    text, fold = line.text, line.fold
    tokens: list[_Tok] = []
    while len(tokens) <= MAX_NAME_WORDS:
        gap = len(fold[pos:end]) - len(fold[pos:end].lstrip(" "))
        if tokens and gap >= 3:  # a column gap in a text layer: the next cell is not the name
            break
        m = _TOKEN.match(text, pos + gap, end)
        if m is None:
            break
        tok = _Tok(text[m.start():m.end()], m.start())
        if tok.fold in NAME_STOPS:
            break
        if re.match(r"\s*:", text[m.end():end]):  # "Number:" is the next field's label
            break
        kind = tok.kind
        if kind == "lower" and not tok.particle:
            capitalised = any(t.kind != "lower" for t in tokens if not t.particle)
            if strict or capitalised:
                return tokens, m.start(), True
        tokens.append(tok)
        pos = m.end()
    return tokens, pos, False


def _read_name(line: Line, start: int, end: int, strict: bool) -> _NameRead | None:
    """The name written from start to end, as words; None if it is not a name."""
    fold = line.fold
    lead = _VALUE_LEAD.match(fold, start, end)
    pos = lead.end() if lead else start
    title = ""
    tm = _TITLE.match(fold, pos, end)
    if tm is not None:
        after = line.text[tm.end():end].lstrip()
        # A bare "M" is a title only before a capital ("M DUPONT"), not an initial.
        if tm.group("t") != "m" or tm.group().endswith(".") or (after[:1].isupper()):
            title, pos = tm.group("t"), tm.end()
    if _DOCTOR_TITLE.match(fold, pos, end):
        return None
    tokens, stop, prose = _tokens(line, pos, end, strict)
    if prose and strict:
        return None
    while tokens and tokens[-1].particle:
        tokens.pop()
    if not tokens or len(tokens) > MAX_NAME_WORDS:
        return None
    # A name in lower case is only believed when nothing but the name follows its label.
    if all(t.kind == "lower" for t in tokens) and (
            strict or any(ch.isalnum() for ch in fold[stop:end]) or len(tokens) > 4):
        return None
    comma: list[_Tok] = []
    rest = line.text[stop:end]
    if rest.lstrip().startswith(","):
        comma_at = stop + rest.index(",") + 1
        more, more_stop, more_prose = _tokens(line, comma_at, end, strict)
        while more and more[-1].particle:
            more.pop()
        tail = fold[more_stop:end]
        if more and not more_prose and not re.search(r"[a-z0-9]", tail):
            comma = more
    return _NameRead(tuple(tokens), tuple(comma), title)


def _words(tokens: Sequence[_Tok]) -> str:
    words = [t.text if t.kind == "initial" else t.text.rstrip(".") for t in tokens]
    return " ".join(" ".join(words).split())


def _caps_split(tokens: Sequence[_Tok]) -> tuple[list[_Tok], list[_Tok]] | None:
    """(last, first) when the surname is the part in capitals: "DUPONT Jean", "Jean DUPONT"."""
    core = [i for i, t in enumerate(tokens) if not t.particle]
    caps = [i for i in core if tokens[i].kind == "caps"]
    other = [i for i in core if tokens[i].kind != "caps"]
    if not caps or not other:
        return None
    if max(caps) < min(other):  # NOM Prénom
        cut = max(caps) + 1
        return list(tokens[:cut]), list(tokens[cut:])
    if max(other) < min(caps):  # Prénom NOM; particles just before the capitals are the surname's
        cut = min(caps)
        while cut - 1 > max(other) and tokens[cut - 1].particle:
            cut -= 1
        return list(tokens[cut:]), list(tokens[:cut])
    return None  # capitals in the middle: no way to tell


def _split_full(read: _NameRead, order: str, french: bool) -> tuple[list[_Tok], list[_Tok],
                                                                      bool] | None:
    """(last, first, certain) for a whole name; None when its parts cannot be told apart."""
    tokens = list(read.tokens)
    if read.comma_tokens:
        # "Smith, John" is surname first; "Jean Dupont, Paris" is a name and a town.
        plain = [t for t in tokens if not t.particle]
        if len(plain) == 1 or all(t.kind == "caps" for t in plain):
            return tokens, list(read.comma_tokens), True
    split = _caps_split(tokens)
    if split is not None:
        return split[0], split[1], True
    core = [t for t in tokens if not t.particle]
    if len(core) == 1:
        return tokens, [], False
    particles = [i for i, t in enumerate(tokens) if t.particle]
    if particles and particles[0] == 0 and tokens[0].fold in FIRST_NAME_PARTICLES:
        particles = particles[1:]
    if particles:
        p = particles[0]
        if p > 0:  # "Mohamed Ben Ali", "Jean de la Fontaine"
            return tokens[p:], tokens[:p], False
        j = p
        while j < len(tokens) and tokens[j].particle:
            j += 1
        return tokens[:j + 1], tokens[j + 1:], False  # "de la Fontaine Jean"
    all_caps = all(t.kind == "caps" for t in core)
    if all_caps and len(core) > 2:
        return None
    if not order:
        # Two words in one case: mixed case is Prénom Nom in both languages; all capitals is
        # NOM PRÉNOM on French forms and FIRST LAST on English ones. A wrong order is caught by
        # the matcher, which tries both and then wants the birth date to agree.
        order = "lf" if all_caps and french else "fl"
    if order == "lf":
        return tokens[:1], tokens[1:], False
    return tokens[-1:], tokens[:-1], False


def _split_last(read: _NameRead) -> tuple[list[_Tok], list[_Tok]]:
    """A "Nom" field: all of it is the surname ("Le Gall", "DE LA FONTAINE"), unless it plainly
    holds "DUPONT Jean", when the capitals are the surname and the rest a first name."""
    split = _caps_split(read.tokens)
    if split is not None and all(t.kind in ("cap", "initial") for t in split[1]):
        return split
    return list(read.tokens), []


# --------------------------------------------------------------------------------------------
# Document reading
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    last: Found
    first: Found | None
    birth: Found | None
    lines: frozenset[int]
    certain: bool


@dataclass
class _Reading:
    """Everything read, before the readings are weighed against each other."""

    # Labelled name fields, with the line each was read on.
    usage: list[tuple[Found, int]] = field(default_factory=list)
    last: list[tuple[Found, int]] = field(default_factory=list)
    birthname: list[tuple[Found, int]] = field(default_factory=list)
    first: list[Found] = field(default_factory=list)
    extra_first: list[Found] = field(default_factory=list)  # "Nom : DUPONT Jean"
    # Whole names read after "Patient :" or a title.
    persons: list[_Person] = field(default_factory=list)
    nee: list[tuple[Found, int]] = field(default_factory=list)  # "née X", next to a name
    epouse: list[tuple[Found, Found | None, int]] = field(default_factory=list)  # "épouse Y"
    births: list[Found] = field(default_factory=list)
    birth_lines: set[int] = field(default_factory=set)  # never a source of document dates
    doc_dates: list[tuple[int, Found]] = field(default_factory=list)  # (tier, found)
    ages: list[Found] = field(default_factory=list)  # ages in years, off staff and kin lines


_FRENCH_WORDS = frozenset({
    "le", "la", "les", "du", "des", "et", "pour", "avec", "nom", "prenom", "ne", "nee",
    "resultats", "examen", "madame", "monsieur", "docteur", "compte", "rendu", "date",
    "naissance", "analyses", "sur", "dans", "je", "vous", "est", "une", "ans", "avis",
    "sortie", "entree", "ordonnance", "certificat", "patiente", "medecin",
})
_ENGLISH_WORDS = frozenset({
    "the", "and", "of", "for", "with", "name", "born", "report", "results", "dear", "mr",
    "mrs", "ms", "birth", "date", "test", "on", "in", "dob", "admitted", "discharged",
    "discharge", "summary", "diagnosis", "history", "was", "is", "his", "her", "years", "old",
    "yours", "sincerely", "regards", "clinic", "consultant",
})


def _word_counts(lines: Sequence[Line]) -> tuple[int, int]:
    words = re.findall(r"[a-z]+", " ".join(line.fold for line in lines))
    return (sum(1 for w in words if w in _FRENCH_WORDS),
            sum(1 for w in words if w in _ENGLISH_WORDS))


def _looks_french(lines: Sequence[Line]) -> bool:
    """For the order of names: French unless English words outnumber French ones."""
    french, english = _word_counts(lines)
    return french >= english


def surely_french(lines: Sequence[Line]) -> bool:
    """For dates: only a document that is plainly French writes its dates day first for sure;
    one with no telling words at all may be English, and a date there reads two ways."""
    french, english = _word_counts(lines)
    return french > english


def _name_found(tokens: Sequence[_Tok], line: Line, rule: str, surname: bool = False
                ) -> Found | None:
    value = _words(tokens)
    # A surname of one letter is an initial or an OCR speck; it identifies nobody.
    if not value or (surname and len(letters_key(value)) < 2):
        return None
    return found_at(value, line, tokens[0].start, rule)


def _value_line(lines: Sequence[Line], line: Line) -> Line | None:
    """The next non-empty line on the page, when a bare label's value went there."""
    for nxt in lines[line.index + 1:line.index + 3]:
        if nxt.page != line.page:
            return None
        if nxt.text.strip():
            return nxt
    return None


def _read_labels(lines: Sequence[Line], line: Line, labels: list[_Label], french: bool,
                 reading: _Reading) -> None:
    for n, label in enumerate(labels):
        source, start, end = line, label.value_start, label.value_end
        empty = not line.fold[start:end].strip(" :;.,=-_")
        if empty and n == len(labels) - 1 and label.kind != "other":
            nxt = _value_line(lines, line)
            if nxt is not None and not _label_at_start(nxt):
                source, start, end = nxt, 0, len(nxt.text)
        kind, rule = label.kind, label.rule
        if kind == "other-dob":  # someone else's birth date: not the patient's, not a date of
            reading.birth_lines |= {line.index, source.index}  # the document either
            continue
        if kind in ("dob", "dob-nee", "nee"):
            got = date_at(source.fold, start, end)
            if got is not None:
                reading.births.append(birth_found(got, source,
                                                   rule if kind != "nee" else "label:ne-le"))
                reading.birth_lines |= {line.index, source.index}
                if label.nee_name is not None:
                    nee = _read_name(line, label.nee_name[0], label.nee_name[1], strict=True)
                    if nee is not None:
                        found = _name_found(nee.tokens, line, rule, surname=True)
                        if found:
                            reading.nee.append((found, line.index))
                continue
            if kind == "dob":
                reading.birth_lines |= {line.index, source.index}
        if kind in ("doc1", "doc2"):
            got = date_at(source.fold, start, end)
            if got is not None:
                reading.doc_dates.append((1 if kind == "doc1" else 2,
                                          found_at(got[0].isoformat(), source, got[1], rule)))
            continue
        if kind not in _NAME_KINDS and kind not in ("nee", "epouse"):
            continue
        if kind == "nee" and line.fold[label.start:label.end] != "nee":
            continue  # "né" (a man) has no maiden name, and "ne" is mostly "ne ... pas"
        strict = not label.has_separator
        read = _read_name(source, start, end, strict)
        if read is None:
            continue
        if kind in ("full", "full-lf", "full-fl"):
            order = {"full-lf": "lf", "full-fl": "fl"}.get(kind, "")
            split = _split_full(read, order, french)
            if split is None:
                continue
            last_toks, first_toks, certain = split
            if strict and not certain:  # "Patient Information" is a heading, not a person
                continue
            last = _name_found(last_toks, source, rule, surname=True)
            if last is not None:
                reading.persons.append(_Person(
                    last, _name_found(first_toks, source, rule), None,
                    frozenset({line.index, source.index}), certain))
        elif kind == "first":
            found = _name_found(read.tokens, source, rule)
            if found:
                reading.first.append(found)
        else:
            last_toks, first_toks = _split_last(read)
            found = _name_found(last_toks, source, rule, surname=True)
            extra = _name_found(first_toks, source, rule)
            if found is None:
                continue
            if kind == "usage":
                reading.usage.append((found, line.index))
            elif kind == "birthname":
                reading.birthname.append((found, line.index))
            elif kind == "nee":
                reading.nee.append((found, line.index))
            elif kind == "epouse":
                reading.epouse.append((found, extra, line.index))
                continue
            else:
                reading.last.append((found, line.index))
            if extra:
                reading.extra_first.append(extra)


def _label_at_start(line: Line) -> bool:
    m = _LABEL_RE.search(line.fold)
    return m is not None and not any(ch.isalnum() for ch in line.fold[:m.start()])


def _read_titles(lines: Sequence[Line], line: Line, labels: list[_Label], french: bool,
                 reading: _Reading) -> None:
    """"Mme DUPONT Marie, née le ...": a title names the patient when a birth date follows."""
    if any(label.kind in _NAME_KINDS for label in labels):
        return
    births = [label for label in labels if label.kind in ("dob", "dob-nee", "nee")
              and date_at(line.fold, label.value_start, label.value_end) is not None]
    birth_end: int | None = births[0].value_end if births else None
    birth_start = births[0].start if births else len(line.fold)
    if birth_end is None:
        # The birth date may be the next line: "Mme DUPONT Marie" / "née le 03/04/1975".
        nxt = _value_line(lines, line)
        if nxt is None:
            return
        first = next(iter(_labels(nxt, False)), None)
        if (first is None or first.kind not in ("dob", "nee")
                or any(ch.isalnum() for ch in nxt.fold[:first.start])
                or date_at(nxt.fold, first.value_start, first.value_end) is None):
            return
        birth_end = len(line.fold)
    # Staff words anywhere before the birth date: this line is about a doctor or a place.
    if STAFF_WORD.search(line.fold, 0, birth_end):
        return
    titles = list(_TITLE.finditer(line.fold, 0, birth_start))
    for tm in reversed(titles):  # the title nearest the birth date names the person born
        end = min([label.start for label in labels if label.start >= tm.end()] or
                  [len(line.fold)])
        read = _read_name(line, tm.start(), end, strict=True)
        if read is None or not read.title:
            continue
        split = _split_full(read, "", french)
        if split is None:
            return
        last = _name_found(split[0], line, f"title:{read.title}", surname=True)
        if last is not None:
            reading.persons.append(_Person(last, _name_found(split[1], line, last.rule), None,
                                           frozenset({line.index}), split[2]))
        return


_DATELINE_LE = re.compile(r"[^a-z0-9]*(?:[a-z][a-z' \-]{0,40},\s*)?le\s+")


def _read(lines: Sequence[Line]) -> _Reading:
    reading = _Reading()
    french = _looks_french(lines)
    for line, context in zip(lines, roles.contexts(lines), strict=True):
        if not line.text.strip():
            continue
        labels = _labels(line, context.staff_led or context.staff_block, context.other_person)
        _read_labels(lines, line, labels, french, reading)
        if not context.staff_led and not context.other_person:
            _read_titles(lines, line, labels, french, reading)
            if not context.staff_block:
                reading.ages.extend(ages_on(line))
        # "Le 12/03/2024", "Paris, le 12 mars 2024": the date a letter is written.
        m = _DATELINE_LE.match(line.fold)
        if m is not None:
            got = date_at(line.fold, m.end(), len(line.fold))
            if got is not None and got[1] == m.end():
                reading.doc_dates.append((2, found_at(got[0].isoformat(), line, got[1],
                                                   "label:le")))
    for index, header in roles.table_rows(lines).items():
        if header is not None:
            _read_table_birth(lines[index], roles.date_columns(header), reading)
    return reading


def _read_table_birth(row: Line, columns: Sequence[bool], reading: _Reading) -> None:
    """The birth date in a table row, under a header "NOM  PRÉNOM  NÉ(E) LE  …": the date in
    the birth date's column, counted left to right among the header's date columns."""
    if True not in columns:
        return
    dates = [(m, value) for m in DATE_RE.finditer(row.fold) if (value := to_date(m))]
    if len(dates) == len(columns):
        m, value = dates[columns.index(True)]
    elif len(columns) == 1 and len(dates) == 1:
        m, value = dates[0]
    else:
        return  # a date missing or one too many: no telling which is the birth date
    reading.births.append(found_at(value.isoformat(), row, m.start(), "table:dob"))
    reading.birth_lines.add(row.index)


def _distinct(found: Sequence[Found]) -> int:
    return len({letters_key(f.value) for f in found})


def _keys(person: _Person) -> set[str]:
    return {letters_key(f.value) for f in (person.last, person.first, person.birth)
            if f is not None}


def _compatible(a: _Person, b: _Person) -> bool:
    """Could these two readings be one person (same names, maybe in the other order)?"""
    ka, kb = _keys(a), _keys(b)
    if letters_key(a.last.value) not in kb and letters_key(b.last.value) not in ka:
        return False
    if a.first is not None and b.first is not None:
        return letters_key(a.first.value) in kb or letters_key(b.first.value) in ka
    return True


def _names(reading: _Reading) -> tuple[Found | None, Found | None, Found | None] | None:
    """(last, first, birth name); None when the document names two different people."""
    groups = (reading.usage, reading.last, reading.birthname)
    if any(_distinct([f for f, _ in group]) > 1 for group in groups):
        return None
    if _distinct(reading.first) > 1:
        return None
    chosen: _Person
    if reading.usage or reading.last or reading.birthname:
        firsts = reading.first or reading.extra_first
        born = reading.birthname[0][0] if reading.birthname else None
        if born is None and reading.usage and reading.last:
            born = reading.last[0][0]  # "Nom : MARTIN  Nom d'usage : DUPONT"
        chosen = _Person((reading.usage or reading.last or reading.birthname)[0][0],
                         firsts[0] if firsts else None, born,
                         frozenset(i for group in groups for _, i in group), True)
    elif reading.persons:
        chosen = next((p for p in reading.persons if p.certain), reading.persons[0])
        if chosen.first is None and reading.first:
            chosen = _Person(chosen.last, reading.first[0], None, chosen.lines, chosen.certain)
    else:
        return None, (reading.first[0] if reading.first else None), None
    if not all(_compatible(chosen, other) for other in reading.persons):
        return None

    near = chosen.lines | {i + 1 for i in chosen.lines}
    last, first, birth = chosen.last, chosen.first, chosen.birth
    maiden = [f for f, i in reading.nee if i in near]
    married = [(f, extra) for f, extra, i in reading.epouse if i in near]
    if _distinct(maiden) > 1 or _distinct([f for f, _ in married]) > 1:
        return None
    if married and not reading.usage:
        # "MARTIN Marie épouse DUPONT": she is filed as DUPONT, born MARTIN.
        birth = birth or (maiden[0] if maiden else last)
        last = married[0][0]
        first = first or married[0][1]
    if birth is None and maiden:
        birth = maiden[0]
    return last, first, birth


def _age(reading: _Reading) -> Found | None:
    """The patient's age: one, however often stated; two different ages are no answer."""
    if len({f.value for f in reading.ages}) != 1:
        return None
    return reading.ages[0]


def _birth_date(reading: _Reading, french: bool, today: date) -> Found | None:
    """The one birth date every birth date read allows.

    A reading in the future is a misread and is dropped. A French document writes day first,
    always; an English one may be from either side of the Atlantic, so "12/03/1961" keeps both
    readings and the matcher decides, against the directory, which one (if any) it can trust.
    Birth dates that share no reading are two people, or one misread: no answer.
    """
    kept: list[Found] = []
    for found in reading.births:
        if french:
            found = replace(found, other=None)
        valid = narrowed(found, [r for r in date_readings(found)
                                  if valid_birth_date(r, None, today)])
        if valid is not None:
            kept.append(valid)
    if not kept:
        return None
    common = set(date_readings(kept[0])).intersection(*(date_readings(f) for f in kept[1:]))
    if not common:
        return None
    plain = next((f for f in kept if set(date_readings(f)) == common), None)
    return plain or narrowed(kept[0], [r for r in date_readings(kept[0]) if r in common])


def _document_date(lines: Sequence[Line], reading: _Reading,
                   birth: Found | None) -> Found | None:
    # Dates of the examination or sample (tier 1) say what the document is about; print and
    # signature dates (tier 2) only when there is none.
    for tier in (1, 2):
        for found_tier, found in reading.doc_dates:
            if found_tier == tier:
                return found
    for line in lines:
        if line.index in reading.birth_lines:
            continue
        for m in DATE_RE.finditer(line.fold):
            value = to_date(m)
            if value is not None and (birth is None or
                                      value.isoformat() not in date_readings(birth)):
                return found_at(value.isoformat(), line, m.start(), "first-date")
    return None


# --------------------------------------------------------------------------------------------


def parse_document(pages: Sequence[str], *, today: date | None = None) -> ParsedFields:
    """Read the patient, the dates and the type from each page's text (page 1 first).

    `today` (default: the clock) is the day the dates are judged against: the century of a
    two-digit year, a birth date in the future.
    """
    return parse_lines(split_lines(pages), today=today)


def parse_lines(lines: Sequence[Line], *, today: date | None = None) -> ParsedFields:
    """What the labels and titles of these lines say (`parse_document` on split lines)."""
    token = TODAY.set(today or date.today())
    try:
        return _parse(lines, judged_on())
    finally:
        TODAY.reset(token)


def _parse(lines: Sequence[Line], today: date) -> ParsedFields:
    reading = _read(lines)
    names = _names(reading)
    last, first, birth_name = names or (None, None, None)
    # Two people named (a child and a parent, two reports in one PDF): a birth date read
    # there might be either one's.
    birth = _birth_date(reading, surely_french(lines), today) if names is not None else None
    document = _document_date(lines, reading, birth)
    if birth is not None and document is not None:
        # Born after the document was written: a misread, not a fact (or, of a date that
        # reads two ways, not the reading meant).
        birth = narrowed(birth, [r for r in date_readings(birth)
                                  if valid_birth_date(r, document.value, today)])
    kind, evidence = document_type(lines)
    return ParsedFields(
        last_name=last,
        first_name=first,
        birth_date=birth,
        document_date=document,
        document_type=kind,
        document_type_evidence=evidence,
        birth_name=birth_name,
        # Like a birth date, an age on a document naming two people might be either's.
        age=_age(reading) if names is not None else None,
        people=() if names is not None else _page_patients(lines),
    )


def _page_patients(lines: Sequence[Line]) -> tuple[NamedPerson, ...]:
    """When the labels name different people, the patient each page names on its own (two
    reports in one PDF): the matcher then puts each to a person, instead of none."""
    pages = sorted({line.page for line in lines})
    people = []
    for page in pages if len(pages) > 1 else []:
        names = _names(_read([line for line in lines if line.page == page]))
        if names is not None and names[0] is not None and names[1] is not None:
            people.append(NamedPerson(names[0], names[1], roles.PATIENT, names[2]))
    return tuple(people)
