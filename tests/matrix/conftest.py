"""Fixtures of the Matrix tests: ``matrix_user`` registers fresh users on the worker's
real Synapse (the ``synapse`` fixture) and ``matrix_client`` logs them in.

``matrix_user() -> (user_id, localpart, password)``: a new user with a unique name.
``matrix_client(localpart, password) -> MatrixClient``: logged in (token set), closed
after the test.
``matrix_account(url=None) -> Registered``: a new user logged in over raw HTTP and saved
as a chat-tui Matrix account (``kind`` matrix) for ``url`` (default the homeserver; a
fault proxy's URL puts it in between), its token in a 0600 file.
``matrix_engines``: ``make(account)`` builds a headless engine with short timeouts
(:data:`FAST`), stopped at teardown.
``raw(localpart, password) -> RawMatrix``: a plain Matrix client (raw HTTP), closed after.

Every test here is marked ``matrix`` and kept on one xdist worker (``xdist_group``), so
the suite starts one Synapse, not one per worker.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from chat_tui.config import Account, Settings, save_account, store_token
from chat_tui.sync.engine import Engine
from tests.support.raw_matrix import RawMatrix
from tests.support.synapse import Synapse

#: Engine settings of the Matrix flow tests: short backoffs and a 2 s long-poll.
FAST = Settings(backoff_base=0.05, backoff_cap=0.5, poll_timeout=2, probe_timeout=2.0,
                request_timeout=10.0, retention_interval=3600, page_size=50)


@dataclass(frozen=True)
class Registered:
    """A user registered on the test Synapse and saved as a chat-tui account."""

    account: Account
    localpart: str
    password: str

    @property
    def user_id(self) -> str:
        """``@localpart:localhost``."""
        return self.account.user_id


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests of this directory ``matrix`` and group them on one worker."""
    for item in items:
        if "tests/matrix/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.matrix)
            item.add_marker(pytest.mark.xdist_group("synapse"))


@pytest.fixture
def matrix_user(synapse: Synapse) -> Callable[[], tuple[str, str, str]]:
    """A factory of fresh users (see module doc)."""

    def make() -> tuple[str, str, str]:
        name = f"u{uuid.uuid4().hex[:10]}"
        password = f"pw-{uuid.uuid4().hex}"
        return synapse.register(name, password), name, password

    return make


@pytest.fixture
async def matrix_client(synapse: Synapse) -> AsyncIterator[Callable]:
    """A factory of logged-in :class:`MatrixClient` objects (see module doc)."""
    from chat_tui.api.matrix import MatrixClient

    clients: list[MatrixClient] = []

    async def make(localpart: str, password: str) -> MatrixClient:
        client = MatrixClient(synapse.url)
        clients.append(client)
        login = await client.login(localpart, password, "chat-tui test")
        client.set_token(login.access_token)
        return client

    try:
        yield make
    finally:
        for client in clients:
            await client.aclose()


@pytest.fixture
def matrix_account(synapse: Synapse, matrix_user) -> Callable[..., Registered]:
    """A factory of saved Matrix accounts (see module doc)."""

    def make(url: str | None = None) -> Registered:
        user_id, name, password = matrix_user()
        answer = httpx.post(f"{synapse.url}/_matrix/client/v3/login", timeout=30, json={
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": name},
            "password": password, "initial_device_display_name": "chat-tui test",
        }).raise_for_status().json()
        account = Account(server_url=url or synapse.url, username=user_id, user_id=user_id,
                          device_id=answer["device_id"], kind="matrix")
        store_token(account, answer["access_token"])
        save_account(account)
        return Registered(account, name, password)

    return make


class MatrixEngines:
    """Headless engines of Matrix accounts, stopped at teardown."""

    def __init__(self) -> None:
        self.started: list[Engine] = []

    def make(self, account: Account) -> Engine:
        """The engine of ``account`` with :data:`FAST` settings (not started)."""
        engine = Engine.for_account(account, FAST)
        self.started.append(engine)
        return engine

    async def stop_all(self) -> None:
        for engine in self.started:
            await engine.stop()


@pytest.fixture
async def matrix_engines() -> AsyncIterator[MatrixEngines]:
    """See :class:`MatrixEngines`."""
    holder = MatrixEngines()
    try:
        yield holder
    finally:
        await holder.stop_all()


@pytest.fixture
def raw(synapse: Synapse) -> Iterator[Callable[[str, str], RawMatrix]]:
    """A factory of plain Matrix clients (see module doc)."""
    clients: list[RawMatrix] = []

    def make(localpart: str, password: str) -> RawMatrix:
        client = RawMatrix(synapse.url, localpart, password)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
