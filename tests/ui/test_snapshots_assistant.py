"""Snapshot tests (pytest-textual-snapshot) of the assistant states: the settings screen,
the model picker over the model list kept in the cache, and a reply stopped while it
streamed from a real OpenAI-compatible model server.

Deterministic as the other snapshot tests (fixed size and names, a frozen display
clock, animations off, each state waited for); ``HOME`` is the test's user directory so
the config path reads ``~/config/chat-tui/config.toml``. Update with
``pytest tests/ui --snapshot-update`` after checking the new pictures.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from chat_tui.api import ApiClient
from chat_tui.config import load_token
from chat_tui.ui.screens.model_picker import ModelPickerScreen
from chat_tui.ui.screens.settings import SettingsScreen
from chat_tui.ui.widgets.message_list import MessageList
from tests.support.accounts import PASSWORDS, login_account
from tests.support.config import write_config
from tests.support.model_server import ModelServer
from tests.support.ui import SIZE, open_store, wait_for
from tests.ui.test_settings_screen import LISTING
from tests.ui.test_snapshots import snap_app  # noqa: F401

CONFIG = ('default_model = "gpt-4o-mini"\ndefault_provider = "openai"\n\n'
          '[[providers]]\nname = "openai"\nbase_url = "https://api.openai.com/v1"\n'
          'api_key_env = "OPENAI_API_KEY"\ntimeout = 60\n\n'
          '[[providers]]\nname = "ollama"\nbase_url = "http://127.0.0.1:11434/v1"\n'
          'timeout = 120\n')


@pytest.fixture
def home(isolated_user_dirs, monkeypatch):
    from pathlib import Path

    base = Path(isolated_user_dirs["XDG_CONFIG_HOME"]).parent
    monkeypatch.setenv("HOME", str(base))
    return base


def test_settings_screen(home, login, snap_app, snap_compare):  # noqa: F811
    write_config(CONFIG)
    app = snap_app(login("alice"), engine=False)

    async def run_before(pilot):
        await pilot.pause()
        await pilot.press("f2")
        assert await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_model_picker(home, login, snap_app, snap_compare):  # noqa: F811
    write_config(CONFIG)
    account = login("alice")
    store = open_store(account)
    store.save_model_list(json.dumps(LISTING))
    store._set_meta("model_list_at", "2026-12-01T09:30:00Z")  # a fixed date on the picture
    store.close()
    app = snap_app(account, engine=False)

    async def run_before(pilot):
        await pilot.pause()
        await pilot.press("f2")
        assert await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        await pilot.click("#choose-model")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ModelPickerScreen))
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_stopped_reply(server_factory, snap_app, snap_compare, monkeypatch):  # noqa: F811
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with ModelServer(["story-model"], delay=0.05) as model:
        server = server_factory.start_with_model(model.url, "story-model", users=PASSWORDS)
        account = login_account(server, "alice")
        cid = str(uuid.UUID(int=1))

        async def ask() -> None:
            async with ApiClient(account.server_url, load_token(account)) as api:
                await api.put_conversation(cid, "A long story", [], True)
                # SLOW: the model writes two words, then nothing: the stop finds it mid-way
                await api.put_message(cid, str(uuid.uuid4()), "Tell me a long story SLOW")

        asyncio.run(ask())
        app = snap_app(account)

        async def run_before(pilot):
            messages = app.query_one(MessageList)
            assert await wait_for(pilot, lambda: app.engine_ready and app.current_id == cid
                                  and len(messages.views) == 2
                                  and messages.views[1].body == "saw 1:", timeout=30)
            await pilot.press("ctrl+s")
            assert await wait_for(pilot, lambda: messages.views[1].body
                                  == "saw 1:" and messages.views[1].stopped
                                  and not messages.views[1].streaming, timeout=15)
            assert await wait_for(pilot, lambda: model.counts["streams_cut"] == 1)
            assert await wait_for(pilot, lambda: app.sync_phase[0] == "idle"
                                  and not app.refresh_pending and not any(app.outbox.values()))
            app.clear_notifications()
            await pilot.pause(0.3)

        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
