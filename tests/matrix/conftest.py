"""Fixtures of the Matrix tests: ``matrix_user`` registers fresh users on the worker's
real Synapse (the ``synapse`` fixture) and ``matrix_client`` logs them in.

``matrix_user() -> (user_id, localpart, password)``: a new user with a unique name.
``matrix_client(localpart, password) -> MatrixClient``: logged in (token set), closed
after the test.

Every test here is marked ``matrix`` and kept on one xdist worker (``xdist_group``), so
the suite starts one Synapse, not one per worker.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from tests.support.synapse import Synapse


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
