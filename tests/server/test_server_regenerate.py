"""``POST /v1/messages/{mid}/regenerate`` (docs/api.md): a new reply, with a client-chosen
id, to the question of an assistant reply: a retry of a failed reply, or a regenerated
one with the conversation's model as it is now; the earlier reply stays until the new one
is written in full, then it is a tombstone; repeats are harmless; the user's messages are
never touched; the authorization of the other routes. Real server processes, a real
OpenAI-compatible model server (SSE); ``models`` and ``embedded`` are in
tests/server/conftest.py."""

from __future__ import annotations

import time
import uuid

import httpx

from tests.support.embedded import new_assistant_conversation, send_text


def page(client: httpx.Client, cid: str) -> list[dict]:
    return client.get(f"/v1/conversations/{cid}/messages").json()["messages"]


def wait(client: httpx.Client, cid: str, check, timeout: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = page(client, cid)
        if check(messages):
            return messages
        time.sleep(0.05)
    raise AssertionError(f"never true: {page(client, cid)}")


def by_id(messages: list[dict]) -> dict[str, dict]:
    return {m["id"]: m for m in messages}


def ask(client: httpx.Client, text: str) -> tuple[str, dict]:
    cid = new_assistant_conversation(client)
    return cid, send_text(client, cid, text)


def regenerate(client: httpx.Client, mid: str, reply_id: str) -> httpx.Response:
    return client.post(f"/v1/messages/{mid}/regenerate", json={"reply_id": reply_id})


def test_a_failed_reply_is_retried_and_replaced(embedded, models):
    models.control(fail="500")
    cid, question = ask(embedded, "are you there")
    [failed] = [m for m in wait(embedded, cid, lambda ms: any(
        m["author"] == "assistant" and m["error"] for m in ms)) if m["author"] == "assistant"]
    assert "HTTP 500" in failed["body"]
    models.control(fail=None)
    new_id = str(uuid.uuid4())
    made = regenerate(embedded, failed["id"], new_id)
    assert made.status_code == 201, made.text
    assert (made.json()["id"], made.json()["streaming"], made.json()["body"]) == (
        new_id, True, "")
    again = regenerate(embedded, failed["id"], new_id)  # a retry of the request
    assert again.status_code == 200 and again.json()["id"] == new_id
    # the new reply is finished, then (a transaction after) the failed one replaced
    done = wait(embedded, cid, lambda ms: not by_id(ms)[new_id]["streaming"]
                and by_id(ms)[failed["id"]]["deleted"])
    messages = by_id(done)
    assert messages[new_id]["body"] == "saw 1: me: are you there"
    assert (messages[new_id]["model"], messages[new_id]["error"]) == ("small", False)
    assert messages[failed["id"]]["deleted"] and messages[failed["id"]]["body"] == ""
    assert messages[question["id"]] == question  # the user's message is untouched
    assert len(done) == 3
    assert len(models.requests) == 2  # the repeat asked for nothing more


def test_regenerate_uses_the_current_model_and_keeps_the_earlier_reply_until_done(
        embedded, models):
    cid, question = ask(embedded, "tell me a story")
    [first] = [m for m in wait(embedded, cid, lambda ms: any(
        m["author"] == "assistant" and not m["streaming"] for m in ms))
        if m["author"] == "assistant"]
    assert first["model"] == "small"
    assert embedded.patch(f"/v1/conversations/{cid}", json={"model": "large"}).status_code == 200
    models.control(delay=0.2)
    new_id = str(uuid.uuid4())
    assert regenerate(embedded, first["id"], new_id).status_code == 201
    growing = wait(embedded, cid, lambda ms: by_id(ms)[new_id]["body"])
    assert by_id(growing)[new_id]["streaming"]
    assert by_id(growing)[first["id"]] == first  # still there while the new one grows
    # the new reply is finished, then (a transaction after) the earlier one replaced
    done = wait(embedded, cid, lambda ms: not by_id(ms)[new_id]["streaming"]
                and by_id(ms)[first["id"]]["deleted"])
    assert by_id(done)[new_id]["model"] == "large"
    assert by_id(done)[first["id"]]["deleted"]
    assert by_id(done)[first["id"]]["version"] > first["version"]
    # the new reply saw the question, not the reply it replaces
    sent = models.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user"]
    assert by_id(done)[question["id"]] == question
    # a replaced reply cannot be regenerated again; the new one can
    assert regenerate(embedded, first["id"], str(uuid.uuid4())).status_code == 409


def test_a_stopped_regenerated_reply_replaces_nothing(embedded, models):
    cid, _ = ask(embedded, "one two three four five six")
    [first] = [m for m in wait(embedded, cid, lambda ms: any(
        m["author"] == "assistant" and not m["streaming"] for m in ms))
        if m["author"] == "assistant"]
    models.control(delay=0.3)
    new_id = str(uuid.uuid4())
    assert regenerate(embedded, first["id"], new_id).status_code == 201
    wait(embedded, cid, lambda ms: by_id(ms)[new_id]["body"])
    stopped = embedded.post(f"/v1/messages/{new_id}/stop").json()
    assert stopped["stopped"] and not stopped["streaming"]
    time.sleep(0.3)
    assert not by_id(page(embedded, cid))[first["id"]]["deleted"]


def test_regenerate_refusals(server, alice, bob):
    cid = alice.create_conversation([], assistant=True)
    question = alice.send(cid, "hi").json()
    deadline = time.monotonic() + 20
    reply = None
    while reply is None and time.monotonic() < deadline:
        messages = alice.request("GET", f"/v1/conversations/{cid}/messages").json()["messages"]
        reply = next((m for m in messages if m["author"] == "assistant"
                      and not m["streaming"]), None)
        time.sleep(0.05)
    assert reply is not None

    def post(api, mid, body) -> httpx.Response:
        return api.request("POST", f"/v1/messages/{mid}/regenerate", json=body)

    fresh = {"reply_id": str(uuid.uuid4())}
    assert post(bob, reply["id"], fresh).status_code == 404  # not a member
    assert post(alice, str(uuid.uuid4()), fresh).status_code == 404
    assert post(alice, question["id"], fresh).status_code == 409  # not a reply
    taken = post(alice, reply["id"], {"reply_id": question["id"]})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "conflict"
    assert post(alice, reply["id"], {"reply_id": "nope"}).status_code == 422
    assert post(alice, reply["id"], {}).status_code == 422
    # nothing was made by the refusals
    messages = alice.request("GET", f"/v1/conversations/{cid}/messages").json()["messages"]
    assert [m["id"] for m in messages] == [question["id"], reply["id"]]
