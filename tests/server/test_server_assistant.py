"""The assistant member: ordered replies, streaming growth, upstream failures, restarts.

The ``openai`` responder is driven against the model server of
``tests/support/model_server.py``, a real OpenAI-compatible process on loopback streaming
server-sent events.
"""

from __future__ import annotations

import time

import httpx
import pytest

FOLLOW_SECONDS = 30


def follow(api, cid: str, until, timeout: float = FOLLOW_SECONDS):
    """Long-poll ``/v1/sync`` recording every copy of every message of ``cid``.

    Returns ``(latest, copies)``: ``latest`` maps message id -> newest copy (by version),
    ``copies`` lists every copy in arrival order. Stops when ``until(latest)`` is true.
    """
    latest: dict[str, dict] = {}
    copies: list[dict] = []

    def absorb(data: dict) -> None:
        for entry in data["conversations"]:
            if entry["conversation"]["id"] != cid:
                continue
            for m in entry["messages"]:
                copies.append(m)
                if m["id"] not in latest or m["version"] >= latest[m["id"]]["version"]:
                    latest[m["id"]] = m

    data = api.sync().json()
    absorb(data)
    cursor = data["cursor"]
    deadline = time.monotonic() + timeout
    while not until(latest):
        assert time.monotonic() < deadline, f"gave up waiting; have {list(latest.values())}"
        data = api.sync(cursor, timeout=5).json()
        absorb(data)
        cursor = data["cursor"]
    return latest, copies


def finished_replies(n: int):
    def check(latest: dict) -> bool:
        done = [m for m in latest.values() if m["author"] == "assistant" and not m["streaming"]]
        return len(done) >= n

    return check


def replies(latest: dict) -> list[dict]:
    return sorted(
        (m for m in latest.values() if m["author"] == "assistant"), key=lambda m: m["seq"]
    )


def seqs_in_server_db(server, ids: list[str]) -> dict[str, tuple[int, int]]:
    """``{message id: (seq, change_seq)}`` read from the server's own database (SQLite file
    or PostgreSQL URL): ``seq`` is taken when a reply starts, ``change_seq`` at its last
    write, both from the one change counter."""
    target = str(server.db_path)
    if target.startswith("postgresql://"):
        import psycopg2

        con, mark = psycopg2.connect(target), "%s"
    else:
        import sqlite3

        con, mark = sqlite3.connect(target), "?"
    try:
        cur = con.cursor()
        cur.execute(f"SELECT id, seq, change_seq FROM message WHERE id IN "
                    f"({', '.join([mark] * len(ids))})", ids)
        return {mid: (seq, change) for mid, seq, change in cur.fetchall()}
    finally:
        con.close()


@pytest.mark.also_postgres
def test_echo_replies_in_order_for_three_quick_messages(server, alice):
    cid = alice.create_conversation([], assistant=True)
    conv = alice.request("GET", "/v1/conversations").json()["conversations"][0]
    assert conv["members"] == ["alice", "assistant"] and conv["assistant"] is True
    sent = [alice.send(cid, text).json() for text in ("first one", "second one", "third one")]
    latest, copies = follow(alice, cid, finished_replies(3))
    got = replies(latest)
    assert len(got) == 3
    for reply, msg in zip(got, sent, strict=True):
        assert "built-in demo assistant" in reply["body"]
        assert reply["body"].endswith("You wrote: " + msg["body"])
        assert reply["error"] is False and reply["streaming"] is False
        assert reply["seq"] > msg["seq"]
    # Strictly one at a time: a reply is created (its seq taken from the change counter)
    # only after the previous reply's last write (its change_seq). Read from the server's
    # database, so it holds even when several replies reach us in one sync response.
    order = seqs_in_server_db(server, [r["id"] for r in got])
    for earlier, later in zip(got, got[1:], strict=False):
        assert order[later["id"]][0] > order[earlier["id"]][1]
    # The user's messages are untouched.
    for msg in sent:
        assert latest[msg["id"]] == msg


def test_streaming_reply_is_seen_growing(alice, bob):
    cid = alice.create_conversation(["bob"], assistant=True)
    words = " ".join(f"word{i}" for i in range(30))
    alice.send(cid, words)
    # bob watches through his own long-polls, like any edit.
    latest, copies = follow(bob, cid, finished_replies(1))
    [reply] = replies(latest)
    assert reply["body"].endswith(words) and reply["streaming"] is False
    growing = [c for c in copies if c["id"] == reply["id"] and c["streaming"] and c["body"]]
    bodies = list(dict.fromkeys(c["body"] for c in growing))
    assert len(bodies) >= 2, "the reply should be seen at least twice while it grows"
    for shorter, longer in zip(bodies, bodies[1:] + [reply["body"]], strict=True):
        assert longer.startswith(shorter) and len(longer) > len(shorter)
    versions = [c["version"] for c in copies if c["id"] == reply["id"]]
    assert versions == sorted(versions)
    # Coalesced: far fewer versions than streamed words (about 10 updates a second).
    assert reply["version"] < 30


