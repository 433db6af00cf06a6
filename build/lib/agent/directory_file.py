"""A patient list as a practice's software or spreadsheet exports it: its encoding, its
separator, which column is which field of the directory, and how a birth date is written.

`agent.patients.import_csv` is the one reader of a directory file and asks this module each
of these questions; `docagent patients list` reads a birth date typed as a query the same way.

- Encoding: UTF-8, with or without a byte-order mark, else Windows-1252 (what Excel's "CSV"
  writes on a French Windows). A file that is neither is refused, naming the first byte that
  is not and its line. A file of UTF-8 characters with one byte that is not UTF-8 is refused
  too: read as Windows-1252, every accented name in it would be imported garbled.
- Separator: `;` (Excel in French), `,` or a tab, whichever the header line holds most of,
  outside quotes; or what Excel's own first line `sep=;` says.
- Headers: French and English names of each field (`HEADERS`), compared without case, accents
  or punctuation; `--columns` names the others.
- Dates: `1961-03-12`, or day first `12/03/1961`, `12-03-1961`, `12.03.1961` (a midnight time
  after it, as some software exports a date, is dropped). A two-digit year is refused: a
  birth date is the directory's authority, and "12/03/25" is 1925 or 2025.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from agent.i18n import _
from agent.names import fold

# The directory's fields, as `--columns` names them.
FIELDS = ("id", "last_name", "first_name", "birth_date", "birth_name", "usage_name",
          "married_name")
REQUIRED = ("id", "last_name", "first_name", "birth_date")
# The headers each field is known by, folded (`agent.names.fold`: lower case, no accents,
# every run of punctuation one space): "N° dossier" is "n dossier", "Né(e) le" "ne e le",
# "last_name" "last name". "Nom de famille" is the last name (with "Nom d'usage" beside it,
# the usage name); a bare "Name" or "Patient" is not guessed at: it may be the whole name.
HEADERS: Mapping[str, frozenset[str]] = {
    "id": frozenset({
        "id", "identifiant", "identifiant patient", "id patient", "patient id", "ipp",
        "n dossier", "no dossier", "num dossier", "numero dossier", "numero de dossier",
        "n patient", "no patient", "num patient", "numero patient", "numero de patient",
        "code patient", "patient number", "patient no", "record number", "chart number", "mrn",
    }),
    "last_name": frozenset({
        "last name", "lastname", "nom", "nom de famille", "nom patient", "nom du patient",
        "family name", "surname",
    }),
    "first_name": frozenset({
        "first name", "firstname", "prenom", "prenoms", "prenom usuel", "given name",
        "forename",
    }),
    "birth_date": frozenset({
        "birth date", "birthdate", "date of birth", "dob", "birthday", "date de naissance",
        "date naissance", "ddn", "naissance", "ne le", "nee le", "ne e le", "ne e",
    }),
    "birth_name": frozenset({
        "birth name", "maiden name", "nom de naissance", "nom naissance", "nom de jeune fille",
    }),
    "usage_name": frozenset({"usage name", "nom d usage", "nom usage", "nom utilise"}),
    "married_name": frozenset({"married name", "nom marital", "nom d epouse", "nom epouse"}),
}
SEPARATORS = (";", "\t", ",")  # on a tie, the first: a French export's names hold commas
_EXCEL_SEP = re.compile(r"sep=(.)[ \t]*\r?", re.IGNORECASE)
# A well-formed UTF-8 sequence of two bytes or more: in a file that also holds a byte that
# is not UTF-8, the sign of a UTF-8 file damaged, not of a Windows-1252 one.
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


class ImportFileError(Exception):
    """The file as a whole cannot be read (encoding, header, columns): nothing is imported."""


def _save_as() -> str:
    return _("save it from your spreadsheet or practice software as \"CSV UTF-8\" and "
             "import that file")


def _line_of(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


def _not_text(name: str, raw: bytes, offset: int) -> ImportFileError:
    return ImportFileError(
        _("%(file)s is neither UTF-8 nor Windows-1252 text (byte %(byte)s on line "
          "%(line)d): %(action)s")
        % {"file": name, "byte": f"0x{raw[offset]:02X}", "line": _line_of(raw, offset),
           "action": _save_as()})


def decode(raw: bytes, name: str) -> str:
    """The text of a directory file: UTF-8 (with or without its BOM), else Windows-1252."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileError(
            _("%(file)s is UTF-16 text (what Excel calls \"Unicode text\"): %(action)s")
            % {"file": name, "action": _save_as()})
    nul = raw.find(b"\x00")
    if nul >= 0:  # no text file holds one; UTF-16 without its BOM holds many
        raise _not_text(name, raw, nul)
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[bom:].decode("utf-8")
    except UnicodeDecodeError as error:
        bad = error.start + bom
    if bom:
        raise _damaged(name, raw, bad)
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError as error:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D mean nothing there
        raise _not_text(name, raw, error.start) from None
    if _UTF8_SEQUENCE.search(raw):
        raise _damaged(name, raw, bad)
    return text


