"""The cost ledger: every call is recorded, even failing ones; a day's totals are its lines'."""

from __future__ import annotations

import json
import random
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent import config
from agent.ledger import FILE_NAME, Ledger, Prices, prices_from, read_range, summarize
from agent.ops import costs
from tests.conftest import DOCAGENT, Spool

PARIS = ZoneInfo("Europe/Paris")


def lines(log_dir: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (log_dir / FILE_NAME).read_text().splitlines() if x]


def test_a_call_is_timed_and_recorded_even_when_it_raises(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path, Prices(per_unit={("telegram", "message"): 0.01}))
    with ledger.call("telegram", "sendMessage", units={"message": 2}) as call:
        call.details["status"] = 200
    with pytest.raises(TimeoutError), ledger.call("telegram", "sendMessage",
                                                  units={"message": 1}):
        raise TimeoutError("no answer")
    ok, failed = lines(tmp_path)
    assert (ok["service"], ok["operation"], ok["outcome"], ok["status"]) == (
        "telegram", "sendMessage", "ok", 200)
    assert ok["units"] == {"message": 2} and ok["cost"] == pytest.approx(0.02)
    assert isinstance(ok["duration_ms"], int) and ok["currency"] == "EUR"
    assert (failed["outcome"], failed["error"], failed["cost"]) == ("error", "TimeoutError",
                                                                    pytest.approx(0.01))


def test_prices_come_from_configuration(tmp_path: Path) -> None:
    settings = config.load({"DOCAGENT_SERVER_EUR_PER_MONTH": "30.4375",
                            "DOCAGENT_SERVER_CORES": "2",
                            "DOCAGENT_PRICE_OCRSPACE_PAGE": "0.002"}, cwd=tmp_path)
    prices = prices_from(settings)
    # 30.4375 EUR for one average month (30.4375 days) of 2 cores: 0.5 EUR per core-day.
    assert prices.cpu_second * 86400 == pytest.approx(0.5)
    assert prices.cost("ocrspace", {"page": 10}) == pytest.approx(0.02)
    assert prices.cost("unpriced", {"call": 5}) == 0.0
    for bad in ({"DOCAGENT_SERVER_EUR_PER_MONTH": "-3"}, {"DOCAGENT_PRICE_X_CALL": "cheap"}):
        with pytest.raises(config.ConfigError, match=next(iter(bad))):
            config.load(bad, cwd=tmp_path)


def test_ocr_cpu_is_exact_when_measured_and_labelled_wall_otherwise(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path, Prices(server_eur_per_month=100.0, server_cores=1))
    exact = [{"source": "ocr", "seconds": 3.0, "cpu_seconds": 2.5},
             {"source": "ocr", "seconds": 2.0, "cpu_seconds": 1.5},
             {"source": "text-layer", "seconds": 0.0}]
    wall = [{"source": "ocr", "seconds": 3.0}, {"source": "ocr", "seconds": 2.0}]
    assert ledger.record_ocr("d1", exact) is not None
    assert ledger.record_ocr("d2", wall) is not None
    assert ledger.record_ocr("d3", [{"source": "text-layer", "seconds": 0.0}]) is None
    one, two = lines(tmp_path)
    assert one["units"] == {"cpu_seconds": 4.0, "pages": 2} and one["cpu_basis"] == "cpu"
    assert two["units"] == {"cpu_seconds": 5.0, "pages": 2} and two["cpu_basis"] == "wall"
    assert one["cost"] == pytest.approx(4.0 * 100.0 / (365.25 / 12 * 86400), abs=1e-8)
    assert one["document_id"] == "d1" and one["duration_ms"] == 5000


def _write_history(log_dir: Path, days: int, rng: random.Random) -> list[dict[str, object]]:
    """Lines in time order over `days` days, with torn lines here and there."""
    start = datetime(2026, 3, 20, tzinfo=UTC)  # spans the change to summer time in Paris
    moment = start
    written: list[dict[str, object]] = []
    with open(log_dir / FILE_NAME, "w", encoding="utf-8") as handle:
        while moment < start + timedelta(days=days):
            moment += timedelta(seconds=rng.uniform(1, 900))
            service = rng.choice(("ocr", "telegram", "telegram", "mistral"))
            entry = {"ts": moment.isoformat(timespec="milliseconds"), "service": service,
                     "operation": "x", "duration_ms": rng.randint(1, 900),
                     "outcome": "ok" if rng.random() > 0.05 else "error",
                     "units": {"call": 1}, "cost": round(rng.uniform(0, 0.01), 8),
                     "currency": "EUR"}
            written.append(entry)
            handle.write(json.dumps(entry) + "\n")
            if rng.random() < 0.002:
                handle.write('{"ts": "2026-0\n')  # what a kill -9 mid-write leaves
    return written


