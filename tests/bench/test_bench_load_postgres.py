"""Benchmark 5 on PostgreSQL with one and two server processes, at its smoke size.

No timing is asserted (timings belong to ``benchmarks/``): only that
``python -m benchmarks.bench_load_pg --size smoke`` runs the load against one and
then two real ``serve`` processes on a real PostgreSQL cluster, with no error, every
message delivered to every poller exactly once, and deliveries crossing between the two
processes.
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
    out = tmp_path / "pg.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_load_pg", "--size", "smoke",
         "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    result = json.loads(out.read_text())
    assert sorted(result["runs"]) == ["1", "2"]
    for count, run in result["runs"].items():
        assert run["processes"] == int(count)
        assert run["sends"] > 0 and run["errors"] == 0, run
        assert run["deliveries"] == run["deliveries_expected"] > 0, run
        assert run["duplicate_deliveries"] == 0
    two = result["runs"]["2"]
    assert two["cross_deliveries"] > 0 and two["fanout_cross_p50_ms"] > 0
    assert result["exactly_once"] is True and result["errors"] == 0
    assert result["speedup"] > 0 and result["cross_over_in_process_p50"] > 0
