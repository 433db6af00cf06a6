"""The cost ledger, `api_costs.jsonl`: one JSON line per external call, and per document's OCR.

Every call to something outside (the Bot API, through `notify.transport.LedgerRequest`; a
paid API) goes through `Ledger.call()`, which times it and writes its line even when the call
raises:

    with ledger.call("telegram", "sendMessage", units={"message": 1}) as call:
        response = post(...)
        call.details["status"] = response.status

A line: `ts` (UTC, when the call ended), `service`, `operation`, `duration_ms`, `outcome`
(`ok` or `error`, with `error` naming the exception), `units` (what was consumed), `cost` and
`currency`. The cost is priced when the line is written, so a later change of price does not
rewrite history. Prices come from configuration: `DOCAGENT_PRICE_<SERVICE>_<UNIT>` euros per
unit, and the server's monthly price, which turns the CPU seconds of OCR into money.

Reading a day or a month never loads the whole file: lines are written under a lock with the
time taken inside it, so the file is in time order, and the first line of a period is found
by bisection on byte offsets (a few dozen reads, whatever the size), then only that period is
streamed. A year of a busy practice is ~70,000 lines and ~20 MB; no index file to keep in
step, nothing to rebuild after a crash. A line torn by a `kill -9` is skipped by readers and
ended by the next writer.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from agent import modes
from agent.i18n import decimal

FILE_NAME = "api_costs.jsonl"
CURRENCY = "EUR"
COST_DECIMALS = 8  # kept in lines and totals: an OCR page costs a few millionths of a euro
SECONDS_PER_MONTH = 365.25 / 12 * 86400
_LINEAR_SPAN = 64 * 1024  # below this many bytes, reading beats seeking


@dataclass(frozen=True)
class Prices:
    """What things cost: per unit of a service, and the server's CPU by the second."""

    per_unit: Mapping[tuple[str, str], float] = field(default_factory=dict)
    server_eur_per_month: float = 0.0
    server_cores: int = 1

    @property
    def cpu_second(self) -> float:
        """One CPU-second's share of the monthly price: the server sells cores x seconds."""
        return self.server_eur_per_month / (SECONDS_PER_MONTH * max(self.server_cores, 1))

    def cost(self, service: str, units: Mapping[str, float]) -> float:
        total = 0.0
        for unit, quantity in units.items():
            if service == "ocr" and unit == "cpu_seconds":
                total += quantity * self.cpu_second
            else:
                total += quantity * self.per_unit.get((service, unit), 0.0)
        return total


def prices_from(settings: Any) -> Prices:
    """Prices from `config.Settings` (typed loosely so this module stays a leaf)."""
    return Prices(
        per_unit={(s, u): p for s, u, p in settings.unit_prices},
        server_eur_per_month=float(settings.server_eur_per_month),
        server_cores=int(settings.server_cores),
    )


@dataclass
class Call:
    """Filled in by the caller inside `Ledger.call()`."""

    units: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    outcome: str = "ok"
    # False for a call that turned out to be none: it cost and carried nothing (a long poll
    # that returned no update), and a line for it would only crowd the ledger.
    counts: bool = True


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Ledger:
    def __init__(self, log_dir: Path, prices: Prices | None = None) -> None:
        self.log_dir = log_dir
        self.path = log_dir / FILE_NAME
        self.prices = prices or Prices()

    def record(self, service: str, operation: str, *, duration_ms: int, outcome: str = "ok",
               units: Mapping[str, float] | None = None, cost: float | None = None,
               **details: Any) -> dict[str, Any]:
        units = {k: round(float(v), 6) for k, v in (units or {}).items()}
        entry: dict[str, Any] = {
            "service": service, "operation": operation, "duration_ms": int(duration_ms),
            "outcome": outcome, "units": units,
            "cost": round(self.prices.cost(service, units) if cost is None else cost,
                          COST_DECIMALS),
            "currency": CURRENCY,
        }
        entry.update({k: v for k, v in details.items() if v is not None})
        modes.make_folder(self.log_dir)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, modes.FILE)
        try:
            # The lock keeps the file in time order (the stamp is taken under it), which is
            # what lets readers bisect. No fsync: a cost line lost to a power cut is not
            # worth a disk flush per Telegram message; a process kill loses nothing.
            fcntl.flock(fd, fcntl.LOCK_EX)
            entry = {"ts": _now_iso(), **entry}
            line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
            size = os.fstat(fd).st_size
            torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
            os.write(fd, (("\n" if torn else "") + line).encode("utf-8"))
        finally:
            os.close(fd)
        return entry

    @contextmanager
    def call(self, service: str, operation: str, *, units: Mapping[str, float] | None = None,
             **details: Any) -> Iterator[Call]:
        """Time one external call and record it, whether it succeeds or raises."""
        call = Call(units=dict(units or {"call": 1}), details=dict(details))
        started = time.monotonic()
        try:
            yield call
        except BaseException as error:
            call.outcome = "error"
            call.details["error"] = type(error).__name__
            raise
        finally:
            if call.counts:
                self.record(service, operation, outcome=call.outcome, units=call.units,
                            duration_ms=int((time.monotonic() - started) * 1000),
                            **call.details)

    def record_ocr(self, document_id: str, page_sources: list[Mapping[str, Any]]) -> \
            dict[str, Any] | None:
        """One line for a document's OCR: its CPU seconds, priced at the server's rate.

        The exact per-page CPU time (`cpu_seconds`) is used when the OCR stage measured it;
        otherwise the wall time of the OCR pages stands in, and the line says so
        (`cpu_basis: wall`), since on a busy machine it overstates the CPU spent.
        """
        ocr_pages = [p for p in page_sources if p.get("source") == "ocr"]
        if not ocr_pages:
            return None
        exact = all(p.get("cpu_seconds") is not None for p in ocr_pages)
        key = "cpu_seconds" if exact else "seconds"
        cpu = sum(float(p.get(key) or 0.0) for p in ocr_pages)
        wall = sum(float(p.get("seconds") or 0.0) for p in ocr_pages)
        return self.record("ocr", "document", duration_ms=int(wall * 1000),
                           units={"cpu_seconds": cpu, "pages": len(ocr_pages)},
                           document_id=document_id, cpu_basis="cpu" if exact else "wall")


