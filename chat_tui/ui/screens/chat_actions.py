"""What the user does to messages on the chat screen: send, edit, retry, send anyway,
discard, delete; and the cached answer shown offline below a new question.

Every engine call goes through :meth:`MessageActions.engine_call`: the store refuses an
action that no longer applies (a discard of a message the drain acknowledged a moment
ago, a retry of one that is no longer failed) with a ``StoreError``, and a busy or broken
cache file raises a database error; either becomes a toast, never the end of the app.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from textual import events

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store import MessageView
    from chat_tui.sync.engine import Engine
    from chat_tui.ui.widgets.composer import Composer

__all__ = ["BODY_LIMIT", "MessageActions", "expected_errors"]

log = logging.getLogger(__name__)

T = TypeVar("T")

BODY_LIMIT = 65_536  # bytes, docs/api.md "Limits"


@cache
def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors an engine action raises when it cannot be done now (docs/engine.md): the
    store's refusal (``StoreError``: unknown, not mine, not in that state, in flight) and
    database errors (``sqlite3.Error``, ``peewee.DatabaseError``: busy, locked,
    unreadable). Imported on first use: nothing of the ORM is needed to draw the screen."""
    from peewee import DatabaseError

    from chat_tui.store import StoreError

    return (StoreError, sqlite3.Error, DatabaseError)


