"""The app of the local mode as ``chat-tui`` builds it without a login: the embedded server
inside the test process (its assistant from config.toml), the local account's real cache,
the welcome hook and the :class:`~chat_tui.launch.LocalMode` the app reaches as its
``models_host``. :func:`local_app` returns ``(app, mode, servers)``; the caller stops the
embedded servers (``stop_all(servers)``) after the app ends. :func:`bare_local_app` is
the same app without the :class:`~chat_tui.launch.LocalMode`. :func:`welcomed_app` runs
the app until the welcome question has its finished reply."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from chat_tui.config import Settings
from chat_tui.launch import LocalMode, local_dir, local_factory, local_username, welcome_once
from chat_tui.store import Cache
from chat_tui.ui.app import ChatApp
from chat_tui.ui.clock import FixedClock
from chat_tui.ui.widgets.message_list import MessageList
from tests.support.config import write_config
from tests.support.ui import SIZE, wait_for


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


@asynccontextmanager
async def welcomed_app(model_url: str) -> AsyncIterator[tuple[ChatApp, object, MessageList]]:
    """The app of :func:`local_app` running (``run_test`` at ``SIZE``) with config.toml
    naming one provider ``test`` at ``model_url``, entered once the conversation shows the
    welcome question and its finished reply (two messages). Yields ``(app, pilot,
    messages)``, ``messages`` the :class:`MessageList`; the embedded servers are stopped
    on exit. AssertionError when the reply is not finished within 30 s."""
    write_config(f'[[providers]]\nname = "test"\nbase_url = "{model_url}"\n')
    app, _, servers = local_app()
    try:
        async with app.run_test(size=SIZE) as pilot:
            messages = app.query_one(MessageList)
            assert await wait_for(pilot, lambda: len(messages.views) == 2
                                  and not messages.views[1].streaming, timeout=30)
            yield app, pilot, messages
    finally:
        stop_all(servers)