# --- reading ---------------------------------------------------------------------------


def day_bounds(day: date) -> tuple[str, str]:
    """The UTC stamps where a local calendar day starts and the next one starts."""
    start = datetime(day.year, day.month, day.day).astimezone(UTC)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day).astimezone(UTC)
    return start.isoformat(timespec="milliseconds"), end.isoformat(timespec="milliseconds")


def month_bounds(year: int, month: int) -> tuple[str, str]:
    first = date(year, month, 1)
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return day_bounds(first)[0], day_bounds(nxt)[0]


def _stamp(raw: bytes) -> str | None:
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    return str(entry["ts"]) if isinstance(entry, dict) and "ts" in entry else None


def _first_at_or_after(handle: IO[bytes], size: int, start: str) -> int:
    """A line-start offset before which every line is earlier than `start`."""
    lo, hi = 0, size  # lo: 0 or the start of a line stamped before `start`
    while hi - lo > _LINEAR_SPAN:
        mid = (lo + hi) // 2
        handle.seek(mid)
        handle.readline()  # to the start of the next whole line
        stamp, where = None, handle.tell()
        while stamp is None and where < size:
            raw = handle.readline()
            stamp = _stamp(raw)
            if stamp is None:
                where = handle.tell()
        if stamp is None or stamp >= start:
            hi = mid
        else:
            lo = where
    return lo


def read_range(log_dir: Path, start: str, end: str) -> Iterator[dict[str, Any]]:
    """The entries stamped in [start, end), oldest first, reading only that stretch."""
    path = log_dir / FILE_NAME
    if not path.exists():
        return
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        handle.seek(_first_at_or_after(handle, size, start))
        for raw in handle:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue  # a torn line
            if not isinstance(entry, dict):
                continue
            stamp = str(entry.get("ts", ""))
            if stamp >= end:
                return
            if stamp >= start:
                yield entry


def money(amount: float) -> str:
    """An amount as staff read it: in cents from a cent up ("1.25", "0.03"), and under a cent
    with two significant digits ("0.0000047"): an OCR page costs millionths of a euro, which
    four decimals showed as 0.0000, as if it cost nothing. Never a power of ten ("4.7e-06").
    With the staff's decimal mark: "1,25" in French."""
    if amount == 0 or abs(amount) >= 0.01:
        return decimal(f"{amount:.2f}")
    return decimal(format(Decimal(f"{amount:.2g}"), "f"))


def summarize(entries: Iterator[dict[str, Any]]) -> dict[str, Any]:
    """Totals by service and overall: calls, errors, time, units, cost."""
    services: dict[str, dict[str, Any]] = {}
    for entry in entries:
        service = services.setdefault(str(entry.get("service", "?")), {
            "calls": 0, "errors": 0, "duration_ms": 0, "units": {}, "cost": 0.0})
        service["calls"] += 1
        service["errors"] += entry.get("outcome", "ok") != "ok"
        service["duration_ms"] += int(entry.get("duration_ms") or 0)
        for unit, quantity in (entry.get("units") or {}).items():
            service["units"][unit] = service["units"].get(unit, 0) + quantity
        service["cost"] += float(entry.get("cost") or 0.0)
    for service in services.values():
        service["cost"] = round(service["cost"], COST_DECIMALS)
        service["units"] = {k: round(v, 3) for k, v in sorted(service["units"].items())}
    return {
        "currency": CURRENCY,
        "services": dict(sorted(services.items())),
        "total": {
            "calls": sum(s["calls"] for s in services.values()),
            "errors": sum(s["errors"] for s in services.values()),
            "cost": round(sum(s["cost"] for s in services.values()), COST_DECIMALS),
        },
    }
