"""The delta sync's fast path (``Sync.read`` with its shared conversation snapshots,
``chat_tui/server/data/deltas.py``) against the ORM read it replaces on the hot path
(``Sync.read_reference``), on a real SQLite file and a real PostgreSQL database.

docs/api.md ``GET /v1/sync`` is unchanged by the fast path: for every caller and every
cursor the two reads give the same answer. The snapshots rest on the change-stamp rule
of the writers (every change of a conversation stamps every member's ``change_seq``),
which is checked after every write here too.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chat_tui.server.data import Principal, ServerDB
from chat_tui.server.data.deltas import TAIL_ROWS, DeltaCache
from chat_tui.server.db import current_cursor, is_sqlite, read_transaction
from chat_tui.server.models import Member, Message
from chat_tui.wire.limits import SYNC_PAGE
from tests.support.server_data import open_server_data, user


@pytest.fixture(params=[
    "sqlite",
    pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.xdist_group("postgres")]),
])
def data(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerDB]:
    """A fresh server database, opened in this process."""
    if request.param == "sqlite":
        target: str | Path = tmp_path / "server.db"
    else:
        target = request.getfixturevalue("pg_url")
    with open_server_data(target) as opened:
        yield opened


def cursor(data: ServerDB) -> int:
    with read_transaction(data.db):
        return current_cursor()


def canonical(answer) -> dict:
    """An answer as JSON, read markers sorted (their order is not specified)."""
    decoded = json.loads(answer.to_json())
    decoded["read_markers"].sort(key=lambda m: (m["conversation_id"], m["username"]))
    return decoded


def assert_same(data: ServerDB, p: Principal, since: int) -> dict:
    fast = canonical(data.sync.read(p, since))
    assert fast == canonical(data.sync.read_reference(p, since)), (p.username, since)
    return fast


def assert_stamped(data: ServerDB) -> None:
    """The change-stamp rule: in every conversation every member's ``change_seq`` is the
    same, and no message or read marker of it changed later."""
    with read_transaction(data.db):
        stamps: dict[str, set[int]] = {}
        markers: dict[str, int] = {}
        for m in Member.select():
            stamps.setdefault(m.conversation_id, set()).add(m.change_seq)
            markers[m.conversation_id] = max(markers.get(m.conversation_id, 0),
                                             m.read_change_seq)
        for cid, values in stamps.items():
            assert len(values) == 1, (cid, values)
            [stamp] = values
            newest = (Message.select(Message.change_seq).where(Message.conversation == cid)
                      .order_by(Message.change_seq.desc()).scalar()) or 0
            assert newest <= stamp and markers[cid] <= stamp, cid


def send(data: ServerDB, p: Principal, cid: str, body: str) -> str:
    mid = str(uuid.uuid4())
    data.messages.put(p, cid, mid, body)
    return mid


@pytest.mark.parametrize("seed", [1, 2])
def test_fast_read_equals_the_reference_for_every_caller_and_cursor(data, seed):
    rng = random.Random(seed)
    people = {name: user(data, name) for name in ("alice", "bob", "carol", "dave")}
    groups = [["alice", "bob", "carol", "dave"], ["alice", "bob"], ["carol", "dave", "alice"]]
    convs = []
    for members in groups:
        cid = str(uuid.uuid4())
        data.conversations.put(people[members[0]], cid, "room", members[1:], False)
        convs.append((cid, members))
    sent: dict[str, list[tuple[str, str]]] = {cid: [] for cid, _ in convs}  # (mid, author)
    deleted: set[str] = set()
    cursors = [cursor(data)]
    for step in range(160):
        cid, members = rng.choice(convs)
        name = rng.choice(members)
        p = people[name]
        roll = rng.random()
        own = [mid for mid, author in sent[cid] if author == name and mid not in deleted]
        if roll < 0.55 or not sent[cid]:
            sent[cid].append((send(data, p, cid, f"m{step} {rng.random()}"), name))
        elif roll < 0.7 and own:
            data.messages.edit(p, rng.choice(own), f"edited {step}")
        elif roll < 0.8 and own:
            mid = rng.choice(own)
            data.messages.delete(p, mid)
            deleted.add(mid)
        elif roll < 0.95:
            data.messages.mark_read(p, cid, rng.choice(sent[cid])[0])
        else:  # a burst past the snapshot's tail and the sync page
            for i in range(rng.choice([SYNC_PAGE + 3, TAIL_ROWS + 5])):
                sent[cid].append((send(data, p, cid, f"burst {step}.{i}"), name))
        assert_stamped(data)
        cursors.append(cursor(data))
        if step % 8 == 7:
            for q in people.values():
                for since in {cursors[0], cursors[-1], cursors[-2], rng.choice(cursors)}:
                    assert_same(data, q, since)
    assert data.sync.deltas.built > 0 and data.sync.deltas.reused > 0
    # Both reads answered: the one statement from the cache, the transaction otherwise.
    assert data.sync.one_statement_reads > 0 and data.sync.transaction_reads > 0
    if not is_sqlite(data.db):  # PostgreSQL sends are one round trip
        assert data.messages.one_statement_sends > 0


def test_one_snapshot_serves_members_with_different_cursors(data):
    alice, bob, carol = (user(data, n) for n in ("alice", "bob", "carol"))
    cid = str(uuid.uuid4())
    data.conversations.put(alice, cid, "shared", ["bob", "carol"], False)
    first = send(data, alice, cid, "first")
    bob_since = cursor(data)  # bob has "first"
    data.messages.mark_read(carol, cid, first)
    second = send(data, alice, cid, "second")
    data.messages.edit(alice, first, "first, edited")
    carol_since = cursor(data) - 1  # carol has everything but the edit
    built = data.sync.deltas.built
    quick, full = data.sync.one_statement_reads, data.sync.transaction_reads

    for_bob = assert_same(data, bob, bob_since)
    for_carol = assert_same(data, carol, carol_since)

    assert data.sync.deltas.built == built + 1  # read and shaped once, for both
    # bob's read built it in a read transaction; carol's took one statement and the cache.
    assert data.sync.transaction_reads == full + 1
    assert data.sync.one_statement_reads == quick + 1
    [bob_entry] = for_bob["conversations"]
    [carol_entry] = for_carol["conversations"]
    assert [(m["id"], m["body"]) for m in bob_entry["messages"]] == [
        (first, "first, edited"), (second, "second")]
    assert [(m["id"], m["body"]) for m in carol_entry["messages"]] == [(first, "first, edited")]
    assert bob_entry["conversation"]["unread_count"] == 2
    assert carol_entry["conversation"]["unread_count"] == 1
    assert [m["username"] for m in for_bob["read_markers"]] == ["carol"]
    assert for_carol["read_markers"] == []  # carol's marker moved before her cursor
    # A cursor past the snapshot's tail is answered from the database, still the same.
    for i in range(TAIL_ROWS + 2):
        send(data, alice, cid, f"more {i}")
    again = assert_same(data, bob, bob_since)
    [entry] = again["conversations"]
    assert entry["limited"] is True and len(entry["messages"]) == SYNC_PAGE + 1  # + the edit


def test_snapshots_stay_within_their_bounds(data):
    alice, bob = user(data, "alice"), user(data, "bob")
    since = cursor(data)
    cids = []
    for i in range(3):
        cid = str(uuid.uuid4())
        data.conversations.put(alice, cid, f"c{i}", ["bob"], False)
        send(data, alice, cid, "x" * 3000)
        cids.append(cid)
    data.sync.deltas = DeltaCache(data.db, data.sync.names, max_snapshots=2)
    reference = canonical(data.sync.read_reference(bob, since))
    assert canonical(data.sync.read(bob, since)) == reference
    assert len(data.sync.deltas._snapshots) == 2
    data.sync.deltas = DeltaCache(data.db, data.sync.names, max_bytes=2000)
    assert canonical(data.sync.read(bob, since)) == reference
    assert len(data.sync.deltas._snapshots) == 0 and data.sync.deltas._bytes == 0


def test_fast_read_equals_the_reference_when_members_leave_rejoin_and_settings_change(data):
    """Leavers' and removed members' devices get ``removed`` entries, the others the
    conversation without them, a member added again gets it back; the conversation's
    model and system prompt travel in both reads alike."""
    alice, bob, carol, dave = (user(data, n) for n in ("alice", "bob", "carol", "dave"))
    people = (alice, bob, carol, dave)
    cid, other = str(uuid.uuid4()), str(uuid.uuid4())
    data.conversations.put(alice, cid, "room", ["bob", "carol", "dave"], True)
    data.conversations.put(alice, other, "other", ["bob"], False)
    send(data, bob, cid, "hello")
    start = cursor(data)
    data.conversations.update(alice, cid, {"model": "m-1", "system_prompt": "be brief"})
    after_settings = cursor(data)
    data.memberships.leave(carol, cid)
    send(data, dave, cid, "carol left")
    after_leave = cursor(data)
    data.memberships.remove_member(alice, cid, "dave")
    send(data, bob, other, "elsewhere")
    after_remove = cursor(data)
    data.memberships.add_member(alice, cid, "carol")
    assert_stamped(data)
    end = cursor(data)
    sinces = (start, after_settings, after_leave, after_remove, end)
    for p in people:
        for since in sinces:
            assert_same(data, p, since)
    removed = {e["conversation"]["id"]: e for e in assert_same(data, dave, start)["conversations"]
               if e["removed"]}
    assert list(removed) == [cid] and removed[cid]["messages"] == []
    bob_view = next(e for e in assert_same(data, bob, start)["conversations"]
                    if e["conversation"]["id"] == cid)
    assert bob_view["removed"] is False
    assert bob_view["conversation"]["members"] == ["alice", "assistant", "bob", "carol"]
    assert bob_view["conversation"]["model"] == "m-1"
    assert bob_view["conversation"]["system_prompt"] == "be brief"
    # carol left and was added again: a member, no removed entry
    carol_entries = assert_same(data, carol, after_settings)["conversations"]
    assert [(e["conversation"]["id"], e["removed"]) for e in carol_entries] == [(cid, False)]
