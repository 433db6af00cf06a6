"""Fields from a document's text: the patient's names and birth date, the document's date and type.

When unsure, a field is left empty rather than guessed: the match stage sends a document with
missing fields to a person, while a misread name could file it under someone else.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

DOCUMENT_TYPES = ("lab-result", "imaging-report", "referral-letter", "prescription",
                  "insurance-form", "other")


@dataclass(frozen=True)
class Found:
    value: str
    page: int
    snippet: str
    rule: str

    def as_dict(self) -> dict[str, object]:
        return {"value": self.value, "page": self.page, "snippet": self.snippet, "rule": self.rule}


@dataclass(frozen=True)
class ParsedFields:
    last_name: Found | None
    first_name: Found | None
    birth_date: Found | None
    document_date: Found | None
    document_type: str
    document_type_evidence: str
    birth_name: Found | None = None

    def as_dict(self) -> dict[str, object]:
        def one(f: Found | None) -> dict[str, object] | None:
            return f.as_dict() if f else None

        return {"last_name": one(self.last_name), "first_name": one(self.first_name),
                "birth_date": one(self.birth_date), "document_date": one(self.document_date),
                "birth_name": one(self.birth_name), "document_type": self.document_type,
                "document_type_evidence": self.document_type_evidence}


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_MONTHS = {
    "janvier": 1, "janv": 1, "jan": 1, "january": 1, "fevrier": 2, "fevr": 2, "fev": 2,
    "february": 2, "feb": 2, "mars": 3, "march": 3, "mar": 3, "avril": 4, "avr": 4,
    "april": 4, "apr": 4, "mai": 5, "may": 5, "juin": 6, "june": 6, "jun": 6, "juillet": 7,
    "juil": 7, "july": 7, "jul": 7, "aout": 8, "august": 8, "aug": 8, "septembre": 9,
    "sept": 9, "sep": 9, "september": 9, "octobre": 10, "oct": 10, "october": 10,
    "novembre": 11, "nov": 11, "november": 11, "decembre": 12, "dec": 12, "december": 12,
}
_MONTH_WORD = "|".join(sorted(_MONTHS, key=len, reverse=True))
_NUMERIC = r"(\d{1,2})\s?[/.\-]\s?(\d{1,2})\s?[/.\-]\s?(\d{4}|\d{2})(?!\d)"
_ISO = r"(\d{4})-(\d{2})-(\d{2})"
_DAY_MONTH = rf"(\d{{1,2}})(?:er)?\s+({_MONTH_WORD})\.?\s+(\d{{4}})"
_MONTH_DAY = rf"({_MONTH_WORD})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})"
DATE = re.compile(rf"(?:{_ISO})|(?:{_NUMERIC})|(?:{_DAY_MONTH})|(?:{_MONTH_DAY})", re.IGNORECASE)


def _make(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _date_from(match: re.Match[str], today: date) -> date | None:
    g = match.groups()
    if g[0]:
        return _make(int(g[0]), int(g[1]), int(g[2]))
    if g[3]:
        year = int(g[5])
        if len(g[5]) == 2:
            # Two-digit years: a date can't be in the future, so "61" is 1961 and "24" 2024.
            year += 2000 if year <= today.year % 100 else 1900
        return _make(year, int(g[4]), int(g[3]))
    if g[6]:
        return _make(int(g[8]), _MONTHS[_fold(g[7])], int(g[6]))
    if g[9]:
        return _make(int(g[11]), _MONTHS[_fold(g[9])], int(g[10]))
    return None


def parse_date(text: str, today: date | None = None) -> date | None:
    match = DATE.search(_fold(text))
    return _date_from(match, today or date.today()) if match else None


# --- labels ------------------------------------------------------------------------------

_BIRTH_LABEL = re.compile(
    r"\b(?:n[ée]e?\s*(?:\(\s*e\s*\))?\s*le|date\s+de\s+naissance|d\.?\s?d\.?\s?n\.?|"
    r"d\.?\s?o\.?\s?b\.?|date\s+of\s+birth|birth\s*date|born(?:\s+on)?)\s*[:;.]?\s*",
    re.IGNORECASE)
_DOC_DATE_LABEL = re.compile(
    r"\b(?:date\s+du\s+pr[ée]l[èe]vement|date\s+de\s+l['’]examen|date\s+du\s+compte[\s-]rendu|"
    r"date\s+d['’]?(?:[ée]dition|impression)|[ée]dit[ée]\s+le|fait\s+le|date\s+of\s+(?:report|"
    r"exam|collection)|report\s+date|collected(?:\s+on)?|dated|(?<![a-z] )date)\s*[:;.]?\s*",
    re.IGNORECASE)
_PLACE_DATE = re.compile(r"^[A-ZÀ-Ü][\w\-' ]{1,40},\s+le\s+", re.IGNORECASE)
# Lines about someone other than the patient.
_NOT_PATIENT = re.compile(
    r"\b(?:dr\.?|docteur|doctor|prof\.?|pr\.?|prescripteur|prescrit\s+par|m[ée]decin|"
    r"laboratoire|labo|lab|h[ôo]pital|hospital|clinique|clinic|centre|center|service|"
    r"cabinet|referring|ordered\s+by|signed\s+by|biologiste|radiologue|sign[ée])\b",
    re.IGNORECASE)
_TITLE = r"(?:m\.|mr\.?|mrs\.?|ms\.?|mme\.?|mlle\.?|monsieur|madame|mademoiselle)"
_NAME_WORD = r"(?:[A-Za-zÀ-ÖØ-öø-ÿ][A-Za-zÀ-ÖØ-öø-ÿ'’\-]*)"
_PARTICLES = {"de", "du", "des", "le", "la", "el", "ben", "ait", "d'", "l'", "van", "von",
              "bin", "bent", "abou", "abu", "da", "di", "dos"}
_LABEL_WORDS = {"nom", "prenom", "prénom", "name", "first", "last", "ne", "né", "née", "nee",
                "le", "dob", "date", "patient", "patiente", "naissance", "sexe", "sex", "age",
                "âge", "ipp", "dossier", "of", "birth", "born", "usage", "epouse", "épouse",
                "ep", "ép"}


def _snippet(line: str) -> str:
    return line.strip()[:120]


def _is_caps(word: str) -> bool:
    letters = [c for c in word if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def _words(text: str) -> list[str]:
    out: list[str] = []
    for word in re.findall(_NAME_WORD, text):
        if _fold(word).strip("'’") in _LABEL_WORDS and out:
            break
        if _fold(word) in _LABEL_WORDS:
            continue
        out.append(word)
    return out


def _split_person(words: list[str]) -> tuple[str | None, str | None]:
    """(last, first) from words in either order: the capitalised run is the last name."""
    if not words:
        return None, None
    caps = [i for i, w in enumerate(words) if _is_caps(w) or _fold(w) in _PARTICLES]
    if caps and len(caps) < len(words):
        run_start, run_end = caps[0], caps[0]
        while run_end + 1 < len(words) and run_end + 1 in caps:
            run_end += 1
        last = " ".join(words[run_start:run_end + 1])
        rest = words[:run_start] + words[run_end + 1:]
        return last, (" ".join(rest) or None)
    if len(words) >= 2:
        # "Jean Dupont": first names first is the usual order in prose.
        return " ".join(words[1:]), words[0]
    return words[0], None


_LABELLED_LAST = re.compile(
    r"\b(?:nom(?:\s+de\s+naissance|\s+d['’]usage|\s+patient)?|last\s*name|surname|family\s+name)"
    r"\s*[:;]\s*(.+)", re.IGNORECASE)
_LABELLED_FIRST = re.compile(r"\b(?:pr[ée]nom\(?s?\)?|first\s*name|given\s+names?)\s*[:;]?\s*(.+)",
                             re.IGNORECASE)
_PATIENT_LINE = re.compile(r"\b(?:patient\(?e?\)?|name|nom\s+et\s+pr[ée]nom|identit[ée])"
                           r"\s*[:;]\s*(.+)", re.IGNORECASE)
_TITLE_LINE = re.compile(rf"(?:^|\s){_TITLE}\s+(.+)", re.IGNORECASE)
_NEE = re.compile(r"\bn[ée]e\s*[:;]?\s+(?!le\b)(" + _NAME_WORD + r"(?:[ \-]" + _NAME_WORD
                  + r")*)", re.IGNORECASE)
_EPOUSE = re.compile(r"\b(?:[ée]pouse|[ée]p\.)\s*[:;]?\s*(" + _NAME_WORD + r"(?:[ \-]"
                     + _NAME_WORD + r")*)", re.IGNORECASE)


def _cut(value: str) -> str:
    """The part of a label's value before the next label or date."""
    value = re.split(r"\s{3,}|\t|\b(?:pr[ée]nom|first\s*name|n[ée]e?\s*(?:\(e\))?\s*le|date|dob|"
                     r"d\.?d\.?n|sexe|sex|age|âge|ipp|born)\b|\d", value, maxsplit=1,
                     flags=re.IGNORECASE)[0]
    return value.strip(" ,;:.-")


