"""The welcome of the local mode: when the start finds a local OpenAI-compatible server
(Ollama's address; here a test model server reached through CHAT_TUI_LOCAL_MODEL_URL),
one key (F4) adopts it: it becomes a provider in config.toml with its first model, the
embedded server reloads and the next reply comes from it. Without one, F4 says where
Ollama was looked for and the echo's reply says how to configure a model (the settings
screen, or the config.toml lines)."""

from __future__ import annotations

from chat_tui.config import config_file
from chat_tui.config.providers import Provider, load_model_config
from chat_tui.ui.widgets.message_list import MessageList
from chat_tui.ui.widgets.offer import LocalOfferBar
from tests.support.local_app import local_app, stop_all
from tests.support.model_server import ModelServer
from tests.support.ui import SIZE, wait_for


async def test_the_welcome_offer_is_taken_with_one_key(monkeypatch):
    with ModelServer(["llama3.2", "qwen"], delay=0.01) as local:
        monkeypatch.setenv("CHAT_TUI_LOCAL_MODEL_URL", local.url)
        app, mode, servers = local_app()
        try:
            async with app.run_test(size=SIZE) as pilot:
                assert await wait_for(pilot, lambda: app.query(LocalOfferBar), timeout=30)
                shown = str(app.query_one(LocalOfferBar).render())
                assert local.url in shown and "F4" in shown and "llama3.2" in shown
                messages = app.query_one(MessageList)
                assert await wait_for(pilot, lambda: len(messages.views) == 2
                                      and not messages.views[1].streaming, timeout=30)
                assert "press F4 in chat-tui" in messages.views[1].body
                assert local.requests == []  # offered, not used yet
                await pilot.press("f4")
                assert await wait_for(pilot, lambda: not app.query(LocalOfferBar), timeout=15)
                config = load_model_config()
                assert config.providers == (Provider("local", local.url),)
                assert config.default_model == "llama3.2" and mode.offer is None
                await pilot.press(*"hi there", "enter")
                assert await wait_for(pilot, lambda: len(messages.views) == 4
                                      and not messages.views[3].streaming
                                      and messages.views[3].body.startswith("saw 2: "),
                                      timeout=60), [(v.author, v.streaming, v.body[:80])
                                                    for v in messages.views]
                assert [r["model"] for r in local.requests] == ["llama3.2"]
        finally:
            stop_all(servers)


async def test_without_a_local_server_the_welcome_says_how(monkeypatch, unused_port):
    monkeypatch.setenv("CHAT_TUI_LOCAL_MODEL_URL", f"http://127.0.0.1:{unused_port}/v1")
    app, mode, servers = local_app()
    try:
        async with app.run_test(size=SIZE) as pilot:
            messages = app.query_one(MessageList)
            assert await wait_for(pilot, lambda: len(messages.views) == 2
                                  and not messages.views[1].streaming, timeout=30)
            body = messages.views[1].body
            assert "settings screen (F2" in body and "[[providers]]" in body
            assert str(config_file()) in body
            assert not app.query(LocalOfferBar) and mode.offer is None
            await pilot.press("f4")
            assert await wait_for(pilot, lambda: any(
                "No local model server was found" in n.message for n in app._notifications))
            assert not config_file().exists()
    finally:
        stop_all(servers)
