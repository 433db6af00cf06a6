"""The costs report: what the ledger's lines of a day or a month add up to, by service.

One report for both who ask: `docagent costs` (a table for a terminal, or JSON) and the bot's
`/costs` (a few short lines for a phone). Days are the server's local days.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from agent import i18n, ledger
from agent.i18n import _, ngettext
from agent.ledger import money

DAY_WORDS = "yesterday|today|YYYY-MM-DD"


@dataclass(frozen=True)
class Period:
    key: str  # "day" or "month": the report's JSON names it so
    label: str  # "2026-12-01", "2026-12"
    start: str  # UTC stamps: the period is [start, end)
    end: str


def named_day(word: str) -> date | None:
    """"today", "yesterday" or an ISO date; None for anything else."""
    if word == "today":
        return date.today()
    if word == "yesterday":
        return date.today() - timedelta(days=1)
    try:
        return date.fromisoformat(word)
    except ValueError:
        return None


def day(when: date) -> Period:
    return Period("day", when.isoformat(), *ledger.day_bounds(when))


def month(text: str) -> Period:
    """The month "YYYY-MM"; ValueError for anything else."""
    year, number = (int(part) for part in text.split("-"))
    start, end = ledger.month_bounds(year, number)
    return Period("month", f"{year:04d}-{number:02d}", start, end)


def report(log_dir: Path, period: Period) -> dict[str, Any]:
    """The period, its bounds and the ledger's totals: what `docagent costs --json` prints."""
    return {period.key: period.label, "from": period.start, "to": period.end,
            **ledger.summarize(ledger.read_range(log_dir, period.start, period.end))}


def _units(figures: Mapping[str, Any]) -> str:
    return ", ".join(f"{unit} {value:g}" for unit, value in figures["units"].items())


def render(costs: Mapping[str, Any], *, chat: bool = False) -> str:
    """A report in words: a table for the terminal, or (`chat`) lines short enough for a
    phone's screen."""
    label = costs.get("day") or costs.get("month")
    label = i18n.day(label) if costs.get("day") else label
    currency, total = costs["currency"], costs["total"]
    if chat:
        lines = [_("Costs %(period)s: %(cost)s %(currency)s (%(calls)s, %(errors)s)") % {
            "period": label, "cost": money(total['cost']), "currency": currency,
            "calls": _calls(total["calls"]), "errors": _errors(total["errors"])}]
        for name, figures in costs["services"].items():
            units = _units(figures)
            lines.append("- " + _("%(service)s: %(cost)s — %(calls)s") % {
                "service": name, "cost": money(figures['cost']),
                "calls": _calls(figures["calls"])} + (f" ({units})" if units else ""))
        return "\n".join(lines)
    service, calls, errors = _("service"), _("calls"), _("errors")
    lines = [_("costs %(period)s") % {"period": label},
             f"{service:<10}{calls:>7} {errors:>6}{currency:>10}"]
    for name, figures in costs["services"].items():
        lines.append(f"{name:<10}{figures['calls']:>7}{figures['errors']:>7}"
                     f"{money(figures['cost']):>10}")
        units = _units(figures)
        if units:
            lines.append(f"  {units}")
    sum_word = _("total")
    lines.append(f"{sum_word:<10}{total['calls']:>7}{total['errors']:>7}"
                 f"{money(total['cost']):>10}")
    return "\n".join(lines)


def _calls(n: int) -> str:
    return ngettext("%(n)d call", "%(n)d calls", n) % {"n": n}


def _errors(n: int) -> str:
    return ngettext("%(n)d error", "%(n)d errors", n) % {"n": n}
