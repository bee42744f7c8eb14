"""The open conversation's menu, a dialog: rename it, pick the assistant's model (with the
model picker, :class:`~chat_tui.ui.screens.model_picker.ModelField`, fed by the model list
kept in the cache, so offline too) and system prompt, add or remove members (its creator),
or ask to leave it (sync rules 9 and 11).
The chat screen opens it and applies the result
(:class:`~chat_tui.ui.screens.chat_conversation.ConversationMenuActions`); it is imported
when first opened, never for the first frame."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, TextArea

from chat_tui.ui.safe_text import inert_line
from chat_tui.ui.screens.model_picker import ModelField
from chat_tui.ui.screens.new_conversation import parse_members
from chat_tui.wire.limits import MAX_SYSTEM_PROMPT_CHARS

__all__ = ["ConversationMenuScreen", "MenuResult"]


@dataclass(frozen=True)
class MenuResult:
    """What the dialog returns: the settings that changed (``changes``: ``title``,
    ``model``, ``system_prompt``; None for the server's own), the usernames to add and to
    remove, and ``leave`` (the user asked to leave instead)."""

    changes: dict[str, str | None] = field(default_factory=dict)
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    leave: bool = False


class ConversationMenuScreen(ModalScreen["MenuResult | None"]):
    """The settings of conversation ``view`` (a ``ConversationView``) of the user ``me``:
    title; model and system prompt when the assistant is in it; the members when ``me``
    created it (``creator``). Enter in a one-line field or Save returns what changed (the
    system prompt is multi-line: Enter there is a new line); Esc cancels.

    ``store`` (the account's cache: the saved model list) and ``refresh_models`` (an
    async callable asking the server for a fresh list) feed the model picker. For a
    Matrix account (``matrix``) members are user ids, and a localpart names a user of
    ``me``'s homeserver."""

    DEFAULT_CSS = """
    ConversationMenuScreen { align: center middle; }
    #menu-box { width: 72; max-width: 100%; height: auto; max-height: 100%;
                overflow-y: auto; border: round $accent; padding: 0 1;
                background: $surface; }
    #menu-buttons { height: auto; margin-top: 1; }
    #menu-error { height: auto; }
    #menu-prompt { height: 5; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, view: Any, me: str, creator: bool, *, store: Any = None,
                 refresh_models: Callable[[], Awaitable[Any]] | None = None,
                 matrix: bool = False) -> None:
        super().__init__()
        self._view = view
        self._me = me
        self._creator = creator
        self._store = store
        self._refresh_models = refresh_models
        self._matrix = matrix

    def _member_id(self, name: str) -> str:
        """``name`` as the account names users: on Matrix a localpart becomes a user id of
        my homeserver (``bob`` -> ``@bob:<server>``)."""
        if not self._matrix or ":" in name:
            return name
        return f"@{name.lstrip('@')}:{self._me.partition(':')[2]}"

    def _others(self) -> list[str]:
        return [m for m in self._view.members if m not in (self._me, "assistant")]

    def compose(self):  # noqa: D102 - Textual hook
        view = self._view
        with Vertical(id="menu-box") as box:
            box.border_title = "Conversation"
            yield Label("Title")
            yield Input(view.title, id="menu-title", max_length=200)
            if view.assistant:
                yield Label("Model")
                yield ModelField(self._store, view.model, refresh=self._refresh_models,
                                 id="menu-model")
                yield Label("System prompt (empty: the server's own)")
                yield TextArea(view.system_prompt or "", id="menu-prompt", soft_wrap=True,
                               tab_behavior="focus", show_line_numbers=False)
            if self._creator:
                yield Label("Members (comma separated usernames)")
                yield Input(", ".join(self._others()), id="menu-members")
            yield Static(Text(""), markup=False, id="menu-error")
            with Horizontal(id="menu-buttons"):
                yield Button("Save", variant="primary", id="menu-save")
                yield Button("Leave\u2026", variant="error", id="menu-leave")
                yield Button("Cancel", id="menu-cancel")

    def on_mount(self) -> None:  # noqa: D102 - Textual hook
        for entry in self.query("Input, TextArea"):
            entry.cursor_blink = False
        self.query_one("#menu-title", Input).focus()

    def _value(self, widget_id: str) -> str | None:
        found = self.query(f"#{widget_id}")
        return found.first(Input).value if found else None

    def submit(self) -> None:
        """Check the fields; dismiss with a :class:`MenuResult` or show what is wrong."""
        view = self._view
        changes: dict[str, str | None] = {}
        title = (self._value("menu-title") or "").strip()
        if not title:
            self.query_one("#menu-error", Static).update(
                Text("A conversation needs a title.", style="bold red"))
            return
        if title != view.title:
            changes["title"] = title
        picked = self.query("#menu-model")
        if picked and picked.first(ModelField).value != view.model:
            changes["model"] = picked.first(ModelField).value
        prompts = self.query("#menu-prompt")
        prompt = prompts.first(TextArea).text if prompts else None
        if prompt is not None and len(prompt) > MAX_SYSTEM_PROMPT_CHARS:
            self.query_one("#menu-error", Static).update(Text(
                f"The system prompt has {len(prompt):,} characters; at most "
                f"{MAX_SYSTEM_PROMPT_CHARS:,} fit.", style="bold red"))
            return
        if prompt is not None and (prompt if prompt.strip() else None) != view.system_prompt:
            changes["system_prompt"] = prompt if prompt.strip() else None
        add: tuple[str, ...] = ()
        remove: tuple[str, ...] = ()
        raw = self._value("menu-members")
        if raw is not None:
            try:
                wanted = {self._member_id(n) for n in parse_members(
                    raw, matrix=self._matrix)} - {self._me}
            except ValueError as exc:
                self.query_one("#menu-error", Static).update(
                    Text(inert_line(str(exc), 200), style="bold red"))
                return
            now = set(self._others())
            add, remove = tuple(sorted(wanted - now)), tuple(sorted(now - wanted))
        self.dismiss(MenuResult(changes, add, remove))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in any field saves."""
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Save, Leave or Cancel."""
        if event.button.id == "menu-save":
            self.submit()
        elif event.button.id == "menu-leave":
            self.dismiss(MenuResult(leave=True))
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        """Close without changing anything."""
        self.dismiss(None)