def _name_only(words: list[str]) -> list[str]:
    return [w for w in words if _fold(w) not in ("nee", "epouse", "ep")]


def _person(pages: Sequence[str]) -> tuple[Found | None, Found | None, Found | None]:
    last: Found | None = None
    first: Found | None = None
    birth_name: Found | None = None
    for page_no, text in enumerate(pages, 1):
        for line in text.splitlines():
            if not line.strip() or (_NOT_PATIENT.search(line) and not re.search(
                    r"\bpatient", line, re.IGNORECASE)):
                continue
            nee = _NEE.search(line)
            epouse = _EPOUSE.search(line)
            if nee and birth_name is None:
                value = " ".join(_words(_cut(nee.group(1))))
                if value:
                    birth_name = Found(value, page_no, _snippet(line), "label:nee")
            if last is None:
                m = _LABELLED_LAST.search(line)
                if m and not re.match(r"\s*(?:et|and)\b", m.group(1), re.IGNORECASE):
                    words = _words(_cut(m.group(1)))
                    if words:
                        if epouse:
                            words = _words(_cut(epouse.group(1)))
                        last = Found(" ".join(words), page_no, _snippet(line), "label:nom")
            if first is None:
                m = _LABELLED_FIRST.search(line)
                if m:
                    words = _words(_cut(m.group(1)))
                    if words:
                        first = Found(" ".join(words), page_no, _snippet(line), "label:prenom")
            if last is not None:
                continue
            m = _PATIENT_LINE.search(line) or (
                _TITLE_LINE.search(line) if (_BIRTH_LABEL.search(line) or re.search(
                    r"\bpatient", line, re.IGNORECASE)) else None)
            if m is None:
                continue
            value = re.sub(rf"^\s*{_TITLE}\s+", "", m.group(1), flags=re.IGNORECASE)
            value = re.split(r"\bn[ée]e\b|\b[ée]pouse\b|\b[ée]p\.", _cut(value), maxsplit=1,
                             flags=re.IGNORECASE)[0]
            if "," in value:
                surname, _, given = value.partition(",")
                lw, fw = _words(surname), _words(given)
                if lw and fw:
                    last = Found(" ".join(lw), page_no, _snippet(line), "label:patient-comma")
                    first = first or Found(" ".join(fw), page_no, _snippet(line),
                                           "label:patient-comma")
                    continue
            words = _name_only(_words(value))
            surname_text, given_text = _split_person(words)
            if surname_text:
                if epouse:
                    married = " ".join(_words(_cut(epouse.group(1))))
                    birth_name = birth_name or Found(surname_text, page_no, _snippet(line),
                                                     "label:patient")
                    surname_text = married or surname_text
                last = Found(surname_text, page_no, _snippet(line), "label:patient")
                if given_text and first is None:
                    first = Found(given_text, page_no, _snippet(line), "label:patient")
    return last, first, birth_name


