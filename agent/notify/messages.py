"""The words of each notification, from an outbox row's kind and payload.

`phi="minimal"` keeps names and birth dates out, for practices whose chat may not carry
patient identity: people, names read and file names are written by `agent.disclosure`, and
reasons are rendered from their codes (`agent.reasons`), never from the sentence stored with
the document, which names what was read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent import disclosure, reasons
from agent.config import DEFAULT_MIN_NAME_CONFIDENCE
from agent.notify.digest_text import render_digest
from agent.stages.match import Candidate
from agent.stages.record import Record


def _evidence(evidence: Mapping[str, list[str]]) -> str:
    """What agreed and what did not, in a few words: "agrees: last_name, first_name"."""
    parts = []
    for label, key in (("agrees", "agree"), ("differs", "disagree"), ("not read", "missing")):
        values = evidence.get(key) or []
        if values:
            parts.append(f"{label}: {', '.join(values)}")
    parts.extend(evidence.get("notes") or [])
    return "; ".join(parts)


def _chosen_evidence(record: Record) -> str:
    evidence = record.evidence()
    return f" Evidence: {_evidence(evidence)}." if evidence else ""


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
    return (f" Low-confidence reading ({score:.0f}/100): check the name and birth date "
            "against the scan.")


def _file(payload: Mapping[str, Any], phi: str) -> str:
    name = payload.get("original_name") or payload.get("name") or "?"
    return disclosure.file_name(name, phi, payload.get("document_id", "?"))


def render(kind: str, payload: Mapping[str, Any], *, phi: str = disclosure.FULL) -> str:
    doc = payload.get("document_id", "?")
    name = _file(payload, phi)
    who = disclosure.person(payload.get("patient"), phi)
    if kind == "filed":
        return (f"Filed: {name} ({payload.get('document_type', 'other')}, "
                f"{payload.get('pages', '?')} p.) under {who}."
                f"{_chosen_evidence(Record.from_json(payload))} [{doc}]")
    if kind in ("resolved", "rematched"):
        decision = payload.get("decision") or {}
        where = f"under {who}" if payload.get("patient") else "as unassigned"
        return (f"Filed {where} by {decision.get('by', '?')}: {name}."
                f"{_chosen_evidence(Record.from_json(payload))} [{doc}]")
    if kind == "review":
        candidates = (payload.get("match") or {}).get("candidates") or []
        why = reasons.of_payload(payload).text(phi)
        read = disclosure.name_read(payload.get("fields") or {}, phi)
        lines = [f"Needs a decision: {name} — read: {read}. "
                 f"Why: {why}.{_doubt(payload)} [{doc}]"]
        for c in candidates[:3]:
            lines.append(f"  candidate: {disclosure.person(c, phi)} — "
                         f"{_evidence(Candidate.from_dict(c).evidence())}")
        lines.append(f"  decide: docagent review resolve {doc} PATIENT_ID (or --none)")
        return "\n".join(lines)
    if kind == "failed":
        why = reasons.of_payload({"outcome": "failed", **payload}).text(phi)
        return f"Failed: {name} — {why}. {payload.get('action', '')} [{doc}]".strip()
    if kind == "health":
        return str(payload.get("text", "docagent health changed"))
    if kind == "duplicate":
        # The document named is the earlier one: the file that arrived again became none.
        copy = disclosure.file_name(payload.get("name", "?"), phi, None)
        text = (f"Duplicate: {copy} has the same content as an earlier document [{doc}]; not "
                "stored twice.")
        if payload.get("retried_now"):
            text += " That document was still waiting (deferred); it is tried again now."
        return text
    if kind == "digest":
        return render_digest(payload, phi=phi)
    if disclosure.minimal(phi):
        return f"{kind} [{doc}]"  # a kind this module does not know may carry anything
    return f"{kind}: {dict(payload)}"


MAX_TEXT = 4096  # Telegram's limit for one message


def fit(text: str, limit: int = MAX_TEXT) -> str:
    """Trim a text to `limit` characters at a line end, saying that it was trimmed."""
    if len(text) <= limit:
        return text
    note = "\n… (trimmed: see the server for the rest)"
    cut = text[: limit - len(note)]
    if "\n" in cut[len(cut) // 2:]:
        cut = cut[: cut.rindex("\n")]
    return cut + note


def render_filed_group(payloads: list[Mapping[str, Any]], *, phi: str = disclosure.FULL) -> str:
    """Many documents filed at once: one message, a line each, rather than a ping each."""
    lines = [f"{len(payloads)} documents filed:"]
    for number, payload in enumerate(payloads):
        doc = payload.get("document_id", "?")
        line = (f"- {_file(payload, phi)} ({payload.get('document_type', 'other')}) under "
                f"{disclosure.person(payload.get('patient'), phi)} [{doc}]")
        if sum(len(x) + 1 for x in lines) + len(line) > MAX_TEXT - 60:
            lines.append(f"… and {len(payloads) - number} more (docagent status)")
            break
        lines.append(line)
    return "\n".join(lines)


def evidence_words(evidence: Mapping[str, list[str]]) -> str:
    """A candidate's evidence as the review message writes it, for other messages that show
    a patient against what was read (a search's answer)."""
    return _evidence(evidence)
