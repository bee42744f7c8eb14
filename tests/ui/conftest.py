"""Fixtures of the UI tests: the real server (``server`` from tests/support/fixtures.py), a
real SQLite cache per account, and the real engine on the app's loop. No mocks.

- ``ui_settings``: engine :class:`Settings` with short backoff and long-poll so the
  offline/online flows take about a second.
- ``login(name, url=None)``: logs ``name`` in on the real server (over HTTP), saves the
  account for ``url`` (the server, or a fault proxy in front of it) with its token and
  returns the :class:`Account`.
- ``make_app(account, **kw)``: a :class:`ChatApp` over the account's cache (opened here,
  as ``launch`` does) with the real engine factory and a :class:`FixedClock`.
- ``server_api(name)`` (from ``tests/support/fixtures.py``): an ``ApiClient`` logged in as
  ``name`` directly on the server.

The helpers the UI tests share (``SIZE``, ``wait_for`` through the pilot, ...) are in
``tests/support/ui.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chat_tui.config import Account, Settings
from chat_tui.launch import configured_factory
from chat_tui.ui.app import ChatApp
from chat_tui.ui.clock import FixedClock
from tests.support import accounts
from tests.support.ui import open_store


@pytest.fixture
def ui_settings() -> Settings:
    return Settings(backoff_base=0.05, backoff_cap=0.3, poll_timeout=2, probe_timeout=1.0,
                    request_timeout=3.0, retention_interval=3600, page_size=50)


@pytest.fixture
def login(server) -> Callable[..., Account]:
    def do(name: str, url: str | None = None) -> Account:
        return accounts.login_account(server, name, url)

    return do


@pytest.fixture
def make_app(ui_settings) -> Callable[..., ChatApp]:
    def make(account: Account, *, engine: bool = True, clock=None, settings=None) -> ChatApp:
        store = open_store(account)
        factory = configured_factory(account, settings or ui_settings) if engine else None
        return ChatApp(store, factory, clock=clock or FixedClock())

    return make
