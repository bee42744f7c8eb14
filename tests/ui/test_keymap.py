"""The key table (``chat_tui.ui.keymap``) is the single source of the footer, help screen
and command palette: every bound action must exist, and every action is in the palette."""

from __future__ import annotations

from chat_tui.ui.app import ChatApp
from chat_tui.ui.keymap import ACTIONS, palette_actions
from chat_tui.ui.screens.chat import ChatScreen
from chat_tui.ui.screens.help import help_sections
from chat_tui.ui.widgets.composer import Composer
from chat_tui.ui.widgets.message_list import MessageList

OWNERS = {"app": ChatApp, "chat": ChatScreen}
NAMESPACES = {"app.": ChatApp, "screen.": ChatScreen}


def test_every_bound_action_exists():
    missing = [(entry.id, entry.action) for entry in ACTIONS if entry.action
               and not hasattr(Composer if entry.scope == "composer" else OWNERS[entry.owner],
                               f"action_{entry.action}")]
    assert missing == []
    for widget in (Composer, MessageList, ChatScreen):
        for binding in widget.BINDINGS:
            prefix = next((p for p in NAMESPACES if binding.action.startswith(p)), "")
            name = binding.action.removeprefix(prefix).split("(")[0]
            owner = NAMESPACES.get(prefix, widget)
            assert hasattr(owner, f"action_{name}"), binding.action


def test_every_action_in_the_palette_and_help():
    actions = {entry.action for entry in ACTIONS if entry.action}
    in_palette = {entry.action for entry in palette_actions()}
    # not in the palette: the palette itself, and keys only meaningful while typing
    assert actions - in_palette == {"command_palette", "newline", "cancel_compose"}
    rows = [text for _, section in help_sections() for _, text in section]
    for entry in ACTIONS:
        assert entry.help in rows, entry.id


async def test_palette_lists_the_actions(tmp_path):
    from chat_tui.store import Cache

    store = Cache(tmp_path / "cache.db", "alice")
    store.open()
    app = ChatApp(store, None)
    async with app.run_test(size=(120, 36)):
        titles = [command.title for command in app.get_system_commands(app.screen)]
    for entry in palette_actions():
        assert entry.description in titles
