"""The words of each notification, from an outbox row's kind and payload.

`phi="minimal"` keeps names and birth dates out, for practices whose chat may not carry
patient identity: people, names read and file names are written by `agent.disclosure`, and
reasons are rendered from their codes (`agent.reasons`), never from the sentence stored with
the document, which names what was read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent import disclosure, errors, evidence, reasons
from agent.config import DEFAULT_MIN_NAME_CONFIDENCE
from agent.i18n import _, ngettext
from agent.notify.digest_text import render_digest
from agent.stages.doctype import in_words as type_in_words
from agent.stages.match import Candidate
from agent.stages.record import Record


def _chosen_evidence(record: Record, phi: str) -> str:
    """" Last name, first name and birth date agree." ("" without evidence)."""
    said = evidence.in_words(record.evidence(), phi)
    return f" {evidence.sentence(said)}." if said else ""


def _doubt(payload: Mapping[str, Any]) -> str:
    """A word of warning when the identity was read under the name rule's threshold: the
    one the match was decided with (DOCAGENT_MIN_NAME_CONFIDENCE, kept in its evidence), or
    the default for a payload written before the match kept it."""
    score = payload.get("identity_confidence")
    threshold = (payload.get("match") or {}).get("min_name_confidence")
    if not isinstance(threshold, int | float):
        threshold = DEFAULT_MIN_NAME_CONFIDENCE
    if not isinstance(score, int | float) or score >= threshold:
        return ""
    return " " + _("Low-confidence reading (%(score).0f/100): check the name and birth date "
                   "against the scan.") % {"score": score}


def _file(payload: Mapping[str, Any], phi: str) -> str:
    name = payload.get("original_name") or payload.get("name") or "?"
    return disclosure.file_name(name, phi, payload.get("document_id", "?"))


def _pages(payload: Mapping[str, Any]) -> str:
    pages = payload.get("pages")
    if not isinstance(pages, int):
        return _("? pages")
    return ngettext("%(n)d page", "%(n)d pages", pages) % {"n": pages}


def render(kind: str, payload: Mapping[str, Any], *, phi: str = disclosure.FULL) -> str:
    doc = payload.get("document_id", "?")
    name = _file(payload, phi)
    who = disclosure.person(payload.get("patient"), phi)
    if kind == "filed":
        return _("Filed: %(file)s (%(type)s, %(pages)s) under %(patient)s.%(evidence)s "
                 "[%(id)s]") % {
            "file": name, "type": type_in_words(payload.get("document_type")),
            "pages": _pages(payload), "patient": who,
            "evidence": _chosen_evidence(Record.from_json(payload), phi), "id": doc}
    if kind in ("resolved", "rematched"):
        decision = payload.get("decision") or {}
        values = {"patient": who, "by": decision.get("by", "?"), "file": name,
                  "evidence": _chosen_evidence(Record.from_json(payload), phi), "id": doc}
        if payload.get("patient"):
            return _("Filed under %(patient)s by %(by)s: %(file)s.%(evidence)s [%(id)s]") % values
        return _("Filed as unassigned by %(by)s: %(file)s.%(evidence)s [%(id)s]") % values
    if kind == "review":
        candidates = (payload.get("match") or {}).get("candidates") or []
        lines = [_("Needs a decision: %(file)s — read: %(read)s") % {
                     "file": name, "read": disclosure.name_read(payload.get("fields") or {}, phi)},
                 _("Why: %(reason)s.%(doubt)s [%(id)s]") % {
                     "reason": reasons.of_payload(payload).text(phi), "doubt": _doubt(payload),
                     "id": doc}]
        for c in candidates[:3]:
            said = evidence.in_words(Candidate.from_dict(c).evidence(), phi)
            lines.append("  " + (_("candidate: %(patient)s — %(evidence)s") if said else
                                 _("candidate: %(patient)s")) % {
                "patient": disclosure.person(c, phi), "evidence": said})
        return "\n".join(lines)
    if kind == "failed":
        why = reasons.of_payload({"outcome": "failed", **payload}).text(phi)
        action = _action(payload)
        return _("Failed: %(file)s — %(reason)s.%(action)s [%(id)s]") % {
            "file": name, "reason": why, "action": f" {action}" if action else "", "id": doc}
    if kind == "health":
        return str(payload.get("text") or _("docagent health changed"))
    if kind == "duplicate":
        # The document named is the earlier one: the file that arrived again became none.
        copy = disclosure.file_name(payload.get("name", "?"), phi, None)
        text = _("Duplicate: %(file)s has the same content as an earlier document [%(id)s]; "
                 "not stored twice.") % {"file": copy, "id": doc}
        if payload.get("retried_now"):
            text += " " + _("That document was still waiting (deferred); it is tried again now.")
        return text
    if kind == "digest":
        return render_digest(payload, phi=phi)
    if disclosure.minimal(phi):
        return f"{kind} [{doc}]"  # a kind this module does not know may carry anything
    return f"{kind}: {dict(payload)}"


def _action(payload: Mapping[str, Any]) -> str:
    """What to do about a failure, in the staff's language: from its kind, or as it was kept
    for a kind this version does not know."""
    kind = errors.kind_class(str(payload.get("kind") or ""))
    return errors.advice(kind) if kind is not None and kind.action else \
        str(payload.get("action") or "")


MAX_TEXT = 4096  # Telegram's limit for one message


def fit(text: str, limit: int = MAX_TEXT) -> str:
    """Trim a text to `limit` characters at a line end, saying that it was trimmed."""
    if len(text) <= limit:
        return text
    note = "\n" + _("… (trimmed: see the server for the rest)")
    cut = text[: limit - len(note)]
    if "\n" in cut[len(cut) // 2:]:
        cut = cut[: cut.rindex("\n")]
    return cut + note


def render_filed_group(payloads: list[Mapping[str, Any]], *, phi: str = disclosure.FULL) -> str:
    """Many documents filed at once: one message, a line each, rather than a ping each."""
    lines = [ngettext("%(n)d document filed:", "%(n)d documents filed:", len(payloads))
             % {"n": len(payloads)}]
    for number, payload in enumerate(payloads):
        line = "- " + _("%(file)s (%(type)s) under %(patient)s [%(id)s]") % {
            "file": _file(payload, phi), "type": type_in_words(payload.get("document_type")),
            "patient": disclosure.person(payload.get("patient"), phi),
            "id": payload.get("document_id", "?")}
        if sum(len(x) + 1 for x in lines) + len(line) > MAX_TEXT - 60:
            left = len(payloads) - number
            lines.append(ngettext("… and %(n)d more (/status)", "… and %(n)d more (/status)",
                                  left) % {"n": left})
            break
        lines.append(line)
    return "\n".join(lines)

