"""The model and the system prompt of an assistant conversation, chosen in the app (sync
rule 9): ctrl+n asks for both (the model with the model picker over the model list kept in
the cache, the prompt multi-line), online and offline, at 60x20, and the first reply comes
from that model with that prompt; the conversation menu (alt+c) changes the model with the
same picker, offline too.

Real embedded server (the local mode) or server process, a real OpenAI-compatible model
server process (SSE) that records which model and system prompt each request carried,
real caches."""

from __future__ import annotations

import json

from textual.widgets import Button, TextArea

from chat_tui.ui.screens.conversation_menu import ConversationMenuScreen
from chat_tui.ui.screens.model_picker import ModelField, ModelPickerScreen
from chat_tui.ui.screens.new_conversation import NewConversationScreen
from chat_tui.ui.widgets.message_list import MessageList
from tests.support.config import write_config
from tests.support.local_app import local_app, stop_all
from tests.support.model_server import ModelServer
from tests.support.ui import SIZE, online, open_store, shown, wait_for

SMALL = (60, 20)

LISTING = {"models": [{"id": "gpt-4o-mini", "provider": "openai", "default": True},
                      {"id": "gpt-4o", "provider": "openai", "default": False},
                      {"id": "llama3.2", "provider": "ollama", "default": False}],
           "default": "gpt-4o-mini", "problems": []}


