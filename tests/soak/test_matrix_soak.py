"""The soak's Matrix world (``tests/soak/matrix_world.py``) on a short fixed sequence:
sends, a burst, edits and deletes, a second device, ``kill -9`` of the client (also while
a send waits for its answer), a lost answer, 503s, a refused proxy, a Synapse restart and
work offline; every invariant of the oracle holds at each quiet point (docs/reliability.md).
The long randomized run is ``python -m tools.soak --world matrix``."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.soak.matrix_world import MatrixWorld
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.soak, pytest.mark.slow, pytest.mark.matrix]


def _need_synapse() -> None:
    if importlib.util.find_spec("synapse") is None:
        if os.environ.get("CI"):
            pytest.fail("matrix-synapse is not installed (it is in the test extra)")
        pytest.skip("matrix-synapse is not installed (pip install -e '.[test]')")


@pytest.fixture
def world() -> Iterator[MatrixWorld]:
    """A started Matrix world (its own Synapse, proxy and client), closed and removed
    after the test."""
    _need_synapse()
    tmp = Path(tempfile.mkdtemp(prefix="soak-matrix-"))
    started = MatrixWorld(tmp)
    try:
        started.start()
        yield started
    finally:
        started.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_matrix_world_keeps_every_promise(world: MatrixWorld) -> None:
    for conv in range(4):
        world.send(conv)
    world.create_conversation()
    for i in range(5):
        world.send(i % 2)
    world.edit(0)
    world.delete(1)
    world.phone_send(0)
    assert world.check() == {}
    world.kill_client(0.05)
    world.send(0)
    world.kill_client_mid_request()
    world.fault("drop", "PUT", 2)
    world.send(1)
    world.send(1)
    world.fault("503", None, 3)
    world.send(0)
    world.edit(2)
    assert world.check() == {}
    world.set_work_offline(True)
    world.send(0)
    world.edit(3)
    world.set_work_offline(False)
    world.fault("refused", None, 1)
    world.send(1)
    world.restart_server(True, 0.1)
    world.send(0, poison=True, discard_on_fail=False)
    world.send(1, poison=True, discard_on_fail=True)
    world.delete(4)
    assert world.check() == {}
    stats = world.stats.as_dict()
    assert stats["lost"] == stats["duplicated"] == stats["reordered"] == 0
    assert stats["kills"] >= 2 and stats["server_restarts"] == 1


def test_a_poisoned_send_is_refused_even_behind_a_fault_that_forwards(
        world: MatrixWorld) -> None:
    """A ``slow`` fault on ``PUT`` (forward, hold the answer) comes before a poisoned
    send: the poison's 422 still answers the send's first ``PUT``, so Synapse never
    stores it; after a ``kill -9`` the send shows as failed and the quiet point retries
    it. (With the refusal behind the slow rule, Synapse stored the first attempt and the
    restarted client found it in the room (rule M1), so it never failed.)"""
    world.fault("slow", "PUT", 2)
    msg = world.send(0, poison=True)
    proxy = world.proxy
    assert proxy is not None

    def puts() -> list[tuple]:
        return proxy.requests("PUT", f"{world.SEND_PATH}{msg.mid}")

    assert wait_until(puts, timeout=60)
    world.kill_client(0)
    assert world.check() == {}
    assert puts()[0][2] == "422"


def test_the_oracle_names_a_conversation_created_as_two_rooms(world: MatrixWorld) -> None:
    """A second room created behind the client's back with a conversation's creation key
    (what a room create made twice leaves, rule M2) is reported as ``duplicated``, and the
    messages in either room still count as on the server (not ``lost``)."""
    msg = world.send(0)
    assert world.check() == {}
    assert world.checker is not None
    world.checker.post("/_matrix/client/v3/createRoom", json={
        "preset": "private_chat", "name": "twin",
        "creation_content": {"dev.chat_tui.cid": msg.cid}}).raise_for_status()
    problems = world.check(cache_wait=1.0)
    assert "lost" not in problems, problems
    assert any(msg.cid in p and "2 rooms" in p for p in problems["duplicated"]), problems
