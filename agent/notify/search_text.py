"""The words of a search for a review document's patient on Telegram: the prompt, the answer
with the patients found (each with its evidence, as a candidate has), and why nothing was.

Under DOCAGENT_PHI=minimal nothing here repeats what was typed (it may be a name) and patients
are shown as the buttons show them (`agent.disclosure.chosen`: initials, birth year, id).
"""

from __future__ import annotations

from agent import disclosure
from agent.evidence import in_words
from agent.i18n import _, ngettext
from agent.ops.lookup import Lookup


def prompt(document: str, document_id: str, phi: str) -> str:
    """Sent under a press on "Another patient…": the message to reply to."""
    if disclosure.minimal(phi):
        text = _("Which patient is %(document)s about? Reply to this message with the "
                 "patient's directory id, as your practice software shows it (names and "
                 "birth dates stay out of this chat).")
    else:
        text = _("Which patient is %(document)s about? Reply to this message with the last "
                 "name (and the first name), the birth date (31/12/1961) or the directory id.")
    return f"{text % {'document': document}} [{document_id}]"


def placeholder(phi: str) -> str:
    """What the phone's input field shows before anything is typed (64 characters at most)."""
    return "P0042" if disclosure.minimal(phi) else "DUPONT Jean 31/12/1961"


def help_line(phi: str) -> str:
    """/help's line on choosing a patient who is not among the buttons."""
    if disclosure.minimal(phi):
        return _("\"Another patient…\" (or a reply to a review message with a directory id) "
                 "files the document under a patient who is not among the buttons.")
    return _("\"Another patient…\" (or a reply to a review message with a name, a birth date "
             "or a directory id) finds a patient who is not among the buttons.")


def press_answer(phi: str) -> str:
    """The short answer to the press itself."""
    if disclosure.minimal(phi):
        return _("Reply to my message with the patient's directory id.")
    return _("Reply to my message with the patient's name, birth date or directory id.")


def answer(found: Lookup, query: str, document: str, document_id: str, phi: str) -> str:
    """The patients found, numbered as their buttons are; or why there are none."""
    minimal = disclosure.minimal(phi)
    query = " ".join(query.split())[:60]  # one line, whatever was typed
    if found.by == "refused":
        return _("No patient has that directory id. Names and birth dates stay out of "
                 "this chat: search with the patient's directory id only.") + \
            f" [{document_id}]"
    if found.by == "nothing":
        return _("Give a last name (2 letters at least), a birth date (31/12/1961) or a "
                 "directory id.") + f" [{document_id}]"
    if not found.hits:
        return _("No patient in the directory matches “%(query)s”. Reply again with "
                 "another spelling, the birth date (31/12/1961) or the directory id.") % {
            "query": query} + f" [{document_id}]"
    count = len(found.hits) + found.more
    if minimal:
        head = ngettext("%(n)d patient found for %(document)s:",
                        "%(n)d patients found for %(document)s:", count)
    else:
        head = ngettext("%(n)d patient found for “%(query)s” (%(document)s):",
                        "%(n)d patients found for “%(query)s” (%(document)s):", count)
    lines = [head % {"n": count, "query": query, "document": document}]
    for number, hit in enumerate(found.hits, 1):
        said = in_words(hit.evidence(), phi)
        lines.append(f"{number}. {disclosure.chosen(hit.as_dict(), phi)}"
                     + (f" — {said}" if said else ""))
    if found.more:
        lines.append(ngettext("… and %(n)d more: add the first name or the birth date.",
                              "… and %(n)d more: add the first name or the birth date.",
                              found.more) % {"n": found.more})
    lines.append(_("Tap a patient to file the document under them.") + f" [{document_id}]")
    return "\n".join(lines)


def not_about_a_document() -> str:
    return _("To search for a patient, reply to a message that asks for a decision.")