def on_screen(app, widget) -> bool:
    """Whether ``widget`` is drawn where it can be seen (not scrolled out of its dialog)."""
    region = widget.region
    if not region.area:
        return False
    found, _ = app.screen.get_widget_at(region.x + region.width // 2, region.y)
    return found is widget or widget in found.ancestors_with_self


async def reply_done(pilot, messages, count: int, timeout: float = 30) -> None:
    assert await wait_for(pilot, lambda: len(messages.views) == count
                          and not messages.views[-1].streaming and messages.views[-1].body,
                          timeout=timeout), [(v.author, v.body) for v in messages.views]


async def create_with(pilot, app, title: str, rows_down: int, prompt_lines: list[str]):
    """ctrl+n, then keys only: the title, the model (``rows_down`` rows below the picker's
    first row, the server's default), the system prompt, Create. Returns the dialog's
    model field's value."""
    await pilot.press("ctrl+n")
    assert await wait_for(pilot, lambda: isinstance(app.screen, NewConversationScreen))
    dialog = app.screen
    await pilot.press(*title, "tab", "tab", "tab")  # the assistant is ticked; no members
    choose = dialog.query_one("#new-model Button", Button)
    assert app.focused is choose and await wait_for(pilot, lambda: on_screen(app, choose))
    await pilot.press("enter")
    assert await wait_for(pilot, lambda: isinstance(app.screen, ModelPickerScreen)
                          and len(app.screen.choices) == 3)
    await pilot.press(*["down"] * rows_down, "enter")
    assert await wait_for(pilot, lambda: app.screen is dialog)
    field = dialog.query_one("#new-model", ModelField)
    await pilot.press("tab")
    prompt = dialog.query_one("#new-prompt", TextArea)
    assert app.focused is prompt and await wait_for(pilot, lambda: on_screen(app, prompt))
    for n, line in enumerate(prompt_lines):
        await pilot.press(*line, *(["enter"] if n < len(prompt_lines) - 1 else []))
    await pilot.press("tab")
    create = dialog.query_one("#new-create", Button)
    assert app.focused is create and await wait_for(pilot, lambda: on_screen(app, create))
    value = field.value
    await pilot.press("enter")
    assert await wait_for(pilot, lambda: not isinstance(app.screen, NewConversationScreen))
    return value


async def test_rule_9_ctrl_n_creates_with_the_picked_model_and_prompt_online_and_offline(
        monkeypatch, unused_port):
    monkeypatch.setenv("CHAT_TUI_LOCAL_MODEL_URL", f"http://127.0.0.1:{unused_port}/v1")
    with ModelServer(["first", "second", "third"], delay=0.01) as model:
        write_config(f'default_model = "first"\n\n[[providers]]\nname = "test"\n'
                     f'base_url = "{model.url}"\n')
        app, _, servers = local_app()
        try:
            async with app.run_test(size=SMALL) as pilot:
                messages = app.query_one(MessageList)
                await reply_done(pilot, messages, 2)  # the welcome, by the default model
                assert model.requests[-1]["model"] == "first"
                welcome = app.current_id

                # online: the picker asks the server for the list (kept in the cache)
                chosen = await create_with(pilot, app, "Pirate", 2,
                                           ["Talk like a pirate.", "Keep it short."])
                assert chosen == "second"
                assert await wait_for(pilot, lambda: app.current_id not in (None, welcome))
                cid = app.current_id
                view = app.store.get_conversation(cid)
                assert (view.assistant, view.model, view.system_prompt) == (
                    True, "second", "Talk like a pirate.\nKeep it short.")
                assert app.store.saved_model_list() is not None
                await pilot.press(*"ahoy there", "enter")
                await reply_done(pilot, messages, 2)
                reply = messages.views[-1]
                assert (reply.author, reply.model, reply.error) == ("assistant", "second",
                                                                    False)
                sent = model.requests[-1]
                assert sent["model"] == "second"
                assert sent["messages"][0] == {"role": "system",
                                               "content": "Talk like a pirate.\nKeep it short."}

                # offline (ctrl+o): the picker reads the cached list; the create waits
                await pilot.press("ctrl+o")
                assert await wait_for(pilot, lambda: app.work_offline
                                      and app.connectivity == "offline")
                asked = len(model.requests)
                chosen = await create_with(pilot, app, "Terse", 3, ["Answer in one word."])
                assert chosen == "third"
                assert await wait_for(pilot, lambda: app.current_id not in (None, cid))
                offline_cid = app.current_id
                await pilot.press(*"capital of france", "enter")
                assert await wait_for(pilot, lambda: len(messages.views) == 1)
                assert app.store.get_conversation(offline_cid).model == "third"
                assert len(app.store.outbox_rows()) == 2  # the create, then the question
                await pilot.pause(0.5)
                assert len(model.requests) == asked  # nothing left the machine

                await pilot.press("ctrl+o")
                assert await wait_for(pilot, lambda: not app.work_offline)
                await reply_done(pilot, messages, 2)
                assert messages.views[-1].model == "third"
                sent = model.requests[-1]
                assert sent["model"] == "third"
                assert sent["messages"][0] == {"role": "system",
                                               "content": "Answer in one word."}
                assert await wait_for(pilot, lambda: not app.store.outbox_rows())
        finally:
            stop_all(servers)


async def test_rule_9_the_model_left_alone_is_the_default_and_none_without_the_assistant(
        login, make_app):
    account = login("alice")
    store = open_store(account)
    store.save_model_list(json.dumps(LISTING))
    store.close()
    app = make_app(account)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app))
        await pilot.press("ctrl+n")
        assert await wait_for(pilot, lambda: isinstance(app.screen, NewConversationScreen))
        dialog = app.screen
        field = dialog.query_one("#new-model", ModelField)
        assert field.value is None
        assert str(field.describe()) == "The server's default model (now gpt-4o-mini)"
        await pilot.press(*"Plain", "enter")
        assert await wait_for(pilot, lambda: app.current_id is not None)
        view = app.store.get_conversation(app.current_id)
        assert (view.title, view.assistant, view.model, view.system_prompt) == (
            "Plain", True, None, None)

        # unticking the assistant hides the model and the prompt; nothing of them is sent
        await pilot.press("ctrl+n")
        assert await wait_for(pilot, lambda: isinstance(app.screen, NewConversationScreen))
        dialog = app.screen
        settings = dialog.query_one("#new-settings")
        assert settings.display
        await pilot.press(*"With bob", "tab", "space")
        assert await wait_for(pilot, lambda: not settings.display)
        dialog.query_one("#new-prompt", TextArea).text = "never sent"
        await pilot.press("tab", *"bob", "enter")
        assert await wait_for(pilot, lambda: not isinstance(app.screen,
                                                            NewConversationScreen))
        assert await wait_for(pilot, lambda: app.store.get_conversation(app.current_id)
                              and app.store.get_conversation(app.current_id).title
                              == "With bob")
        view = app.store.get_conversation(app.current_id)
        assert (view.assistant, view.model, view.system_prompt) == (False, None, None)


