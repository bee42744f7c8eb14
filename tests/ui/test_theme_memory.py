"""The chosen theme is remembered across restarts: chosen in Textual's theme picker (the
palette's theme search) or in the settings screen, it is written to config.toml
(``[ui] theme``) and the next start draws its first frame with it."""

from __future__ import annotations

from textual.widgets import Select

from chat_tui.config.config_edit import load_theme
from chat_tui.store import Cache
from chat_tui.ui.app import ChatApp
from chat_tui.ui.screens.settings import SettingsScreen
from tests.support.config import write_config
from tests.support.ui import SIZE, wait_for


async def test_theme_chosen_in_the_picker_or_the_settings_is_kept(tmp_path):
    store = Cache(tmp_path / "cache.db", "alice")
    store.open()
    app = ChatApp(store, None)
    async with app.run_test(size=SIZE) as pilot:
        default = app.theme
        app.action_change_theme()  # Textual's theme picker
        await pilot.pause(0.3)
        await pilot.press(*"nord")
        await pilot.pause(0.5)
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: app.theme == "nord")
        assert await wait_for(pilot, lambda: load_theme() == "nord")
    assert default != "nord"

    again = ChatApp(store, None)
    assert again.theme == "nord"  # before the first frame
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert again.theme == "nord" and again.has_class("-theme-nord")
        await pilot.press("f2")
        assert await wait_for(pilot, lambda: isinstance(again.screen, SettingsScreen))
        screen = again.screen
        screen.query_one("#theme", Select).value = "gruvbox"
        assert await wait_for(pilot, lambda: again.theme == "gruvbox")
        await pilot.press("escape")  # cancel: the theme shown before comes back
        assert await wait_for(pilot, lambda: again.theme == "nord")
        await pilot.press("f2")
        assert await wait_for(pilot, lambda: isinstance(again.screen, SettingsScreen))
        again.screen.query_one("#theme", Select).value = "gruvbox"
        again.screen.query_one("#p-name").focus()
        await pilot.pause()
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: not isinstance(again.screen, SettingsScreen))
        # quitting at once still keeps it
    assert load_theme() == "gruvbox"
    assert ChatApp(store, None).theme == "gruvbox"
    store.close()


def test_an_unknown_or_unreadable_theme_is_ignored(tmp_path):
    store = Cache(tmp_path / "cache.db", "alice")
    store.open()
    default = ChatApp(store, None).theme
    write_config('[ui]\ntheme = "no-such-theme"\n')
    assert ChatApp(store, None).theme == default
    write_config("[ui\n")
    assert ChatApp(store, None).theme == default
    store.close()
