"""Leaving a conversation and changing its members (docs/api.md, ``DELETE
/v1/conversations/{cid}``, ``PUT`` and ``DELETE /v1/conversations/{cid}/members/{username}``):
idempotent routes, the creator-only rule, non-members get 404, ``removed`` through
``/v1/sync``, and a conversation with no person left is gone for everyone. Real server
processes on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.also_postgres


def conversation_ids(api) -> list[str]:
    return [c["id"] for c in api.request("GET", "/v1/conversations").json()["conversations"]]


def test_leave_is_idempotent_and_reaches_every_device(alice, bob, login_as):
    cid = alice.create_conversation(["bob"])
    assert alice.send(cid, "hi bob").status_code == 201
    bob_phone = login_as("bob", "bob-pw", "phone")
    since = bob_phone.sync().json()["cursor"]
    alice_since = alice.sync().json()["cursor"]

    assert bob.request("DELETE", f"/v1/conversations/{cid}").status_code == 204
    assert cid not in conversation_ids(bob)
    assert bob.request("GET", f"/v1/conversations/{cid}/messages").status_code == 404
    assert bob.send(cid, "still here?").status_code == 404
    [entry] = bob_phone.sync(since).json()["conversations"]
    assert entry["removed"] is True and entry["messages"] == []
    assert entry["conversation"]["id"] == cid
    assert cid not in [c["conversation"]["id"] for c in bob_phone.sync().json()["conversations"]]
    [seen] = alice.sync(alice_since).json()["conversations"]
    assert seen["removed"] is False and seen["conversation"]["members"] == ["alice"]
    # a repeat is harmless; never a member: 404
    assert bob.request("DELETE", f"/v1/conversations/{cid}").status_code == 204
    assert bob.request("DELETE", f"/v1/conversations/{uuid.uuid4()}").status_code == 404
    # the conversation stays for alice, with its messages
    assert [m["body"] for m in alice.request(
        "GET", f"/v1/conversations/{cid}/messages").json()["messages"]] == ["hi bob"]


def test_with_no_person_left_it_is_gone_for_everyone(alice, login_as):
    cid = alice.create_conversation([], assistant=True)
    assert alice.send(cid, "hello").status_code == 201
    laptop = login_as("alice", "alice-pw", "laptop")
    since = laptop.sync().json()["cursor"]
    assert alice.request("DELETE", f"/v1/conversations/{cid}").status_code == 204
    assert [c["removed"] for c in laptop.sync(since).json()["conversations"]
            if c["conversation"]["id"] == cid] == [True]
    assert cid not in conversation_ids(laptop)
    assert alice.request("GET", f"/v1/conversations/{cid}/messages").status_code == 404
    assert alice.request("PATCH", f"/v1/conversations/{cid}",
                         json={"title": "x"}).status_code == 404


def test_members_are_changed_by_the_creator_only(server, alice, bob, login_as):
    server.add_user("carol", "carol-pw")
    carol = login_as("carol", "carol-pw")
    cid = alice.create_conversation(["bob"])
    path = f"/v1/conversations/{cid}/members"
    assert bob.request("PUT", f"{path}/carol").status_code == 403
    assert carol.request("PUT", f"{path}/carol").status_code == 404  # not a member
    assert alice.request("PUT", f"{path}/nobody").status_code == 404
    assert alice.request("PUT", f"{path}/Not%20Valid").status_code == 404
    assert alice.request("PUT", f"{path}/assistant").status_code == 422
    carol_since = carol.sync().json()["cursor"]

    added = alice.request("PUT", f"{path}/Carol")
    assert added.status_code == 200 and added.json()["members"] == ["alice", "bob", "carol"]
    again = alice.request("PUT", f"{path}/carol")
    assert again.status_code == 200 and again.json() == added.json()
    [entry] = carol.sync(carol_since).json()["conversations"]
    assert entry["conversation"]["id"] == cid and entry["removed"] is False
    assert carol.send(cid, "thanks for adding me").status_code == 201

    bob_since = bob.sync().json()["cursor"]
    assert bob.request("DELETE", f"{path}/carol").status_code == 403
    assert alice.request("DELETE", f"{path}/alice").status_code == 409
    assert alice.request("DELETE", f"{path}/assistant").status_code == 422
    removed = alice.request("DELETE", f"{path}/bob")
    assert removed.status_code == 200 and removed.json()["members"] == ["alice", "carol"]
    assert alice.request("DELETE", f"{path}/bob").json() == removed.json()  # a repeat
    assert [c["removed"] for c in bob.sync(bob_since).json()["conversations"]] == [True]
    assert bob.request("GET", f"/v1/conversations/{cid}/messages").status_code == 404
    # added back: the conversation comes again like a new one
    bob_since = bob.sync().json()["cursor"]
    assert alice.request("PUT", f"{path}/bob").status_code == 200
    [back] = bob.sync(bob_since).json()["conversations"]
    assert back["removed"] is False and cid in conversation_ids(bob)
