"""Fixtures of the server tests: logged-in HTTP clients over loopback for alice and bob."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest


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
def login_as(server) -> Iterator:
    """``login_as(name, password, device="test") -> Api``: another device of a user."""
    made: list[Api] = []

    def make(name: str, password: str, device: str = "test") -> Api:
        api = Api(server.url, server.login(name, password, device))
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


class FakeOpenAI:
    """A small OpenAI-compatible chat completions server on loopback (real HTTP, SSE).

    ``POST /v1/chat/completions`` with ``stream: true`` answers ``text/event-stream`` chunks
    shaped like the real API (``chat.completion.chunk`` objects, then ``data: [DONE]``).
    The reply is ``"saw N: <last message>"`` where N counts the user messages it got,
    streamed word by word ``delay`` seconds apart. The last message steers failures:
    contains ``FAIL500`` -> HTTP 500 JSON error; ``BREAK`` -> two chunks then the connection
    drops; ``SLOW`` -> two chunks then silence for a minute. ``requests`` keeps every request
    body received.
    """

    def __init__(self, port: int, delay: float = 0.03) -> None:
        import threading

        import uvicorn
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse, StreamingResponse
        from starlette.routing import Route

        self.port = port
        self.url = f"http://127.0.0.1:{port}/v1"
        self.delay = delay
        self.requests: list[dict] = []

        def chunk(content: str | None, finish: str | None = None) -> str:
            delta = {"content": content} if content is not None else {}
            body = {
                "id": "chatcmpl-test",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": "fake-model",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return "data: " + json.dumps(body) + "\n\n"

        async def completions(request):
            import asyncio

            payload = await request.json()
            self.requests.append(payload)
            msgs = [m for m in payload["messages"] if m["role"] == "user"]
            last = msgs[-1]["content"] if msgs else ""
            if "FAIL500" in last:
                return JSONResponse(
                    {"error": {"message": "upstream exploded", "type": "server_error"}},
                    status_code=500,
                )
            words = f"saw {len(msgs)}: {last}".split(" ")

            async def events():
                yield (
                    "data: "
                    + json.dumps(
                        {
                            "id": "chatcmpl-test",
                            "object": "chat.completion.chunk",
                            "created": 1_700_000_000,
                            "model": "fake-model",
                            "choices": [
                                {"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}
                            ],
                        }
                    )
                    + "\n\n"
                )
                for i, word in enumerate(words):
                    if "BREAK" in last and i == 2:
                        raise RuntimeError("connection dropped on purpose")
                    if "SLOW" in last and i == 2:
                        await asyncio.sleep(60)
                    yield chunk(word if i == 0 else " " + word)
                    await asyncio.sleep(self.delay)
                yield chunk(None, "stop")
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="critical", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        import time

        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._server.force_exit = True
        self._thread.join(timeout=10)


@pytest.fixture
def fake_openai(unused_port, monkeypatch) -> Iterator[FakeOpenAI]:
    """A running :class:`FakeOpenAI`; ``OPENAI_API_KEY`` is set for servers started after."""
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-secret")
    fake = FakeOpenAI(unused_port)
    fake.start()
    yield fake
    fake.stop()