def _damaged(name: str, raw: bytes, offset: int) -> ImportFileError:
    return ImportFileError(
        _("%(file)s is UTF-8 text but byte %(byte)s on line %(line)d is not UTF-8: correct "
          "that line, or %(action)s")
        % {"file": name, "byte": f"0x{raw[offset]:02X}", "line": _line_of(raw, offset),
           "action": _save_as()})


@dataclass(frozen=True)
class Shape:
    separator: str
    skip: int  # lines before the header: 1 after Excel's "sep=;" line


def shape(text: str) -> Shape:
    """The separator, from the header line: the one it holds most of outside quotes."""
    first = text.split("\n", 1)[0]
    given = _EXCEL_SEP.fullmatch(first)
    if given and given.group(1) not in "\"\r\n":
        return Shape(given.group(1), 1)
    counts = dict.fromkeys(SEPARATORS, 0)
    quoted = False
    for ch in first:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(SEPARATORS, key=lambda s: counts[s])
    return Shape(best if counts[best] else ",", 0)


@dataclass(frozen=True)
class Layout:
    """Which column holds each field (by position), and the key each other column's
    values are kept under (its header, lower case)."""

    fields: Mapping[str, int]
    extras: Mapping[int, str]

    def values(self, row: Sequence[str]) -> dict[str, str]:
        return {f: row[i].strip() if i < len(row) else "" for f, i in self.fields.items()}

    def others(self, row: Sequence[str]) -> dict[str, str]:
        return {key: row[i].strip() for i, key in self.extras.items()
                if i < len(row) and row[i].strip()}


def field_label(field: str) -> str:
    """A field as staff call it, in a sentence ("the last name")."""
    labels = {
        "id": _("the patient id"), "last_name": _("the last name"),
        "first_name": _("the first name"), "birth_date": _("the birth date"),
        "birth_name": _("the birth name"), "usage_name": _("the usage name"),
        "married_name": _("the married name"),
    }
    return labels[field]


def parse_columns(text: str) -> dict[str, str]:
    """`--columns id=N° patient,last_name=Nom` as {"id": "N° patient", "last_name": "Nom"}."""
    chosen: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        field, equals, header = part.partition("=")
        field = field.strip().lower()
        if not equals or not header.strip():
            raise ImportFileError(
                _("--columns takes FIELD=COLUMN pairs separated by commas, as "
                  "--columns \"id=N° dossier,birth_date=Né(e) le\" (not %(part)s)")
                % {"part": repr(part.strip())})
        if field not in FIELDS:
            raise ImportFileError(
                _("--columns: %(field)s is not a field of the directory; the fields are "
                  "%(fields)s") % {"field": repr(field), "fields": ", ".join(FIELDS)})
        if field in chosen:
            raise ImportFileError(_("--columns names %(field)s twice") % {"field": field})
        chosen[field] = header.strip()
    return chosen


