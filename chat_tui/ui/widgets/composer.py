"""The composer: a multi-line ``TextArea`` where Enter sends.

Keys (from :mod:`chat_tui.ui.keymap`, scope ``composer``): Enter sends, shift+enter or
ctrl+j inserts a newline, up in an empty composer edits the last own message, Esc stops
editing. Text and cursor are saved as a draft per conversation, debounced, by the app
(docs/engine.md, drafts).
"""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

from chat_tui.ui.keymap import bindings_for, is_typing

__all__ = ["Composer"]


class Composer(TextArea):
    """Multi-line input. ``editing_id`` is the id of the message being edited, or None."""

    DEFAULT_CSS = """
    Composer {
        height: auto;
        min-height: 3;
        max-height: 10;
        border: round $panel-lighten-2;
    }
    Composer:focus {
        border: round $accent;
    }
    Composer.-editing {
        border: round $warning;
    }
    """

    BINDINGS = [
        *bindings_for("composer", prefix=""),
        Binding("up", "up_or_edit_last", "Edit last", show=False),
    ]

    class Submitted(Message):
        """Enter pressed. ``text``: the composer text (str); ``editing_id``: str | None."""

        def __init__(self, text: str, editing_id: str | None) -> None:
            super().__init__()
            self.text = text
            self.editing_id = editing_id

    class EditLastRequested(Message):
        """Up pressed in an empty composer."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, show_line_numbers=False, tab_behavior="focus",
                         highlight_cursor_line=False,
                         placeholder="Write a message - Enter sends, shift+enter or ctrl+j for a new line")
        self.editing_id: str | None = None
        self._saved_draft: tuple[str, tuple[int, int]] | None = None

    def on_mount(self) -> None:
        """With animations off (``TEXTUAL_ANIMATIONS=none``, snapshot tests) the cursor does
        not blink either: less motion, and a screenshot does not depend on the blink phase."""
        if self.app.animation_level == "none":
            self.cursor_blink = False

    SEND_KEYS = frozenset({"enter"})
    NEWLINE_KEYS = frozenset({"shift+enter", "ctrl+j"})

    async def _on_key(self, event: events.Key) -> None:
        """Enter sends, shift+enter / ctrl+j insert a newline, everything else is TextArea's.

        Handled here, in the composer's own message queue, so Enter always sees every
        character typed before it (a priority binding would run ahead of them). A key
        combination that carries a printable character (alt+c: ESC c from a terminal) is
        not inserted: it goes on to the bindings (:func:`~chat_tui.ui.keymap.is_typing`).
        """
        if event.key in self.SEND_KEYS:
            event.stop()
            event.prevent_default()
            self.action_send()
            return
        if event.key in self.NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.action_newline()
            return
        if event.is_printable and not is_typing(event.key, event.is_printable):
            event.prevent_default()  # alt+c from a terminal: TextArea must not insert "c";
            return  # it bubbles on (prevent_default is reset) to the app's bindings
        await super()._on_key(event)

    def action_send(self) -> None:
        """Post :class:`Submitted` with the current text (the app decides what to do)."""
        self.post_message(self.Submitted(self.text, self.editing_id))

    def action_newline(self) -> None:
        """Insert a line break at the cursor."""
        self.insert("\n")

    def action_up_or_edit_last(self) -> None:
        """Up: move the cursor, or in an empty composer ask to edit the last own message."""
        if not self.text.strip() and self.editing_id is None:
            self.post_message(self.EditLastRequested())
        else:
            self.action_cursor_up()

    def start_editing(self, message_id: str, body: str) -> None:
        """Load ``body`` to edit message ``message_id``; the draft is kept and restored."""
        if self.editing_id is None:
            self._saved_draft = (self.text, self.cursor_location)
        self.editing_id = message_id
        self.border_title = "editing - Enter saves, Esc cancels"
        self.add_class("-editing")
        self.load_text(body)
        self.move_cursor(self.document.end)
        self.focus()

    def stop_editing(self) -> None:
        """Leave edit mode and put the saved draft back."""
        if self.editing_id is None:
            return
        self.editing_id = None
        self.border_title = None
        self.remove_class("-editing")
        text, cursor = self._saved_draft or ("", (0, 0))
        self._saved_draft = None
        self.set_draft(text, cursor)

    def action_cancel_compose(self) -> None:
        """Esc: stop editing if editing, then focus the message list."""
        self.stop_editing()
        self.app.action_focus("messages")

    def set_draft(self, text: str, cursor: tuple[int, int] | None) -> None:
        """Replace the text and place the cursor (clamped to the text)."""
        self.load_text(text)
        if cursor is not None:
            row = max(0, min(cursor[0], self.document.line_count - 1))
            col = max(0, min(cursor[1], len(self.document.get_line(row))))
            self.move_cursor((row, col))
        else:
            self.move_cursor(self.document.end)

    @property
    def draft(self) -> tuple[str, tuple[int, int]]:
        """``(text, (row, column))`` of the draft (the saved one while editing)."""
        if self.editing_id is not None and self._saved_draft is not None:
            return self._saved_draft
        return self.text, self.cursor_location
