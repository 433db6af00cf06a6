"""The words of the daily digest, from the figures `agent.ops.digest.build` put in the outbox."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent import disclosure, reasons
from agent.ledger import money


def render_digest(payload: Mapping[str, Any], *, phi: str = disclosure.FULL) -> str:
    counts = payload.get("counts") or {}
    total = sum(int(v) for v in counts.values())
    lines = [f"Daily summary for {payload.get('day', '?')}: {total} document(s) — "
             + ", ".join(f"{counts.get(k, 0)} {k}"
                         for k in ("filed", "review", "failed", "duplicate")) + "."]
    pending = int(payload.get("pending_review") or 0)
    if pending:
        since = str(payload.get("oldest_review_since") or "")[:10]
        lines.append(f"Waiting for a decision: {pending} (oldest since {since}).")
    else:
        lines.append("Waiting for a decision: none.")
    if payload.get("deferred_now"):
        lines.append(f"Deferred (the machine's fault, retried by itself): "
                     f"{payload['deferred_now']}.")
    failures = list(payload.get("failures") or [])
    if failures:
        lines.append("Failed:")
        for failure in failures:
            name = disclosure.file_name(failure.get("name"), phi,
                                        str(failure.get("document_id")))
            why = reasons.failure(str(failure.get("kind") or "document"),
                                  str(failure.get("reason") or ""))
            lines.append(f"  - {name}: {why.text(phi)} [{failure.get('kind')}]")
        more = int(payload.get("failures_total") or 0) - len(failures)
        if more > 0:
            lines.append(f"  … and {more} more (docagent failed list)")
    cost = payload.get("cost") or {}
    services = ", ".join(f"{k} {money(float(v))}" for k, v in (cost.get("services") or {}).items())
    lines.append(f"Cost: {money(float(cost.get('total') or 0))} {cost.get('currency', 'EUR')}"
                 + (f" ({services})" if services else "") + ".")
    return "\n".join(lines)
