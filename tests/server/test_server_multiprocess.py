"""Two ``chat-tui-server serve`` processes on one PostgreSQL database (docs/api.md, Several
server processes): wake-ups, token revocations and the assistant's replies cross from one
process to the other through PostgreSQL itself (``LISTEN/NOTIFY``, leases), and
``serve --workers N`` runs N processes behind one port.

Every test starts real server processes on a fresh database of the throwaway cluster
(``tests/support/postgres.py``); the assistant tests stream from the OpenAI-compatible
model server of ``tests/support/model_server.py``.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from chat_tui.server.assistant import INTERRUPTED_NOTE
from tests.server.conftest import Api
from tests.support.accounts import PASSWORDS
from tests.support.model_server import ModelServer

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("postgres")]


def two_servers(server_factory, pg_url: str, *extra: str, **kwargs):
    """Processes A (which adds the users) and B, both serving ``pg_url``."""
    a = server_factory.start(users=PASSWORDS, db=pg_url, extra_args=extra, **kwargs)
    b = server_factory.start(db=pg_url, extra_args=extra, **kwargs)
    return a, b


def held_poll(api: Api, cursor: str, timeout: float) -> tuple[threading.Thread, dict]:
    """Start ``GET /v1/sync?since=cursor&timeout=...`` in a thread; the dict gets
    ``answer`` (the JSON) and ``at`` (monotonic time of the answer)."""
    out: dict = {}

    def run() -> None:
        response = api.sync(cursor, timeout=timeout)
        out["at"] = time.monotonic()
        out["status"] = response.status_code
        out["answer"] = response.json()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(0.5)  # the poll is held now
    return thread, out


def message_ids(answer: dict) -> set[str]:
    return {m["id"] for entry in answer["conversations"] for m in entry["messages"]}


def test_rule_P1_a_send_through_one_process_wakes_a_poll_held_on_the_other(
        server_factory, pg_url, api_factory):
    a, b = two_servers(server_factory, pg_url)
    alice_a = api_factory(a, "alice", "alice-pw")
    bob_b = api_factory(b, "bob", "bob-pw")
    cid = alice_a.create_conversation(["bob"])
    cursor = bob_b.sync().json()["cursor"]
    for _ in range(3):  # every send wakes the other process's poll at once
        thread, out = held_poll(bob_b, cursor, timeout=20)
        sent_at = time.monotonic()
        sent = alice_a.send(cid, "across processes").json()
        thread.join(25)
        assert out["status"] == 200
        assert sent["id"] in message_ids(out["answer"])
        assert out["at"] - sent_at < 1.0, out["at"] - sent_at
        cursor = out["answer"]["cursor"]


def test_rule_P1_own_change_through_the_other_process_leaves_the_poll_held(
        server_factory, pg_url, api_factory):
    a, b = two_servers(server_factory, pg_url)
    login = a.login("alice", "alice-pw", "laptop")
    on_a, on_b = Api(a.url, login), Api(b.url, login)
    other_a = api_factory(a, "alice", "alice-pw", "phone")
    try:
        cid = on_a.create_conversation([])
        cursor = on_b.sync().json()["cursor"]
        # The device's own send through A leaves its poll on B held until the timeout,
        # which then answers the change (docs/api.md, long-poll).
        thread, out = held_poll(on_b, cursor, timeout=3)
        started = time.monotonic() - 0.5
        own = on_a.send(cid, "my own").json()
        thread.join(10)
        assert out["at"] - started >= 2.5
        assert own["id"] in message_ids(out["answer"])
        # Another device's send through A wakes it at once.
        thread, out = held_poll(on_b, out["answer"]["cursor"], timeout=20)
        sent_at = time.monotonic()
        theirs = other_a.send(cid, "from the phone").json()
        thread.join(25)
        assert theirs["id"] in message_ids(out["answer"])
        assert out["at"] - sent_at < 1.0
    finally:
        on_a.close()
        on_b.close()


def refused_within(api: Api, seconds: float) -> float | None:
    """Seconds until ``GET /v1/conversations`` answers 401 (None: not within ``seconds``)."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if api.request("GET", "/v1/conversations").status_code == 401:
            return time.monotonic() - start
        time.sleep(0.01)
    return None


