"""Helpers of the UI tests: :data:`SIZE`, :func:`wait_for` (through the pilot),
:func:`open_store`, :func:`shared_conversation`, :func:`online`, :func:`shown`,
:func:`create_offline`."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

#: Terminal size (columns, rows) of every headless app test.
SIZE = (120, 36)


async def wait_for(pilot, predicate: Callable[[], object], timeout: float = 10.0) -> object:
    """Let the app run until ``predicate()`` is truthy (or ``timeout`` seconds); returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.05)
    await asyncio.sleep(0)
    return predicate()


def open_store(account):
    """The account's cache (a :class:`~chat_tui.store.Cache`), opened, as ``launch`` does
    before the first frame."""
    from chat_tui.store import Cache

    store = Cache(account.db_path, account.username, user_id=account.user_id,
                  server_url=account.server_url)
    store.open()
    return store


async def shared_conversation(server_api, title: str = "Plans", bodies: tuple[str, ...] = ()):
    """Bob creates a conversation with alice on the server and posts ``bodies``; returns
    ``(bob_client, conversation_id, [message ids])``."""
    bob = server_api("bob")
    cid = str(uuid.uuid4())
    await bob.put_conversation(cid, title, ["alice"], False)
    ids = []
    for body in bodies:
        mid = str(uuid.uuid4())
        await bob.put_message(cid, mid, body)
        ids.append(mid)
    return bob, cid, ids


def online(app) -> bool:
    """Whether the app's engine is up and reports the server reachable."""
    return app.engine_ready and app.connectivity == "online"


def shown(app, cid: str) -> bool:
    """Whether conversation ``cid`` is the open one and its messages are on screen."""
    from chat_tui.ui.widgets.message_list import MessageList

    messages = app.query_one(MessageList)
    return app.current_id == cid and messages.conversation_id == cid


async def create_offline(pilot, app, server, title: str = "Ghosts",
                         members: str = "nobody_x") -> None:
    """Stop ``server`` and, once the app says it is offline, create ``title`` with
    ``members`` (typed as written, e.g. ``"bob"``; not checked offline, sync rule 3o)
    from ctrl+n; returns when the dialog has closed."""
    from chat_tui.ui.screens.new_conversation import NewConversationScreen

    server.stop()
    assert await wait_for(pilot, lambda: app.connectivity == "offline")
    await pilot.press("ctrl+n")
    assert await wait_for(pilot, lambda: isinstance(app.screen, NewConversationScreen))
    await pilot.press(*title, "tab", "space", "tab", *members, "enter")
    assert await wait_for(pilot, lambda: not isinstance(app.screen, NewConversationScreen))
