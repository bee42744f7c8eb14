"""The key bar (``chat_tui.ui.widgets.footer.KeyFooter``): shows the focused part's keys,
rebuilt once per burst of binding changes and not at all when its keys stay the same."""

from __future__ import annotations

from textual.widgets._footer import FooterKey

from chat_tui.store import Cache
from chat_tui.ui.app import ChatApp
from chat_tui.ui.widgets.footer import KeyFooter


def _shown(app: ChatApp) -> list[str]:
    return [key.description for key in app.query(FooterKey)]


async def test_footer_follows_the_focus_and_rebuilds_only_on_a_change(tmp_path, monkeypatch):
    rebuilds: list[int] = []
    recompose = KeyFooter.recompose

    async def counted(self: KeyFooter) -> None:
        rebuilds.append(1)
        await recompose(self)

    monkeypatch.setattr(KeyFooter, "recompose", counted)
    store = Cache(tmp_path / "cache.db", "alice")
    store.open()
    app = ChatApp(store, None)
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.pause()
            await pilot.pause()
            # The start (screen resume, focus on the composer, app focus) is one rebuild
            # (Textual's Footer queued one per signal).
            assert "Send" in _shown(app) and "Quit" in _shown(app)
            assert len(rebuilds) == 1

            await pilot.press("ctrl+t")  # focus the message list: its keys replace Send
            await pilot.pause()
            await pilot.pause()
            assert "Write" in _shown(app) and "Send" not in _shown(app)
            assert len(rebuilds) == 2

            for _ in range(3):  # a burst that changes nothing shown: no rebuild
                app.screen.refresh_bindings()
            await pilot.pause()
            await pilot.pause()
            assert len(rebuilds) == 2
            assert "Write" in _shown(app)

            await pilot.press("i")  # back to the composer
            await pilot.pause()
            await pilot.pause()
            assert "Send" in _shown(app) and "Write" not in _shown(app)
            assert len(rebuilds) == 3
    finally:
        store.close()
