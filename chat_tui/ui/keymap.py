"""Every key binding of the app as data, in one table (harlequin's keymap idea).

The footer (Textual ``BINDINGS``), the help screen and the command palette are all built
from :data:`ACTIONS`, so a key shown in one place is the key that works in the others.
Each entry names one action (``action_<name>``) with one implementation: the app's own
(:data:`APP_ACTIONS`: screens, the engine's work-offline switch, palette, quit) live on
:class:`chat_tui.ui.app.ChatApp`, every other on the chat screen
(:class:`chat_tui.ui.screens.chat.ChatScreen`). Widget scopes bind ``app.<name>`` or
``screen.<name>`` accordingly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from textual.binding import Binding

__all__ = ["ACTIONS", "APP_ACTIONS", "SCOPE_TITLES", "KeyAction", "bindings_for", "is_typing",
           "palette_actions"]

Scope = Literal["app", "composer", "messages", "conversations", "problems"]
Owner = Literal["app", "chat"]

APP_ACTIONS = frozenset({"help", "search", "new_conversation", "show_invites",
                         "toggle_work_offline", "command_palette", "quit", "stop_reply",
                         "settings", "use_local_model", "export_conversation",
                         "copy_message", "copy_code"})
"""Actions implemented by the app; every other one by the chat screen."""


@dataclass(frozen=True)
class KeyAction:
    """One user action and its keys.

    - ``id``: stable binding id (``"chat.retry"``), usable for remapping.
    - ``scope``: where the keys work: ``app`` (anywhere the focused widget does not use
      the key), ``composer``, ``messages`` (message list focused), ``conversations``.
    - ``keys``: Textual key string, comma-separated alternatives (``"f1,question_mark"``);
      ``""`` for an action offered in the command palette only.
    - ``action``: name of the ``action_*`` method (without ``action_``) of the app or the
      chat screen (see :attr:`owner`), or ``None`` for keys handled by a widget itself
      (listed for the help screen only).
    - ``description``: short footer label; ``help``: one sentence for help and palette.
    - ``show``: shown in the footer; ``palette``: offered in the command palette;
      ``priority``: checked before the focused widget sees the key.
    """

    id: str
    scope: Scope
    keys: str
    action: str | None
    description: str
    help: str
    show: bool = True
    palette: bool = True
    priority: bool = False

    @property
    def owner(self) -> Owner:
        """``"app"`` when the app implements the action (:data:`APP_ACTIONS`), else
        ``"chat"`` (the chat screen)."""
        return "app" if self.action in APP_ACTIONS else "chat"

    @property
    def key_display(self) -> str:
        """The keys as shown on the help screen, e.g. ``"F1 / ?"``."""
        names = {
            "f1": "F1",
            "f2": "F2",
            "f3": "F3",
            "f4": "F4",
            "question_mark": "?",
            "slash": "/",
            "pageup": "PgUp",
            "pagedown": "PgDn",
            "escape": "Esc",
            "enter": "Enter",
            "delete": "Del",
            "up": "\u2191",
            "down": "\u2193",
        }
        parts = []
        for key in filter(None, self.keys.split(",")):
            key = names.get(key, key)
            parts.append(key)
        return " / ".join(parts)


SCOPE_TITLES: dict[str, str] = {
    "app": "Anywhere",
    "conversations": "Conversation list",
    "messages": "Message list",
    "composer": "Composer",
    "problems": "Actions that wait for you (failed, blocked, expired)",
}

ACTIONS: tuple[KeyAction, ...] = (
    # --- anywhere
    KeyAction("app.help", "app", "f1,question_mark", "help", "Help", "Show every key binding"),
    KeyAction("app.search", "app", "ctrl+f,slash", "search", "Search",
              "Search all cached messages (works offline)"),
    KeyAction("app.new", "app", "ctrl+n", "new_conversation", "New",
              "Start a conversation with the assistant or with members"),
    KeyAction("app.prev_conversation", "app", "alt+up", "prev_conversation", "Prev chat",
              "Open the previous conversation in the list", show=False),
    KeyAction("app.next_conversation", "app", "alt+down", "next_conversation", "Next chat",
              "Open the next conversation in the list", show=False),
    KeyAction("app.focus_conversations", "app", "ctrl+l", "focus_conversations", "Chats",
              "Move the focus to the conversation list", show=False),
    KeyAction("app.focus_messages", "app", "ctrl+t", "focus_messages", "Messages",
              "Move the focus to the message list", show=False),
    KeyAction("app.page_up", "app", "pageup", "page_up", "Page up",
              "Scroll the messages one page up (loads older ones)", show=False, priority=True),
    KeyAction("app.page_down", "app", "pagedown", "page_down", "Page down",
              "Scroll the messages one page down", show=False, priority=True),
    KeyAction("app.jump_newest", "app", "ctrl+g", "jump_newest", "Newest",
              "Jump to the newest message", show=False),
    KeyAction("app.retry_any", "app", "ctrl+r", "retry", "Retry",
              "Retry the selected failed message (or the first failed one here)", show=False),
    KeyAction("app.problems", "app", "ctrl+b", "focus_problems", "Problems",
              "Move the focus to this conversation's failed, blocked or expired actions",
              show=False),
    KeyAction("app.conversation_menu", "app", "alt+c", "conversation_menu", "Conversation",
              "Rename the open conversation, pick its model and system prompt, add or "
              "remove members", show=False),
    KeyAction("app.leave_conversation", "app", "alt+d", "leave_conversation", "Leave",
              "Leave (delete) the open conversation: gone from your list; with no one else "
              "in it, gone for everyone (asks first)", show=False),
    KeyAction("app.invites", "app", "f3", "show_invites", "Invites",
              "Matrix account: show the invites, to accept or decline them", show=False),
    KeyAction("app.work_offline", "app", "ctrl+o", "toggle_work_offline", "Offline",
              "Toggle work offline: keep everything in the outbox until turned off"),
    KeyAction("app.stop_reply", "app", "ctrl+s", "stop_reply", "Stop reply",
              "Stop the assistant reply being written (what it wrote stays)", show=False),
    KeyAction("app.settings", "app", "f2", "settings", "Settings",
              "Settings: model providers, the default model, the theme", show=False),
    KeyAction("app.use_local_model", "app", "f4", "use_local_model", "Use local model",
              "Use the local model server found at the start (the welcome's offer)",
              show=False),
    KeyAction("app.export", "app", "", "export_conversation", "Export",
              "Export the open conversation to a Markdown file", show=False),
    KeyAction("app.palette", "app", "ctrl+p", "command_palette", "Commands",
              "Open the command palette", show=False, palette=False),
    KeyAction("app.quit", "app", "ctrl+q", "quit", "Quit", "Quit chat-tui", priority=True),
    # --- conversation list
    KeyAction("conversations.move", "conversations", "up,down", None, "Move",
              "Move between conversations", show=False, palette=False),
    KeyAction("conversations.open", "conversations", "enter", None, "Open",
              "Open the highlighted conversation", palette=False),
    # --- message list
    KeyAction("messages.select", "messages", "up,down,k,j", None, "Select",
              "Select a message", show=False, palette=False),
    KeyAction("messages.compose", "messages", "i", "focus_composer", "Write",
              "Focus the composer"),
    KeyAction("messages.edit", "messages", "e", "edit_last", "Edit",
              "Edit the selected own message (or the last one)"),
    KeyAction("messages.delete", "messages", "d,delete", "delete_message", "Delete",
              "Delete the selected own message (asks first)"),
    KeyAction("messages.retry", "messages", "r", "retry", "Retry",
              "Retry the selected failed message (or the first failed one here)", palette=False),
    KeyAction("messages.send_anyway", "messages", "a", "send_anyway", "Send anyway",
              "Send the selected expired message anyway"),
    KeyAction("messages.discard", "messages", "x", "discard", "Discard",
              "Discard the selected unsent message and put its text back in the composer"),
    KeyAction("messages.regenerate", "messages", "g", "regenerate", "Regenerate",
              "Ask the assistant again: a new reply to the selected (or last) reply's "
              "question; a failed reply is retried (queued when offline)"),
    KeyAction("messages.copy", "messages", "c", "copy_message", "Copy",
              "Copy the selected message (or the newest one) to the clipboard", show=False),
    KeyAction("messages.copy_code", "messages", "y", "copy_code", "Copy code",
              "Copy a code block of the selected message (or the newest with one); "
              "pick which when there are several", show=False),
    KeyAction("messages.newest", "messages", "end,G", "jump_newest", "Newest",
              "Jump to the newest message", show=False, palette=False),
    # --- actions that wait for the user (the problem panel above the composer)
    KeyAction("problems.move", "problems", "up,down,k,j", None, "Select",
              "Select a failed, blocked or expired action", show=False, palette=False),
    KeyAction("problems.retry", "problems", "r", "retry_problem", "Retry failed action",
              "Retry the selected failed action (a blocked one: what blocks it)"),
    KeyAction("problems.edit", "problems", "e", "edit_problem", "Edit failed action",
              "Edit the selected action: a new conversation's title and members, or a "
              "message's text (back in the composer)"),
    KeyAction("problems.discard", "problems", "x", "discard_problem", "Discard failed action",
              "Discard the selected action; any text it holds goes back to the composer"),
    KeyAction("problems.send_anyway", "problems", "a", "send_anyway_problem",
              "Send expired anyway", "Send the selected expired message anyway"),
    KeyAction("problems.leave", "problems", "escape", "focus_composer", "Back",
              "Back to the composer", show=False, palette=False),
    # --- composer
    # Not priority: a priority binding runs when the key reaches the app, before the keys
    # typed just ahead of it are inserted, so a fast typist's (or a paste's) last characters
    # would be cut off the message. The composer handles these keys in its own key handler,
    # in order (``Composer._on_key``); the bindings are here for footer, help and palette.
    KeyAction("composer.send", "composer", "enter", "send", "Send", "Send the message"),
    KeyAction("composer.newline", "composer", "shift+enter,ctrl+j", "newline", "Newline",
              "Insert a line break", palette=False),
    KeyAction("composer.edit_last", "composer", "up", None, "Edit last",
              "In an empty composer: edit your last message", show=False, palette=False),
    KeyAction("composer.cancel", "composer", "escape", "cancel_compose", "Cancel edit",
              "Stop editing (keeps the draft) and focus the messages", show=False,
              palette=False),
)


def bindings_for(scope: Scope, *, owner: Owner | None = None,
                 prefix: str | None = None) -> list[Binding]:
    """Textual bindings (list of :class:`textual.binding.Binding`) for ``scope``.

    ``owner`` keeps only the actions of that owner (``"app"`` or ``"chat"``; the app and the
    chat screen each bind their own keys of the ``app`` scope). Actions of the ``app`` scope
    are bound by name; in a widget scope they are prefixed ``app.`` or ``screen.`` by owner,
    unless ``prefix`` is given (``""``: the widget's own actions). Entries without an
    action (handled natively by a widget) are skipped.
    """
    result = []
    for entry in ACTIONS:
        if entry.scope != scope or entry.action is None or not entry.keys:
            continue
        if owner is not None and entry.owner != owner:
            continue
        if prefix is not None:
            namespace = prefix
        elif scope == "app":
            namespace = ""
        else:
            namespace = "app." if entry.owner == "app" else "screen."
        result.append(
            Binding(
                entry.keys,
                namespace + entry.action,
                entry.description,
                show=entry.show,
                priority=entry.priority,
                id=entry.id,
                tooltip=entry.help,
            )
        )
    return result


def palette_actions() -> list[KeyAction]:
    """Entries offered in the command palette (one per distinct action)."""
    seen: set[str] = set()
    result = []
    for entry in ACTIONS:
        if entry.palette and entry.action and entry.action not in seen:
            seen.add(entry.action)
            result.append(entry)
    return result


def is_typing(key: str, printable: bool) -> bool:
    """Whether a key event (its Textual ``key`` name and ``is_printable``) is text typed by
    the user rather than a key combination. A terminal sends alt+c as ESC c, which Textual
    delivers as the key ``alt+c`` with the printable character ``c``: that is the
    binding's key (the conversation menu), never a ``c`` to insert."""
    return printable and not key.startswith("alt+")