def _birth_date(pages: Sequence[str], today: date) -> Found | None:
    for page_no, text in enumerate(pages, 1):
        for line in text.splitlines():
            for label in _BIRTH_LABEL.finditer(line):
                match = DATE.search(_fold(line[label.end():label.end() + 40]))
                if match:
                    found = _date_from(match, today)
                    if found and found <= today:
                        return Found(found.isoformat(), page_no, _snippet(line), "label:birth")
    return None


def _document_date(pages: Sequence[str], birth: Found | None, today: date) -> Found | None:
    fallback: Found | None = None
    for page_no, text in enumerate(pages, 1):
        for line in text.splitlines():
            birth_line = _BIRTH_LABEL.search(line)
            for label in _DOC_DATE_LABEL.finditer(line):
                if birth_line and birth_line.start() <= label.start() < birth_line.end() + 40:
                    continue
                match = DATE.search(_fold(line[label.end():label.end() + 40]))
                if match and (found := _date_from(match, today)):
                    return Found(found.isoformat(), page_no, _snippet(line), "label:date")
            place = _PLACE_DATE.search(line)
            if place:
                match = DATE.search(_fold(line[place.end():]))
                if match and (found := _date_from(match, today)):
                    return Found(found.isoformat(), page_no, _snippet(line), "label:place-date")
            if fallback is None and not birth_line:
                match = DATE.search(_fold(line))
                found = _date_from(match, today) if match else None
                if found and (birth is None or found.isoformat() != birth.value):
                    fallback = Found(found.isoformat(), page_no, _snippet(line), "first-date")
    return fallback