def test_rule_P2_logout_through_one_process_is_refused_by_the_other_at_once(server_factory, pg_url):
    a, b = two_servers(server_factory, pg_url)
    login = a.login("alice", "alice-pw")
    on_a, on_b = Api(a.url, login), Api(b.url, login)
    try:
        assert on_b.request("GET", "/v1/conversations").status_code == 200  # cached on B
        assert on_a.request("POST", "/v1/logout").status_code == 204
        took = refused_within(on_b, 2.0)
        assert took is not None and took < 0.5, took
    finally:
        on_a.close()
        on_b.close()


def test_rule_P2_password_reset_revokes_the_tokens_in_every_process_at_once(server_factory, pg_url):
    a, b = two_servers(server_factory, pg_url)
    login = a.login("alice", "alice-pw")
    kept = a.login("bob", "bob-pw")
    apis = [Api(a.url, login), Api(b.url, login), Api(b.url, kept)]
    try:
        for api in apis:
            assert api.request("GET", "/v1/conversations").status_code == 200
        a.add_user("alice", "a-new-password")  # chat-tui-server add-user: another process
        for api in apis[:2]:
            took = refused_within(api, 2.0)
            assert took is not None and took < 0.5, took
        assert apis[2].request("GET", "/v1/conversations").status_code == 200
        assert b.login("alice", "a-new-password")["access_token"]
    finally:
        for api in apis:
            api.close()


def test_rule_P3_send_rate_is_per_process_and_login_throttling_is_shared(
        server_factory, pg_url):
    a, b = two_servers(server_factory, pg_url, "--login-failures-per-account", "3",
                       rate_limit=1)
    login = a.login("alice", "alice-pw")
    on_a, on_b = Api(a.url, login), Api(b.url, login)
    try:
        cid = on_a.create_conversation([])
        # burst 3 per process: the same token gets 3 sends from each of the 2 processes
        for api in (on_a, on_b):
            assert [api.send(cid, "x").status_code for _ in range(3)] == [201] * 3
            refused = api.send(cid, "x")
            assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        # failed logins count in the database: 3 through A, then B throttles the name
        for _ in range(3):
            r = httpx.post(f"{a.url}/v1/login", json={"username": "bob", "password": "no"})
            assert r.status_code == 401
        r = httpx.post(f"{b.url}/v1/login", json={"username": "bob", "password": "bob-pw"})
        assert r.status_code == 429 and "Retry-After" in r.headers
    finally:
        on_a.close()
        on_b.close()


# -- the assistant -------------------------------------------------------------------


def assistant_servers(server_factory, pg_url, model: ModelServer, *extra: str):
    return two_servers(server_factory, pg_url, "--assistant-base-url", model.url,
                       "--assistant-model", "fake-model", *extra, assistant="openai")


@contextmanager
def alice_on_two_processes(server_factory, pg_url, api_factory, monkeypatch, delay: float,
                           *extra: str) -> Iterator[tuple[ModelServer, object, Api, Api, str]]:
    """Two assistant server processes (``assistant_servers`` with the options ``extra``)
    answering from a model server that waits ``delay`` seconds between tokens; alice
    logged in on each and an assistant conversation of hers. Yields ``(model, a,
    alice_a, alice_b, cid)``: ``a`` the first process, ``alice_a``/``alice_b`` her API
    clients of the first and the second process."""
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-secret")
    with ModelServer(["fake-model"], delay=delay) as model:
        a, b = assistant_servers(server_factory, pg_url, model, *extra)
        alice_a = api_factory(a, "alice", "alice-pw")
        alice_b = api_factory(b, "alice", "alice-pw")
        yield model, a, alice_a, alice_b, alice_a.create_conversation([], assistant=True)


def replies(api: Api, cid: str) -> list[dict]:
    page = api.request("GET", f"/v1/conversations/{cid}/messages").json()["messages"]
    return [m for m in page if m["author"] == "assistant"]


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


