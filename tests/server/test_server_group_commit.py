"""Group commit of concurrent writes on SQLite (``chat_tui/server/groupcommit.py``,
``db.group_commit``), on a real SQLite file and through a real server process.

Writes committed together answer exactly as they would alone: each its own value or its
own error, a failing one rolls back only its own changes, every answered write is in the
database, and the change-stamp rule of the sync snapshots still holds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from chat_tui.server.data import ServerDB
from chat_tui.server.db import current_cursor, group_commit, read_transaction
from chat_tui.server.errors import ApiError
from chat_tui.server.groupcommit import GroupCommit
from chat_tui.server.models import Member, Message
from tests.support.server_data import open_server_data, user


@pytest.fixture
def data(tmp_path: Path) -> Iterator[ServerDB]:
    with open_server_data(tmp_path / "server.db") as opened:
        yield opened


def stored(data: ServerDB, cid: str) -> list[str]:
    with read_transaction(data.db):
        return [m.body for m in Message.select().where(Message.conversation == cid)
                .order_by(Message.seq)]


def test_a_failing_call_rolls_back_only_its_own_changes(data: ServerDB) -> None:
    alice, bob = user(data, "alice"), user(data, "bob")
    cid, other = str(uuid.uuid4()), str(uuid.uuid4())
    data.conversations.put(alice, cid, "room", ["bob"], False)
    data.conversations.put(alice, other, "private", [], False)
    taken = str(uuid.uuid4())
    before = current_cursor()
    results = group_commit(data.db, [
        lambda: data.messages.put(alice, cid, str(uuid.uuid4()), "one"),
        lambda: data.messages.put(bob, other, str(uuid.uuid4()), "not a member"),
        lambda: data.messages.put(alice, cid, taken, "two"),
        lambda: data.messages.put(bob, cid, taken, "the id is alice's"),  # 409
        lambda: data.messages.put(bob, cid, str(uuid.uuid4()), "x" * 70_000),  # 413
        lambda: data.messages.put(bob, cid, str(uuid.uuid4()), "three"),
    ])
    oks = [ok for ok, _ in results]
    assert oks == [True, False, True, False, False, True]
    assert [results[i][1].status for i in (1, 3, 4)] == [404, 409, 413]
    assert all(isinstance(results[i][1], ApiError) for i in (1, 3, 4))
    assert [results[i][1].created for i in (0, 2, 5)] == [True, True, True]
    assert stored(data, cid) == ["one", "two", "three"]
    assert stored(data, other) == []
    # Three sends took three counter values, in the order they ran.
    with read_transaction(data.db):
        assert current_cursor() == before + 3
        seqs = [m.seq for m in Message.select().where(Message.conversation == cid)]
        assert sorted(seqs) == [before + 1, before + 2, before + 3]
        # The change-stamp rule: every member stamped with the conversation's last change.
        stamps = {m.change_seq for m in Member.select().where(Member.conversation == cid)}
        assert stamps == {before + 3}
    # Each value is what the call alone answers: a repeat gives the stored message.
    again = data.messages.put(alice, cid, taken, "two")
    assert again.created is False and again.value.seq == results[2][1].value.seq


def test_writes_after_a_group_commit_alone_again(data: ServerDB) -> None:
    alice = user(data, "alice")
    cid = str(uuid.uuid4())
    data.conversations.put(alice, cid, "room", [], False)
    assert group_commit(data.db, []) == []
    data.messages.put(alice, cid, str(uuid.uuid4()), "alone")
    assert stored(data, cid) == ["alone"]


def test_concurrent_writes_share_commits_and_each_gets_its_own_answer(data: ServerDB) -> None:
    alice, bob = user(data, "alice"), user(data, "bob")
    cid, other = str(uuid.uuid4()), str(uuid.uuid4())
    data.conversations.put(alice, cid, "room", ["bob"], False)
    data.conversations.put(alice, other, "private", [], False)

    async def main() -> tuple[list, GroupCommit]:
        limiter = anyio.CapacityLimiter(4)

        async def in_thread(fn, *args):
            return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)

        group = GroupCommit(data.db, in_thread)
        calls = [group.write(data.messages.put, alice, cid, str(uuid.uuid4()), f"m{i}")
                 for i in range(30)]
        calls.insert(7, group.write(data.messages.put, bob, other, str(uuid.uuid4()), "no"))
        return await asyncio.gather(*calls, return_exceptions=True), group

    results, group = asyncio.run(main())
    failed = [r for r in results if isinstance(r, Exception)]
    assert len(failed) == 1 and isinstance(failed[0], ApiError) and failed[0].status == 404
    assert results[7] is failed[0]
    sent = [r for r in results if not isinstance(r, Exception)]
    assert all(w.created for w in sent)
    assert group.calls == 31
    assert 1 <= group.batches < 31  # fewer commits than writes
    assert sorted(stored(data, cid)) == sorted(f"m{i}" for i in range(30))
    # Answered in the order they were queued: seq ascending.
    seqs = [w.value.seq for w in sent]
    assert seqs == sorted(seqs)


def test_a_lone_write_is_committed_at_once_and_later_writes_form_new_batches(
        data: ServerDB) -> None:
    alice = user(data, "alice")
    cid = str(uuid.uuid4())
    data.conversations.put(alice, cid, "room", [], False)

    async def main() -> GroupCommit:
        async def in_thread(fn, *args):
            return await anyio.to_thread.run_sync(fn, *args)

        group = GroupCommit(data.db, in_thread, max_batch=4)
        first = await group.write(data.messages.put, alice, cid, str(uuid.uuid4()), "alone")
        assert first.created and group.batches == 1
        await asyncio.gather(*(group.write(data.messages.put, alice, cid,
                                           str(uuid.uuid4()), f"b{i}") for i in range(10)))
        return group

    group = asyncio.run(main())
    assert group.calls == 11
    assert group.batches >= 1 + 3  # at most 4 a batch
    assert len(stored(data, cid)) == 11


def test_concurrent_sends_to_a_server_are_all_answered_and_stored(alice, bob) -> None:
    cid = alice.create_conversation(["bob"], "room")
    mids = [str(uuid.uuid4()) for _ in range(40)]
    tokens = [alice.token, bob.token]

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=alice.url, timeout=30) as c:
            async def send(i: int, mid: str, token: str) -> httpx.Response:
                return await c.put(f"/v1/conversations/{cid}/messages/{mid}",
                                   headers={"Authorization": f"Bearer {token}"},
                                   json={"body": f"m{i}"})
            sends = [(i, m, tokens[i % 2]) for i, m in enumerate(mids)]
            first = await asyncio.gather(*(send(*a) for a in sends))
            again = await asyncio.gather(*(send(*a) for a in sends),
                                         send(99, mids[1], alice.token))  # bob's id
            return [*first, *again]

    answers = asyncio.run(main())
    assert [r.status_code for r in answers[:40]] == [201] * 40
    assert [r.status_code for r in answers[40:80]] == [200] * 40
    assert [r.json()["seq"] for r in answers[40:80]] == [r.json()["seq"] for r in answers[:40]]
    assert answers[80].status_code == 409
    page = bob.request("GET", f"/v1/conversations/{cid}/messages",
                       params={"limit": 100}).json()
    assert sorted(m["body"] for m in page["messages"]) == sorted(f"m{i}" for i in range(40))
    assert page["total_count"] == 40