# Weighted keywords per type; a title-like keyword weighs more than a passing mention, so a
# lab report that names its "prescripteur" is still a lab result.
_TYPE_KEYWORDS: dict[str, tuple[tuple[str, int], ...]] = {
    "lab-result": (("laboratoire", 2), ("biologie", 3), ("analyses", 2), ("hemogramme", 3),
                   ("numeration", 2), ("lab results", 3), ("laboratory", 2),
                   ("blood count", 3), ("glycemie", 2), ("hemoglobine", 2), ("bilan", 1)),
    "imaging-report": (("radiologie", 3), ("imagerie", 3), ("echographie", 3),
                       ("scanner", 2), ("irm", 3), ("radiographie", 3), ("mammographie", 3),
                       ("imaging", 3), ("x-ray", 3), ("mri", 3), ("ct scan", 3),
                       ("ultrasound", 3)),
    "referral-letter": (("cher confrere", 4), ("chere consoeur", 4), ("chere consœur", 4),
                        ("je vous adresse", 4), ("lettre", 2), ("courrier", 2),
                        ("referral", 3), ("dear colleague", 4), ("thank you for seeing", 4)),
    "prescription": (("ordonnance", 4), ("posologie", 3), ("renouveler", 2),
                     ("prescription", 2)),
    "insurance-form": (("mutuelle", 3), ("assurance", 2), ("cerfa", 4),
                       ("securite sociale", 2), ("feuille de soins", 4),
                       ("prise en charge", 2), ("insurance", 3), ("claim form", 4)),
}


def document_type(pages: Sequence[str]) -> tuple[str, str]:
    folded = _fold("\n".join(pages))
    best, best_score, evidence = "other", 0, ""
    for kind in DOCUMENT_TYPES[:-1]:
        score, first_hit = 0, ""
        for keyword, weight in _TYPE_KEYWORDS[kind]:
            if re.search(rf"(?<!\w){re.escape(keyword)}(?!\w)", folded):
                score += weight
                first_hit = first_hit or keyword
        if score > best_score:
            best, best_score, evidence = kind, score, first_hit
    return best, evidence


def parse_document(pages: Sequence[str], today: date | None = None) -> ParsedFields:
    today = today or date.today()
    last, first, birth_name = _person(pages)
    birth = _birth_date(pages, today)
    kind, evidence = document_type(pages)
    return ParsedFields(last_name=last, first_name=first, birth_date=birth,
                        document_date=_document_date(pages, birth, today), document_type=kind,
                        document_type_evidence=evidence, birth_name=birth_name)
