"""The local mode's assistant comes from config.toml: with a provider the welcome
conversation is answered by its model; without one the echo answers and says how to
configure one, offering a local model server (Ollama's address, here a test model server
reached through ``CHAT_TUI_LOCAL_MODEL_URL``) when one answers. Real embedded server, real
model server process, real caches; the first frame never waits for the probe."""

from __future__ import annotations

import time

from chat_tui.config import config_file
from chat_tui.config.providers import load_model_config
from chat_tui.launch import (
    WELCOME_QUESTION,
    embedded_assistant,
    local_username,
)
from chat_tui.ui.widgets.message_list import MessageList
from tests.support.config import write_config
from tests.support.local_app import bare_local_app
from tests.support.model_server import ModelServer
from tests.support.ui import SIZE, wait_for


async def welcome_reply(servers: list) -> str:
    app = bare_local_app(servers, load_model_config())
    async with app.run_test(size=SIZE) as pilot:
        assert app.query_one("#skeleton").display and not servers  # the first frame
        messages = app.query_one(MessageList)
        assert await wait_for(pilot, lambda: len(messages.views) == 2
                              and not messages.views[1].streaming
                              and messages.views[1].body, timeout=30)
        assert messages.views[0].body == WELCOME_QUESTION
        return messages.views[1].body


async def test_welcome_is_answered_by_the_configured_provider_and_model(monkeypatch):
    servers: list = []
    monkeypatch.setenv("TEST_MODEL_KEY", "sk-local")
    with ModelServer(["first", "chosen"], delay=0.01, api_key="sk-local") as model:
        write_config(f'default_model = "chosen"\n\n[[providers]]\nname = "test"\n'
                     f'base_url = "{model.url}"\napi_key_env = "TEST_MODEL_KEY"\n')
        try:
            body = await welcome_reply(servers)
        finally:
            for server in servers:
                server.stop()
        assert body == f"saw 1: {local_username()}: {WELCOME_QUESTION}"
        assert [r["model"] for r in model.requests] == ["chosen"]


async def test_no_provider_echo_says_how_and_offers_a_local_model_server(monkeypatch):
    servers: list = []
    with ModelServer(["llama3.2"]) as local:
        monkeypatch.setenv("CHAT_TUI_LOCAL_MODEL_URL", local.url)
        try:
            body = await welcome_reply(servers)
        finally:
            for server in servers:
                server.stop()
        assert local.requests == []  # offered, not used
    assert "built-in demo assistant" in body
    assert f"A local model server answers at {local.url} (models: llama3.2)" in body
    assert "chat-tui models --use-local" in body
    assert str(config_file()) in body and "[[providers]]" in body


def test_explicit_echo_and_a_silent_probe(monkeypatch, unused_port):
    write_config('assistant = "echo"\n[[providers]]\nname = "x"\nbase_url = "http://x/v1"\n')
    assert embedded_assistant(load_model_config()).echo_note is None
    write_config("")
    monkeypatch.setenv("CHAT_TUI_LOCAL_MODEL_URL", f"http://127.0.0.1:{unused_port}/v1")
    started = time.monotonic()
    note = embedded_assistant(load_model_config()).echo_note
    assert time.monotonic() - started < 5
    assert "local model server" not in note and "[[providers]]" in note
