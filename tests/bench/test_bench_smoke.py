"""The benchmark command at its smoke size produces well-formed results .

No timing is asserted here (timings belong to ``benchmarks/``): only that
``python -m benchmarks --size smoke`` runs every benchmark against real server processes
and a real cache file, and writes ``results.json`` and ``results.md`` with a row per
benchmark.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = ["cold_start", "open_conversation", "outbox_drain", "sync_latency", "server_load",
        "memory", "cache_size"]
#: The benchmarks that also run with the cache encrypted (their ``encryption`` entry).
ENCRYPTED = ["cold_start", "open_conversation", "outbox_drain", "memory", "cache_size"]


@pytest.mark.timeout(900)
def test_smoke_run_writes_well_formed_results(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--size", "smoke", "--out", str(out),
         "--data-dir", str(tmp_path / "data")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["size"] == "smoke"
    for field in ("platform", "cpu", "cores", "ram_gb"):
        assert results["machine"][field], field
    assert list(results["benchmarks"]) == KEYS
    for key, r in results["benchmarks"].items():
        assert r["status"] in ("measured", "not measured"), (key, r.get("reason"))
        if r["status"] == "not measured":
            assert r["reason"], key
            continue
        assert isinstance(r["value"], str) and r["value"], key
        assert isinstance(r["met"], bool), key
        assert isinstance(r["metrics"], dict) and r["metrics"], key
        assert r["ratio"] is None or r["ratio"] > 0, key
    b = results["benchmarks"]
    # The benchmarks that need no app always run, on the data they say they used.
    for key in ("outbox_drain", "sync_latency", "server_load", "cache_size"):
        assert b[key]["status"] == "measured", (key, b[key].get("reason"))
    assert b["outbox_drain"]["metrics"]["delivered_in_order"] is True
    load = b["server_load"]["metrics"]
    assert load["sends"] > 0
    assert load["deliveries"] > 0
    # The Synapse column ran in the same run, alternating with chat-tui-server.
    assert load["synapse"].get("status") != "not measured", load["synapse"]
    assert load["synapse"]["sends"] > 0 and load["synapse"]["deliveries"] > 0
    # And chat-tui-server on PostgreSQL with one and two processes, in the same rounds.
    pg_rows = b["server_load"]["more_rows"]
    assert [r["number"] for r in pg_rows] == [5]
    pg_measured = pg_rows[0]["status"] == "measured"
    assert pg_measured or pg_rows[0]["reason"]
    assert [r["server"] for r in load["rounds_detail"]] == [
        "chat-tui-server", "Synapse",
        *(["PostgreSQL, 1 process", "PostgreSQL, 2 processes"] if pg_measured else []),
    ] * load["rounds"]
    assert b["server_load"]["ratio"] > 0
    assert load["synapse"]["version"] in b["server_load"]["baseline"]
    assert b["cache_size"]["metrics"]["messages"] == results["sizes"]["cache_messages"]
    if b["cold_start"]["status"] == "measured":
        # The second baseline (chat-tui's screen from fixed text) ran in every round.
        cold = b["cold_start"]["metrics"]
        assert len(cold["static_screen_s"]) == len(cold["app_s"]) > 0
        assert all(t > 0 for t in cold["static_screen_s"])
        assert cold["static_screen_ratio"] > 0
    # Benchmarks 1, 2, 3, 6 and 7 ran with the cache encrypted too, in the same run.
    for key in ENCRYPTED:
        if b[key]["status"] != "measured":
            continue
        e = b[key]["encryption"]
        assert e["off"]["ratio"] > 0 and e["on"]["ratio"] > 0, key
        assert isinstance(e["cost_pct"], float) and isinstance(e["met"], bool), key
        assert e["met"] == (e["cost_pct"] <= 5.0), key
    assert "encryption" not in b["sync_latency"] and "encryption" not in b["server_load"]
    assert len(b["outbox_drain"]["metrics"]["encrypted_drain_s"]) == results["sizes"]["runs"]
    enc_size = b["cache_size"]["metrics"]["encrypted"]
    assert enc_size["messages"] == results["sizes"]["cache_messages"]
    # SQLCipher keeps 80 bytes of each page: the encrypted file is not smaller than the
    # plain one written by the same export.
    assert enc_size["file_bytes"] >= b["cache_size"]["metrics"]["plain_export"]["file_bytes"]
    if b["cold_start"]["status"] == "measured":
        cold = b["cold_start"]["metrics"]
        assert len(cold["app_encrypted_s"]) == len(cold["app_s"])
        assert b["memory"]["metrics"]["encrypted_extra_mb"] is not None
    if b["open_conversation"]["status"] == "measured":
        opened = b["open_conversation"]["metrics"]
        assert len(opened["encrypted_big_ms"]) == len(opened["big_ms"]) > 0
    assert "-enc.db" in " ".join(p.name for p in (tmp_path / "data").iterdir())
    table = (out / "results.md").read_text()
    assert "| # | benchmark |" in table
    assert "| # | benchmark | encryption off | ratio off | encryption on |" in table
    measured = [k for k in ENCRYPTED if b[k]["status"] == "measured"]
    assert sum(1 for line in table.splitlines() if line.startswith("| ") and
               line.split("|")[1].strip().isdigit()) == len(KEYS) + len(measured) + len(pg_rows)

    # Re-running one benchmark keeps the others from the earlier results, marked as such.
    merged_out = tmp_path / "merged"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--size", "smoke", "--only", "cache_size",
         "--merge", str(out / "results.json"), "--out", str(merged_out),
         "--data-dir", str(tmp_path / "data")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    merged = json.loads((merged_out / "results.json").read_text())
    assert sorted(merged["benchmarks"]) == sorted(KEYS)
    assert "run" not in merged["benchmarks"]["cache_size"]
    assert merged["benchmarks"]["outbox_drain"]["run"]["date"] == results["date"]
    assert (f"Benchmarks 1, 2, 3, 4, 5, 6 from an earlier run at the same size: "
            f"{results['date']}") in (merged_out / "results.md").read_text()


def test_update_readme_writes_each_table_between_its_own_markers(tmp_path: Path) -> None:
    from benchmarks.run import (
        README_ENC_END,
        README_ENC_START,
        README_END,
        README_START,
        update_readme,
    )

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nold\n{README_END}\nmiddle\n"
                      f"{README_ENC_START}\nold enc\n{README_ENC_END}\nend\n")
    update_readme(readme, "| main |")
    update_readme(readme, "| enc |", README_ENC_START, README_ENC_END)
    assert readme.read_text() == (f"intro\n{README_START}\n| main |\n{README_END}\nmiddle\n"
                                  f"{README_ENC_START}\n| enc |\n{README_ENC_END}\nend\n")
    readme.write_text("no markers\n")
    with pytest.raises(ValueError):
        update_readme(readme, "| enc |", README_ENC_START, README_ENC_END)
    assert readme.read_text() == "no markers\n"
