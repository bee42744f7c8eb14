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
