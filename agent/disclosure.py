"""What a patient's identity becomes in a message, under each DOCAGENT_PHI setting.

Under "full" a chat is told what the server knows: names, birth dates, file names, and the
first page on request. Under "minimal" the chat may not carry a patient's identity: a person
is their initials and directory id ("J.D. (#P001)"; a button adds the birth year, "J.D. 1961
#P001", so that namesakes can be told apart), a name read is its initials, a file name
(a scanner or a person often names the file after the patient) is the document's id, and the
first page is never sent (the scan shows who it is). Every message, button and answer of the
bot asks this module; what was *read* in a reason is kept out by `agent.reasons`, which asks
`minimal()` too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from agent.i18n import _, day

FULL = "full"
MINIMAL = "minimal"
SETTINGS = (FULL, MINIMAL)
MAX_BUTTON = 60  # characters of a candidate's button under "full"


def minimal(phi: str) -> bool:
    return phi == MINIMAL


def shows_scan(phi: str) -> bool:
    """Whether the first page may be sent to the chat ("Open")."""
    return not minimal(phi)


def initials(first: object, last: object) -> str:
    """"J.D." for Jean DUPONT: first name first, whatever was given of the two."""
    parts = (str(p).strip() for p in (first, last) if p)
    return "".join(f"{p[:1].upper()}." for p in parts if p)


def _born(name: str, birth: object) -> str:
    """"DUPONT Jean, born 1961-03-12" ("né(e) le 12/03/1961" in French)."""
    if not birth:
        return name
    return _("%(name)s, born %(date)s") % {"name": name, "date": day(str(birth))}


def person(patient: Mapping[str, Any] | None, phi: str) -> str:
    """A directory record in a message: "DUPONT Jean, born 1961-03-12 (#P001)" or
    "J.D. (#P001)"."""
    if not patient:
        return "?"
    if minimal(phi):
        return f"{initials(patient.get('first_name'), patient.get('last_name'))} " \
               f"(#{patient.get('id')})"
    name = f"{str(patient.get('last_name', '')).upper()} {patient.get('first_name', '')}"
    return f"{_born(name, patient.get('birth_date'))} (#{patient.get('id')})"


def name_read(fields: Mapping[str, Any], phi: str) -> str:
    """What a document says about its patient: "DUPONT Jean, born 1961-03-12", or "J.D."."""
    last = (fields.get("last_name") or {}).get("value")
    first = (fields.get("first_name") or {}).get("value")
    birth = (fields.get("birth_date") or {}).get("value")
    if not last and not first:
        return _("no name read")
    if minimal(phi):
        return initials(first, last)
    return _born(" ".join(x for x in (str(last or "").upper(), first or "") if x), birth)


def file_name(name: object, phi: str, document_id: object | None) -> str:
    """A file's name, or under minimal the document it became ("document <id>"); "a file"
    for one that became no document of its own (a duplicate)."""
    if not minimal(phi):
        return str(name)
    if document_id is None:
        return _("a file")
    return _("document %(id)s") % {"id": document_id}


OLDEST_YEAR_SHOWN = 89  # HIPAA's Safe Harbor: an age over 89 is only "90 or older"


def birth_year(birth_date: object, today: date | None = None) -> str:
    """What minimal shows of a birth date: its year ("1961"), "90+" for someone 90 or
    older (a year that old singles a person out), "" when there is none."""
    try:
        born = date.fromisoformat(str(birth_date))
    except ValueError:
        return ""
    today = today or date.today()
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return "90+" if age > OLDEST_YEAR_SHOWN else str(born.year)


def button(candidate: Mapping[str, Any], phi: str) -> str:
    """A candidate's button: "DUPONT Jean, 1961-03-12", or "J.D. 1961 #P001" (two namesakes
    are told apart by their birth year and the practice's own id, never by a name)."""
    last = str(candidate.get("last_name") or "").strip()
    first = str(candidate.get("first_name") or "").strip()
    if minimal(phi):
        year = birth_year(candidate.get("birth_date"))
        return " ".join(x for x in (initials(first, last), year, f"#{candidate.get('id')}") if x)
    birth = candidate.get("birth_date")
    label = f"{last.upper()} {first}".strip() + (f", {day(str(birth))}" if birth else "")
    return label[:MAX_BUTTON]


def chosen(candidate: Mapping[str, Any], phi: str) -> str:
    """The candidate a press filed under, in the answer and the edited message: the button's
    words, with the directory id that the full button leaves out."""
    label = button(candidate, phi)
    return label if minimal(phi) else f"{label} (#{candidate.get('id')})"
