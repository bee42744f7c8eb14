"""Nothing typed is lost: opening the conversation that is already open (Enter on its row
in the list, a search hit in it) saves the composer's draft before it reads the draft
back, so what was typed within the save's debounce stays. Real app, engine and server."""

from __future__ import annotations

from chat_tui.ui.widgets.composer import Composer
from tests.support.truth import assert_truthful
from tests.support.ui import SIZE, online, shared_conversation, shown, wait_for


async def test_reopening_the_open_conversation_keeps_what_was_just_typed(
        login, make_app, server_api):
    _, cid, _ = await shared_conversation(server_api, bodies=("hi",))
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
        app.chat.place.DRAFT_DEBOUNCE = 60.0  # the debounced save has not run yet
        composer = app.query_one(Composer)
        await pilot.press(*"typed just now")
        assert composer.text == "typed just now"
        await pilot.press("ctrl+l", "enter")  # choose the open conversation again
        assert await wait_for(pilot, lambda: composer.has_focus
                              and not app.chat.conversation_list.has_focus)
        # the open worker (it reads the draft back) has run
        assert await wait_for(pilot, lambda: not any(
            w.group == "open" and not w.is_finished for w in app.workers))
        assert composer.text == "typed just now"
        draft = app.store.get_draft(cid)
        assert draft is not None and draft.text == "typed just now"
        await assert_truthful(pilot, app)
