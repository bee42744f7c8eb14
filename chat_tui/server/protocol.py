"""Connection limits of ``chat-tui-server serve`` and the embedded server (docs/api.md,
Limits, Connections): uvicorn's own settings where it has them, and an h11 protocol that
adds the two it lacks.

uvicorn closes a connection idle between requests after ``timeout_keep_alive`` seconds,
answers ``503`` to requests over ``limit_concurrency``, and h11 answers ``400`` to a request
head over ``h11_max_incomplete_event_size`` bytes. It has no timer for a request head
that never ends (its keep-alive timer starts only after a first answer, and stops at the
first byte of the next request), and no cap on open connections.
:func:`guarded_h11` adds both: a connection must deliver a complete request head within
``header_timeout`` seconds of its opening or of its previous answer, else it is closed;
a connection beyond ``max_connections`` open ones is closed at once. The body's read
timeout is in :class:`chat_tui.server.body_limit.BodyLimitMiddleware` (408).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from chat_tui.server.settings import ConnectionLimits


def uvicorn_options(limits: ConnectionLimits) -> dict[str, Any]:
    """The ``uvicorn.Config`` keywords of ``limits`` (``http`` included)."""
    return {
        "http": guarded_h11(limits),
        "timeout_keep_alive": limits.keep_alive,
        "limit_concurrency": limits.max_connections,
        "h11_max_incomplete_event_size": limits.max_head_bytes,
    }


def guarded_h11(limits: ConnectionLimits) -> type[H11Protocol]:
    """An ``H11Protocol`` class with the head timeout and the connection cap of ``limits``
    (see the module doc); pass it as ``uvicorn.Config(http=...)``."""

    class GuardedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                transport.close()
                return
            self._arm_head_timer()

        def data_received(self, data: bytes) -> None:
            if self._head_timer is None and self._between_requests():
                self._arm_head_timer()  # the first bytes of a next request
            super().data_received(data)
            if not self._between_requests():
                self._disarm_head_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._disarm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_head_timer()
            super().connection_lost(exc)

        def _between_requests(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm_head_timer(self) -> None:
            self._disarm_head_timer()
            self._head_timer = self.loop.call_later(limits.header_timeout, self._head_timeout)

        def _disarm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timeout(self) -> None:
            self._head_timer = None
            if self._between_requests() and not self.transport.is_closing():
                self.transport.close()

    return GuardedH11Protocol
