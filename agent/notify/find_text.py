"""The words of /find on Telegram: the patients that fit, then their documents, numbered as
their Open buttons are.

Under DOCAGENT_PHI=minimal a patient is initials and directory id (`agent.disclosure.person`),
a document its date, type and id, nothing typed is repeated, and there is no Open button.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent import disclosure
from agent.i18n import _, day, ngettext
from agent.ops.finding import Answer, Hit
from agent.stages.doctype import in_words

MAX_PATIENTS = 5  # patients listed with their documents: more, and the query is narrowed


def usage(phi: str) -> str:
    if disclosure.minimal(phi):
        return _("usage: /find DIRECTORY_ID [words of the text], e.g. /find P0042 scanner "
                 "(names and birth dates stay out of this chat)")
    return _("usage: /find NAME [words of the text], e.g. /find dupont jean irm genou; or "
             "/find 12/03/1961, /find P0042, /find irm genou")


def help_line(phi: str) -> str:
    """/help's line on /find."""
    if disclosure.minimal(phi):
        return _("/find DIRECTORY_ID [words of the text] lists that patient's documents "
                 "(initials and ids only; documents are not sent here).")
    return _("/find NAME [words of the text] lists the patients that fit and their documents, "
             "newest first, each with an Open button that sends the PDF here; /find 12/03/1961 "
             "and /find P0042 work too, and /find irm genou searches every document's text.")


def id_only() -> str:
    """Under minimal, a /find that does not start with a directory id."""
    return _("No patient has that directory id. Names and birth dates stay out of this chat: "
             "/find takes the patient's directory id, then words of the text if you like.")


def label(hit: Hit) -> str:
    """What tells a document apart on its button: "2026-11-05 lab result"."""
    return f"{day(hit.entry.sort_date)} {in_words(hit.entry.document_type)}"


def _line(number: int, hit: Hit, phi: str, *, with_patient: bool) -> str:
    entry = hit.entry
    pages = ngettext("%(n)d page", "%(n)d pages", entry.pages or 0) % {"n": entry.pages or 0}
    parts = [day(entry.sort_date), in_words(entry.document_type), pages]
    if with_patient:
        if entry.state == "review":
            parts.append(_("waiting for a decision"))
        elif hit.patient is not None:
            parts.append(disclosure.person(hit.patient.as_dict(), phi))
        elif entry.patient_id:
            parts.append(f"#{entry.patient_id}")
        else:
            parts.append(_("unassigned"))
    return f"{number}. " + " · ".join(parts) + f" [{entry.document_id}]"


def answer(found: Answer, shown: Sequence[Hit], phi: str) -> str:
    """The answer to /find: the patients, then the documents shown (newest first)."""
    minimal = disclosure.minimal(phi)
    asked = " ".join(v for v in (found.ask.patient, found.ask.words) if v)[:60]
    lines: list[str] = []
    if found.ask.patient and not found.patients:
        return _("No patient in the directory matches that.") if minimal else \
            _("No patient in the directory matches “%(query)s”.") % {"query": asked}
    if not found.listed:
        lines.append(ngettext("%(n)d patient matches: add the first name or the birth date.",
                              "%(n)d patients match: add the first name or the birth date.",
                              len(found.patients)) % {"n": len(found.patients)})
        lines += [disclosure.person(p.as_dict(), phi) for p in found.patients[:MAX_PATIENTS]]
        if len(found.patients) > MAX_PATIENTS:
            more = len(found.patients) - MAX_PATIENTS
            lines.append(ngettext("… and %(n)d more", "… and %(n)d more", more) % {"n": more})
        return "\n".join(lines)
    lines += [disclosure.person(p.as_dict(), phi) for p in found.patients]
    if not shown:
        if found.ask.words and not minimal:
            lines.append(_("No document holds “%(words)s”.") % {"words": found.ask.words[:60]})
        else:
            lines.append(_("No document."))
    elif len(shown) < found.total:
        lines.append(_("The newest %(shown)d of %(total)d documents:")
                     % {"shown": len(shown), "total": found.total})
    else:
        lines.append(ngettext("%(n)d document:", "%(n)d documents, newest first:", len(shown))
                     % {"n": len(shown)})
    several = len(found.patients) != 1
    lines += [_line(n, hit, phi, with_patient=several) for n, hit in enumerate(shown, 1)]
    if shown and not minimal:
        lines.append(_("Open sends the PDF into this chat."))
    if found.incomplete:
        lines.append(_("(The search index is still being built: older documents may be "
                       "missing.)"))
    return "\n".join(lines)
