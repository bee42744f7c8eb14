"""The root conftest: loads the shared fixtures and marks the tests by what they cost.

The fixtures (real server processes, isolated user dirs, PostgreSQL, API clients) are in
``tests/support/fixtures.py``; the markers are registered in ``pyproject.toml``. Markers
select (``-m "not slow"``); the default run runs everything.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.support.fixtures"]

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``tests/soak`` items ``soak``, ``tests/bench`` items ``bench``, and as ``slow``
    every item of those two and every item that starts a server process of its own
    (the test asks for ``server_factory`` itself, is marked ``own_server``, or is a
    PostgreSQL run)."""
    for item in items:
        part = Path(str(item.path)).relative_to(_HERE).parts[0]
        if part in ("soak", "bench"):
            item.add_marker(part)
        function = getattr(item, "function", None)
        arguments = inspect.signature(function).parameters if function is not None else {}
        if (part in ("soak", "bench")
                or "server_factory" in arguments
                or item.get_closest_marker("own_server") is not None
                or item.get_closest_marker("postgres") is not None):
            item.add_marker("slow")


_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember every skipped test (under xdist the controller sees every worker's)."""
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI (the environment variable ``CI`` set, as ``.ci/run`` does) a skipped test is
    a failure: a component the test needs is missing, and CI must install it."""
    if os.environ.get("CI") and _skipped and exitstatus == 0:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"CI: {len(_skipped)} test(s) skipped, which fails the run: "
                                + ", ".join(_skipped[:10]), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
