"""What the app keeps in the cache between runs: per conversation the unsent draft and
the message the view was anchored to, the last open conversation, the "work offline"
switch (sync rule C3), and the server's last model list (shown offline)."""

from __future__ import annotations

import time

from chat_tui.store.cachefile import CacheFile
from chat_tui.store.convert import now
from chat_tui.store.more_views import Draft
from chat_tui.store.views import UIState


class SavedUIState(CacheFile):
    """Drafts and UI state (part of :class:`~chat_tui.store.Cache`). Each write is one
    short transaction on the calling thread (the UI's)."""

    def get_draft(self, conversation_id: str) -> Draft | None:
        """The saved draft of a conversation, or None."""
        row = self.m.Draft.get_or_none(self.m.Draft.conversation_id == conversation_id)
        if row is None:
            return None
        return Draft(row.text, (row.cursor_row, row.cursor_col))

    def save_draft(self, conversation_id: str, text: str,
                   cursor: tuple[int, int] = (0, 0)) -> None:
        """Save (or, when ``text`` is empty, delete) the draft of a conversation;
        ``cursor`` is ``(row, column)``, 0-based."""
        D = self.m.Draft
        with self._write():
            if not text:
                D.delete().where(D.conversation_id == conversation_id).execute()
            else:
                D.insert(conversation_id=conversation_id, text=text, cursor_row=cursor[0],
                         cursor_col=cursor[1], updated_at=now()).on_conflict_replace().execute()

    def get_ui_state(self) -> UIState:
        """Last open conversation, scroll anchors and the "work offline" switch."""
        anchors = {a.conversation_id: a.message_id for a in self.m.ScrollAnchor.select()}
        return UIState(self._get_meta("last_conversation"), anchors,
                       self._get_meta("work_offline") == "1")

    def set_work_offline(self, enabled: bool) -> None:
        """Remember the app's "work offline" switch (sync rule C3: on until turned off, across
        restarts)."""
        with self._write():
            self._set_meta("work_offline", "1" if enabled else "0")

    def set_last_conversation(self, conversation_id: str | None) -> None:
        """Remember the open conversation."""
        with self._write():
            self._set_meta("last_conversation", conversation_id)

    def set_scroll_anchor(self, conversation_id: str, message_id: str | None) -> None:
        """Remember (or with None forget) the message the view is anchored to."""
        A = self.m.ScrollAnchor
        with self._write():
            if message_id is None:
                A.delete().where(A.conversation_id == conversation_id).execute()
            else:
                A.insert(conversation_id=conversation_id,
                         message_id=message_id).on_conflict_replace().execute()

    def saved_model_list(self) -> tuple[str, str] | None:
        """``(json_text, saved_at)`` of the model list last saved by
        :meth:`save_model_list` (``saved_at`` ISO 8601 UTC), or None when there is none."""
        text, saved_at = self._get_meta("model_list"), self._get_meta("model_list_at")
        return None if text is None else (text, saved_at or "")

    def save_model_list(self, json_text: str) -> None:
        """Keep the server's answer to ``GET /v1/models`` (its JSON text, stored as is) in
        the cache's meta table, so it can be shown offline; replaces the previous one."""
        with self._write():
            self._set_meta("model_list", json_text)
            self._set_meta("model_list_at", time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                          time.gmtime(now())))


__all__ = ["SavedUIState"]
