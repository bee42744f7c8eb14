"""Routes of docs/api.md over real HTTP against a real server process."""

from __future__ import annotations

import re
import threading
import time
import uuid

import httpx
import pytest

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_health_needs_no_auth(server):
    r = httpx.get(f"{server.url}/v1/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "version": "0.1.0"}


def test_login_makes_one_device_per_login(server):
    first = server.login("alice", "alice-pw", device="laptop")
    second = server.login("ALICE", "alice-pw", device="phone")  # usernames are case-folded
    assert first["user_id"] == second["user_id"]
    assert first["username"] == "alice"
    assert first["device_id"] != second["device_id"]
    assert first["access_token"] != second["access_token"]
    for bad in (
        {"username": "alice", "password": "nope"},
        {"username": "carol", "password": "x"},
        {"username": "", "password": "x"},
        {"username": "Bad Name!" * 20, "password": "x"},
    ):
        r = httpx.post(f"{server.url}/v1/login", json={**bad, "device_name": "d"})
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthorized"


def test_logout_revokes_only_that_token(server, alice):
    other = server.login("alice", "alice-pw", device="phone")
    assert alice.request("GET", "/v1/conversations").status_code == 200
    assert alice.request("POST", "/v1/logout").status_code == 204
    r = alice.request("GET", "/v1/conversations")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    r = httpx.get(
        f"{server.url}/v1/conversations",
        headers={"Authorization": f"Bearer {other['access_token']}"},
    )
    assert r.status_code == 200
    # Revocation is stored, not only cached: it survives a restart.
    server.stop()
    server.start()
    assert alice.request("GET", "/v1/conversations").status_code == 401


def test_conversation_put_is_idempotent_and_listed(alice, bob):
    cid = str(uuid.uuid4())
    body = {"title": "Weekend plans", "members": ["bob"], "assistant": False}
    r1 = alice.request("PUT", f"/v1/conversations/{cid}", json=body)
    assert r1.status_code == 201
    conv = r1.json()
    assert conv["members"] == ["alice", "bob"]
    assert conv["creator"] == "alice"
    assert conv["last_message"] is None and conv["unread_count"] == 0
    assert RFC3339.match(conv["created_at"])
    r2 = alice.request("PUT", f"/v1/conversations/{cid}", json={**body, "title": "other"})
    assert r2.status_code == 200
    assert r2.json() == conv
    # A member who is not the creator: 409; listed for both.
    assert bob.request("PUT", f"/v1/conversations/{cid}", json=body).status_code == 409
    for api in (alice, bob):
        listed = api.request("GET", "/v1/conversations").json()["conversations"]
        assert [c["id"] for c in listed] == [cid]


def test_conversation_put_by_a_non_member_is_not_found(alice, bob):
    # An id taken by a conversation the caller is not in answers as an unknown one would.
    cid = alice.create_conversation([], title="Mine")
    answer = bob.request("PUT", f"/v1/conversations/{cid}",
                         json={"title": "Mine", "members": [], "assistant": False})
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    assert bob.request("GET", "/v1/conversations").json()["conversations"] == []
    assert alice.request("GET", f"/v1/conversations/{cid}/messages").status_code == 200


def test_conversations_listed_most_recent_first_with_unread(alice, bob):
    older = alice.create_conversation(["bob"], title="older")
    newer = alice.create_conversation(["bob"], title="newer")
    assert [
        c["title"] for c in bob.request("GET", "/v1/conversations").json()["conversations"]
    ] == [
        "newer",
        "older",
    ]
    alice.send(older, "ping")
    alice.send(older, "ping again")
    listed = bob.request("GET", "/v1/conversations").json()["conversations"]
    assert [c["id"] for c in listed] == [older, newer]
    assert listed[0]["unread_count"] == 2
    assert listed[0]["last_message"]["body"] == "ping again"
    mine = alice.request("GET", "/v1/conversations").json()["conversations"][0]
    assert mine["unread_count"] == 0  # own messages are never unread


@pytest.mark.also_postgres
def test_auth_isolation_404_for_other_users_data(server, alice, bob):
    cid = alice.create_conversation([])
    sent = alice.send(cid, "private").json()
    server.add_user("carol", "carol-pw")
    carol = httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.login('carol', 'carol-pw')['access_token']}"},
    )
    with carol:
        for method, path, kwargs in [
            ("GET", f"/v1/conversations/{cid}/messages", {}),
            ("PUT", f"/v1/conversations/{cid}/messages/{uuid.uuid4()}", {"json": {"body": "x"}}),
            ("PUT", f"/v1/conversations/{cid}", {"json": {"title": "t", "members": []}}),
            ("POST", f"/v1/conversations/{cid}/read", {"json": {"message_id": sent["id"]}}),
            ("PATCH", f"/v1/messages/{sent['id']}", {"json": {"body": "hacked"}}),
            ("DELETE", f"/v1/messages/{sent['id']}", {}),
        ]:
            r = carol.request(method, path, **kwargs)
            assert r.status_code == 404, (method, path, r.text)
            assert r.json()["error"]["code"] == "not_found"
            if method == "PUT" and path.endswith(cid):
                continue  # an unknown conversation id would simply be created
            # Indistinguishable from an id that does not exist at all.
            unknown = path.replace(cid, str(uuid.uuid4())).replace(sent["id"], str(uuid.uuid4()))
            assert carol.request(method, unknown, **kwargs).status_code == 404
        assert carol.get("/v1/conversations").json() == {"conversations": []}
        assert carol.get("/v1/sync").json()["conversations"] == []
    assert bob.request("GET", f"/v1/conversations/{cid}/messages").status_code == 404
    # Nothing changed for alice.
    page = alice.request("GET", f"/v1/conversations/{cid}/messages").json()
    assert [m["body"] for m in page["messages"]] == ["private"]


