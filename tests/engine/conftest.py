"""Fixtures of the engine tests (real server process, real SQLite files, no mocks).

- ``fast_settings``: :class:`Settings` with small backoff (50 ms base, 0.5 s cap), a 2 s
  long-poll and 2 s probe timeout, so tests never sleep minutes.
- ``login_account(name, url=None)``: logs ``name`` in over HTTP on the real server, saves
  the account for ``url`` (default the server; or a :class:`FaultProxy`) with its token and
  returns the :class:`Account` (:func:`tests.support.accounts.login_account`).
- ``engines``: builds engines (``engines.make(account, settings=...)``) and stops them at
  teardown.
- ``proxy``: a started :class:`~tests.support.fault_proxy.FaultProxy` in front of ``server``.
- ``server_api(name)`` (from ``tests/support/fixtures.py``): an :class:`ApiClient` logged in
  as ``name`` directly on the server, to check what the server really holds.
- ``store``: an open :class:`Cache` on a real SQLite file for ``alice`` (no engine);
  ``conv``: the id of a conversation already in it (applied as a sync response).
- ``model_server``: a running :class:`~tests.support.model_server.ModelServer` with the
  models ``small`` and ``large``; ``OPENAI_API_KEY`` is set for the servers started after
  (``server_factory.start_with_model(model_server.url, "small", ...)``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from chat_tui.config import Account, Settings
from chat_tui.store import Cache
from chat_tui.sync.engine import Engine
from tests.support import accounts
from tests.support.fault_proxy import FaultProxy
from tests.support.model_server import ModelServer
from tests.support.payloads import sync_response, wire_conversation


@pytest.fixture
def fast_settings() -> Settings:
    return Settings(backoff_base=0.05, backoff_cap=0.5, poll_timeout=2, probe_timeout=2.0,
                    request_timeout=5.0, retention_interval=3600, page_size=50)


@pytest.fixture
def login_account(server) -> Callable[..., Account]:
    def login(name: str, url: str | None = None) -> Account:
        return accounts.login_account(server, name, url)

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


@pytest.fixture(params=["plain", "encrypted"])
def cache_key(request) -> bytes | None:
    """None (a plain cache) or a fresh raw key (SQLCipher): every test of the cache runs
    on both kinds of file (sync rule D6)."""
    from chat_tui.store.cipher import new_key

    return None if request.param == "plain" else new_key()


@pytest.fixture
def store(tmp_path, cache_key) -> Iterator[Cache]:
    s = Cache(tmp_path / "alice.db", "alice", key=cache_key)
    s.open()
    yield s
    s.close()


@pytest.fixture
def conv(store) -> str:
    cid = str(uuid.uuid4())
    store.apply_sync(sync_response("1", [(wire_conversation(cid), [], False)]))
    return cid


@pytest.fixture
def proxy(server):
    with FaultProxy(server.url) as p:
        yield p


@pytest.fixture
def model_server(monkeypatch) -> Iterator[ModelServer]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with ModelServer(["small", "large"], delay=0.01) as model:
        yield model
