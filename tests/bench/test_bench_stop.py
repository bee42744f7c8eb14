"""A benchmark run stopped with SIGTERM (``timeout``, a CI job cancelled) stops every
process it started: the Synapse of the Matrix benchmarks runs in a session of its own, so
only the run's own clean-up stops it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _processes_under(path: Path) -> list[int]:
    """Pids of the processes whose command line names a file under ``path``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(int(entry.name))
    return found


def _homeserver_answers(work: Path) -> bool:
    """True once a Synapse under ``work`` (its ``homeserver.yaml``) answers on its port."""
    for config in work.glob("chat-tui-bench-*/synapse/homeserver.yaml"):
        match = re.search(r"port: (\d+)", config.read_text())
        if match is None:
            continue
        try:
            url = f"http://127.0.0.1:{match.group(1)}/_matrix/client/versions"
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
    return False


@pytest.mark.timeout(300)
def test_a_benchmark_run_stopped_by_sigterm_stops_its_homeserver(tmp_path: Path) -> None:
    work = tmp_path / "tmp"
    work.mkdir()
    env = {**os.environ, "TMPDIR": str(work)}
    run = subprocess.Popen(
        [sys.executable, "-m", "benchmarks", "--size", "smoke", "--only",
         "sync_latency_matrix", "--out", str(tmp_path / "out"),
         "--data-dir", str(tmp_path / "data")],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while not _homeserver_answers(work):
            assert run.poll() is None, run.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the benchmark never started Synapse"
            time.sleep(0.2)
        assert _processes_under(work)
        run.send_signal(signal.SIGTERM)
        run.wait(60)
        deadline = time.monotonic() + 30
        while _processes_under(work) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_under(work) == []
    finally:
        if run.poll() is None:
            run.kill()
        for pid in _processes_under(work):  # a homeserver the run did not stop
            try:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
