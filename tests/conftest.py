"""Shared fixtures of the whole test suite: isolated user dirs and the real server.

House rule: tests talk to a real ``chat-tui-server`` process over loopback with a real
SQLite file; nothing here mocks HTTP.

Fixtures
--------
``isolated_user_dirs`` (autouse)
    Points ``XDG_DATA_HOME``, ``XDG_CONFIG_HOME``, ``XDG_CACHE_HOME`` and ``XDG_STATE_HOME``
    at fresh subdirectories of the test's ``tmp_path`` (platformdirs honours them on Linux)
    and sets ``PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring`` so no real keyring is
    touched. Server subprocesses inherit the same environment, so their default database
    and log file land in the test's directories too. Yields the dict of variables set.

``server_factory``
    ``server_factory.start(*, rate_limit=0, assistant="echo", extra_args=()) ->
    ServerProcess``: runs ``python -m chat_tui.server serve --port 0 --db <tmp file>`` as a
    subprocess, waits for its ``listening on`` line and for ``GET /v1/health``, and stops
    every server it started at teardown. ``rate_limit`` 0 disables the send limit;
    ``extra_args`` are appended to the ``serve`` command line (e.g. ``("--assistant-timeout",
    "2")``).

``server``
    One started :class:`ServerProcess` with users ``alice`` (password ``alice-pw``) and
    ``bob`` (``bob-pw``) already added.

``unused_port``
    A TCP port that was free on 127.0.0.1 a moment ago (see :func:`find_free_port`), for
    fixtures that run their own listener (a fault proxy, a fake upstream, ...).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.servers import ServerFactory, ServerProcess, find_free_port

__all__ = ["ServerFactory", "ServerProcess", "find_free_port"]


@pytest.fixture(autouse=True)
def isolated_user_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Per-test XDG dirs and a keyring that refuses everything (see module doc)."""
    base = tmp_path_factory.mktemp("userdirs")
    values = {
        "XDG_DATA_HOME": str(base / "data"),
        "XDG_CONFIG_HOME": str(base / "config"),
        "XDG_CACHE_HOME": str(base / "cache"),
        "XDG_STATE_HOME": str(base / "state"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    for key, value in values.items():
        if key.startswith("XDG_"):
            Path(value).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(key, value)
    yield values


@pytest.fixture
def unused_port() -> int:
    """A free loopback TCP port (:func:`find_free_port`)."""
    return find_free_port()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """A :class:`ServerFactory`; every server it started is stopped at teardown."""
    factory = ServerFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def server(server_factory: ServerFactory) -> ServerProcess:
    """A running server with users alice/alice-pw and bob/bob-pw."""
    return server_factory.start(users={"alice": "alice-pw", "bob": "bob-pw"})
