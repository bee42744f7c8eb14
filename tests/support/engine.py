"""Helpers of the engine tests: :func:`drained`, :func:`server_bodies`,
:func:`online_conversation`."""

from __future__ import annotations

from tests.support.waiting import wait_for


def drained(engine) -> bool:
    """Whether the engine's outbox has nothing queued or sending."""
    counts = engine.store.outbox_counts()
    return counts["queued"] == 0 and counts["sending"] == 0


async def server_bodies(api, cid: str) -> list[str]:
    """Bodies of the conversation's messages as the server holds them (``api``: an
    ``ApiClient`` logged in directly on the server), oldest first, up to 500."""
    page = await api.messages(cid, limit=500)
    return [m.body for m in page.messages]


async def online_conversation(engine, title="Chat", members=("bob",)) -> str:
    """Create a conversation through the engine and wait until it reached the server;
    returns its id."""
    cid = engine.create_conversation(title, list(members))
    assert await wait_for(lambda: drained(engine))
    return cid
