"""docs/api.md, Text: every string a request carries is Unicode text that PostgreSQL and
SQLite both store as it is. An escaped unpaired UTF-16 surrogate (``"\\ud800"``, valid JSON)
or a NUL character answers 422 ``validation`` naming the field, on both databases, and the
login answers it the same for known and unknown users."""

from __future__ import annotations

import uuid

import httpx
import pytest

SURROGATE = b"\\ud800"  # JSON text of an unpaired high surrogate
LOW_SURROGATE = b"\\udfff"
NUL = b"\\u0000"


def raw(api, method: str, path: str, body: bytes) -> httpx.Response:
    """Send ``body`` as the JSON text it is (httpx would re-encode a Python string)."""
    return api.request(method, path, content=body, headers={"Content-Type": "application/json"})


def assert_validation(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation"
    assert field in error["message"]


@pytest.mark.also_postgres
@pytest.mark.parametrize("bad", [SURROGATE, LOW_SURROGATE, NUL, b"a" + SURROGATE + b"b"])
def test_rule_text_message_body_put_and_patch(server, alice, bad):
    cid = alice.create_conversation([])
    mid = str(uuid.uuid4())
    r = raw(alice, "PUT", f"/v1/conversations/{cid}/messages/{mid}", b'{"body": "x' + bad + b'"}')
    assert_validation(r, "body")
    # nothing was stored under that id: a good send of it is a first send
    assert alice.send(cid, "kept", mid).status_code == 201
    r = raw(alice, "PATCH", f"/v1/messages/{mid}", b'{"body": "' + bad + b'"}')
    assert_validation(r, "body")
    page = alice.request("GET", f"/v1/conversations/{cid}/messages").json()
    assert [m["body"] for m in page["messages"]] == ["kept"]


@pytest.mark.also_postgres
@pytest.mark.parametrize("bad", [SURROGATE, NUL])
def test_rule_text_title(server, alice, bad):
    cid = str(uuid.uuid4())
    r = raw(alice, "PUT", f"/v1/conversations/{cid}", b'{"title": "t' + bad + b'"}')
    assert_validation(r, "title")
    assert alice.request("GET", "/v1/conversations").json()["conversations"] == []


@pytest.mark.also_postgres
@pytest.mark.parametrize("bad", [SURROGATE, NUL])
def test_rule_text_device_name(server, bad):
    body = b'{"username": "alice", "password": "alice-pw", "device_name": "d' + bad + b'"}'
    r = httpx.post(f"{server.url}/v1/login", content=body,
                   headers={"Content-Type": "application/json"})
    assert_validation(r, "device_name")


@pytest.mark.also_postgres
def test_rule_text_login_same_answer_for_known_and_unknown_users(server):
    answers = []
    for user in (b"alice", b"nosuchuser"):
        for body in (
            b'{"username": "' + user + b'", "password": "pw' + SURROGATE + b'"}',
            b'{"username": "' + user + SURROGATE + b'", "password": "pw"}',
        ):
            r = httpx.post(f"{server.url}/v1/login", content=body,
                           headers={"Content-Type": "application/json"})
            assert r.status_code == 422, r.text
            answers.append(r.json())
    assert answers[0] == answers[2] and answers[1] == answers[3]
    assert "password" in answers[0]["error"]["message"]
    assert "username" in answers[1]["error"]["message"]


@pytest.mark.also_postgres
def test_rule_text_member_names(server, alice):
    cid = str(uuid.uuid4())
    r = raw(alice, "PUT", f"/v1/conversations/{cid}",
            b'{"title": "t", "members": ["bob' + SURROGATE + b'"]}')
    assert_validation(r, "members")


@pytest.mark.also_postgres
def test_text_other_unicode_is_kept(server, alice):
    """Paired surrogates (an emoji escaped as two halves) and other control characters are
    ordinary text and round-trip."""
    cid = alice.create_conversation([], title="caf\u00e9 \U0001f600")
    mid = str(uuid.uuid4())
    r = raw(alice, "PUT", f"/v1/conversations/{cid}/messages/{mid}",
            b'{"body": "\\ud83d\\ude00 tab\\t bell\\u0007"}')
    assert r.status_code == 201, r.text
    assert r.json()["body"] == "\U0001f600 tab\t bell\x07"