def test_a_days_totals_equal_the_sum_of_its_lines(tmp_path: Path) -> None:
    written = _write_history(tmp_path, 12, random.Random(3))
    assert (tmp_path / FILE_NAME).stat().st_size > 5 * 64 * 1024  # bisection really runs
    for offset in range(-1, 13):
        day = date(2026, 3, 20) + timedelta(days=offset)
        start = datetime(day.year, day.month, day.day, tzinfo=PARIS).astimezone(UTC)
        end_day = day + timedelta(days=1)
        end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=PARIS).astimezone(UTC)
        mine = [e for e in written
                if start <= datetime.fromisoformat(str(e["ts"])) < end]
        done = subprocess.run([DOCAGENT, "costs", "--day", day.isoformat(), "--json"],
                              capture_output=True, text=True, check=True, cwd=tmp_path,
                              env={"TZ": "Europe/Paris", "DOCAGENT_LOG_DIR": str(tmp_path),
                                   "DOCAGENT_HOME": str(tmp_path / "home")})
        summary = json.loads(done.stdout)
        assert summary["total"]["calls"] == len(mine)
        assert summary["total"]["cost"] == pytest.approx(sum(float(str(e["cost"]))
                                                             for e in mine), abs=1e-5)
        assert summary["total"]["errors"] == sum(e["outcome"] != "ok" for e in mine)
        by_service = {s: sum(1 for e in mine if e["service"] == s)
                      for s in {str(e["service"]) for e in mine}}
        assert {k: v["calls"] for k, v in summary["services"].items()} == by_service


def test_reading_a_range_matches_a_full_scan(tmp_path: Path) -> None:
    written = _write_history(tmp_path, 20, random.Random(8))
    rng = random.Random(9)
    for _ in range(40):
        a, b = sorted(rng.sample(range(len(written)), 2))
        start, end = str(written[a]["ts"]), str(written[b]["ts"])
        expected = [e for e in written if start <= str(e["ts"]) < end]
        assert list(read_range(tmp_path, start, end)) == expected


def test_costs_on_an_empty_install_and_by_month(spool: Spool) -> None:
    done = spool.run("costs", "--day", "yesterday", "--json", check=True)
    summary = json.loads(done.stdout)
    assert summary["total"] == {"calls": 0, "errors": 0, "cost": 0}
    assert summary["day"] == (date.today() - timedelta(days=1)).isoformat()
    assert "total" in spool.run("costs", check=True).stdout
    Ledger(spool.logs, Prices(per_unit={("telegram", "message"): 0.5})).record(
        "telegram", "sendMessage", duration_ms=120, units={"message": 3})
    month = json.loads(spool.run("costs", "--month", date.today().strftime("%Y-%m"),
                                 "--json", check=True).stdout)
    assert month["services"]["telegram"]["units"] == {"message": 3}
    assert month["total"] == {"calls": 1, "errors": 0, "cost": 1.5}
    human = spool.run("costs", "--day", "today", check=True).stdout
    assert "telegram" in human and "1.50" in human
    assert spool.run("costs", "--day", "31/12/2026").returncode == 2
    assert spool.run("costs", "--month", "2026-13").returncode == 2


def test_summary_of_nothing_is_zero() -> None:
    assert summarize(iter([]))["total"] == {"calls": 0, "errors": 0, "cost": 0}


def test_a_torn_line_is_ended_by_the_next_writer_and_skipped_by_readers(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.record("telegram", "sendMessage", duration_ms=5)
    with open(tmp_path / FILE_NAME, "a", encoding="utf-8") as handle:
        handle.write('{"ts":"2026-11-2')  # a kill -9 in the middle of a write
    ledger.record("telegram", "getUpdates", duration_ms=7)
    raw = (tmp_path / FILE_NAME).read_text().splitlines()
    assert len(raw) == 3 and raw[1] == '{"ts":"2026-11-2'
    got = list(read_range(tmp_path, "2000", "9999"))
    assert [e["operation"] for e in got] == ["sendMessage", "getUpdates"]


def test_one_report_for_the_shell_and_the_chat(tmp_path: Path) -> None:
    Ledger(tmp_path, Prices(per_unit={("telegram", "message"): 0.5})).record(
        "telegram", "sendMessage", duration_ms=120, units={"message": 3})
    report = costs.report(tmp_path, costs.day(date.today()))
    today = date.today().isoformat()
    assert costs.render(report).splitlines() == [
        f"costs {today}", "service     calls errors       EUR",
        "telegram        1      0      1.50", "  message 3", "total           1      0      1.50"]
    assert costs.render(report, chat=True).splitlines() == [
        f"Costs {today}: 1.50 EUR (1 call, 0 errors)",
        "- telegram: 1.50 — 1 call (message 3)"]
    assert costs.named_day("31/12/2026") is None and costs.month("2026-02").label == "2026-02"
