"""The send's hand-written SQL (``Messages.put``) against the ORM send it replaces on the
hot path (``Messages.put_reference``), on a real SQLite file and a real PostgreSQL
database: the same sends, repeats and refusals on two fresh databases leave the same
rows and give the same answers (times apart, which are the clock's, and user ids, which
are random: they are compared as the usernames they name).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chat_tui.server.data import Principal, ServerDB
from chat_tui.server.db import open_and_migrate, read_transaction
from chat_tui.server.errors import ApiError
from chat_tui.server.models import Conversation, Counter, Member, Message

TIMES = {"created_at", "updated_at", "edited_at"}


@pytest.fixture(params=[
    "sqlite",
    pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.xdist_group("postgres")]),
])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator:
    """``target(name) -> database``: fresh server databases of one kind."""
    if request.param == "sqlite":
        yield lambda name: tmp_path / f"{name}.db"
    else:
        cluster = request.getfixturevalue("pg_cluster")
        yield lambda name: cluster.create_database()


def scenario(data: ServerDB, send) -> list:
    """The same users, conversations and sends on ``data``, sending with ``send``
    (``put`` or ``put_reference``); returns each send's answer or error."""
    people = {}
    for name in ("alice", "bob", "carol"):
        data.users.create(name, f"{name}-pw")
        login = data.users.login(name, f"{name}-pw", "test")
        people[name] = data.users.authenticate(login.access_token)
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    ids = [str(uuid.UUID(int=i)) for i in range(1, 12)]
    room, ask, alone = ids[0], ids[1], ids[2]
    data.conversations.put(alice, room, "room", ["bob"], False)
    data.conversations.put(alice, ask, "ask", ["bob", "carol"], True)
    data.conversations.put(carol, alone, "alone", [], False)
    data.conversations.update(alice, ask, {"model": "m-1", "system_prompt": "be brief"})
    calls: list[tuple[Principal, str, str, str]] = [
        (alice, room, ids[3], "hello"),
        (bob, room, ids[4], "hi alice"),
        (alice, ask, ids[5], "a question"),
        (alice, room, ids[3], "hello"),  # a repeat: the stored message
        (bob, room, ids[3], "hello"),  # another author's id: 409
        (alice, ask, ids[4], "moved"),  # an id used in another conversation: 409
        (bob, alone, ids[6], "not a member"),  # 404
        (alice, room, ids[7], ""),  # 422
        (alice, room, ids[8], "x" * 70_000),  # 413
        (carol, ask, ids[9], "ünïcödé ✓"),
    ]
    answers = []
    for p, cid, mid, body in calls:
        try:
            w = send(data.messages)(p, cid, mid, body)
        except ApiError as exc:
            answers.append(("error", exc.status, exc.code))
            continue
        value = json.loads(w.value.to_json())
        answers.append(({k: v for k, v in value.items() if k not in TIMES}, w.created,
                        sorted(data.messages.names.of(u) for u in w.affected), w.assistant_job))
    return answers


def rows(data: ServerDB) -> dict:
    """Every row the sends touch, times left out, user ids as usernames."""
    user_columns = {"author", "creator", "user"}
    with read_transaction(data.db):
        def dump(model):
            found = [{k: data.messages.names.of(v) if k in user_columns else v
                      for k, v in r.items() if k not in TIMES}
                     for r in model.select().dicts()]
            return sorted(found, key=lambda r: sorted((k, str(v)) for k, v in r.items()))
        return {name: dump(model) for name, model in (
            ("message", Message), ("conversation", Conversation), ("member", Member),
            ("counter", Counter))}


def run(database, send) -> tuple[list, dict]:
    """The scenario on a fresh ``database``, sending with ``send``: answers and rows."""
    db = open_and_migrate(database)
    try:
        data = ServerDB(db)
        return scenario(data, send), rows(data)
    finally:
        db.close()


