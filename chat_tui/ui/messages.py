"""The app's own Textual messages (posting's ``messages.py``): how the engine and the
app's parts talk to the chat screen without reaching into each other."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.sync.events import Event

__all__ = ["EngineEvent"]


class EngineEvent(Message):
    """Carries one engine event onto the chat screen's message queue.

    ``event``: one of the dataclasses of :mod:`chat_tui.sync.events` (``Event``).
    Posted from ``Engine.subscribe``'s callback, which may run on another thread
    (``post_message`` is thread safe).
    """

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event
