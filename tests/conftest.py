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

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

#: Seconds a server may take to print its listening line and answer /v1/health.
START_TIMEOUT = 30.0
#: Seconds a graceful stop may take before the process is killed.
STOP_TIMEOUT = 10.0

_LISTENING = re.compile(r"^chat-tui-server listening on (http://\S+):(\d+)\s*$")


def find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (bind to port 0, read it, close).

    Another process could take it before the caller binds it; on loopback in tests that
    race is negligible.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


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


class ServerProcess:
    """A ``chat-tui-server serve`` subprocess on 127.0.0.1 with its own SQLite file.

    Attributes: ``url`` (``http://127.0.0.1:PORT``, no trailing slash), ``port`` (int, fixed
    after the first start), ``db_path`` (Path), ``stderr_path`` (the process's stderr, for
    failure messages). ``start()`` after ``stop()``/``kill()`` runs it again on the same port
    and database (tests use this to simulate the server going offline and back).
    """

    def __init__(
        self,
        db_path: Path | str,
        workdir: Path,
        *,
        rate_limit: float = 0,
        assistant: str = "echo",
        extra_args: Sequence[str] = (),
    ) -> None:
        self.db_path = db_path
        self.workdir = workdir
        self.rate_limit = rate_limit
        self.assistant = assistant
        self.extra_args = tuple(extra_args)
        self.port = 0
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self.stderr_path = workdir / "server-stderr.log"
        self._starts = 0

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> ServerProcess:
        """Start the process (same port and db as before, if it ran already); returns self.

        Raises RuntimeError with the server's stderr when it exits or does not become
        healthy within :data:`START_TIMEOUT` seconds.
        """
        if self.running:
            raise RuntimeError("server already running")
        self._starts += 1
        cmd = [
            sys.executable,
            "-m",
            "chat_tui.server",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db",
            str(self.db_path),
            "--rate-limit",
            str(self.rate_limit),
            "--assistant",
            self.assistant,
            *self.extra_args,
        ]
        stderr = self.stderr_path.open("a", encoding="utf-8")
        stderr.write(f"--- start #{self._starts}: {' '.join(cmd)}\n")
        stderr.flush()
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=os.environ.copy(),
            cwd=self.workdir,
        )
        stderr.close()
        deadline = time.monotonic() + START_TIMEOUT
        line = self._read_line(deadline)
        match = _LISTENING.match(line or "")
        if match is None:
            self.kill()
            raise RuntimeError(
                f"server did not print its listening line (got {line!r}):\n{self.stderr_text()}"
            )
        self.port = int(match.group(2))
        self.url = f"{match.group(1)}:{self.port}"
        self._wait_healthy(deadline)
        return self

    def _read_line(self, deadline: float) -> str | None:
        assert self.proc is not None and self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if sel.select(timeout=0.1):
                    return self.proc.stdout.readline()
                if self.proc.poll() is not None:
                    return None
        return None

    def _wait_healthy(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server never became healthy:\n{self.stderr_text()}")

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Graceful stop (SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT` seconds)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close()

    def kill(self) -> None:
        """Stop at once with SIGKILL (a crash: no shutdown code runs)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()

    def _close(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def stderr_text(self) -> str:
        """The server process's stderr so far (all starts)."""
        try:
            return self.stderr_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    # -- helpers over the real CLI and HTTP -----------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """``chat-tui-server add-user NAME --password-stdin --db <db>``; raises on failure."""
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "chat_tui.server",
                "add-user",
                name,
                "--password-stdin",
                "--db",
                str(self.db_path),
            ],
            input=password + "\n",
            capture_output=True,
            text=True,
            timeout=60,
            env=os.environ.copy(),
        )
        if done.returncode != 0:
            raise RuntimeError(f"add-user {name} failed: {done.stderr.strip()}")

    def login(self, name: str, password: str, device: str = "test") -> dict:
        """``POST /v1/login``; returns the JSON (``user_id``, ``access_token``, ...).

        Raises ``httpx.HTTPStatusError`` on a non-2xx answer.
        """
        response = httpx.post(
            f"{self.url}/v1/login",
            json={"username": name, "password": password, "device_name": device},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()


class ServerFactory:
    """Starts :class:`ServerProcess` instances for one test and stops them all afterwards."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[ServerProcess] = []

    def start(
        self,
        *,
        rate_limit: float = 0,
        assistant: str = "echo",
        extra_args: Sequence[str] = (),
        users: dict[str, str] | None = None,
        db: str | None = None,
    ) -> ServerProcess:
        """Start a new server with a fresh database file (see module doc).

        ``db``: a database URL to use instead of the temporary SQLite file (the PostgreSQL
        tests pass a fresh ``postgresql://`` database); ``db_path`` then holds that URL.

        ``users`` (name -> password) are added through the real CLI while the server starts
        (separate processes on the same SQLite file), which saves a little time per test.
        """
        index = len(self.started)
        workdir = self.tmp_path / f"server{index}"
        workdir.mkdir(parents=True, exist_ok=True)
        server = ServerProcess(
            db if db is not None else workdir / "server.db",
            workdir,
            rate_limit=rate_limit,
            assistant=assistant,
            extra_args=extra_args,
        )
        self.started.append(server)
        adders = [
            threading.Thread(target=server.add_user, args=(name, password))
            for name, password in (users or {}).items()
        ]
        errors: list[BaseException] = []
        for t in adders:
            t.run = _capture(t.run, errors)  # type: ignore[method-assign]
            t.start()
        try:
            server.start()
        finally:
            for t in adders:
                t.join()
        if errors:
            raise errors[0]
        return server

    def stop_all(self) -> None:
        """Stop every server started through this factory (teardown)."""
        for server in self.started:
            server.stop()


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


def _capture(run, errors: list[BaseException]):
    def wrapped() -> None:
        try:
            run()
        except BaseException as exc:  # re-raised by the caller
            errors.append(exc)

    return wrapped