@pytest.mark.also_postgres
def test_message_put_is_idempotent(alice, bob):
    cid = alice.create_conversation(["bob"])
    mid = str(uuid.uuid4())
    first = alice.send(cid, "hello", mid)
    assert first.status_code == 201
    msg = first.json()
    assert msg["id"] == mid and msg["author"] == "alice" and msg["version"] == 1
    assert msg["seq"] > 0 and RFC3339.match(msg["created_at"]) and msg["edited_at"] is None
    for body in ("hello", "a different body"):
        again = alice.send(cid, body, mid)
        assert again.status_code == 200
        assert again.json() == msg
    page = alice.request("GET", f"/v1/conversations/{cid}/messages").json()
    assert page["total_count"] == 1
    assert [m["id"] for m in page["messages"]] == [mid]
    # Another user reusing the id: 409, stored message untouched.
    r = bob.send(cid, "mine now", mid)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "conflict"
    assert alice.request("GET", f"/v1/conversations/{cid}/messages").json()["messages"] == [msg]


@pytest.mark.also_postgres
def test_pagination_three_pages_no_overlap_no_gap(alice):
    cid = alice.create_conversation([])
    sent = [alice.send(cid, f"m{i}").json()["id"] for i in range(25)]
    seen: list[str] = []
    before = None
    pages = 0
    while True:
        params = {"limit": 10}
        if before:
            params["before"] = before
        page = alice.request("GET", f"/v1/conversations/{cid}/messages", params=params).json()
        pages += 1
        ids = [m["id"] for m in page["messages"]]
        seqs = [m["seq"] for m in page["messages"]]
        assert seqs == sorted(seqs)  # ascending within a page
        assert page["total_count"] == 25
        seen = ids + seen
        if not page["has_more"]:
            break
        before = ids[0]
    assert pages == 3
    assert seen == sent  # every message once, in order: no overlap, no gap