async def test_a_prompt_over_its_limit_is_said_and_kept(login, make_app):
    app = make_app(login("alice"), engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+n")
        assert await wait_for(pilot, lambda: isinstance(app.screen, NewConversationScreen))
        dialog = app.screen
        long = "x" * 16_001
        dialog.query_one("#new-prompt", TextArea).text = long
        await pilot.press(*"Too long", "enter")
        assert await wait_for(pilot, lambda: "at most 16,000" in str(
            dialog.query_one("#new-error").render()))
        assert app.screen is dialog
        assert dialog.query_one("#new-prompt", TextArea).text == long
        assert app.store.list_conversations() == []


async def test_rule_9_the_menu_picks_the_model_offline_from_the_cached_list(
        server, login, make_app, server_api):
    account = login("alice")
    store = open_store(account)
    store.save_model_list(json.dumps(LISTING))
    store.close()
    app = make_app(account)
    async with app.run_test(size=SMALL) as pilot:
        assert await wait_for(pilot, lambda: online(app))
        cid = app.engine.create_conversation("Ask", assistant=True)
        app.screen.open_conversation(cid)
        assert await wait_for(pilot, lambda: shown(app, cid))
        assert await wait_for(pilot, lambda: not app.store.outbox_rows(), timeout=15)
        server.stop()
        assert await wait_for(pilot, lambda: app.connectivity == "offline")

        await pilot.press("alt+c")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConversationMenuScreen))
        menu = app.screen
        await pilot.press("tab")  # from the title to the model's "Choose…"
        assert app.focused is menu.query_one("#menu-model Button", Button)
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ModelPickerScreen))
        assert [c.model for c in app.screen.choices] == ["gpt-4o-mini", "gpt-4o", "llama3.2"]
        await pilot.press("down", "down", "down", "enter")  # below the default row
        assert await wait_for(pilot, lambda: app.screen is menu)
        assert menu.query_one("#menu-model", ModelField).value == "llama3.2"
        menu.submit()
        assert await wait_for(pilot, lambda: not isinstance(app.screen,
                                                            ConversationMenuScreen))
        assert await wait_for(pilot, lambda: app.store.get_conversation(cid).model
                              == "llama3.2"), [n.message for n in app._notifications]
        assert [r.kind for r in app.store.outbox_rows()] == ["update_conversation"]

        server.start()
        assert await wait_for(pilot, lambda: not app.store.outbox_rows(), timeout=15)
        [conv] = [c for c in await server_api("alice").list_conversations() if c.id == cid]
        assert conv.model == "llama3.2"

        # back to the server's default: the picker's first row
        await pilot.press("alt+c")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConversationMenuScreen))
        menu = app.screen
        menu.query_one("#menu-model", ModelField).open_picker()
        assert await wait_for(pilot, lambda: isinstance(app.screen, ModelPickerScreen))
        await pilot.press("home", "enter")
        assert await wait_for(pilot, lambda: app.screen is menu)
        menu.submit()
        assert await wait_for(pilot, lambda: app.store.get_conversation(cid).model is None)
        assert await wait_for(pilot, lambda: not app.store.outbox_rows(), timeout=15)
        [conv] = [c for c in await server_api("alice").list_conversations() if c.id == cid]
        assert conv.model is None
