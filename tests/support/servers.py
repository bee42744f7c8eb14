"""The real ``chat-tui-server`` as a subprocess for tests: :class:`ServerProcess`,
:class:`ServerFactory` and :func:`find_free_port`.

A plain module (not a conftest) so helpers outside pytest's fixture machinery, such as the
soak harness in ``tests/soak/``, import it by one unambiguous name: ``support.servers``.
The fixtures that use it are in ``tests/conftest.py``.
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
from collections.abc import Sequence
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
