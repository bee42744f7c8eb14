"""Sync rule 3o: ``chat-tui new`` checks member names against the server when it can
(``GET /v1/users/{username}``) and names the unknown ones before anything is created."""

from __future__ import annotations

import json

import httpx

from tests.support.cli import cli, login


def conversations() -> list[dict]:
    done = cli("export", "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["conversations"]


def outbox() -> list[dict]:
    return json.loads(cli("outbox", "--json").stdout)["actions"]


def test_get_user_answers_200_for_a_user_and_404_otherwise(server):
    token = server.login("alice", "alice-pw")["access_token"]
    auth = {"authorization": f"Bearer {token}"}
    found = httpx.get(f"{server.url}/v1/users/BOB", headers=auth, timeout=10)
    assert found.status_code == 200 and found.json() == {"username": "bob"}
    assistant = httpx.get(f"{server.url}/v1/users/assistant", headers=auth, timeout=10)
    assert assistant.status_code == 200
    missing = httpx.get(f"{server.url}/v1/users/ghost", headers=auth, timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    bad = httpx.get(f"{server.url}/v1/users/no%20such", headers=auth, timeout=10)
    assert bad.status_code == 404
    anonymous = httpx.get(f"{server.url}/v1/users/bob", timeout=10)
    assert anonymous.status_code == 401


def test_rule_3o_new_names_unknown_members_and_creates_nothing(server):
    login(server.url)
    done = cli("new", "Plans", "--members", "bob,ghost", "--member", "phantom")
    assert done.returncode == 1
    assert "ghost" in done.stderr and "phantom" in done.stderr and "bob" not in done.stderr
    assert "nothing was created" in done.stderr
    assert conversations() == [] and outbox() == []
    ok = cli("new", "Plans", "--members", "bob, BOB")
    assert ok.returncode == 0, ok.stderr
    [conv] = conversations()
    assert conv["id"] == ok.stdout.strip() and "bob" in conv["members"]
    assert cli("sync", "--once").returncode == 0
    assert outbox() == []


def test_rule_3o_offline_new_is_queued_with_a_note(server):
    login(server.url)
    server.stop()
    done = cli("new", "Later", "--members", "ghost")
    assert done.returncode == 0, done.stderr
    assert "not checked" in done.stderr and "chat-tui outbox" in done.stderr
    [create] = outbox()
    assert create["kind"] == "create_conversation" and create["state"] == "queued"
    skipped = cli("new", "Unchecked", "--members", "ghost", "--no-check")
    assert skipped.returncode == 0 and "not checked" not in skipped.stderr


def test_rule_3o_local_account_checks_members_on_the_embedded_server():
    done = cli("new", "Plans", "--members", "ghost")
    assert done.returncode == 1 and "unknown member: ghost" in done.stderr
    assert conversations() == []
    from chat_tui.launch import local_username

    ok = cli("new", "Plans", "--members", local_username())
    assert ok.returncode == 0, ok.stderr