def test_the_sql_send_writes_what_the_orm_send_writes(target) -> None:
    fast_answers, fast_rows = run(target("fast"), lambda m: m.put)
    ref_answers, ref_rows = run(target("reference"), lambda m: m.put_reference)
    assert fast_answers == ref_answers
    assert fast_rows == ref_rows
    statuses = [a[1] for a in fast_answers if a[0] == "error"]
    assert statuses == [409, 409, 404, 422, 413]
    assert [a[1] for a in fast_answers if a[0] != "error"] == [True, True, True, False, True]
    # The assistant conversation's send carries its settings and queues the reply.
    [asked] = [r for r in fast_rows["message"] if r["body"] == "a question"]
    assert (asked["ask_model"], asked["ask_system_prompt"]) == ("m-1", "be brief")
    assert fast_answers[2][3] == (str(uuid.UUID(int=2)), str(uuid.UUID(int=6)))
    # Every member of the room is stamped with the room's last send.
    stamps = {r["change_seq"] for r in fast_rows["member"]
              if r["conversation"] == str(uuid.UUID(int=1))}
    room_seqs = [r["seq"] for r in fast_rows["message"]
                 if r["conversation"] == str(uuid.UUID(int=1))]
    assert stamps == {max(room_seqs)}


@pytest.mark.postgres
@pytest.mark.xdist_group("postgres")
def test_a_postgres_send_is_one_statement_whose_notices_name_every_member(pg_url) -> None:
    """On PostgreSQL a new message is written by one query (``Messages.put``'s one round
    trip) and its wake-up notices, split at ``notice_ids`` ids, name this process, the
    sending device and every member; a send that is not new writes and sends nothing."""
    import select

    import psycopg2

    from chat_tui.server import pgbus
    from chat_tui.server.db import change_origin
    from tests.support.server_data import open_server_data, user

    with open_server_data(pg_url) as data:
        people = [user(data, name) for name in ("alice", "bob", "carol", "dave", "erin")]
        alice = people[0]
        cid = str(uuid.uuid4())
        data.conversations.put(alice, cid, "room", ["bob", "carol", "dave", "erin"], False)
        data.messages.notice_ids = 2
        listener = psycopg2.connect(pg_url)
        try:
            listener.autocommit = True
            listener.cursor().execute(f"LISTEN {pgbus.CHANNEL}")

            def notices() -> list[pgbus.Notice]:
                found = []
                while select.select([listener], [], [], 1.0)[0]:
                    listener.poll()
                    found += [pgbus.decode(n.payload) for n in listener.notifies]
                    listener.notifies.clear()
                return found

            mid = str(uuid.uuid4())
            with change_origin(alice.device_id):
                written = data.messages.put(alice, cid, mid, "hello")
            assert data.messages.one_statement_sends == 1
            assert written.created and written.value.body == "hello"
            heard = notices()
            assert [len(n.ids) for n in heard] == [2, 2, 1]
            assert {(n.kind, n.sender, n.origin) for n in heard} == {
                (pgbus.WAKE, pgbus.process_id(), alice.device_id)}
            everyone = sorted(p.user_id for p in people)
            assert sorted(i for n in heard for i in n.ids) == everyone
            assert sorted(written.affected) == everyone
            with read_transaction(data.db):
                stored = Message.get_by_id(mid)
                assert stored.seq == written.value.seq
                assert stored.created_at == written.value.created_at
                assert Conversation.get_by_id(cid).updated_at == stored.created_at
                assert {m.change_seq for m in Member.select()} == {written.value.seq}
            # Times are read under the write lock: they follow the counter.
            later = data.messages.put(people[1], cid, str(uuid.uuid4()), "later")
            assert later.value.seq > written.value.seq
            assert later.value.created_at >= written.value.created_at
            heard = notices()
            assert sorted(i for n in heard for i in n.ids) == everyone
            assert {n.origin for n in heard} == {None}  # no device named: the server
            # A repeat answers the stored message; a stranger's id is refused: neither
            # writes, moves the counter or sends a notice.
            with read_transaction(data.db):
                counter = Counter.get().value
            repeat = data.messages.put(alice, cid, mid, "hello")
            assert not repeat.created and repeat.value.seq == written.value.seq
            with pytest.raises(ApiError) as refused:
                data.messages.put(people[1], cid, mid, "hello")
            assert refused.value.status == 409
            assert data.messages.one_statement_sends == 2
            with read_transaction(data.db):
                assert Counter.get().value == counter
            assert notices() == []
        finally:
            listener.close()
