"""``chat-tui-server import`` and the chitchat converter, through the real CLI and HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONVERTER = ROOT / "benchmarks" / "chitchat_to_jsonl.py"


def run_import(server, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chat_tui.server", "import", str(path), "--db", str(server.db_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def conversation(cid: str, members: list[str], messages: list[tuple[str, str, str]]) -> dict:
    return {
        "id": cid,
        "title": f"Imported {cid[:4]}",
        "members": members,
        "messages": [
            {"id": str(uuid.uuid4()), "author": a, "body": b, "created_at": t}
            for a, b, t in messages
        ],
    }


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


@pytest.mark.also_postgres
def test_import_keeps_timestamps_and_reimport_changes_nothing(server, alice, tmp_path):
    c1, c2 = str(uuid.uuid4()), str(uuid.uuid4())
    records = [
        conversation(
            c1,
            ["alice", "dave"],
            [
                ("dave", "hi alice", "2018-05-02T19:38:15Z"),
                ("erin", "erin here too", "2018-05-02T19:38:20.5Z"),
                ("alice", "hello both", "2018-05-02T21:38:20+02:00"),
            ],
        ),
        conversation(c2, ["dave", "alice"], [("dave", "second chat", "2019-01-01T00:00:00Z")]),
    ]
    path = write_jsonl(tmp_path / "in.jsonl", records)
    done = run_import(server, path)
    assert done.returncode == 0, done.stderr
    assert "4 new messages in 2 conversations" in done.stdout

    listed = {c["id"]: c for c in alice.request("GET", "/v1/conversations").json()["conversations"]}
    assert set(listed) == {c1, c2}
    assert listed[c1]["members"] == ["alice", "dave", "erin"]  # authors become members
    assert listed[c1]["creator"] == "alice"
    assert listed[c1]["unread_count"] == 2  # dave's and erin's; alice's own is not unread
    assert listed[c1]["updated_at"] == "2018-05-02T19:38:20.500000Z"
    page = alice.request("GET", f"/v1/conversations/{c1}/messages").json()
    assert [(m["author"], m["body"], m["created_at"]) for m in page["messages"]] == [
        ("dave", "hi alice", "2018-05-02T19:38:15.000000Z"),
        ("erin", "erin here too", "2018-05-02T19:38:20.500000Z"),
        ("alice", "hello both", "2018-05-02T19:38:20.000000Z"),
    ]
    assert [m["id"] for m in page["messages"]] == [m["id"] for m in records[0]["messages"]]

    before_sync = alice.sync().json()
    before_list = alice.request("GET", "/v1/conversations").json()
    again = run_import(server, path)
    assert again.returncode == 0, again.stderr
    assert "0 new messages in 0 conversations" in again.stdout
    assert alice.sync().json() == before_sync  # same cursor, same content
    assert alice.request("GET", "/v1/conversations").json() == before_list

    # A line with one more message adds exactly that message.
    records[0]["messages"].append(
        {
            "id": str(uuid.uuid4()),
            "author": "dave",
            "body": "late",
            "created_at": "2020-01-01T00:00:00Z",
        }
    )
    write_jsonl(path, records)
    assert "1 new messages in 1 conversations" in run_import(server, path).stdout
    delta = alice.sync(before_sync["cursor"]).json()
    [entry] = delta["conversations"]
    assert [m["body"] for m in entry["messages"]] == ["late"]


def test_bad_lines_are_reported_and_good_lines_imported(server, alice, tmp_path):
    good1, good2 = str(uuid.uuid4()), str(uuid.uuid4())
    path = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            conversation(good1, ["alice"], [("alice", "one", "2020-01-01T00:00:00Z")]),
            '{"id": "broken',
            conversation("not-a-uuid", ["alice"], []),
            conversation(str(uuid.uuid4()), ["alice"], [("alice", "x", "yesterday")]),
            conversation(good2, ["alice"], [("alice", "two", "2020-01-01T00:00:00Z")]),
        ],
    )
    done = run_import(server, path)
    assert done.returncode == 1
    assert f"{path}:2: not valid JSON" in done.stderr
    assert f"{path}:3: id: not a UUID" in done.stderr
    assert f"{path}:4: messages[0].created_at" in done.stderr
    assert "imported 2 of 5 conversations" in done.stdout
    ids = {c["id"] for c in alice.request("GET", "/v1/conversations").json()["conversations"]}
    assert ids == {good1, good2}


def test_import_missing_file_is_a_clear_error(server, tmp_path):
    done = run_import(server, tmp_path / "nope.jsonl")
    assert done.returncode == 1
    assert "no such file" in done.stderr


@pytest.fixture(scope="module")
def chitchat_available() -> None:
    pytest.importorskip(
        "chitchat_dataset", reason="install the bench extra: pip install -e '.[bench]'"
    )


def run_converter(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CONVERTER), *args], capture_output=True, text=True, timeout=120
    )


def test_chitchat_converter_and_import(chitchat_available, server, alice, tmp_path):
    out = tmp_path / "chitchat.jsonl"
    done = run_converter("--limit", "3", "--repeat", "2", "--reader", "alice", "--out", str(out))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 6
    assert len({r["id"] for r in lines}) == 6
    message_ids = [m["id"] for r in lines for m in r["messages"]]
    assert len(message_ids) == len(set(message_ids))
    for record in lines:
        assert "alice" in record["members"]
        assert 1 <= len(record["title"]) <= 60
        assert record["title"].rstrip("…") in " ".join(record["messages"][0]["body"].split())
        for m in record["messages"]:
            assert m["author"] == "alice" or (
                m["author"].startswith("user-") and len(m["author"]) == 13
            )
    # Deterministic: the same output every run, so importing twice changes nothing.
    again = tmp_path / "again.jsonl"
    run_converter("--limit", "3", "--repeat", "2", "--reader", "alice", "--out", str(again))
    assert again.read_bytes() == out.read_bytes()

    assert run_import(server, out).returncode == 0
    listed = alice.request("GET", "/v1/conversations").json()["conversations"]
    assert {c["id"] for c in listed} == {r["id"] for r in lines}
    total = sum(c["unread_count"] for c in listed)
    assert total == len(message_ids)  # the reader wrote none of them
    cursor = alice.sync().json()["cursor"]
    second = run_import(server, again)
    assert "0 new messages" in second.stdout
    assert alice.sync().json()["cursor"] == cursor


def test_converter_on_a_small_chitchat_shaped_file(server, alice, tmp_path):
    """Runs without the optional chitchat-dataset package (same JSON shape, 2 conversations)."""
    sender_a = "720840be-e522-47ba-9e9f-143f66372673"
    sender_b = "549cc1d1-270e-4a53-b561-133a8d0086b4"
    data = {
        "a07edb12-6b91-4138-b11e-02421888d699": {
            "messages": [
                [
                    {
                        "text": "Hello there, how was the weekend trip to the mountains with everyone?",
                        "timestamp": "2018-05-02T19:38:15Z",
                        "sender": sender_a,
                    },
                    {"text": "   ", "timestamp": "2018-05-02T19:38:16Z", "sender": sender_a},
                ],
                [{"text": "great!", "timestamp": "2018-05-02T19:38:29Z", "sender": sender_b}],
            ],
            "ratings": {},
            "start": "",
            "prompt": "",
        },
        "58a21226-302d-4d83-a7f8-8e6ade072c84": {
            "messages": [[{"text": "hi", "timestamp": "2018-05-09T23:19:51Z", "sender": sender_b}]]
        },
    }
    source = tmp_path / "mini.json"
    source.write_text(json.dumps(data))
    out = tmp_path / "mini.jsonl"
    done = run_converter("--input", str(source), "--reader", "Alice", "--out", str(out))
    assert done.returncode == 0, done.stderr
    first, second = [json.loads(line) for line in out.read_text().splitlines()]
    assert first["id"] == "a07edb12-6b91-4138-b11e-02421888d699"
    assert first["title"] == "Hello there, how was the weekend trip to the mountains…"
    assert first["members"] == ["user-720840be", "user-549cc1d1", "alice"]
    assert [m["body"] for m in first["messages"]] == [
        "Hello there, how was the weekend trip to the mountains with everyone?",
        "great!",
    ]  # the blank message is skipped
    assert second["title"] == "hi"
    assert run_import(server, out).returncode == 0
    titles = {c["title"] for c in alice.request("GET", "/v1/conversations").json()["conversations"]}
    assert titles == {first["title"], "hi"}


@pytest.mark.also_postgres
def test_rule_text_import_lines_with_nul_or_lone_surrogates(server, alice, tmp_path):
    """docs/api.md, Conventions, Text: an imported title or body with NUL or an unpaired
    surrogate is a bad line (reported), not a crash; the other lines are imported."""
    good = str(uuid.uuid4())
    bad_body = conversation(str(uuid.uuid4()), ["alice"], [("alice", "a\x00b", "2020-01-01T00:00:00Z")])
    bad_title = {**conversation(str(uuid.uuid4()), ["alice"], []), "title": "t\ud800"}
    path = write_jsonl(tmp_path / "text.jsonl", [
        bad_body,
        json.dumps(bad_title),  # ensure_ascii: the surrogate is written as \ud800
        conversation(good, ["alice"], [("alice", "fine", "2020-01-01T00:00:00Z")]),
    ])
    done = run_import(server, path)
    assert done.returncode == 1, done.stderr
    assert f"{path}:1: messages[0].body: must not contain the NUL character" in done.stderr
    assert f"{path}:2: title: must not contain an unpaired UTF-16 surrogate" in done.stderr
    assert "imported 1 of 3 conversations" in done.stdout
    ids = {c["id"] for c in alice.request("GET", "/v1/conversations").json()["conversations"]}
    assert ids == {good}
