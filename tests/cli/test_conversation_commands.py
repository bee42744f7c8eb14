"""``chat-tui new --assistant --model M --system TEXT``, ``chat-tui set`` and ``chat-tui
rename`` (sync rule 9): they queue offline and go out in order with ``chat-tui sync``; the
server's assistant answers with the chosen model. Real subprocesses, a real server and a
real OpenAI-compatible model server."""

from __future__ import annotations

import json
import time

import httpx

from tests.support.cli import cli, login
from tests.support.model_server import ModelServer


def outbox() -> list[dict]:
    done = cli("outbox", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["actions"]


def test_rule_9_new_set_and_rename_queue_offline_and_apply_in_order(server_factory,
                                                                    monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with ModelServer(["small", "large"], delay=0.01) as model:
        server = server_factory.start_with_model(model.url, "small", users={"alice": "alice-pw"})
        login(server.url)
        server.stop()  # everything below is queued offline
        made = cli("new", "Ask", "--assistant", "--model", "large", "--system", "-",
                   stdin="Answer in one word.\n")
        assert made.returncode == 0, made.stderr
        cid = made.stdout.strip()
        assert cli("send", "first").returncode == 0
        changed = cli("set", "--model", "small", "--system", "")
        assert changed.returncode == 0 and changed.stdout.strip() == f"{cid}: queued"
        assert cli("rename", "Questions").returncode == 0
        assert cli("send", "-c", "Questions", "second").returncode == 0
        same = cli("rename", "Questions")
        assert same.returncode == 0 and "nothing to change" in same.stdout
        actions = outbox()
        assert [a["kind"] for a in actions] == [
            "create_conversation", "send", "update_conversation", "update_conversation",
            "send"]
        assert actions[2]["preview"] == "model: small; system prompt: default"
        refused = cli("set", "--model", "m" * 201)
        assert refused.returncode == 1 and "at most 200" in refused.stderr
        nothing = cli("set")
        assert nothing.returncode == 1 and "nothing to set" in nothing.stderr
        assert len(outbox()) == 5

        server.start()
        assert cli("sync", "--once").returncode == 0
        token = server.login("alice", "alice-pw")["access_token"]
        headers = {"authorization": f"Bearer {token}"}
        conv = httpx.get(f"{server.url}/v1/conversations", headers=headers).json()[
            "conversations"][0]
        assert (conv["title"], conv["model"], conv["system_prompt"]) == (
            "Questions", "small", None)
        deadline = time.monotonic() + 30
        done: list[dict] = []
        while time.monotonic() < deadline and len(done) < 2:
            page = httpx.get(f"{server.url}/v1/conversations/{cid}/messages",
                             headers=headers).json()["messages"]
            done = [m for m in page if m["author"] == "assistant" and not m["streaming"]]
            time.sleep(0.1)
        assert [m["model"] for m in done] == ["large", "small"]
        prompts = [r["messages"][0]["content"] for r in model.requests]
        assert prompts[0] == "Answer in one word." and prompts[1] != prompts[0]
        assert outbox() == []


def test_rule_10_regenerate_queues_a_new_reply_and_sync_sends_it(server):
    login(server.url)
    made = cli("new", "Ask", "--assistant")
    assert made.returncode == 0, made.stderr
    cid = made.stdout.strip()
    none = cli("regenerate")
    assert none.returncode == 1 and "no assistant reply is cached" in none.stderr
    assert cli("send", "hello there").returncode == 0
    token = server.login("alice", "alice-pw")["access_token"]
    headers = {"authorization": f"Bearer {token}"}

    def replies() -> list[dict]:
        page = httpx.get(f"{server.url}/v1/conversations/{cid}/messages",
                         headers=headers).json()["messages"]
        return [m for m in page if m["author"] == "assistant"]

    assert cli("sync", "--once").returncode == 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(not m["streaming"] for m in replies()):
        time.sleep(0.1)
    assert cli("sync", "--once").returncode == 0  # the finished reply into the cache
    [first] = replies()
    done = cli("regenerate", "-c", "Ask")
    assert done.returncode == 0, done.stderr
    new_id = done.stdout.strip()
    assert [a["kind"] for a in outbox()] == ["regenerate"]
    assert cli("sync", "--once").returncode == 0
    assert outbox() == []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = {m["id"]: m for m in replies()}
        if new_id in now and not now[new_id]["streaming"] and now[first["id"]]["deleted"]:
            break
        time.sleep(0.1)
    now = {m["id"]: m for m in replies()}
    assert now[new_id]["model"] == "echo" and now[new_id]["body"]
    assert now[first["id"]]["deleted"]


def test_rule_11_members_and_delete_from_the_command_line(server):
    server.add_user("carol", "carol-pw")
    login(server.url)
    made = cli("new", "Team", "--member", "bob")
    cid = made.stdout.strip()
    assert cli("members", "add", "carol").stdout.strip() == f"{cid}: queued"
    assert cli("members", "remove", "bob").returncode == 0
    assert cli("members").stdout.split() == ["alice", "carol"]
    bad = cli("members", "add", "assistant")
    assert bad.returncode == 1 and "assistant" in bad.stderr
    assert cli("sync", "--once").returncode == 0
    token = server.login("carol", "carol-pw")["access_token"]
    headers = {"authorization": f"Bearer {token}"}
    [conv] = httpx.get(f"{server.url}/v1/conversations", headers=headers).json()[
        "conversations"]
    assert conv["members"] == ["alice", "carol"]
    asked = cli("delete")  # no terminal to ask on: refused, nothing queued
    assert asked.returncode == 1 and "--yes" in asked.stderr and outbox() == []
    assert cli("delete", "--yes").stdout.strip() == f"{cid}: queued"
    assert cli("sync", "--once").returncode == 0
    [conv] = httpx.get(f"{server.url}/v1/conversations", headers=headers).json()[
        "conversations"]
    assert conv["members"] == ["carol"]
    gone = cli("send", "-c", cid, "hello?")
    assert gone.returncode == 1 and "no conversation" in gone.stderr