def test_rule_P4_a_starting_process_leaves_the_other_ones_streaming_reply_alone(
        server_factory, pg_url, api_factory, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-secret")
    with ModelServer(["fake-model"], delay=0.05) as model:
        a = server_factory.start(users=PASSWORDS, db=pg_url, assistant="openai", extra_args=(
            "--assistant-base-url", model.url, "--assistant-model", "fake-model"))
        alice = api_factory(a, "alice", "alice-pw")
        cid = alice.create_conversation([], assistant=True)
        # "SLOW": the model streams two words, then nothing for minutes: A's reply stays
        # streaming, with no write of A's that could hide what B does at its start.
        alice.send(cid, "SLOW answer please")
        wait_until(lambda: any(r["streaming"] and r["body"] for r in replies(alice, cid)),
                   20, "the reply to stream")
        time.sleep(0.5)  # both words are written
        [streaming] = replies(alice, cid)
        assert streaming["streaming"] is True
        b = server_factory.start(db=pg_url, assistant="openai", extra_args=(
            "--assistant-base-url", model.url, "--assistant-model", "fake-model"))
        alice_b = api_factory(b, "alice", "alice-pw")
        time.sleep(1.0)
        assert replies(alice_b, cid) == [streaming]  # untouched by B's start
        # A still owns it: a stop through B reaches A, which ends it as stopped.
        stopped = alice_b.request("POST", f"/v1/messages/{streaming['id']}/stop").json()
        assert stopped["error"] is False and stopped["streaming"] is False
        assert stopped["body"] == streaming["body"] and stopped["stopped"] is True


def test_rule_P4_a_message_sent_through_the_other_process_waits_for_the_owner(
        server_factory, pg_url, api_factory, monkeypatch):
    """Replies of one conversation stay one at a time and in order when its messages
    arrive through two processes: the process writing a reply keeps the conversation."""
    with alice_on_two_processes(server_factory, pg_url, api_factory, monkeypatch,
                                0.05) as (model, a, alice_a, alice_b, cid):
        first = alice_a.send(cid, words(60)).json()  # about 3 s of streaming
        wait_until(lambda: any(r["streaming"] for r in replies(alice_a, cid)), 20,
                   "the first reply to start")
        second = alice_b.send(cid, "second question").json()
        third = alice_a.send(cid, "third question").json()
        done = wait_until(
            lambda: (lambda rs: rs if len(rs) == 3 and not any(r["streaming"] for r in rs)
                     else None)(replies(alice_a, cid)), 40, "three replies")
        time.sleep(1.0)
        assert len(replies(alice_a, cid)) == 3  # exactly one reply per message
        for reply, source, n in zip(done, (first, second, third), (1, 2, 3), strict=True):
            assert reply["error"] is False, reply["body"]
            assert reply["body"] == f"saw {n}: alice: {source['body']}"
        # one at a time: a reply starts (its seq) after the previous one's last write
        from tests.server.test_server_assistant import seqs_in_server_db

        order = seqs_in_server_db(a, [r["id"] for r in done])
        for earlier, later in zip(done, done[1:], strict=False):
            assert order[later["id"]][0] > order[earlier["id"]][1]


def test_rule_P4_stop_through_the_other_process_stops_the_owners_reply(
        server_factory, pg_url, api_factory, monkeypatch):
    with alice_on_two_processes(server_factory, pg_url, api_factory, monkeypatch,
                                0.2) as (model, a, alice_a, alice_b, cid):
        alice_a.send(cid, words(40))
        growing = wait_until(
            lambda: next((r for r in replies(alice_a, cid) if r["streaming"] and r["body"]),
                         None), 20, "the reply to stream")
        stopped = alice_b.request("POST", f"/v1/messages/{growing['id']}/stop")
        assert stopped.status_code == 200
        reply = stopped.json()
        assert reply["streaming"] is False and reply["error"] is False
        assert reply["body"] and reply["stopped"] is True
        time.sleep(0.5)
        assert replies(alice_a, cid) == [reply]


def test_rule_P4_a_crashed_owners_work_is_taken_over_after_its_lease(
        server_factory, pg_url, api_factory, monkeypatch):
    lease = 2.0
    with alice_on_two_processes(server_factory, pg_url, api_factory, monkeypatch,
                                0.1, "--assistant-lease", str(lease)) as (
            model, a, alice_a, alice_b, cid):
        first = alice_a.send(cid, words(100)).json()  # about 10 s of streaming
        second = alice_a.send(cid, "second question").json()
        wait_until(lambda: any(r["streaming"] and r["body"] for r in replies(alice_b, cid)),
                   20, "the first reply to stream")
        a.kill()  # kill -9 of the owner, mid-reply
        killed_at = time.monotonic()
        done = wait_until(
            lambda: (lambda rs: rs if len(rs) == 2 and not any(r["streaming"] for r in rs)
                     else None)(replies(alice_b, cid)), 30, "B to take over")
        took = time.monotonic() - killed_at
        assert done[0]["error"] is True and done[0]["body"].endswith(INTERRUPTED_NOTE)
        assert done[1]["error"] is False
        assert done[1]["body"] == "saw 2: alice: " + second["body"]
        assert took < lease + lease / 3 + 5.0, took
        page = alice_b.request("GET", f"/v1/conversations/{cid}/messages").json()["messages"]
        assert [m["id"] for m in page if m["author"] == "alice"] == [first["id"], second["id"]]


def test_rule_P4_a_crashed_owners_regenerated_reply_is_written_by_the_next_holder(
        server_factory, pg_url, api_factory, monkeypatch):
    """A regenerate is kept work: the process writing the regenerated reply is killed
    mid-reply; the process that takes the conversation over writes it again, in full,
    instead of closing it as interrupted, and it replaces the earlier reply."""
    lease = 2.0
    with alice_on_two_processes(server_factory, pg_url, api_factory, monkeypatch,
                                0.01, "--assistant-lease", str(lease)) as (
            model, a, alice_a, alice_b, cid):
        question = alice_a.send(cid, words(30)).json()
        [first] = wait_until(lambda: [r for r in replies(alice_a, cid)
                                      if not r["streaming"]], 20, "the first reply")
        assert first["error"] is False
        model.control(delay=0.3)  # the regenerated reply takes about 10 s
        new_id = str(uuid.uuid4())
        made = alice_a.request("POST", f"/v1/messages/{first['id']}/regenerate",
                               json={"reply_id": new_id})
        assert made.status_code == 201, made.text
        wait_until(lambda: any(r["id"] == new_id and r["body"]
                               for r in replies(alice_b, cid)), 20, "A to write it")
        a.kill()  # kill -9 of the owner, mid-reply
        model.control(delay=0.01)
        done = wait_until(lambda: next((r for r in replies(alice_b, cid)
                                        if r["id"] == new_id and not r["streaming"]), None),
                          lease + 20, "B to take over")
        assert done["error"] is False, done["body"]
        assert done["body"] == "saw 1: alice: " + question["body"]
        page = {m["id"]: m for m in alice_b.request(
            "GET", f"/v1/conversations/{cid}/messages").json()["messages"]}
        assert page[first["id"]]["deleted"] and page[question["id"]] == question


def test_rule_P4_a_regenerated_reply_and_its_replacement_are_one_change(
        server_factory, pg_url, api_factory, monkeypatch):
    """Sync rule 10 on PostgreSQL: the lease holder's last write of a regenerated reply
    and the tombstone of the reply it replaces are one transaction and one change, so a
    device syncing through the other process never holds both answers finished."""
    from tests.server.test_server_regenerate import never_both_answers, sync_cursor

    with alice_on_two_processes(server_factory, pg_url, api_factory, monkeypatch,
                                0.01) as (model, a, alice_a, alice_b, cid):
        question = alice_a.send(cid, words(10)).json()
        [first] = wait_until(lambda: [r for r in replies(alice_a, cid)
                                      if not r["streaming"]], 20, "the first reply")
        start = sync_cursor(alice_b.http)
        new_id = str(uuid.uuid4())
        made = alice_b.request("POST", f"/v1/messages/{first['id']}/regenerate",
                               json={"reply_id": new_id})
        assert made.status_code == 201, made.text
        done = wait_until(lambda: next((r for r in replies(alice_b, cid)
                                        if r["id"] == new_id and not r["streaming"]), None),
                          20, "the regenerated reply")
        assert done["error"] is False and done["body"] == "saw 1: alice: " + question["body"]
        page = {m["id"]: m for m in alice_b.request(
            "GET", f"/v1/conversations/{cid}/messages").json()["messages"]}
        assert page[first["id"]]["deleted"]  # in the same answer as the finished reply
        never_both_answers(alice_b.http, start, new_id, first["id"])


# -- serve --workers -----------------------------------------------------------------


def test_rule_P5_serve_refuses_workers_on_sqlite_and_says_why(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "chat_tui.server", "serve", "--port", "0", "--workers", "2",
         "--db", str(tmp_path / "server.db")],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--workers above 1 needs PostgreSQL" in done.stderr
    help_text = subprocess.run(
        [sys.executable, "-m", "chat_tui.server", "serve", "--help"],
        capture_output=True, text=True, timeout=60).stdout
    assert "--workers N" in help_text and "needs PostgreSQL" in " ".join(help_text.split())


def test_rule_P5_serve_workers_runs_processes_that_share_everything(server_factory, pg_url,
                                                            api_factory):
    server = server_factory.start(users=PASSWORDS, db=pg_url, extra_args=("--workers", "2"))
    pids = _children(server.proc.pid)
    assert len(pids) == 2
    alice = api_factory(server, "alice", "alice-pw")
    bob = api_factory(server, "bob", "bob-pw")
    cid = alice.create_conversation(["bob"])
    cursor = bob.sync().json()["cursor"]
    for i in range(6):  # each connection lands on either worker
        thread, out = held_poll(bob, cursor, timeout=20)
        sender = Api(server.url, {"username": "alice", "access_token": alice.token,
                                  "device_id": alice.device_id})
        sent_at = time.monotonic()
        sent = sender.send(cid, f"to whichever worker {i}").json()
        sender.close()
        thread.join(25)
        assert sent["id"] in message_ids(out["answer"])
        assert out["at"] - sent_at < 1.0
        cursor = out["answer"]["cursor"]
    # A worker that dies is replaced; the server keeps answering.
    import os
    import signal

    os.kill(pids[0], signal.SIGKILL)
    wait_until(lambda: len(_children(server.proc.pid)) == 2 and
               set(_children(server.proc.pid)) != set(pids), 20, "a new worker")
    for _ in range(5):
        assert httpx.get(f"{server.url}/v1/health", timeout=5).status_code == 200
    server.stop()
    assert not _children_alive(pids[1:])


def _children(pid: int) -> list[int]:
    """Process ids of the living children of ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return sorted(found)


def _children_alive(pids: list[int]) -> bool:
    import os

    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        return True
    return False


def test_notices_are_split_under_the_payload_limit_and_read_back():
    import uuid

    from chat_tui.server import pgbus

    ids = [str(uuid.uuid4()) for _ in range(700)]  # about 26 kB of ids
    payloads = list(pgbus.encode(pgbus.WAKE, ids, origin="dev-1"))
    assert len(payloads) > 1
    assert all(len(p.encode()) <= pgbus.MAX_PAYLOAD_BYTES for p in payloads)
    notices = [pgbus.decode(p) for p in payloads]
    assert {i for n in notices for i in n.ids} == set(ids)
    assert {(n.kind, n.sender, n.origin) for n in notices} == {
        (pgbus.WAKE, pgbus.process_id(), "dev-1")}
    assert pgbus.decode(next(pgbus.encode(pgbus.REVOKED_USERS, ["u1"]))).origin is None
    assert list(pgbus.encode(pgbus.WAKE, [])) == []
    assert pgbus.decode("something else on the channel") is None
