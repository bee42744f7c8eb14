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
import pytest

from tests.support.embedded import new_assistant_conversation, send_text
from tests.support.model_server import ModelServer


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


def replaced(messages: list[dict], new_id: str, old_id: str) -> bool:
    """The new reply ``new_id`` is written in full and the earlier one ``old_id`` is a
    tombstone. The server makes both in one transaction, so one is never seen without
    the other (:func:`never_both_answers`)."""
    found = by_id(messages)
    new, old = found[new_id], found[old_id]
    assert (not new["streaming"]) == old["deleted"] or new["error"] or new["stopped"], (
        new, old)
    return not new["streaming"] and old["deleted"]


def sync_cursor(client: httpx.Client) -> int:
    """The server's cursor now (today a decimal change counter, docs/api.md)."""
    return int(client.get("/v1/sync", params={"timeout": 0}).json()["cursor"])


def changed_after(client: httpx.Client, since: int) -> set[str]:
    """Ids of the messages a device at cursor ``since`` gets from its next sync."""
    answer = client.get("/v1/sync", params={"since": str(since), "timeout": 0})
    assert answer.status_code == 200, answer.text
    return {m["id"] for entry in answer.json()["conversations"] for m in entry["messages"]}


def never_both_answers(client: httpx.Client, start: int, new_id: str, old_id: str) -> None:
    """Walk the change feed from cursor ``start`` (the earlier reply ``old_id`` finished,
    before the regenerate) to now, one change counter value at a time: a device that
    synced up to any cursor has the new reply ``new_id`` in its final state only if it
    also has the earlier one's tombstone. So for every cursor, when the earlier reply
    still comes in the next sync (its tombstone is after the cursor), the new one does
    too (its final write is not before the tombstone)."""
    end = sync_cursor(client)
    assert end > start
    for since in range(start, end + 1):
        changed = changed_after(client, since)
        assert old_id not in changed or new_id in changed, (
            f"at cursor {since} a device has the new reply finished and the earlier one "
            "not replaced: two answers to one question")


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
    done = wait(embedded, cid, lambda ms: replaced(ms, new_id, failed["id"]))
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
    done = wait(embedded, cid, lambda ms: replaced(ms, new_id, first["id"]))
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


def test_rule_10_the_new_reply_and_the_tombstone_of_the_earlier_one_come_together(
        embedded, models):
    """The last write of the new reply and the tombstone of the reply it replaces are one
    change: no sync answer at any cursor holds two finished answers to one question."""
    cid, question = ask(embedded, "what is a lighthouse")
    [first] = [m for m in wait(embedded, cid, lambda ms: any(
        m["author"] == "assistant" and not m["streaming"] for m in ms))
        if m["author"] == "assistant"]
    start = sync_cursor(embedded)
    new_id = str(uuid.uuid4())
    assert regenerate(embedded, first["id"], new_id).status_code == 201
    done = by_id(wait(embedded, cid, lambda ms: replaced(ms, new_id, first["id"])))
    assert done[new_id]["error"] is False and done[question["id"]] == question
    never_both_answers(embedded, start, new_id, first["id"])


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


# -- a regenerate is kept work -------------------------------------------------------


def model_process(server_factory, models: ModelServer, monkeypatch):
    """A ``chat-tui-server`` process (SQLite) whose assistant streams from ``models``
    (default model ``small``), with alice; returns ``(server, alice's Api)``."""
    from tests.server.conftest import Api
    from tests.support.accounts import PASSWORDS

    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-secret")
    server = server_factory.start_with_model(models.url, "small",
                                             users={"alice": PASSWORDS["alice"]})
    return server, Api(server.url, server.login("alice", PASSWORDS["alice"]))


def api_page(api, cid: str) -> list[dict]:
    return api.request("GET", f"/v1/conversations/{cid}/messages").json()["messages"]


def api_wait(api, cid: str, check, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = api_page(api, cid)
        if check(messages):
            return messages
        time.sleep(0.05)
    raise AssertionError(f"never true: {api_page(api, cid)}")


def answered(api, text: str) -> tuple[str, dict, dict]:
    """alice asks ``text`` in a new assistant conversation; ``(cid, question, reply)``
    once the reply is written."""
    cid = api.create_conversation([], assistant=True)
    question = api.send(cid, text).json()
    done = api_wait(api, cid, lambda ms: any(
        m["author"] == "assistant" and not m["streaming"] for m in ms))
    [reply] = [m for m in done if m["author"] == "assistant"]
    assert reply["error"] is False, reply
    return cid, question, reply


def test_a_regenerate_asked_while_another_reply_streams_is_written_after_it(
        server_factory, models, monkeypatch):
    server, alice = model_process(server_factory, models, monkeypatch)
    try:
        cid, question, first = answered(alice, "first question")
        models.control(delay=0.1)
        second = alice.send(cid, " ".join(f"w{i}" for i in range(20))).json()  # ~2 s
        api_wait(alice, cid, lambda ms: any(m["streaming"] and m["body"] for m in ms))
        new_id = str(uuid.uuid4())
        made = alice.request("POST", f"/v1/messages/{first['id']}/regenerate",
                             json={"reply_id": new_id})
        assert made.status_code == 201, made.text
        models.control(delay=0.01)
        done = by_id(api_wait(alice, cid, lambda ms: replaced(ms, new_id, first["id"])))
        assert done[new_id]["body"] == "saw 1: alice: first question"
        assert done[new_id]["error"] is False and done[first["id"]]["deleted"]
        replies = [m for m in done.values() if m["author"] == "assistant"
                   and not m["deleted"]]
        assert len(replies) == 2 and all(not m["error"] for m in replies)
        assert done[question["id"]] == question and done[second["id"]] == second
    finally:
        alice.close()


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_a_regenerate_interrupted_by_a_restart_runs_after_it(server_factory, models,
                                                             monkeypatch, how):
    """docs/api.md P4: the regenerated reply was being written when the server process
    stopped (or crashed); after the restart it is written again, in full, from the start,
    and replaces the earlier reply; nothing of the user's changes."""
    server, alice = model_process(server_factory, models, monkeypatch)
    try:
        cid, question, first = answered(alice, " ".join(f"q{i}" for i in range(30)))
        models.control(delay=0.3)  # the new reply takes about 10 s
        new_id = str(uuid.uuid4())
        made = alice.request("POST", f"/v1/messages/{first['id']}/regenerate",
                             json={"reply_id": new_id})
        assert made.status_code == 201, made.text
        api_wait(alice, cid, lambda ms: by_id(ms)[new_id]["body"])  # it streams
        if how == "kill":
            server.kill()
        else:
            server.stop()
        models.control(delay=0.01)
        server.start()
        done = by_id(api_wait(alice, cid, lambda ms: not by_id(ms)[new_id]["streaming"]))
        new = done[new_id]
        assert new["error"] is False, new["body"]
        assert new["body"] == "saw 1: alice: " + question["body"]
        assert (new["model"], new["stopped"]) == ("small", False)
        done = by_id(api_wait(alice, cid, lambda ms: replaced(ms, new_id, first["id"])))
        assert done[question["id"]] == question
        assert len(done) == 3
    finally:
        alice.close()