@pytest.mark.also_postgres
def test_edit_and_delete_bump_version_and_are_idempotent(alice, bob):
    cid = alice.create_conversation(["bob"])
    mid = alice.send(cid, "helo").json()["id"]
    r = alice.request("PATCH", f"/v1/messages/{mid}", json={"body": "hello", "base_version": 1})
    assert r.status_code == 200
    edited = r.json()
    assert edited["body"] == "hello" and edited["version"] == 2
    assert RFC3339.match(edited["edited_at"])
    same = alice.request("PATCH", f"/v1/messages/{mid}", json={"body": "hello"})
    assert same.status_code == 200 and same.json() == edited
    forbidden = bob.request("PATCH", f"/v1/messages/{mid}", json={"body": "bob was here"})
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "forbidden"
    assert bob.request("DELETE", f"/v1/messages/{mid}").status_code == 403
    gone = alice.request("DELETE", f"/v1/messages/{mid}")
    assert gone.status_code == 200
    tomb = gone.json()
    assert tomb["deleted"] is True and tomb["body"] == "" and tomb["version"] == 3
    again = alice.request("DELETE", f"/v1/messages/{mid}")
    assert again.status_code == 200 and again.json() == tomb
    r = alice.request("PATCH", f"/v1/messages/{mid}", json={"body": "revive"})
    assert r.status_code == 409
    page = alice.request("GET", f"/v1/conversations/{cid}/messages").json()
    assert page["messages"] == [tomb] and page["total_count"] == 1


@pytest.mark.also_postgres
def test_read_marker_moves_forward_only_and_syncs(alice, bob):
    cid = alice.create_conversation(["bob"])
    m1 = alice.send(cid, "one").json()
    m2 = alice.send(cid, "two").json()
    alice.send(cid, "three")
    cursor = bob.sync().json()["cursor"]
    assert bob.request("GET", "/v1/conversations").json()["conversations"][0]["unread_count"] == 3
    r = bob.request("POST", f"/v1/conversations/{cid}/read", json={"message_id": m2["id"]})
    assert r.status_code == 200
    assert r.json() == {
        "conversation_id": cid,
        "username": "bob",
        "message_id": m2["id"],
        "seq": m2["seq"],
    }
    back = bob.request("POST", f"/v1/conversations/{cid}/read", json={"message_id": m1["id"]})
    assert back.json()["message_id"] == m2["id"]  # never backward
    delta = bob.sync(cursor).json()
    assert delta["read_markers"] == [r.json()]
    assert delta["conversations"][0]["conversation"]["unread_count"] == 1
    assert delta["conversations"][0]["messages"] == []
    # alice's devices see bob's marker move too.
    assert r.json() in alice.sync().json()["read_markers"]
    missing = bob.request(
        "POST", f"/v1/conversations/{cid}/read", json={"message_id": str(uuid.uuid4())}
    )
    assert missing.status_code == 404


@pytest.mark.also_postgres
def test_initial_and_delta_sync_with_edits_and_tombstones(alice, bob):
    cid = alice.create_conversation(["bob"])
    a = alice.send(cid, "first").json()
    b = alice.send(cid, "second").json()
    initial = bob.sync().json()
    assert initial["initial"] is True
    [entry] = initial["conversations"]
    assert entry["conversation"]["id"] == cid and entry["limited"] is False
    assert [m["id"] for m in entry["messages"]] == [a["id"], b["id"]]
    cursor = initial["cursor"]
    # Nothing new: empty delta, same cursor.
    empty = bob.sync(cursor).json()
    assert empty["conversations"] == [] and empty["read_markers"] == []
    assert empty["cursor"] == cursor and empty["initial"] is False
    alice.request("PATCH", f"/v1/messages/{a['id']}", json={"body": "first (edited)"})
    alice.request("DELETE", f"/v1/messages/{b['id']}")
    c = alice.send(cid, "third").json()
    delta = bob.sync(cursor).json()
    [entry] = delta["conversations"]
    got = {m["id"]: m for m in entry["messages"]}
    assert list(got) == [a["id"], b["id"], c["id"]]  # ascending by seq
    assert got[a["id"]]["body"] == "first (edited)" and got[a["id"]]["version"] == 2
    assert got[b["id"]]["deleted"] is True and got[b["id"]]["body"] == ""
    assert got[c["id"]]["version"] == 1
    assert int(delta["cursor"]) > int(cursor)
    assert bob.sync(delta["cursor"]).json()["conversations"] == []


