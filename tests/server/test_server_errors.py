"""Every error of docs/api.md's table, with the ``{"error": {"code", "message"}}`` body."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import httpx


def assert_error(r: httpx.Response, status: int, code: str, mentions: str = "") -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert mentions in body["error"]["message"]
    return body


def test_400_malformed_json(alice):
    cid = alice.create_conversation([])
    r = alice.request(
        "PUT",
        f"/v1/conversations/{cid}/messages/{uuid.uuid4()}",
        content=b'{"body": "unterminated',
        headers={"Content-Type": "application/json"},
    )
    assert_error(r, 400, "bad_request", "JSON")


def test_401_missing_and_unknown_tokens(server):
    assert_error(httpx.get(f"{server.url}/v1/conversations"), 401, "unauthorized")
    r = httpx.get(f"{server.url}/v1/sync", headers={"Authorization": "Bearer not-a-token"})
    assert_error(r, 401, "unauthorized")
    r = httpx.get(f"{server.url}/v1/sync", headers={"Authorization": "Basic YWxpY2U6eA=="})
    assert_error(r, 401, "unauthorized")


def test_401_user_without_password_cannot_log_in(server, tmp_path):
    line = json.dumps({"id": str(uuid.uuid4()), "title": "t", "members": ["imported"]})
    path = tmp_path / "one.jsonl"
    path.write_text(line + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "chat_tui.server", "import", str(path), "--db", str(server.db_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    for password in ("", "anything"):
        r = httpx.post(
            f"{server.url}/v1/login",
            json={"username": "imported", "password": password, "device_name": "d"},
        )
        assert_error(r, 401, "unauthorized")
    # The assistant system user cannot log in either.
    r = httpx.post(
        f"{server.url}/v1/login",
        json={"username": "assistant", "password": "", "device_name": "d"},
    )
    assert_error(r, 401, "unauthorized")


def test_409_conversation_owned_by_another_member(alice, bob):
    cid = alice.create_conversation(["bob"])
    r = bob.request("PUT", f"/v1/conversations/{cid}", json={"title": "mine", "members": []})
    assert_error(r, 409, "conflict")


def test_409_same_message_id_in_another_conversation(alice):
    first = alice.create_conversation([])
    second = alice.create_conversation([])
    mid = str(uuid.uuid4())
    assert alice.send(first, "x", mid).status_code == 201
    assert_error(alice.send(second, "x", mid), 409, "conflict")


def test_410_cursor_expired(alice):
    current = int(alice.sync().json()["cursor"])
    for since in ("garbage", "-1", str(current + 1000), "1e3", "١٢"):
        assert_error(alice.sync(since), 410, "cursor_expired")


def test_410_after_server_lost_its_data(server_factory):
    first = server_factory.start()
    first.add_user("alice", "alice-pw")
    token = first.login("alice", "alice-pw")["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    cid = str(uuid.uuid4())
    httpx.put(f"{first.url}/v1/conversations/{cid}", json={"title": "t"}, headers=headers)
    cursor = httpx.get(f"{first.url}/v1/sync", headers=headers).json()["cursor"]
    first.stop()
    first.db_path.unlink()
    for suffix in ("-wal", "-shm"):
        first.db_path.with_name(first.db_path.name + suffix).unlink(missing_ok=True)
    first.start()
    first.add_user("alice", "alice-pw")
    token = first.login("alice", "alice-pw")["access_token"]
    r = httpx.get(
        f"{first.url}/v1/sync",
        params={"since": cursor},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert_error(r, 410, "cursor_expired")


def test_413_body_over_64_kib(alice):
    cid = alice.create_conversation([])
    assert alice.send(cid, "a" * 65_536).status_code == 201
    assert_error(alice.send(cid, "a" * 65_537), 413, "too_large", "65536")
    # The limit is in UTF-8 bytes, not characters: 40,000 "é" are 80,000 bytes.
    assert_error(alice.send(cid, "é" * 40_000), 413, "too_large")
    mid = alice.send(cid, "short").json()["id"]
    r = alice.request("PATCH", f"/v1/messages/{mid}", json={"body": "b" * 70_000})
    assert_error(r, 413, "too_large")
    page = alice.request("GET", f"/v1/conversations/{cid}/messages").json()
    assert page["total_count"] == 2
    assert page["messages"][-1]["body"] == "short"


def test_413_request_over_1_mib(alice):
    cid = alice.create_conversation([])
    big = b'{"body": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    path = f"/v1/conversations/{cid}/messages/{uuid.uuid4()}"
    r = alice.request("PUT", path, content=big, headers={"Content-Type": "application/json"})
    assert_error(r, 413, "too_large")

    def chunks():  # no Content-Length: the limit holds for streamed bodies too
        for i in range(0, len(big), 65_536):
            yield big[i : i + 65_536]

    r = alice.request("PUT", path, content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(r, 413, "too_large")


VALIDATION_CASES = [
    ("PUT", "/v1/conversations/{cid}/messages/{mid}", {"json": {"body": ""}}, "body"),
    ("PUT", "/v1/conversations/{cid}/messages/{mid}", {"json": {"body": 5}}, "body"),
    ("PUT", "/v1/conversations/{cid}/messages/{mid}", {"json": {}}, "body"),
    ("PUT", "/v1/conversations/{cid}/messages/not-a-uuid", {"json": {"body": "x"}}, "mid"),
    ("PUT", "/v1/conversations/{new}", {"json": {"title": "t" * 201}}, "title"),
    ("PUT", "/v1/conversations/{new}", {"json": {"title": ""}}, "title"),
    (
        "PUT",
        "/v1/conversations/{new}",
        {"json": {"title": "t", "members": ["nobody"]}},
        "nobody",
    ),
    (
        "PUT",
        "/v1/conversations/{new}",
        {"json": {"title": "t", "members": ["Bad Name!"]}},
        "members",
    ),
    ("GET", "/v1/conversations/{cid}/messages", {"params": {"limit": 0}}, "limit"),
    ("GET", "/v1/conversations/{cid}/messages", {"params": {"limit": 501}}, "limit"),
    ("GET", "/v1/conversations/{cid}/messages", {"params": {"limit": "many"}}, "limit"),
    ("GET", "/v1/sync", {"params": {"timeout": 31}}, "timeout"),
    ("GET", "/v1/sync", {"params": {"timeout": -1}}, "timeout"),
    ("POST", "/v1/conversations/{cid}/read", {"json": {"message_id": "x"}}, "message_id"),
    ("PATCH", "/v1/messages/{mid}", {"json": {"body": ""}}, "body"),
]


def test_422_validation_names_the_field_and_stores_nothing(alice):
    cid = alice.create_conversation([])
    mid = alice.send(cid, "existing").json()["id"]
    for method, path, kwargs, mentions in VALIDATION_CASES:
        url = path.format(cid=cid, mid=mid if method == "PATCH" else uuid.uuid4(), new=uuid.uuid4())
        r = alice.request(method, url, **kwargs)
        assert r.status_code == 422, (method, path, kwargs, r.text)
        assert_error(r, 422, "validation", mentions)
    page = alice.request("GET", f"/v1/conversations/{cid}/messages").json()
    assert [(m["body"], m["version"]) for m in page["messages"]] == [("existing", 1)]
    assert len(alice.request("GET", "/v1/conversations").json()["conversations"]) == 1


def test_404_unknown_route_and_before(alice):
    assert_error(alice.request("GET", "/v1/nothing-here"), 404, "not_found")
    cid = alice.create_conversation([])
    r = alice.request(
        "GET", f"/v1/conversations/{cid}/messages", params={"before": str(uuid.uuid4())}
    )
    assert_error(r, 404, "not_found")


def test_429_rate_limited_with_retry_after(server_factory):
    server = server_factory.start(rate_limit=1)  # 1 send/s, burst 3
    server.add_user("alice", "alice-pw")
    token = server.login("alice", "alice-pw")["access_token"]
    other = server.login("alice", "alice-pw", device="other")["access_token"]
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
        cid = str(uuid.uuid4())
        assert c.put(f"/v1/conversations/{cid}", json={"title": "t"}).status_code == 201
        statuses = []
        limited = None
        for i in range(6):
            r = c.put(f"/v1/conversations/{cid}/messages/{uuid.uuid4()}", json={"body": f"{i}"})
            statuses.append(r.status_code)
            if r.status_code == 429:
                limited = r
                break
        assert statuses[:3] == [201, 201, 201]
        assert limited is not None
        assert_error(limited, 429, "rate_limited")
        retry_after = int(limited.headers["Retry-After"])
        assert 1 <= retry_after <= 2
        # The bucket is per token: the other device still sends.
        r = c.put(
            f"/v1/conversations/{cid}/messages/{uuid.uuid4()}",
            json={"body": "from the other device"},
            headers={"Authorization": f"Bearer {other}"},
        )
        assert r.status_code == 201
        time.sleep(retry_after)
        r = c.put(f"/v1/conversations/{cid}/messages/{uuid.uuid4()}", json={"body": "later"})
        assert r.status_code == 201
        # Reads are never limited.
        assert c.get(f"/v1/conversations/{cid}/messages").json()["total_count"] == 5


def test_openapi_matches_responses(alice):
    spec = alice.request("GET", "/openapi.json").json()
    paths = spec["paths"]
    expected = {
        "/v1/health": {"get"},
        "/v1/login": {"post"},
        "/v1/logout": {"post"},
        "/v1/conversations": {"get"},
        "/v1/conversations/{cid}": {"put", "patch", "delete"},
        "/v1/conversations/{cid}/members/{username}": {"put", "delete"},
        "/v1/messages/{mid}/regenerate": {"post"},
        "/v1/conversations/{cid}/messages": {"get"},
        "/v1/conversations/{cid}/messages/{mid}": {"put"},
        "/v1/messages/{mid}": {"patch", "delete"},
        "/v1/messages/{mid}/stop": {"post"},
        "/v1/conversations/{cid}/read": {"post"},
        "/v1/sync": {"get"},
        "/v1/users/{username}": {"get"},
        "/v1/models": {"get"},
    }
    assert {p: set(ops) for p, ops in paths.items()} == expected
    schemas = spec["components"]["schemas"]

    def props(name: str) -> set[str]:
        return set(schemas[name]["properties"])

    cid = alice.create_conversation([])
    msg = alice.send(cid, "hi").json()
    assert set(msg) == props("MessageOut")
    conv = alice.request("GET", "/v1/conversations").json()["conversations"][0]
    assert set(conv) == props("ConversationOut")
    sync = alice.sync().json()
    assert set(sync) == props("SyncResponse")
    assert set(sync["conversations"][0]) == props("SyncEntry")
    page = alice.request("GET", f"/v1/conversations/{cid}/messages").json()
    assert set(page) == props("MessagePage")
    user = alice.request("GET", "/v1/users/alice").json()
    assert set(user) == props("UserInfo")
    marker = alice.request("POST", f"/v1/conversations/{cid}/read", json={"message_id": msg["id"]})
    assert set(marker.json()) == props("ReadMarkerOut")
    models = alice.request("GET", "/v1/models").json()
    assert set(models) == props("ModelList")
    assert set(models["models"][0]) == props("ModelInfo")
    put = paths["/v1/conversations/{cid}/messages/{mid}"]["put"]["responses"]
    assert {"200", "201", "409", "413", "422", "429"} <= set(put)
    assert put["413"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
