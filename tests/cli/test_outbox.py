"""``chat-tui outbox``: one model of a pending action whatever its kind (sync rule 3n), and
``cache clear`` naming the actions that stop it (sync rule R2). Real subprocesses against
the real server."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.cli import FAST_ENV, cli, login


def actions() -> list[dict]:
    done = cli("outbox", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["actions"]


def refused_create(server) -> tuple[str, dict, dict]:
    """A conversation create the server refuses (an unknown member) with a send queued
    behind it; returns the conversation id, the create and the send as listed."""
    login(server.url)
    cid = cli("new", "Plans", "--member", "nobody-here", "--no-check").stdout.strip()
    assert cli("send", "--conversation", "Plans", "typed behind it").returncode == 0
    assert cli("sync", "--once").returncode == 0
    create, send = actions()
    return cid, create, send


def test_rule_3n_outbox_lists_a_refused_create_and_the_send_blocked_behind_it(server):
    cid, create, send = refused_create(server)
    assert create["kind"] == "create_conversation" and create["state"] == "failed"
    assert "nobody-here" in create["reason"] or "unknown" in create["reason"]
    assert create["conversation_id"] == cid and create["conversation"] == "Plans"
    assert send["kind"] == "send" and send["state"] == "blocked"
    assert f"create_conversation {create['id']}" in send["reason"]
    text = cli("outbox")
    assert text.returncode == 0
    assert f"chat-tui outbox retry {create['id']}" in text.stdout
    assert f"chat-tui outbox discard {create['id']}" in text.stdout


def test_rule_3n_retry_puts_a_refused_create_back_in_the_queue(server):
    _, create, send = refused_create(server)
    blocked = cli("outbox", "retry", str(send["id"]))
    assert blocked.returncode == 1
    assert f"waits behind action {create['id']}" in blocked.stderr
    # the state it names is the one `chat-tui outbox` listed for it
    assert "is blocked, not failed" in blocked.stderr, blocked.stderr
    done = cli("outbox", "retry", str(create["id"]))
    assert done.returncode == 0, done.stderr
    again = {a["id"]: a for a in actions()}
    assert again[create["id"]]["state"] == "queued"
    assert again[send["id"]]["state"] == "queued"
    assert cli("sync", "--once").returncode == 0  # refused again: still failed, nothing lost
    assert [a["state"] for a in actions()] == ["failed", "blocked"]
    missing = cli("outbox", "retry", "9999")
    assert missing.returncode == 1 and "no outbox action 9999" in missing.stderr


def test_rule_3n_discard_of_a_create_says_what_goes_and_asks_first(server):
    cid, create, _ = refused_create(server)
    closed = subprocess.run([sys.executable, "-m", "chat_tui.cli", "outbox", "discard",
                             str(create["id"])], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60,
                            env={**__import__("os").environ, **FAST_ENV})
    assert closed.returncode == 1 and "Traceback" not in closed.stderr
    assert "--yes" in closed.stderr and "typed behind it" in closed.stdout
    assert len(actions()) == 2  # nothing was changed
    done = cli("outbox", "discard", str(create["id"]), "--yes")
    assert done.returncode == 0, done.stderr
    assert "remove the local conversation 'Plans'" in done.stdout
    assert "typed behind it" in done.stdout
    assert actions() == []
    exported = json.loads(cli("export", "--format", "json").stdout)["conversations"]
    assert cid not in [c["id"] for c in exported]
    cleared = cli("cache", "clear", "--yes")
    assert cleared.returncode == 0, cleared.stderr


def test_rule_3n_discard_of_a_failed_send_puts_its_text_back(server):
    login(server.url)
    cli("new", "Plans", "--member", "bob")
    assert cli("sync", "--once").returncode == 0
    server.stop()
    cli("send", "--conversation", "Plans", "to be discarded")
    [send] = actions()
    assert send["state"] == "queued"
    done = cli("outbox", "discard", str(send["id"]))
    assert done.returncode == 0, done.stderr
    assert "back in the draft" in done.stdout
    assert actions() == []


def test_rule_r2_cache_clear_names_the_actions_and_advises_only_what_helps(server):
    _, create, send = refused_create(server)
    refused = cli("cache", "clear", "--yes")
    assert refused.returncode == 1
    assert f"#{create['id']} create_conversation failed" in refused.stderr
    assert f"#{send['id']} send blocked" in refused.stderr
    assert f"chat-tui outbox discard {create['id']}" in refused.stderr
    assert "chat-tui sync" not in refused.stderr  # it cannot help here
    assert "--force" in refused.stderr
    cli("send", "--conversation", "Plans", "x")
    server.stop()
    login_less = cli("new", "Other")
    assert login_less.returncode == 0
    again = cli("cache", "clear", "--yes")
    assert "chat-tui sync --once" in again.stderr  # the new create can still be delivered