@pytest.mark.also_postgres
def test_limited_sync_and_backfill(alice, bob):
    cid = alice.create_conversation(["bob"])
    alice.send(cid, "before the cursor")
    cursor = bob.sync().json()["cursor"]
    sent = [alice.send(cid, f"burst {i}").json()["id"] for i in range(70)]
    [entry] = bob.sync(cursor).json()["conversations"]
    assert entry["limited"] is True
    returned = [m["id"] for m in entry["messages"]]
    assert returned == sent[-50:]
    # Backfill the gap page by page until a known message or has_more is false.
    have = set(returned)
    backfilled: list[str] = []
    before = returned[0]
    known_before = {
        m["id"]
        for m in alice.request(
            "GET", f"/v1/conversations/{cid}/messages", params={"limit": 1, "before": sent[0]}
        ).json()["messages"]
    }
    done = False
    while not done:
        page = bob.request(
            "GET", f"/v1/conversations/{cid}/messages", params={"before": before, "limit": 8}
        ).json()
        for m in reversed(page["messages"]):
            if m["id"] in known_before:
                done = True
                break
            backfilled.insert(0, m["id"])
        done = done or not page["has_more"]
        before = page["messages"][0]["id"]
    assert backfilled == sent[:20]
    assert not have & set(backfilled)


def test_initial_sync_is_limited_to_newest_page(alice):
    cid = alice.create_conversation([])
    ids = [alice.send(cid, f"m{i}").json()["id"] for i in range(55)]
    [entry] = alice.sync().json()["conversations"]
    assert entry["limited"] is True
    assert [m["id"] for m in entry["messages"]] == ids[-50:]


def test_edit_of_old_message_returned_even_when_limited(alice, bob):
    cid = alice.create_conversation(["bob"])
    old = alice.send(cid, "old").json()
    cursor = bob.sync().json()["cursor"]
    for i in range(55):
        alice.send(cid, f"new {i}")
    alice.request("PATCH", f"/v1/messages/{old['id']}", json={"body": "old, edited"})
    [entry] = bob.sync(cursor).json()["conversations"]
    assert entry["limited"] is True
    assert entry["messages"][0]["id"] == old["id"]
    assert entry["messages"][0]["body"] == "old, edited"
    assert len(entry["messages"]) == 51


def _long_poll(api, cursor, timeout, out):
    """Append ``(answered_at, response, elapsed)``; ``answered_at`` is wall-clock epoch
    seconds (comparable with the server's ``created_at`` on this machine)."""
    t0 = time.monotonic()
    r = api.sync(cursor, timeout=timeout)
    out.append((time.time(), r, time.monotonic() - t0))


