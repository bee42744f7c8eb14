"""The real ``chat-tui-server`` as a subprocess for tests: :class:`ServerProcess`,
:class:`ServerFactory`, :class:`SharedServer` and :func:`find_free_port`.

A plain module (not a conftest) so code outside pytest's fixture machinery, such as the
soak harness in ``tests/soak/`` and ``tools/soak.py``, imports it as
``tests.support.servers``. The fixtures that use it are in ``tests/support/fixtures.py``.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path

import httpx

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


class ServerProcess:
    """A ``chat-tui-server serve`` subprocess on 127.0.0.1 with its own SQLite file.

    Attributes: ``url`` (``http://127.0.0.1:PORT``, no trailing slash), ``port`` (int, fixed
    after the first start), ``db_path`` (Path), ``stderr_path`` (the process's stderr, for
    failure messages), ``env`` (the environment of the process and of :meth:`add_user`;
    None: a copy of ``os.environ`` at each start). ``start()`` after ``stop()``/``kill()``
    runs it again on the same port and database (tests use this to simulate the server going
    offline and back).
    """

    def __init__(
        self,
        db_path: Path | str,
        workdir: Path,
        *,
        rate_limit: float = 0,
        assistant: str = "echo",
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.db_path = db_path
        self.env = dict(env) if env is not None else None
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
            env=self._environment(),
            cwd=self.workdir,
        )
        stderr.close()
        try:
            deadline = time.monotonic() + START_TIMEOUT
            line = self._read_line(deadline)
            match = _LISTENING.match(line or "")
            if match is None:
                raise RuntimeError(f"server did not print its listening line (got {line!r}):"
                                   f"\n{self.stderr_text()}")
            self.port = int(match.group(2))
            self.url = f"{match.group(1)}:{self.port}"
            self._wait_healthy(deadline)
        except BaseException:  # no answer, or Ctrl-C/SIGTERM while waiting: no orphan
            self.kill()
            raise
        return self

    def _environment(self) -> dict[str, str]:
        return dict(self.env) if self.env is not None else os.environ.copy()

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
            env=self._environment(),
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

    def __init__(self, tmp_path: Path, env: Mapping[str, str] | None = None) -> None:
        self.tmp_path = tmp_path
        self.env = env
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

        ``users`` (name -> password) are added through the real CLI once the server is up
        (separate processes on the same SQLite file, in parallel with each other). Not while
        it starts: two processes creating and migrating a fresh file at once could fail with
        "database is locked" (switching to WAL does not wait for the busy timeout).
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
            env=self.env,
        )
        self.started.append(server)
        adders = [
            threading.Thread(target=server.add_user, args=(name, password))
            for name, password in (users or {}).items()
        ]
        errors: list[BaseException] = []
        server.start()
        for t in adders:
            t.run = _capture(t.run, errors)  # type: ignore[method-assign]
            t.start()
        for t in adders:
            t.join()
        if errors:
            raise errors[0]
        return server

    def start_with_model(self, model_url: str, model: str, *,
                         extra_args: Sequence[str] = (), **options) -> ServerProcess:
        """:meth:`start` with ``--assistant openai`` answering with the OpenAI-compatible
        endpoint ``model_url`` (a :class:`~tests.support.model_server.ModelServer`'s
        ``url``) and the model ``model``; ``extra_args`` follow those options, ``options``
        are :meth:`start`'s. The server refuses to start unless ``OPENAI_API_KEY`` is set
        in its environment."""
        return self.start(
            assistant="openai",
            extra_args=("--assistant-base-url", model_url, "--assistant-model", model,
                        *extra_args),
            **options,
        )

    def stop_all(self) -> None:
        """Stop every server started through this factory (teardown)."""
        for server in self.started:
            server.stop()


def _capture(run, errors: list[BaseException]):
    def wrapped() -> None:
        try:
            run()
        except BaseException as exc:  # re-raised by the caller
            errors.append(exc)

    return wrapped


def isolated_environment(home: Path) -> dict[str, str]:
    """A copy of ``os.environ`` whose ``XDG_*`` dirs are subdirectories of ``home`` (created)
    and whose keyring refuses everything, for a process that must not see the caller's dirs.
    """
    env = os.environ.copy()
    for name in ("DATA", "CONFIG", "CACHE", "STATE"):
        path = home / name.lower()
        path.mkdir(parents=True, exist_ok=True)
        env[f"XDG_{name}_HOME"] = str(path)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    return env


class SharedServer:
    """One ``chat-tui-server`` process shared by many tests, with a fresh database per test.

    The process runs in its own ``XDG_*`` dirs under ``base`` (so a test's isolated dirs never
    receive its log). Right after the first start and the ``users`` (name -> password) are
    added, a copy of the SQLite file is kept as the template. :meth:`checkout` copies the
    template back over the live file with SQLite's online backup (page by page, under the
    database's own locks, so the running server reads the fresh content at its next
    transaction): every test sees exactly the database a newly started server with those
    users has. The server keeps no state in memory that outlives a test: its caches are keyed
    by token and device (new on every login) and by user id (kept by the template).

    A test may stop, kill and restart the process (same port, same file); :meth:`checkout`
    starts it again when the previous test left it stopped, and replaces it with a new
    process when that fails or the file can no longer be reset.
    """

    def __init__(self, base: Path, users: Mapping[str, str]) -> None:
        self.base = base
        self.users = dict(users)
        self._generation = 0
        self.server: ServerProcess | None = None
        self._factory: ServerFactory | None = None
        self._template: Path | None = None

    def _start_new(self) -> ServerProcess:
        self._generation += 1
        base = self.base / f"process{self._generation}"
        self._factory = ServerFactory(base, env=isolated_environment(base / "home"))
        self.server = self._factory.start(users=self.users)
        self._template = base / "template.db"
        with closing(sqlite3.connect(self.server.db_path, timeout=30)) as live, \
                closing(sqlite3.connect(self._template)) as template:
            live.backup(template)
        return self.server

    def checkout(self) -> ServerProcess:
        """The running server, its database reset to the template (see class doc).

        Raises RuntimeError when no server can be started.
        """
        server = self.server
        if server is None:
            return self._start_new()
        try:
            if not server.running:
                server.start()
            assert self._template is not None
            with closing(sqlite3.connect(self._template)) as template, \
                    closing(sqlite3.connect(server.db_path, timeout=30)) as live:
                template.backup(live)
        except (OSError, RuntimeError, sqlite3.Error):
            self.close()
            return self._start_new()
        return server

    def close(self) -> None:
        """Stop the process (end of the session)."""
        if self._factory is not None:
            self._factory.stop_all()
        self.server = None
