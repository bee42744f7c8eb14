"""The embeddable server (the client runs it inside itself when no server is configured)."""

from __future__ import annotations

import logging
import threading
import uuid

import httpx
import pytest

from chat_tui.server.embedded import ensure_local_account, start_embedded


def test_embedded_server_serves_and_stops(tmp_path):
    root_handlers = list(logging.getLogger().handlers)
    db_path = tmp_path / "local.db"
    password = ensure_local_account(db_path, "me")  # before start: creates the database
    server = start_embedded(db_path)
    try:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert httpx.get(f"{server.url}/v1/health").json()["status"] == "ok"
        login = httpx.post(
            f"{server.url}/v1/login",
            json={"username": "me", "password": password, "device_name": "tui"},
        ).json()
        headers = {"Authorization": f"Bearer {login['access_token']}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as c:
            cid = str(uuid.uuid4())
            assert c.put(f"/v1/conversations/{cid}", json={"title": "notes"}).status_code == 201
            r = c.put(f"/v1/conversations/{cid}/messages/{uuid.uuid4()}", json={"body": "hi"})
            assert r.status_code == 201
            # A second call while running resets the password; the old token stays valid.
            new_password = ensure_local_account(db_path, "me")
            assert new_password != password
            assert c.get("/v1/conversations").status_code == 200
            assert (
                httpx.post(
                    f"{server.url}/v1/login",
                    json={"username": "me", "password": new_password, "device_name": "x"},
                ).status_code
                == 200
            )
            with pytest.raises(RuntimeError):
                start_embedded(db_path)  # one per process
            cursor = c.get("/v1/sync").json()["cursor"]
        # A held long-poll is answered promptly when the server stops.
        poller = httpx.Client(base_url=server.url, headers=headers, timeout=30)
        answers: list = []
        poll = threading.Thread(
            target=lambda: answers.append(
                poller.get("/v1/sync", params={"since": cursor, "timeout": 30})
            )
        )
        poll.start()
        threading.Event().wait(0.3)
    finally:
        server.stop()
    poll.join(timeout=10)
    poller.close()
    assert not poll.is_alive()
    assert answers and answers[0].status_code == 200
    assert not server.running
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/v1/health", timeout=2)
    # The client's terminal logging is untouched.
    assert logging.getLogger().handlers == root_handlers
    # Data persisted: a new embedded server on the same file sees the message.
    again = start_embedded(db_path)
    try:
        password = ensure_local_account(db_path, "me")
        token = httpx.post(
            f"{again.url}/v1/login",
            json={"username": "me", "password": password, "device_name": "tui"},
        ).json()["access_token"]
        convs = httpx.get(
            f"{again.url}/v1/conversations", headers={"Authorization": f"Bearer {token}"}
        ).json()["conversations"]
        assert [c["last_message"]["body"] for c in convs] == ["hi"]
    finally:
        again.stop()


def test_ensure_local_account_rejects_reserved_name(tmp_path):
    with pytest.raises(ValueError):
        ensure_local_account(tmp_path / "x.db", "assistant")
    with pytest.raises(ValueError):
        ensure_local_account(tmp_path / "x.db", "Not Valid!")