def _epoch(rfc3339: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


@pytest.mark.also_postgres
def test_long_poll_wakes_every_device_of_every_member(alice, bob, login_as):
    """docs/api.md: a change wakes every waiting device of every member within 50 ms.

    Measured from the commit (the message's ``created_at``, stamped inside the write
    transaction, same clock as ours on loopback) to each answer's arrival, with a generous
    bound (1 s) so the test never flakes on a loaded CI; benchmarks/ measures the latency.
    """
    cid = alice.create_conversation(["bob"])
    devices = [bob, login_as("bob", "bob-pw", "bob-phone"), login_as("alice", "alice-pw", "tab")]
    cursors = [d.sync().json()["cursor"] for d in devices]
    results: list = []
    threads = [
        threading.Thread(target=_long_poll, args=(d, c, 20, results))
        for d, c in zip(devices, cursors, strict=True)
    ]
    for t in threads:
        t.start()
    time.sleep(0.5)  # let every request reach the server and park
    assert results == []  # all still held
    sent = alice.send(cid, "wake up")
    committed_at = _epoch(sent.json()["created_at"])
    for t in threads:
        t.join(timeout=25)
    assert len(results) == 3
    for answered_at, response, _ in results:
        assert 0 <= answered_at - committed_at < 1.0
        [entry] = response.json()["conversations"]
        assert [m["id"] for m in entry["messages"]] == [sent.json()["id"]]


@pytest.mark.also_postgres
def test_one_change_wakes_devices_with_different_cursors_each_with_its_own_answer(
        alice, bob, login_as):
    """The devices woken by one change share one read of the changed conversation
    (``chat_tui/server/data/deltas.py``), yet each answer follows the device's own cursor
    and its user's unread count (docs/api.md, ``GET /v1/sync``): bob's laptop holds an
    older cursor (its own read marker is newer), his phone and alice's tab the newest."""
    cid = alice.create_conversation(["bob"])
    first = alice.send(cid, "first").json()
    laptop_cursor = bob.sync().json()["cursor"]
    marker = bob.request("POST", f"/v1/conversations/{cid}/read",
                         json={"message_id": first["id"]}).json()
    phone, tab = login_as("bob", "bob-pw", "phone"), login_as("alice", "alice-pw", "tab")
    waiting = {bob: laptop_cursor, phone: phone.sync().json()["cursor"],
               tab: tab.sync().json()["cursor"]}
    assert waiting[phone] != laptop_cursor
    results: dict[str, list] = {d.device_id: [] for d in waiting}
    threads = [threading.Thread(target=_long_poll, args=(d, c, 20, results[d.device_id]))
               for d, c in waiting.items()]
    for t in threads:
        t.start()
    time.sleep(0.5)  # let every request reach the server and park
    assert all(r == [] for r in results.values())  # the laptop's own marker holds it too
    second = alice.send(cid, "second").json()
    for t in threads:
        t.join(timeout=25)
    answers = {d: results[d.device_id][0][1].json() for d in waiting}
    for answer in answers.values():
        [entry] = answer["conversations"]
        assert [m["id"] for m in entry["messages"]] == [second["id"]]
        assert answer["cursor"] == answers[tab]["cursor"]
    assert answers[bob]["read_markers"] == [marker]
    assert answers[phone]["read_markers"] == answers[tab]["read_markers"] == []
    unread = {d: a["conversations"][0]["conversation"]["unread_count"]
              for d, a in answers.items()}
    assert unread == {bob: 1, phone: 1, tab: 0}


def _sql_lines(log_path) -> int:
    try:
        return log_path.read_text(encoding="utf-8").count(" DEBUG peewee ")
    except FileNotFoundError:
        return 0


def test_an_idle_long_poll_runs_no_database_queries(server_factory, api_factory):
    """No busy polling: while a long-poll is parked, the server runs no SQL at all (every
    statement is logged with ``serve --log-sql``); a change then wakes it, and the same
    counter sees its queries (so the zero means something)."""
    import re
    from pathlib import Path

    server = server_factory.start(users={"alice": "alice-pw"}, extra_args=("--log-sql",))
    alice = api_factory(server, "alice", "alice-pw")
    phone = api_factory(server, "alice", "alice-pw", device="phone")
    log_path = Path(re.search(r"chat-tui-server log file: (.+)", server.stderr_text())
                    .group(1).strip())
    cid = alice.create_conversation([])
    cursor = alice.sync().json()["cursor"]
    results: list = []
    waiter = threading.Thread(target=_long_poll, args=(alice, cursor, 20, results))
    waiter.start()
    # Parked once the log stops growing (the request's own queries come first).
    count, deadline = _sql_lines(log_path), time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _sql_lines(log_path)
        if now == count:
            break
        count = now
    time.sleep(2.0)
    assert results == []  # still parked
    assert _sql_lines(log_path) == count, "the server queried the database while idle"
    phone.send(cid, "wake up")  # another device: the waiting one is woken
    waiter.join(timeout=25)
    assert len(results) == 1 and results[0][1].json()["conversations"]
    assert _sql_lines(log_path) > count


def test_long_poll_times_out_empty(alice):
    cursor = alice.sync().json()["cursor"]
    t0 = time.monotonic()
    r = alice.sync(cursor, timeout=1)
    elapsed = time.monotonic() - t0
    assert r.status_code == 200
    assert r.json() == {
        "cursor": cursor,
        "initial": False,
        "conversations": [],
        "read_markers": [],
    }
    assert 0.9 <= elapsed < 5


def test_long_poll_answers_at_once_when_changes_exist(alice, login_as):
    cid = alice.create_conversation([])
    cursor = alice.sync().json()["cursor"]
    login_as("alice", "alice-pw", "phone").send(cid, "already there")
    t0 = time.monotonic()
    r = alice.sync(cursor, timeout=20).json()
    assert time.monotonic() - t0 < 5
    assert r["conversations"][0]["messages"][0]["body"] == "already there"


def test_long_poll_is_not_woken_by_the_devices_own_change_but_its_answer_carries_it(
        alice, bob, login_as):
    """docs/api.md, long-poll: the device that made a change already has it from its own
    request's answer, so its held long-poll is not woken (nor answered early) by it; the
    user's other devices and the other members are. The change still comes in the device's
    next answer (here: the held poll's answer at its timeout)."""
    cid = alice.create_conversation(["bob"])
    tab = login_as("alice", "alice-pw", "tab")
    waiting = [alice, tab, bob]
    cursors = [d.sync().json()["cursor"] for d in waiting]
    results: dict[str, list] = {d.device_id: [] for d in waiting}
    threads = [
        threading.Thread(target=_long_poll, args=(d, c, 4, results[d.device_id]))
        for d, c in zip(waiting, cursors, strict=True)
    ]
    for t in threads:
        t.start()
    time.sleep(0.5)  # let every request reach the server and park
    sent = alice.send(cid, "from my laptop").json()
    committed_at = _epoch(sent["created_at"])
    for t in threads:
        t.join(timeout=25)
    for other in (tab, bob):
        [(answered_at, response, _)] = results[other.device_id]
        assert 0 <= answered_at - committed_at < 1.0  # woken (within 50 ms; 1 s on CI)
        [entry] = response.json()["conversations"]
        assert [m["id"] for m in entry["messages"]] == [sent["id"]]
    [(_, own, elapsed)] = results[alice.device_id]
    assert elapsed >= 3.9, "the sender's own change answered its long-poll early"
    [entry] = own.json()["conversations"]
    assert [m["id"] for m in entry["messages"]] == [sent["id"]]


def test_long_poll_of_the_sender_held_with_only_its_own_changes_then_answered(alice, bob):
    """A poll whose ``since`` already has only the device's own changes after it is held
    (not answered at once) until another member's change, which it then carries together
    with the device's own; replaying its own messages is harmless (docs/api.md)."""
    cid = alice.create_conversation(["bob"])
    cursor = alice.sync().json()["cursor"]
    mine = alice.send(cid, "mine").json()
    results: list = []
    waiter = threading.Thread(target=_long_poll, args=(alice, cursor, 20, results))
    waiter.start()
    time.sleep(1.0)
    assert results == []  # held: only its own change is newer than its cursor
    theirs = bob.send(cid, "theirs").json()
    waiter.join(timeout=25)
    [(_, response, elapsed)] = results
    assert elapsed < 10
    [entry] = response.json()["conversations"]
    assert [m["id"] for m in entry["messages"]] == [mine["id"], theirs["id"]]
    # A poll from a cursor the server did not last answer this device answers at once.
    t0 = time.monotonic()
    r = alice.sync(cursor, timeout=20).json()
    assert time.monotonic() - t0 < 10
    assert [m["id"] for m in r["conversations"][0]["messages"]] == [mine["id"], theirs["id"]]


def test_long_poll_not_woken_by_other_conversations(server, alice, bob):
    cursor = bob.sync().json()["cursor"]
    alice_only = alice.create_conversation([])
    results: list = []
    waiter = threading.Thread(target=_long_poll, args=(bob, cursor, 1.5, results))
    waiter.start()
    time.sleep(0.3)
    alice.send(alice_only, "not for bob")
    waiter.join()
    _, response, elapsed = results[0]
    assert response.json()["conversations"] == []
    assert elapsed >= 1.4
