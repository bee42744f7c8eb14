"""What the user does to assistant replies on the chat screen: regenerate the selected
reply (or the conversation's last one), which retries it when it failed (sync rule 10).
The request is queued like any action (it works offline); the earlier reply stays on
screen until the server replaces it."""

from __future__ import annotations

from typing import Any

__all__ = ["ReplyActions"]

#: Username of the assistant (docs/api.md: the ``assistant`` member).
ASSISTANT = "assistant"


class ReplyActions:
    """Mixin of :class:`~chat_tui.ui.screens.chat.ChatScreen`: the reply actions of the key
    table (:mod:`chat_tui.ui.keymap`). Uses the screen's ``messages``, ``store``,
    ``current_id`` and ``engine_call`` (:class:`~chat_tui.ui.screens.chat_actions.MessageActions`)."""

    messages: Any
    store: Any
    current_id: str | None
    app: Any

    def failed_reply(self) -> str | None:
        """The id of the failed assistant reply a retry acts on: the selected message when
        it is one, else the open conversation's last reply when it failed; else None."""
        view = self.messages.selected_view() if self.messages is not None else None
        if view is None and self.current_id is not None:
            last = self.store.last_reply(self.current_id)
            view = self.store.get_message(last) if last is not None else None
        if view is not None and view.author == ASSISTANT and view.error and not view.deleted:
            return view.id
        return None

    def action_regenerate(self) -> None:
        """Ask the assistant again: a new reply to the question of the selected assistant
        reply, else of the open conversation's last one (a failed reply is retried so)."""
        view = self.messages.selected_view() if self.messages is not None else None
        if view is not None and view.author == ASSISTANT and not view.deleted:
            target = view.id
        elif self.current_id is not None:
            target = self.store.last_reply(self.current_id)
        else:
            target = None
        if target is None:
            self.app.notify("No assistant reply here to regenerate.")
            return
        queued = self.engine_call("Not regenerated",  # type: ignore[attr-defined]
                                  lambda e: e.regenerate(target))
        if queued is not None:
            self.app.notify("A new reply is on its way; the earlier one stays until then.")
