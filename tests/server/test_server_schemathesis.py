"""Property-based API tests: Schemathesis against the live ``/openapi.json`` of a real
server process, on SQLite and on PostgreSQL, with every check Schemathesis has, a fixed
seed and :data:`EXAMPLES` generated cases per operation and phase (docs/api.md: the
OpenAPI document states every limit and answer).

Two runs per database: every operation but ``POST /v1/logout`` with one token, then
``POST /v1/logout`` alone with a token of its own (the first logout revokes it). The login
throttle is off on these servers, or the negative login cases would soon be answered 429
and the login route would go untested. ``schemathesis.toml`` beside this file lists the
answers a schema cannot predict (unknown member names, unknown cursors). Hypothesis's
``too_slow`` health check is off: it times the generation of data (long message bodies)
on a shared CI machine, which says nothing about the server.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: Cases per operation in the fuzzing phase (the coverage and stateful phases add their
#: own: about 870 cases per database in all, about 90 per operation). On the 2-core
#: machine under a load average near 19 (other jobs) this test took 6 to 8 minutes.
EXAMPLES = 40
SEED = 20261206
CONFIG = Path(__file__).with_name("schemathesis.toml")
NO_THROTTLE = ["--login-failures-per-account", "0", "--login-failures-per-address", "0"]


def schemathesis(server, token: str, workdir: Path, *filters: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
         f"{server.url}/openapi.json", "--checks", "all", "--seed", str(SEED),
         "--max-examples", str(EXAMPLES), "--header", f"Authorization: Bearer {token}",
         "--max-failures", "50", "--request-timeout", "30", "--no-color",
         "--suppress-health-check", "too_slow", *filters],
        capture_output=True, text=True, timeout=600, cwd=workdir,
    )


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=[
    pytest.mark.postgres, pytest.mark.xdist_group("postgres")])])
@pytest.mark.timeout(900)
def test_rule_openapi_schemathesis_all_checks(request, server_factory, tmp_path, backend):
    db = request.getfixturevalue("pg_url") if backend == "postgres" else None
    server = server_factory.start(extra_args=NO_THROTTLE, db=db,
                                  users={"alice": "alice-pw", "bob": "bob-pw"})
    token = server.login("alice", "alice-pw")["access_token"]
    done = schemathesis(server, token, tmp_path, "--exclude-path", "/v1/logout")
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]
    assert "No issues found" in done.stdout or " passed" in done.stdout, done.stdout
    token = server.login("bob", "bob-pw")["access_token"]
    done = schemathesis(server, token, tmp_path, "--include-path", "/v1/logout")
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]
