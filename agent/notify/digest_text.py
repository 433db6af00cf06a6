"""The words of the daily digest, from the figures `agent.ops.digest.build` put in the outbox."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent import disclosure, reasons
from agent.i18n import _, day, ngettext
from agent.ledger import money


def _counts(counts: Mapping[str, Any]) -> str:
    """"3 filed, 1 to decide, 0 failed, 0 duplicates": each count in a phrase for its number."""
    def n(key: str) -> int:
        return int(counts.get(key, 0))
    return ", ".join(phrase % {"n": number} for phrase, number in (
        (ngettext("%(n)d filed", "%(n)d filed", n("filed")), n("filed")),
        (ngettext("%(n)d to decide", "%(n)d to decide", n("review")), n("review")),
        (ngettext("%(n)d failed", "%(n)d failed", n("failed")), n("failed")),
        (ngettext("%(n)d duplicate", "%(n)d duplicates", n("duplicate")), n("duplicate"))))


def render_digest(payload: Mapping[str, Any], *, phi: str = disclosure.FULL) -> str:
    counts = payload.get("counts") or {}
    total = sum(int(v) for v in counts.values())
    lines = [ngettext("Daily summary for %(day)s: %(n)d document — %(counts)s.",
                      "Daily summary for %(day)s: %(n)d documents — %(counts)s.", total) % {
        "day": day(str(payload.get("day") or "?")), "n": total,
        "counts": _counts(counts)}]
    pending = int(payload.get("pending_review") or 0)
    if pending:
        since = day(str(payload.get("oldest_review_since") or "")[:10])
        lines.append(_("Waiting for a decision: %(n)d (the oldest since %(day)s).")
                     % {"n": pending, "day": since})
    else:
        lines.append(_("Waiting for a decision: none."))
    if payload.get("deferred_now"):
        lines.append(_("Deferred (the machine's fault, retried by itself): %(n)d.")
                     % {"n": int(payload["deferred_now"])})
    failures = list(payload.get("failures") or [])
    if failures:
        lines.append(_("Failed:"))
        for failure in failures:
            name = disclosure.file_name(failure.get("name"), phi,
                                        str(failure.get("document_id")))
            why = reasons.from_dict(failure.get("reason_code")) or reasons.failure(
                str(failure.get("kind") or "document"), str(failure.get("reason") or ""))
            lines.append("  - " + _("%(file)s: %(reason)s [%(kind)s]") % {
                "file": name, "reason": why.text(phi), "kind": failure.get("kind")})
        more = int(payload.get("failures_total") or 0) - len(failures)
        if more > 0:
            lines.append("  " + ngettext("… and %(n)d more (/failed)",
                                         "… and %(n)d more (/failed)", more) % {"n": more})
    cost = payload.get("cost") or {}
    services = ", ".join(f"{k} {money(float(v))}" for k, v in (cost.get("services") or {}).items())
    lines.append(_("Cost: %(total)s %(currency)s%(services)s.") % {
        "total": money(float(cost.get('total') or 0)), "currency": cost.get("currency", "EUR"),
        "services": f" ({services})" if services else ""})
    return "\n".join(lines)
