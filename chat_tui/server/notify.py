"""In-memory wake-ups for long-polling ``/v1/sync`` requests (docs/api.md, Long-poll).

One :class:`asyncio.Event` generation per user: a waiter takes the user's current event
*before* it checks the database, then waits on it; a writer, after its commit, calls
:meth:`Notifier.notify` for every member of the conversation, which sets the current event and
starts a new generation. So a commit between the check and the wait is never missed, and
nothing polls. Single process only (uvicorn with one worker), like the rest of the server's
in-memory state. All methods run on the event loop thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


class Notifier:
    """Per-user wake-up events for long-polls."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._waiters: dict[str, int] = {}
        self.closed = False

    def subscribe(self, user_id: str) -> asyncio.Event:
        """The event the next change for ``user_id`` will set; pair with :meth:`release`."""
        event = self._events.get(user_id)
        if event is None:
            event = self._events[user_id] = asyncio.Event()
            if self.closed:
                event.set()
        self._waiters[user_id] = self._waiters.get(user_id, 0) + 1
        return event

    def release(self, user_id: str) -> None:
        """Drop one waiter of ``user_id``; forget the user's event when none is left."""
        left = self._waiters.get(user_id, 0) - 1
        if left <= 0:
            self._waiters.pop(user_id, None)
            self._events.pop(user_id, None)
        else:
            self._waiters[user_id] = left

    def notify(self, user_ids: Iterable[str]) -> None:
        """Wake every waiting request of each of ``user_ids`` (call after the commit)."""
        for user_id in user_ids:
            event = self._events.pop(user_id, None)
            if event is not None:
                event.set()
                if user_id in self._waiters:
                    self._events[user_id] = asyncio.Event()

    def close(self) -> None:
        """Wake every waiter now (server shutdown); later waits return at once."""
        self.closed = True
        for event in self._events.values():
            event.set()
