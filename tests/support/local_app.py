"""The app of the local mode as ``chat-tui`` builds it without a login: the embedded server
inside the test process (its assistant from config.toml), the local account's real cache,
the welcome hook and the :class:`~chat_tui.launch.LocalMode` the app reaches as its
``models_host``. :func:`local_app` returns ``(app, mode, servers)``; the caller stops the
embedded servers (``stop_all(servers)``) after the app ends. :func:`bare_local_app` is
the same app without the :class:`~chat_tui.launch.LocalMode`."""

from __future__ import annotations

from chat_tui.config import Settings
from chat_tui.launch import LocalMode, local_dir, local_factory, local_username, welcome_once
from chat_tui.store import Cache
from chat_tui.ui.app import ChatApp
from chat_tui.ui.clock import FixedClock


def _local_cache() -> tuple:
    """The local account's directory, its cache (opened) and the engine settings of the
    local-mode tests (short backoffs and long-polls)."""
    directory = local_dir()
    store = Cache(directory / "cache.db", local_username())
    store.open()
    settings = Settings(backoff_base=0.05, backoff_cap=0.3, poll_timeout=2, probe_timeout=1.0)
    return directory, store, settings


def local_app(*, frozen: bool = False) -> tuple[ChatApp, LocalMode, list]:
    """A :class:`ChatApp` of the local mode (engine settings with short backoffs); the
    config file is read when the engine starts, as in ``chat-tui``."""
    directory, store, settings = _local_cache()
    servers: list = []
    mode = LocalMode()
    factory = local_factory(settings, local_username(), directory, servers.append, None, mode)
    app = ChatApp(store, factory, clock=FixedClock(frozen_display=frozen),
                  on_ready=welcome_once(directory), models_host=mode)
    app.animation_level = "none"
    return app, mode, servers


def bare_local_app(servers: list, models=None) -> ChatApp:
    """A :class:`ChatApp` of the local mode without a :class:`LocalMode` (no models host,
    animations on, the clock not frozen): the local account's cache, the local engine
    factory (short backoffs) whose embedded servers are appended to ``servers``, the
    welcome hook. ``models``: the model part of config.toml as ``local_factory`` takes it
    (None: read when the engine starts)."""
    directory, store, settings = _local_cache()
    factory = local_factory(settings, local_username(), directory, servers.append, models)
    return ChatApp(store, factory, clock=FixedClock(), on_ready=welcome_once(directory))


def stop_all(servers: list) -> None:
    """Stop the embedded servers the app started."""
    for server in servers:
        server.stop()
