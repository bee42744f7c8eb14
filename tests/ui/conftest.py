"""Fixtures of the UI tests: the real server (``server`` from tests/conftest.py), a real
SQLite cache per account, and the real engine on the app's loop. No mocks.

- ``ui_settings``: engine :class:`Settings` with short backoff and long-poll so the
  offline/online flows take about a second.
- ``login(name, url=None)``: logs ``name`` in on the real server (over HTTP), saves the
  account for ``url`` (the server, or a fault proxy in front of it) with its token and
  returns the :class:`Account`.
- ``make_app(account, **kw)``: a :class:`ChatApp` over the account's cache (opened here,
  as ``launch`` does) with the real engine factory and a :class:`FixedClock`.
- ``server_api(name)``: an ``ApiClient`` logged in as ``name`` directly on the server.
- ``wait_for(pilot, predicate, timeout)``: pause the pilot until ``predicate()`` holds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from chat_tui.api import ApiClient
from chat_tui.config import Account, Settings, save_account, store_token
from chat_tui.launch import configured_factory
from chat_tui.store import Store
from chat_tui.ui.app import ChatApp
from chat_tui.ui.clock import FixedClock

PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw"}
SIZE = (120, 36)


@pytest.fixture
def ui_settings() -> Settings:
    return Settings(backoff_base=0.05, backoff_cap=0.3, poll_timeout=2, probe_timeout=1.0,
                    request_timeout=3.0, retention_interval=3600, page_size=50)


@pytest.fixture
def login(server) -> Callable[..., Account]:
    def do(name: str, url: str | None = None) -> Account:
        data = server.login(name, PASSWORDS[name])
        account = Account(server_url=url or server.url, username=data["username"],
                          user_id=data["user_id"], device_id=data["device_id"])
        store_token(account, data["access_token"])
        save_account(account)
        return account

    return do


def open_store(account: Account) -> Store:
    """The account's cache, opened (as ``launch`` does before the first frame)."""
    store = Store(account.db_path, account.username, user_id=account.user_id,
                  server_url=account.server_url)
    store.open()
    return store


@pytest.fixture
def make_app(ui_settings) -> Callable[..., ChatApp]:
    def make(account: Account, *, engine: bool = True, clock=None, settings=None) -> ChatApp:
        store = open_store(account)
        factory = configured_factory(account, settings or ui_settings) if engine else None
        return ChatApp(store, factory, clock=clock or FixedClock())

    return make


@pytest.fixture
async def server_api(server) -> AsyncIterator[Callable[[str], ApiClient]]:
    clients: list[ApiClient] = []

    def make(name: str) -> ApiClient:
        data = server.login(name, PASSWORDS[name], device="checker")
        client = ApiClient(server.url, data["access_token"])
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            await client.aclose()


async def wait_for(pilot, predicate: Callable[[], object], timeout: float = 10.0) -> object:
    """Let the app run until ``predicate()`` is truthy (or ``timeout`` seconds); returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.05)
    await asyncio.sleep(0)
    return predicate()
