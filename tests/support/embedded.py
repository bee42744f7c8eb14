"""The embedded server (``chat_tui.server.embedded``) inside the test process, its local
account logged in: :func:`embedded_client`; the assistant of a test model server:
:func:`model_assistant`; a question to the assistant and its answers:
:func:`new_assistant_conversation`, :func:`send_text`, :func:`finished_replies`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from chat_tui.server.embedded import ensure_local_account, start_embedded
from chat_tui.server.settings import AssistantSettings, ProviderSettings


def model_assistant(url: str, model: str | None = "small") -> AssistantSettings:
    """Assistant settings answering with the OpenAI-compatible endpoint ``url`` (a
    :class:`~tests.support.model_server.ModelServer`'s ``url``): one provider ``local``,
    no key, a 20 s timeout; ``model`` is the default model."""
    return AssistantSettings(kind="openai", model=model,
                             providers=[ProviderSettings("local", url, None, None, 20)])


@contextmanager
def embedded_client(db: Path, assistant: AssistantSettings) -> Iterator[httpx.Client]:
    """Start the embedded server on the SQLite file ``db`` with ``assistant``, log its
    local account ``me`` in (device ``t``) and yield an ``httpx.Client`` on the server
    (``base_url`` the server's URL, its bearer token, a 30 s timeout). The client is
    closed and the server stopped on exit."""
    password = ensure_local_account(db, "me")
    server = start_embedded(db, assistant=assistant)
    try:
        token = httpx.post(f"{server.url}/v1/login", json={
            "username": "me", "password": password, "device_name": "t"}).json()["access_token"]
        with httpx.Client(base_url=server.url, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            yield client
    finally:
        server.stop()


def new_assistant_conversation(client: httpx.Client, **fields) -> str:
    """``PUT`` a new conversation with the assistant (title ``q``, ``fields`` added to the
    body, e.g. ``model``); asserts the 201 and returns its id."""
    cid = str(uuid.uuid4())
    answer = client.put(f"/v1/conversations/{cid}",
                        json={"title": "q", "assistant": True, **fields})
    assert answer.status_code == 201, answer.text
    return cid


def send_text(client: httpx.Client, cid: str, text: str) -> dict:
    """``PUT`` a new message ``text`` in ``cid``; asserts the 201 and returns the stored
    message (the wire object as a dict)."""
    answer = client.put(f"/v1/conversations/{cid}/messages/{uuid.uuid4()}",
                        json={"body": text})
    assert answer.status_code == 201, answer.text
    return answer.json()


def finished_replies(client: httpx.Client, cid: str, count: int = 1,
                     timeout: float = 20) -> list[dict]:
    """The assistant replies of conversation ``cid`` that are no longer streaming (wire
    messages as dicts, oldest first), once there are ``count`` of them. Raises
    AssertionError after ``timeout`` seconds with fewer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = client.get(f"/v1/conversations/{cid}/messages").json()["messages"]
        done = [m for m in page if m["author"] == "assistant" and not m["streaming"]]
        if len(done) >= count:
            return done
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} finished replies")
