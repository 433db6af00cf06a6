"""The line a Telegram message about a document gets once the document is decided: what was
decided and who decided it, in place of the buttons that asked. The same line whether the
decision was a press under this message, under another one (another chat, a search answer),
`docagent review resolve` in a shell or a re-match after an import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent import disclosure
from agent.i18n import _
from agent.ops.rematch import ACTOR as REMATCH


def where(payload: Mapping[str, Any], phi: str) -> str | None:
    """The patient a decided document is filed under, as the chat may name them; None for
    a document filed under no patient."""
    patient = payload.get("patient")
    return disclosure.chosen(patient, phi) if isinstance(patient, Mapping) and patient \
        else None


def who(actor: str, name: str | None = None) -> str:
    """Who decided: "Claire (telegram:4242)" for a press seen here, else the actor as the
    audit log has it ("shell:root", "telegram:4242"), a re-match in words."""
    if actor == REMATCH:
        return _("a new match after a directory import")
    return f"{name} ({actor})" if name else actor


def note(payload: Mapping[str, Any], phi: str, *, name: str | None = None) -> str:
    """"✔ Filed under DUPONT Jean, 1961-03-12 (#P001) by Claire (telegram:4242)." from a
    decided document's record (its `patient` and `decision`)."""
    decision = payload.get("decision") or {}
    by = who(str(decision.get("by") or "?"), name)
    patient = where(payload, phi)
    if patient is None:
        return _("✔ Filed as unassigned by %(who)s.") % {"who": by}
    return _("✔ Filed under %(where)s by %(who)s.") % {"where": patient, "who": by}