def _openai_server(server_factory, api_factory, fake, timeout: str = "5"):
    server = server_factory.start(
        assistant="openai",
        extra_args=(
            "--assistant-base-url",
            fake.url,
            "--assistant-model",
            "fake-model",
            "--assistant-timeout",
            timeout,
        ),
    )
    server.add_user("alice", "alice-pw")
    return server, api_factory(server, "alice", "alice-pw")


def test_openai_replies_see_history_up_to_their_message(server_factory, api_factory, fake_openai):
    _, alice = _openai_server(server_factory, api_factory, fake_openai)
    cid = alice.create_conversation([], assistant=True)
    texts = ["q1 alpha", "q2 beta", "q3 gamma"]
    for text in texts:
        assert alice.send(cid, text).status_code == 201
    latest, _ = follow(alice, cid, finished_replies(3))
    got = replies(latest)
    assert [r["body"] for r in got] == [
        "saw 1: alice: q1 alpha",
        "saw 2: alice: q2 beta",
        "saw 3: alice: q3 gamma",
    ]
    assert all(not r["error"] for r in got)
    assert len(fake_openai.requests) == 3
    for i, request in enumerate(fake_openai.requests):
        assert request["model"] == "fake-model" and request["stream"] is True
        users = [m["content"] for m in request["messages"] if m["role"] == "user"]
        assert users == [f"alice: {t}" for t in texts[: i + 1]]


def test_openai_upstream_failures_end_in_error_replies(server_factory, api_factory, fake_openai):
    _, alice = _openai_server(server_factory, api_factory, fake_openai, timeout="2")
    cid = alice.create_conversation([], assistant=True)
    sent = [alice.send(cid, t).json() for t in ("FAIL500 please", "BREAK please", "SLOW please")]
    sent.append(alice.send(cid, "all good now").json())
    latest, _ = follow(alice, cid, finished_replies(4))
    got = replies(latest)
    assert [r["error"] for r in got] == [True, True, True, False]
    assert "HTTP 500" in got[0]["body"]
    assert "could not reply" in got[1]["body"]
    assert "did not finish within 2 seconds" in got[2]["body"]
    assert got[2]["body"].startswith("saw 3:")  # partial text is kept above the error note
    assert got[3]["body"] == "saw 4: alice: all good now"
    for msg in sent:  # the user's messages stay
        assert latest[msg["id"]] == msg


def test_unreachable_upstream_ends_in_error_reply(
    server_factory, api_factory, unused_port, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-secret")
    server = server_factory.start(
        assistant="openai",
        extra_args=("--assistant-base-url", f"http://127.0.0.1:{unused_port}/v1"),
    )
    server.add_user("alice", "alice-pw")
    alice = api_factory(server, "alice", "alice-pw")
    cid = alice.create_conversation([], assistant=True)
    alice.send(cid, "hello?")
    latest, _ = follow(alice, cid, finished_replies(1))
    [reply] = replies(latest)
    assert reply["error"] is True
    assert "could not be reached" in reply["body"]


def test_openai_needs_api_key(server_factory, monkeypatch, tmp_path):
    import subprocess
    import sys

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "chat_tui.server",
            "serve",
            "--port",
            "0",
            "--db",
            str(tmp_path / "x.db"),
            "--assistant",
            "openai",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert "OPENAI_API_KEY" in done.stderr


def test_reply_interrupted_by_crash_is_closed_and_queue_resumes(server, alice):
    cid = alice.create_conversation([], assistant=True)
    long = " ".join(f"w{i}" for i in range(150))  # ~7 s of streaming at the echo's pace
    first = alice.send(cid, long).json()
    second = alice.send(cid, "second question").json()
    follow(alice, cid, lambda latest: any(m["streaming"] and m["body"] for m in latest.values()))
    server.kill()  # crash mid-reply: no shutdown code runs
    server.start()
    latest, _ = follow(alice, cid, finished_replies(2))
    got = replies(latest)
    assert got[0]["error"] is True and "interrupted" in got[0]["body"]
    assert got[1]["error"] is False and got[1]["body"].endswith("second question")
    assert latest[first["id"]] == first and latest[second["id"]] == second
    assert httpx.get(f"{server.url}/v1/health").status_code == 200
