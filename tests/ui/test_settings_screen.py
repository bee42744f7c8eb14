"""The settings screen (F2, and "Settings" in the command palette): a provider added in the
app is written to config.toml with its key in the keyring (here the 0600 file fallback,
as the test keyring refuses), never in the file; the embedded server of the local mode
reloads it at once (no restart); the default model is chosen with the model picker, fed
by the model list kept in the cache, offline too; bad input is said and loses nothing.

Real embedded server, real model server process, real caches."""

from __future__ import annotations

import json

from textual.widgets import Input, Select, Static

from chat_tui.config import config_dir, config_file
from chat_tui.config.providers import Provider, load_model_config
from chat_tui.ui.screens.model_picker import ModelPickerScreen
from chat_tui.ui.screens.settings import SettingsScreen
from chat_tui.ui.widgets.message_list import MessageList
from tests.support.local_app import local_app, stop_all
from tests.support.model_server import ModelServer
from tests.support.ui import SIZE, open_store, wait_for

LISTING = {"models": [{"id": "gpt-4o-mini", "provider": "openai", "default": True},
                      {"id": "gpt-4o", "provider": "openai", "default": False},
                      {"id": "llama3.2", "provider": "ollama", "default": False}],
           "default": "gpt-4o-mini", "problems": []}


def toasts(app) -> list[str]:
    return [n.message for n in app._notifications]


async def type_into(pilot, app, selector: str, text: str) -> None:
    app.screen.query_one(selector, Input).focus()
    await pilot.pause()
    await pilot.press(*text)


async def open_settings(pilot, app, key: str = "f2") -> SettingsScreen:
    await pilot.press(key)
    assert await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
    await pilot.pause()
    return app.screen


async def last_reply(pilot, messages, count: int) -> str:
    assert await wait_for(pilot, lambda: len(messages.views) == count
                          and not messages.views[-1].streaming and messages.views[-1].body,
                          timeout=30)
    return messages.views[-1].body


async def test_a_provider_added_in_the_app_answers_at_once_then_the_picked_model(
        monkeypatch, unused_port):
    monkeypatch.setenv("CHAT_TUI_LOCAL_MODEL_URL", f"http://127.0.0.1:{unused_port}/v1")
    with ModelServer(["first", "second"], delay=0.01, api_key="sk-typed-in-app") as model:
        app, _, servers = local_app()
        try:
            async with app.run_test(size=SIZE) as pilot:
                messages = app.query_one(MessageList)
                echo = await last_reply(pilot, messages, 2)
                assert "built-in demo assistant" in echo and "settings screen (F2" in echo
                screen = await open_settings(pilot, app)
                await type_into(pilot, app, "#p-name", "test")
                await type_into(pilot, app, "#p-url", model.url)
                screen.query_one("#p-key-source", Select).value = "keyring"
                await type_into(pilot, app, "#p-key", "sk-typed-in-app")
                await type_into(pilot, app, "#p-timeout", "30")
                await pilot.press("enter")  # Enter in a field saves
                assert await wait_for(pilot, lambda: not isinstance(app.screen,
                                                                    SettingsScreen))
                assert await wait_for(pilot, lambda: any("now answers with" in t
                                                         for t in toasts(app)), timeout=15)
                config = load_model_config()
                assert config.providers == (Provider("test", model.url,
                                                     api_key_keyring="test", timeout=30.0),)
                assert "sk-typed-in-app" not in config_file().read_text(encoding="utf-8")
                key_file = config_dir() / "keys" / "test"
                assert key_file.read_text(encoding="utf-8") == "sk-typed-in-app"
                assert key_file.stat().st_mode & 0o777 == 0o600
                # the embedded server answers with the new provider, without a restart
                await pilot.press(*"hello model", "enter")
                assert (await last_reply(pilot, messages, 4)).startswith("saw 2: ")
                assert model.requests[-1]["model"] == "first"

                # the model picker: the list the server gave is kept in the cache
                screen = await open_settings(pilot, app)
                assert await wait_for(pilot, lambda: app.store.saved_model_list() is not None
                                      and "second" in app.store.saved_model_list()[0])
                await pilot.click("#choose-model")
                assert await wait_for(pilot, lambda: isinstance(app.screen, ModelPickerScreen)
                                      and [c.model for c in app.screen.choices]
                                      == ["first", "second"])
                await pilot.press("down", "enter")
                assert await wait_for(pilot, lambda: app.screen is screen)
                assert "second (test)" in str(screen.query_one("#default-model",
                                                               Static).render())
                await type_into(pilot, app, "#p-name", "")
                await pilot.press("enter")
                assert await wait_for(pilot, lambda: load_model_config().default_model
                                      == "second")
                assert load_model_config().default_provider == "test"
                assert await wait_for(pilot, lambda: sum("now answers with model second"
                                                         in t for t in toasts(app)), timeout=15)
                await pilot.press(*"and now?", "enter")
                assert (await last_reply(pilot, messages, 6)).startswith("saw 3: ")
                assert model.requests[-1]["model"] == "second"
        finally:
            stop_all(servers)


async def test_the_picker_works_offline_from_the_cached_list(login, make_app):
    account = login("alice")
    store = open_store(account)
    store.save_model_list(json.dumps(LISTING))
    store.close()
    app = make_app(account, engine=False)  # no network at all
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = await open_settings(pilot, app)
        assert "keeps its own models" in str(screen.query_one("#settings-note",
                                                                Static).render())
        await pilot.click("#choose-model")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ModelPickerScreen))
        picker = app.screen
        assert [c.model for c in picker.choices] == ["gpt-4o-mini", "gpt-4o", "llama3.2"]
        assert "saved 20" in str(picker.query_one("#picker-note", Static).render())
        await pilot.press("down", "down", "enter")
        assert await wait_for(pilot, lambda: app.screen is screen)
        await type_into(pilot, app, "#p-name", "ollama")
        await type_into(pilot, app, "#p-url", "http://127.0.0.1:11434/v1")
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
    config = load_model_config()
    assert (config.default_model, config.default_provider) == ("llama3.2", "ollama")
    assert config.providers == (Provider("ollama", "http://127.0.0.1:11434/v1"),)
    assert any("keeps its own models" in t for t in toasts(app))


async def test_the_palette_opens_settings_and_bad_input_is_said_and_kept(login, make_app):
    app = make_app(login("alice"), engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p", *"Settings")
        await pilot.pause(0.5)
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        screen = app.screen
        await type_into(pilot, app, "#p-name", "x")
        await type_into(pilot, app, "#p-url", "ftp://nowhere")
        await pilot.press("enter")
        error = screen.query_one("#settings-error", Static)
        assert await wait_for(pilot, lambda: "not an http(s) URL" in str(error.render()))
        assert app.screen is screen
        assert screen.query_one("#p-url", Input).value == "ftp://nowhere"
        assert not config_file().exists()
        # a key typed for an environment variable is refused: keys go to the keyring only
        screen.query_one("#p-url", Input).value = "https://api.example.org/v1"
        screen.query_one("#p-key-source", Select).value = "env"
        await type_into(pilot, app, "#p-key-name", "EXAMPLE_KEY")
        await type_into(pilot, app, "#p-key", "sk-not-in-a-file")
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: "OS keyring" in str(error.render()))
        assert not config_file().exists() and app.screen is screen
        screen.query_one("#p-key", Input).value = ""
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
    assert load_model_config().providers == (
        Provider("x", "https://api.example.org/v1", api_key_env="EXAMPLE_KEY"),)
