"""Run the server inside another process (the client, when no server is configured).

``start_embedded(db_path)`` runs the same FastAPI app under uvicorn in a background thread
on loopback and returns once it accepts connections; ``ensure_local_account(db_path, name)``
gives the local user a fresh random password so the client can log in over HTTP like with
any server. Logs go to the server log file, never to the terminal.

Only one embedded server per process (the server's models are bound to one database).
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from chat_tui.server.app import create_app
from chat_tui.server.data import ServerDB
from chat_tui.server.db import open_and_migrate
from chat_tui.server.logsetup import configure_logging
from chat_tui.server.net import listen_socket
from chat_tui.server.protocol import uvicorn_options
from chat_tui.server.settings import AssistantSettings, ConnectionLimits, Settings

#: Seconds start_embedded waits for the server to accept connections.
START_TIMEOUT = 15.0
#: Seconds stop() waits for the thread to finish.
STOP_TIMEOUT = 10.0

_running: EmbeddedServer | None = None
_running_lock = threading.Lock()


@dataclass
class EmbeddedServer:
    """A server running in a thread of this process.

    ``url``: ``http://HOST:PORT`` (no trailing slash); ``port``: int; ``db_path``: Path.
    """

    url: str
    port: int
    db_path: Path
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _app: object = field(default=None, repr=False)
    _loop: object = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread.is_alive()

    def reconfigure(self, assistant: AssistantSettings, timeout: float = 10.0) -> None:
        """Reload the assistant's providers and model in place (no restart: the port, the
        long-polls and the device tokens stay): ``AssistantService.reconfigure`` runs on the
        server's event loop; a reply being written finishes with the old provider.
        Blocking (call it from a worker thread).

        Raises:
            RuntimeError: the server is not running; ValueError / KeyError: settings the
            assistant cannot use (it keeps the old ones).
        """
        import asyncio

        loop = self._loop
        if not self.running or not isinstance(loop, asyncio.AbstractEventLoop):
            raise RuntimeError("the embedded server is not running")
        service = self._app.state.context.assistant  # type: ignore[attr-defined]

        async def apply() -> None:
            service.reconfigure(assistant)

        asyncio.run_coroutine_threadsafe(apply(), loop).result(timeout)

    def stop(self) -> None:
        """Stop gracefully (held long-polls answer at once); waits up to 10 s. Idempotent."""
        global _running
        self._server.should_exit = True
        self._thread.join(timeout=STOP_TIMEOUT)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=STOP_TIMEOUT)
        with _running_lock:
            if _running is self:
                _running = None


def start_embedded(
    db_path: Path, host: str = "127.0.0.1", port: int = 0,
    assistant: str | AssistantSettings = "echo",
) -> EmbeddedServer:
    """Start the server on ``host:port`` (0: a free port) over the SQLite file ``db_path``.

    ``assistant``: the responder's settings (the local mode passes the providers of
    ``config.toml``, see ``chat_tui.launch.embedded_assistant``), or a kind: ``"echo"`` or
    ``"openai"`` (the latter needs ``OPENAI_API_KEY``).
    Returns once the server accepts connections. Raises RuntimeError when one is already
    running in this process or it does not start within 15 s, ``OSError`` when the address
    cannot be bound, ``db.SchemaError`` for a database newer than this code.
    """
    global _running
    with _running_lock:
        if _running is not None and _running.running:
            raise RuntimeError(f"an embedded server is already running at {_running.url}")
        configure_logging()
        if isinstance(assistant, str):
            assistant = AssistantSettings(kind=assistant)
        app = create_app(Settings(db=Path(db_path), assistant=assistant))
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = listen_socket(host, port, 128)
        actual_port = sock.getsockname()[1]
        notifier = app.state.context.notifier

        loops: list = []

        class _Server(uvicorn.Server):
            async def startup(self, sockets=None):  # type: ignore[override]
                import asyncio

                loops.append(asyncio.get_running_loop())
                await super().startup(sockets=sockets)

            async def shutdown(self, sockets=None):  # type: ignore[override]
                notifier.close()
                await super().shutdown(sockets=sockets)

        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=2,
            **uvicorn_options(ConnectionLimits()),
        )
        server = _Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="chat-tui-server", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(timeout=STOP_TIMEOUT)
                sock.close()
                raise RuntimeError("the embedded server did not start; see the server log")
            time.sleep(0.01)
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        _running = EmbeddedServer(
            url=f"http://{shown}:{actual_port}",
            port=actual_port,
            db_path=Path(db_path),
            _server=server,
            _thread=thread,
            _app=app,
            _loop=loops[0] if loops else None,
        )
        return _running


def ensure_local_account(db_path: Path, username: str) -> str:
    """Make sure ``username`` exists in ``db_path`` and return a new random password for it.

    Every call sets a fresh password (the client logs in with it right away; device tokens
    issued before stay valid), so no password has to be stored anywhere. Works whether or
    not the embedded server is running. Raises ValueError on an invalid or reserved
    username.
    """
    data = ServerDB(open_and_migrate(Path(db_path)))
    password = secrets.token_urlsafe(24)
    data.users.set_password(username, password, keep_tokens=True)
    return password
