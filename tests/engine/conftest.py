"""Fixtures of the engine tests (real server process, real SQLite files, no mocks).

- ``fast_settings``: :class:`Settings` with small backoff (50 ms base, 0.5 s cap), a 2 s
  long-poll and 2 s probe timeout, so tests never sleep minutes.
- ``login_account(url, name, password, via=server)``: logs in over HTTP against ``via`` (the
  real server), saves the account for ``url`` (the server or a :class:`FaultProxy`) with its
  token (a 0600 file: the test keyring refuses) and returns the :class:`Account`.
- ``engines``: builds engines (``engines.make(account, settings=...)``) and stops them at
  teardown.
- ``proxy``: a started :class:`~engine.fault_proxy.FaultProxy` in front of ``server``.
- ``server_api(name)``: an :class:`ApiClient` logged in as ``name`` directly on the server,
  to check what the server really holds.
- ``store``: an open :class:`Store` on a real SQLite file for ``alice`` (no engine);
  ``conv``: the id of a conversation already in it (applied as a sync response).
- ``wait_for(predicate, timeout)``: async polling helper; returns the final value.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from chat_tui.api import ApiClient
from chat_tui.config import Account, Settings, save_account, store_token
from chat_tui.store import Store
from chat_tui.sync.engine import Engine
from engine.fault_proxy import FaultProxy

PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw"}


@pytest.fixture
def fast_settings() -> Settings:
    return Settings(backoff_base=0.05, backoff_cap=0.5, poll_timeout=2, probe_timeout=2.0,
                    request_timeout=5.0, retention_interval=3600, page_size=50)


@pytest.fixture
def login_account(server) -> Callable[..., Account]:
    def login(name: str, url: str | None = None) -> Account:
        data = server.login(name, PASSWORDS[name])
        account = Account(server_url=url or server.url, username=data["username"],
                          user_id=data["user_id"], device_id=data["device_id"])
        store_token(account, data["access_token"])
        save_account(account)
        return account

    return login


class Engines:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.started: list[Engine] = []
        self.events: dict[int, list] = {}

    def make(self, account: Account, settings: Settings | None = None) -> Engine:
        engine = Engine.for_account(account, settings or self.settings)
        self.events[id(engine)] = []
        engine.subscribe(self.events[id(engine)].append)
        self.started.append(engine)
        return engine

    def events_of(self, engine: Engine) -> list:
        return self.events[id(engine)]

    async def stop_all(self) -> None:
        for engine in self.started:
            await engine.stop()


@pytest.fixture
async def engines(fast_settings) -> AsyncIterator[Engines]:
    holder = Engines(fast_settings)
    try:
        yield holder
    finally:
        await holder.stop_all()


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    s = Store(tmp_path / "alice.db", "alice")
    s.open()
    yield s
    s.close()


@pytest.fixture
def conv(store) -> str:
    from engine.test_store import sync_response, wire_conversation

    cid = str(uuid.uuid4())
    store.apply_sync(sync_response("1", [(wire_conversation(cid), [], False)]))
    return cid


@pytest.fixture
def proxy(server):
    with FaultProxy(server.url) as p:
        yield p


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


async def wait_for(predicate: Callable[[], object], timeout: float = 10.0,
                   interval: float = 0.02) -> object:
    """Await until ``predicate()`` is truthy or ``timeout`` seconds pass; returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    return predicate()
