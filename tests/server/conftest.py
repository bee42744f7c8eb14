"""Fixtures of the server tests: logged-in HTTP clients over loopback for alice and bob
(``alice``, ``bob``, ``login_as``, ``api_factory``); model servers (``fake_openai``,
``models``) and the embedded server answering with one (``embedded``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.embedded import embedded_client, model_assistant
from tests.support.model_server import ModelServer


class Api:
    """A logged-in user of a running test server: ``httpx.Client`` with its bearer token.

    ``username``, ``token``, ``device_id``; :meth:`request` returns the ``httpx.Response``
    (no status check), the shortcuts below are for the common routes.
    """

    def __init__(self, url: str, login: dict) -> None:
        self.url = url
        self.username = login["username"]
        self.token = login["access_token"]
        self.device_id = login["device_id"]
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {self.token}"}, timeout=40
        )

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        return self.http.request(method, path, **kwargs)

    def create_conversation(
        self, members: list[str] = (), title: str = "Test", assistant: bool = False
    ) -> str:
        cid = str(uuid.uuid4())
        r = self.request(
            "PUT",
            f"/v1/conversations/{cid}",
            json={"title": title, "members": list(members), "assistant": assistant},
        )
        assert r.status_code == 201, r.text
        return cid

    def send(self, cid: str, body: str, mid: str | None = None) -> httpx.Response:
        mid = mid or str(uuid.uuid4())
        return self.request("PUT", f"/v1/conversations/{cid}/messages/{mid}", json={"body": body})

    def sync(self, since: str | None = None, timeout: float = 0) -> httpx.Response:
        params: dict = {"timeout": timeout}
        if since is not None:
            params["since"] = since
        return self.request("GET", "/v1/sync", params=params)

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def alice(server) -> Iterator[Api]:
    """alice, logged in on the ``server`` fixture."""
    api = Api(server.url, server.login("alice", "alice-pw"))
    yield api
    api.close()


@pytest.fixture
def bob(server) -> Iterator[Api]:
    """bob, logged in on the ``server`` fixture."""
    api = Api(server.url, server.login("bob", "bob-pw"))
    yield api
    api.close()


@pytest.fixture
def api_factory() -> Iterator:
    """``api_factory(server_process, name, password, device="test") -> Api`` (closed after)."""
    made: list[Api] = []

    def make(server_process, name: str, password: str, device: str = "test") -> Api:
        api = Api(server_process.url, server_process.login(name, password, device))
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


@pytest.fixture
def login_as(server, api_factory):
    """``login_as(name, password, device="test") -> Api``: another device of a user on
    ``server`` (``api_factory``'s, closed after)."""

    def make(name: str, password: str, device: str = "test") -> Api:
        return api_factory(server, name, password, device)

    return make


@pytest.fixture
def fake_openai(monkeypatch) -> Iterator[ModelServer]:
    """A running model server (:class:`tests.support.model_server.ModelServer`, model
    ``fake-model``); ``OPENAI_API_KEY`` is set for servers started after."""
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-secret")
    with ModelServer(["fake-model"]) as fake:
        yield fake


@pytest.fixture
def models() -> Iterator[ModelServer]:
    """A running model server with the models ``small`` and ``large`` (a word every 10 ms),
    no key."""
    with ModelServer(["small", "large"], delay=0.01) as server:
        yield server


@pytest.fixture
def embedded(tmp_path, models) -> Iterator[httpx.Client]:
    """The embedded server answering with ``models`` (default model ``small``): a
    logged-in ``httpx.Client`` of its local account ``me``
    (:func:`tests.support.embedded.embedded_client`)."""
    with embedded_client(tmp_path / "server.db", model_assistant(models.url)) as client:
        yield client
