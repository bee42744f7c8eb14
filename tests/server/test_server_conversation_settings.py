"""A conversation's model and system prompt (docs/api.md, Conversation, ``PUT`` and
``PATCH /v1/conversations/{cid}``): set at creation, changed by any member with a PATCH
that is idempotent and last-write-wins per field, synced to every member, and used by the
assistant for the replies to the messages sent after the change; each reply names its
model. Real server processes over loopback, real model servers (SSE); ``models`` and
``embedded`` are in tests/server/conftest.py."""

from __future__ import annotations

import uuid

import pytest

from tests.support.embedded import finished_replies, new_assistant_conversation, send_text


@pytest.mark.also_postgres
def test_model_and_system_prompt_are_set_at_creation_and_changed_by_patch(alice, bob):
    cid = str(uuid.uuid4())
    made = alice.request("PUT", f"/v1/conversations/{cid}", json={
        "title": "Ask", "members": ["bob"], "assistant": True, "model": "large",
        "system_prompt": "Answer in French."})
    assert made.status_code == 201, made.text
    assert made.json()["model"] == "large"
    assert made.json()["system_prompt"] == "Answer in French."
    cursor = bob.sync().json()["cursor"]

    changed = bob.request("PATCH", f"/v1/conversations/{cid}", json={"model": "small"})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    # only the named field changes (last write wins per field)
    assert (body["model"], body["system_prompt"], body["title"]) == (
        "small", "Answer in French.", "Ask")
    assert body["updated_at"] == made.json()["updated_at"]
    # every member's devices get it through /v1/sync
    delta = alice.sync().json()["conversations"]
    assert [c["conversation"]["model"] for c in delta] == ["small"]
    assert bob.sync(cursor).json()["conversations"][0]["conversation"]["model"] == "small"

    # a repeat changes nothing, and moves no cursor for anyone
    cursor = alice.sync().json()["cursor"]
    again = bob.request("PATCH", f"/v1/conversations/{cid}", json={"model": "small"})
    assert again.status_code == 200 and again.json() == body
    assert alice.sync(cursor).json()["conversations"] == []

    renamed = alice.request("PATCH", f"/v1/conversations/{cid}", json={
        "title": "  Questions  ", "model": None, "system_prompt": ""})
    assert renamed.status_code == 200
    assert (renamed.json()["title"], renamed.json()["model"],
            renamed.json()["system_prompt"]) == ("Questions", None, None)


def test_patch_refuses_non_members_and_bad_values(alice, bob):
    cid = alice.create_conversation([], assistant=True)
    path = f"/v1/conversations/{cid}"
    assert bob.request("PATCH", path, json={"model": "x"}).status_code == 404
    assert alice.request("PATCH", f"/v1/conversations/{uuid.uuid4()}",
                         json={"model": "x"}).status_code == 404
    for bad in ({"title": None}, {"title": "   "}, {"title": "x" * 201},
                {"model": ""}, {"model": "m" * 201}, {"model": 3},
                {"system_prompt": "p" * 16_001}, {"model": "a\u0000b"}):
        answer = alice.request("PATCH", path, json=bad)
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json()["error"]["code"] == "validation"
    assert alice.request("PATCH", path, json={}).status_code == 200
    assert alice.request("PATCH", path, headers={"content-type": "application/json"},
                         content=b"{").status_code == 400
    created = alice.request("PUT", f"/v1/conversations/{uuid.uuid4()}",
                            json={"title": "t", "model": "m" * 201})
    assert created.status_code == 422
    assert alice.request("GET", "/v1/conversations").json()["conversations"][0][
        "model"] is None


# ---------------------------------------------------------------------- the assistant


def test_two_models_in_two_conversations(embedded, models):
    plain = new_assistant_conversation(embedded)
    brief = new_assistant_conversation(embedded, model="large", system_prompt="Be brief.")
    send_text(embedded, plain, "hello")
    send_text(embedded, brief, "hi there")
    [first] = finished_replies(embedded, plain, 1)
    [second] = finished_replies(embedded, brief, 1)
    assert (first["model"], first["body"], first["error"]) == (
        "small", "saw 1: me: hello", False)
    assert (second["model"], second["body"]) == ("large", "saw 1: me: hi there")
    asked = {r["messages"][-1]["content"]: r for r in models.requests}
    assert asked["me: hello"]["model"] == "small"
    assert asked["me: hello"]["messages"][0]["role"] == "system"
    assert asked["me: hello"]["messages"][0]["content"] != "Be brief."
    assert asked["me: hi there"]["model"] == "large"
    assert asked["me: hi there"]["messages"][0] == {"role": "system", "content": "Be brief."}
    # the question itself records no model
    page = embedded.get(f"/v1/conversations/{plain}/messages").json()["messages"]
    assert [m["model"] for m in page if m["author"] == "me"] == [None]


def test_a_change_applies_to_the_messages_sent_after_it(embedded, models):
    models.control(delay=0.2)  # the first reply is still owed when the change arrives
    cid = new_assistant_conversation(embedded)
    send_text(embedded, cid, "one two three")
    changed = embedded.patch(f"/v1/conversations/{cid}",
                             json={"model": "large", "system_prompt": "Now be brief."})
    assert changed.status_code == 200
    send_text(embedded, cid, "four")
    first, second = finished_replies(embedded, cid, 2, timeout=30)
    assert (first["model"], second["model"]) == ("small", "large")
    used = [(r["model"], r["messages"][0]["content"]) for r in models.requests]
    assert used[0][0] == "small" and used[0][1] != "Now be brief."
    assert used[1] == ("large", "Now be brief.")
