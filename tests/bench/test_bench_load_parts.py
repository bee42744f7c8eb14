"""Benchmark 5's pieces that decide what its results say, on fixed inputs: how the
clients are split between two server processes, when the PostgreSQL target is met, and
the PostgreSQL row of the results table (``benchmarks/bench_load.py``,
``benchmarks/run.py``). The load itself runs in ``test_bench_load_postgres.py`` and the
smoke run of every benchmark.
"""

from __future__ import annotations

from benchmarks.bench_load import _plan, _split, postgres_summary
from benchmarks.run import render_markdown


class Size:
    load_senders = 4
    load_pollers = 12


def test_each_conversation_has_pollers_on_both_processes() -> None:
    plan = _plan(Size)
    urls = _split(plan, ["http://a", "http://b"])
    assert sorted(urls) == sorted([*plan, *(p for m in plan.values() for p in m)])
    assert [urls[s] for s in plan] == ["http://a", "http://b", "http://a", "http://b"]
    for sender, pollers in plan.items():
        assert {urls[p] for p in pollers} == {"http://a", "http://b"}, sender
    # One process: everyone on it.
    assert set(_split(plan, ["http://a"]).values()) == {"http://a"}


def figures(rate: float, p50: float, errors: int = 0, expected: int = 100,
            seen: int = 100, twice: int = 0, cross: float | None = None) -> dict:
    f = {"sends_per_s": rate, "fanout_p50_ms": p50, "errors": errors,
         "deliveries": seen, "deliveries_expected": expected, "duplicate_deliveries": twice}
    if cross is not None:
        f["fanout_cross_p50_ms"] = cross
    return f


def test_the_postgres_target_needs_speed_exact_delivery_and_quick_cross_fanout() -> None:
    ok = postgres_summary(figures(10, 100), figures(16, 90, cross=150))
    assert ok == {"speedup": 1.6, "cross_over_in_process_p50": 1.5, "exactly_once": True,
                  "errors": 0, "met": True}
    assert not postgres_summary(figures(10, 100), figures(15.9, 90, cross=150))["met"]
    assert not postgres_summary(figures(10, 100), figures(20, 90, cross=201))["met"]
    assert not postgres_summary(figures(10, 100, errors=1), figures(20, 90, cross=100))["met"]
    missed = postgres_summary(figures(10, 100), figures(20, 90, seen=99, cross=100))
    assert missed["exactly_once"] is False and not missed["met"]
    twice = postgres_summary(figures(10, 100, twice=1), figures(20, 90, cross=100))
    assert twice["exactly_once"] is False and not twice["met"]
    # No delivery crossed processes: the cross-process target cannot be judged.
    assert not postgres_summary(figures(10, 100), figures(20, 90))["met"]


def test_the_results_table_has_the_postgres_row_under_benchmark_5() -> None:
    pg_row = {"number": 5, "title": "on PostgreSQL", "status": "measured",
              "value": "2 processes: 9 sends/s", "baseline": "1 process: 5 sends/s",
              "ratio": 1.8, "target": ">= 1.6 x", "met": True}
    missing = {**pg_row, "status": "not measured", "reason": "no initdb", "value": None,
               "met": None}
    results = {
        "date": "2026-12-06T00:00:00Z", "size": "full",
        "machine": {"cpu": "cpu", "cores": 2, "ram_gb": 1, "platform": "p", "python": "3",
                    "load_avg": [0.1, 0.1, 0.1]},
        "data": {"source": "s"},
        "benchmarks": {"server_load": {
            "number": 5, "title": "Server under load", "status": "measured",
            "value": "30 sends/s", "baseline": "Synapse: 10 sends/s", "ratio": 3.0,
            "target": ">= 2 x", "met": False, "more_rows": [pg_row]}},
    }
    lines = [line for line in render_markdown(results).splitlines() if line.startswith("| 5 ")]
    assert lines == [
        "| 5 | Server under load | 30 sends/s | Synapse: 10 sends/s | 3.0 | >= 2 x | **no** |",
        "| 5 | on PostgreSQL | 2 processes: 9 sends/s | 1 process: 5 sends/s | 1.8 | >= 1.6 x "
        "| yes |",
    ]
    results["benchmarks"]["server_load"]["more_rows"] = [missing]
    [_, row] = [line for line in render_markdown(results).splitlines()
                if line.startswith("| 5 ")]
    assert row.endswith("| not measured: no initdb |")