def layout(header: Sequence[str], columns: Mapping[str, str], name: str) -> Layout:
    """Each field's column: those `columns` names (by header, without case or accents), then
    the others by the names in `HEADERS`. Refused when a required field has no column, or
    when two columns could be the same field (a person says which)."""
    folded = [fold(h) for h in header]
    shown = ", ".join(repr(h.strip()) for h in header if h.strip()) or "-"
    fields: dict[str, int] = {}
    for field, wanted in columns.items():
        at = [i for i, f in enumerate(folded) if f and f == fold(wanted)]
        if len(at) != 1:
            raise ImportFileError(
                (_("%(file)s has no column %(column)s (from --columns %(field)s=…); its columns "
                   "are: %(headers)s") if not at else
                 _("%(file)s has two columns %(column)s (from --columns %(field)s=…): rename "
                   "one in the file"))
                % {"file": name, "column": repr(wanted), "field": field, "headers": shown})
        fields[field] = at[0]
    for field in FIELDS:
        if field in fields:
            continue
        at = [i for i, f in enumerate(folded) if f in HEADERS[field]
              and i not in fields.values()]
        if len(at) > 1:
            raise ImportFileError(
                _("%(file)s: the columns %(columns)s could each be %(label)s: say which one is "
                  "with --columns %(field)s=COLUMN")
                % {"file": name, "columns": ", ".join(repr(header[i].strip()) for i in at),
                   "label": field_label(field), "field": field})
        if at:
            fields[field] = at[0]
    missing = [f for f in REQUIRED if f not in fields]
    if missing:
        problem = (_("%(file)s has no column for %(fields)s (its columns are: %(headers)s): "
                     "if it has them under other names, say which with --columns %(example)s.")
                   % {"file": name, "headers": shown,
                      "fields": ", ".join(field_label(f) for f in missing),
                      "example": ",".join(f + "=" + _("COLUMN") for f in missing)})
        if "id" in missing:
            problem += " " + _(
                "docagent does not number patients itself: a patient must keep the same id "
                "at every import (it names the patient's folder), so export the patient number "
                "your practice software gives each patient with the list.")
        raise ImportFileError(problem)
    taken = set(fields.values())
    extras = {i: h.strip().lower() for i, h in enumerate(header)
              if i not in taken and h.strip()}
    return Layout(fields, extras)


# --------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------

_ISO = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")
_DAY_FIRST = re.compile(r"([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]{4})")
_SHORT_YEAR = re.compile(r"([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]{2})")
_MIDNIGHT = re.compile(r"(?:[ T]00:00(?::00(?:\.0+)?)?)$")


class DateProblem(ValueError):
    """A birth date that cannot be taken: `written_as_date` when it is written as a date
    (impossible, or a two-digit year), not just some other text."""

    def __init__(self, message: str, *, written_as_date: bool) -> None:
        super().__init__(message)
        self.message = message
        self.written_as_date = written_as_date


def _month_name(month: int) -> str:
    names = (_("January"), _("February"), _("March"), _("April"), _("May"), _("June"),
             _("July"), _("August"), _("September"), _("October"), _("November"),
             _("December"))
    return names[month - 1]


def read_date(text: str) -> date:
    """A birth date as a directory writes it (see the module's docstring)."""
    value = _MIDNIGHT.sub("", text.strip())
    shown = repr(text.strip())
    if m := _ISO.fullmatch(value):
        year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    elif m := _DAY_FIRST.fullmatch(value):
        day, month, year = int(m.group(1)), int(m.group(3)), int(m.group(4))
    elif _SHORT_YEAR.fullmatch(value):
        raise DateProblem(
            _("%(value)s has a two-digit year: write the year in full, as 12/03/1961")
            % {"value": shown}, written_as_date=True)
    else:
        raise DateProblem(_("%(value)s is not a date: write it as 12/03/1961 or 1961-03-12")
                          % {"value": shown}, written_as_date=False)
    if not 1 <= month <= 12:
        raise DateProblem(
            _("%(value)s is impossible: there is no month %(month)d (dates are read day "
              "first, as 25/03/1961)") % {"value": shown, "month": month},
            written_as_date=True)
    try:
        return date(year, month, day)
    except ValueError:
        raise DateProblem(
            _("%(value)s is impossible: %(day)d %(month)s %(year)d does not exist")
            % {"value": shown, "day": day, "month": _month_name(month), "year": year},
            written_as_date=True) from None
