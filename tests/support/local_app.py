"""The app of the local mode as ``chat-tui`` builds it without a login: the embedded server
inside the test process (its assistant from config.toml), the local account's real cache,
the welcome hook and the :class:`~chat_tui.launch.LocalMode` the app reaches as its
``models_host``. :func:`local_app` returns ``(app, mode, servers)``; the caller stops the
embedded servers (``stop_all(servers)``) after the app ends."""

from __future__ import annotations

from chat_tui.config import Settings
from chat_tui.launch import LocalMode, local_dir, local_factory, local_username, welcome_once
from chat_tui.store import Cache
from chat_tui.ui.app import ChatApp
from chat_tui.ui.clock import FixedClock


def local_app(*, frozen: bool = False) -> tuple[ChatApp, LocalMode, list]:
    """A :class:`ChatApp` of the local mode (engine settings with short backoffs); the
    config file is read when the engine starts, as in ``chat-tui``."""
    directory = local_dir()
    store = Cache(directory / "cache.db", local_username())
    store.open()
    settings = Settings(backoff_base=0.05, backoff_cap=0.3, poll_timeout=2, probe_timeout=1.0)
    servers: list = []
    mode = LocalMode()
    factory = local_factory(settings, local_username(), directory, servers.append, None, mode)
    app = ChatApp(store, factory, clock=FixedClock(frozen_display=frozen),
                  on_ready=welcome_once(directory), models_host=mode)
    app.animation_level = "none"
    return app, mode, servers


def stop_all(servers: list) -> None:
    """Stop the embedded servers the app started."""
    for server in servers:
        server.stop()
