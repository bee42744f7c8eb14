"""Benchmark 5 on PostgreSQL with one and two server processes, at its smoke size.

No timing is asserted (timings belong to ``benchmarks/``): only that
``python -m benchmarks.bench_load --size smoke --servers postgres`` runs benchmark 5's load
generator against chat-tui-server on SQLite and, alternating with it, against one and then
two real ``serve`` processes on a real PostgreSQL cluster, with no error, every message
delivered to every poller exactly once, deliveries crossing between the two processes, and
the PostgreSQL row of the results table.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("postgres")]


@pytest.mark.timeout(300)
def test_postgres_mode_smoke_run_delivers_everything_once(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_load", "--size", "smoke",
         "--servers", "sqlite", "postgres", "--out", str(out),
         "--data-dir", str(tmp_path / "data")],
        cwd=ROOT, capture_output=True, text=True, timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    result = json.loads(out.read_text())
    m = result["metrics"]
    # One load generator, alternating the servers round by round.
    assert [r["server"] for r in m["rounds_detail"]] == [
        "chat-tui-server", "PostgreSQL, 1 process", "PostgreSQL, 2 processes"] * m["rounds"]
    assert m["synapse"]["status"] == "not measured"
    pg = m["postgres"]
    assert sorted(pg["runs"]) == ["1", "2"]
    for count, run in pg["runs"].items():
        assert run["processes"] == int(count)
        assert run["sends"] > 0 and run["errors"] == 0, run
        assert run["deliveries"] == run["deliveries_expected"] > 0, run
        assert run["duplicate_deliveries"] == 0
    assert "cross_deliveries" not in pg["runs"]["1"]
    two = pg["runs"]["2"]
    assert two["cross_deliveries"] > 0 and two["fanout_cross_p50_ms"] > 0
    assert two["fanout_same_p50_ms"] > 0
    assert pg["exactly_once"] is True and pg["errors"] == 0
    assert pg["speedup"] > 0 and pg["cross_over_in_process_p50"] > 0
    [row] = result["more_rows"]
    assert row["number"] == 5 and row["status"] == "measured"
    assert row["ratio"] == pg["speedup"] and row["met"] == pg["met"]
    assert row["value"].startswith("2 processes: ") and row["baseline"].startswith("1 process: ")
