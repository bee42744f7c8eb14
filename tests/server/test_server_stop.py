"""``POST /v1/messages/{mid}/stop`` (docs/api.md): a member stops a streaming assistant
reply; the server stops generating (the upstream stream is closed), keeps what was
written as the body and marks the reply ``stopped``; repeats are harmless; later replies
see the text. Real server process, real model server."""

from __future__ import annotations

import time
import uuid

from tests.support.model_server import ModelServer


def wait_for_reply(api, cid: str, check, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = api.request("GET", f"/v1/conversations/{cid}/messages").json()["messages"]
        replies = [m for m in page if m["author"] == "assistant"]
        if replies and check(replies[-1]):
            return replies[-1]
        time.sleep(0.05)
    raise AssertionError("the reply never got there")


def test_stop_keeps_what_was_written_and_stops_the_model(server_factory, api_factory,
                                                         monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with ModelServer(["slow"], delay=0.3) as model:
        server = server_factory.start_with_model(
            model.url, "slow", users={"alice": "alice-pw", "bob": "bob-pw"})
        alice = api_factory(server, "alice", "alice-pw")
        bob = api_factory(server, "bob", "bob-pw")
        cid = alice.create_conversation([], assistant=True)
        question = alice.send(cid, " ".join(f"w{i}" for i in range(40))).json()
        growing = wait_for_reply(alice, cid, lambda m: m["streaming"] and m["body"])
        assert bob.request("POST", f"/v1/messages/{growing['id']}/stop").status_code == 404
        assert alice.request(
            "POST", f"/v1/messages/{question['id']}/stop").status_code == 409
        assert alice.request("POST", f"/v1/messages/{uuid.uuid4()}/stop").status_code == 404
        stopped = alice.request("POST", f"/v1/messages/{growing['id']}/stop")
        assert stopped.status_code == 200
        reply = stopped.json()
        assert reply["streaming"] is False and reply["error"] is False
        assert reply["stopped"] is True and reply["model"] == "slow"
        kept = reply["body"]
        full = "saw 1: alice: " + question["body"]
        assert kept.startswith(growing["body"]) and full.startswith(kept) and kept != full
        deadline = time.monotonic() + 10
        while model.counts["streams_cut"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert model.counts == {**model.counts, "streams_cut": 1, "streams_done": 0}
        # a repeat answers the same message; nothing more is written
        again = alice.request("POST", f"/v1/messages/{growing['id']}/stop").json()
        assert again == reply
        time.sleep(0.5)
        latest = wait_for_reply(alice, cid, lambda m: True)
        assert latest == reply
        # the next reply sees the stopped text without the note
        model.control(delay=0.0)
        alice.send(cid, "next")
        wait_for_reply(alice, cid, lambda m: m["id"] != reply["id"] and not m["streaming"])
        history = model.requests[-1]["messages"]
        said = [m["content"] for m in history if m["role"] == "assistant"]
        assert said == [kept]
        assert question["id"] != reply["id"]


def test_stopping_a_finished_reply_changes_nothing(server, alice):
    cid = alice.create_conversation([], assistant=True)
    alice.send(cid, "hi")
    done = wait_for_reply(alice, cid, lambda m: not m["streaming"])
    answer = alice.request("POST", f"/v1/messages/{done['id']}/stop")
    assert answer.status_code == 200 and answer.json() == done
    assert done["stopped"] is False