class MessageActions:
    """Mixin of :class:`~chat_tui.ui.screens.chat.ChatScreen`: the message actions of the
    key table (:mod:`chat_tui.ui.keymap`) and the composer's submit."""

    # ------------------------------------------------------------------ engine calls
    def engine_call(self, failure: str, call: Callable[[Engine], T], *,
                    errors: tuple[type[BaseException], ...] | None = None) -> T | None:
        """Run ``call(engine)`` and return its result; None when the engine is not running
        yet (says so) or the call raised one of ``errors`` (default
        :func:`expected_errors`): a toast ``"<failure>: <reason>"``, logged. Sends and
        edits pass ``(Exception,)``: whatever the reason, the text stays in the composer
        and the user is told why."""
        engine = self.engine
        if engine is None:
            self.app.notify("Still starting up - try again in a moment.")
            return None
        caught = errors if errors is not None else expected_errors()
        try:
            return call(engine)
        except caught as exc:
            log.info("%s", failure, exc_info=True)
            self.app.notify(f"{failure}: {exc}", severity="error")
            return None

    # ------------------------------------------------------------------ sending
    async def on_composer_submitted(self, event: Composer.Submitted) -> None:
        """Enter in the composer: send, or save an edit."""
        await self._submit(event.text, event.editing_id)

    def action_send(self) -> None:
        """Send the composer's text (same as Enter in the composer)."""
        if self.composer is not None:
            self.composer.action_send()

    def action_newline(self) -> None:
        """Insert a newline in the composer."""
        if self.composer is not None:
            self.composer.focus()
            self.composer.action_newline()

    async def _submit(self, text: str, editing_id: str | None) -> None:
        composer = self.composer
        body = text.strip("\n")
        if not body.strip() or composer is None:
            return
        if self.current_id is None:
            self.app.notify("No conversation is open: ctrl+n starts one. Your text stays "
                            "here and goes to the conversation you open.")
            return
        size = len(body.encode("utf-8"))
        if size > BODY_LIMIT:
            self.app.notify(f"Message too long: {size:,} bytes, the limit is {BODY_LIMIT:,}. "
                            "Nothing was sent; your text is still here.", severity="error")
            return
        cid = self.current_id
        if editing_id is not None:
            if self.engine_call("Not sent", lambda e: e.edit(editing_id, body) or True,
                                errors=(Exception,)):
                composer.stop_editing()
            return
        message_id = self.engine_call("Not sent", lambda e: e.send(cid, body),
                                      errors=(Exception,))
        if message_id is None:
            return  # the text stays in the composer
        self.place.set_draft("", None)
        self.flush_draft()
        conv = self.current_conversation
        offline_question = (conv is not None and conv.assistant
                            and self.connectivity != "online")
        self.run_worker(self._show_sent(cid, message_id, body, offline_question),
                        group="refresh", exit_on_error=False)

    async def _show_sent(self, cid: str, message_id: str, body: str,
                         offline_question: bool) -> None:
        """Show the local echo at once (a worker, like every refresh of the window), then,
        offline in an assistant conversation, a cached answer below it."""
        await self.messages.refresh_messages((message_id,))
        self.messages.anchor()
        if offline_question and cid == self.current_id:
            await self.show_cached_answer(cid, message_id, body)

    async def show_cached_answer(self, conversation_id: str, question_id: str,
                                 question: str) -> bool:
        """Offline in an assistant conversation: show the answer that followed the closest
        earlier question of ours (:func:`chat_tui.store.answers.find_cached_answer`) below
        the new question, labelled "cached answer from <date>". True when shown."""
        from chat_tui.store.answers import find_cached_answer  # difflib: not on the first frame

        answer = find_cached_answer(self.store, self.window.everything(), question,
                                    exclude=question_id)
        if answer is None:
            return False
        await self.messages.add_cached_answer(question_id, answer)
        return True

    # ------------------------------------------------------------------ editing
    def on_composer_edit_last_requested(self,
                                        event: Composer.EditLastRequested) -> None:
        """Up in an empty composer."""
        self.action_edit_last()

    def action_edit_last(self) -> None:
        """Edit the selected own message, or the last own message of the conversation."""
        messages = self.messages
        target = messages.selected_view() if messages.has_focus else None
        if target is None or not target.mine or target.deleted:
            target = next((v for v in reversed(messages.views) if v.mine and not v.deleted), None)
        if target is None:
            self.app.notify("No message of yours to edit here.")
            return
        if self.composer is not None:
            self.composer.start_editing(target.id, target.body)

    def action_cancel_compose(self) -> None:
        """Stop editing and focus the message list."""
        if self.composer is not None:
            self.composer.action_cancel_compose()

    # ------------------------------------------------------------------ outbox problems
    def _target(self, states: Iterable[str]) -> MessageView | None:
        """The selected own message in one of ``states``, else the first such one here."""
        states = set(states)
        selected = self.messages.selected_view()
        if selected is not None and selected.mine and selected.state in states:
            return selected
        for view in self.messages.views:
            if view.mine and view.state in states:
                return view
        return None

    def _problem_id(self, states: Iterable[str]) -> str | None:
        target = self._target(states)
        if target is not None:
            return target.id
        states = set(states)
        for problem in self.store.problems():
            if problem.state in states and problem.message_id and \
                    problem.conversation_id == self.current_id:
                return problem.message_id
        return None

    def action_retry(self) -> None:
        """Retry a failed message (the selected one, else the first failed one here)."""
        mid = self._problem_id(("failed",))
        if mid is None:
            self.app.notify("No failed message here to retry.")
            return
        self.engine_call("Not retried", lambda e: e.retry(mid))

    def action_send_anyway(self) -> None:
        """Send an expired message anyway."""
        mid = self._problem_id(("expired",))
        if mid is None:
            self.app.notify("No expired message here.")
            return
        self.engine_call("Not sent", lambda e: e.send_anyway(mid))

    def action_discard(self) -> None:
        """Discard an unsent message and put its text back into the composer."""
        mid = self._problem_id(("failed", "expired", "queued", "blocked"))
        if mid is None:
            self.app.notify("No unsent message here to discard.")
            return
        text: Any = self.engine_call("Not discarded", lambda e: e.discard(mid))
        if text is None or self.composer is None:
            return
        composer = self.composer
        if text and not composer.text.strip():
            composer.set_draft(text, None)
        composer.focus()

    def action_delete_message(self) -> None:
        """Delete the selected own message (leaves a tombstone), once confirmed in a
        :class:`~chat_tui.ui.screens.confirm.ConfirmScreen` (a stray ``d`` deletes
        nothing)."""
        from chat_tui.ui.screens.confirm import ConfirmScreen

        view = self.messages.selected_view()
        if view is None or not view.mine or view.deleted:
            self.app.notify("Select one of your messages to delete "
                            "(up/down in the message list).")
            return
        mid = view.id

        def answered(yes: bool | None) -> None:
            if yes:
                self.engine_call("Not deleted", lambda e: e.delete(mid))
            self.messages.focus()

        first_line = (view.body.splitlines() or [""])[0][:120]
        self.app.push_screen(ConfirmScreen("Delete this message for everyone?", first_line,
                                           action="Delete"), answered)

    def on_message_list_typed(self, event: Any) -> None:
        """A printable key that is none of the message list's keys: it was meant for the
        composer, which gets the focus and the key (nothing typed is lost)."""
        event.stop()
        composer = self.composer
        if composer is None:
            return
        composer.focus()
        composer.post_message(events.Key(event.key, event.character))
