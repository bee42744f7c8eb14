"""Auth as a state, not a toast: while a login is needed a lasting banner says so and what
to run; a new login for the same account (a new token saved where ``chat-tui login`` saves
it) is noticed and the app resumes sending by itself. Real app, engine, server; the token
is revoked on the server as ``chat-tui logout`` on another device would."""

from __future__ import annotations

from chat_tui.api import ApiClient
from chat_tui.config import load_token
from chat_tui.ui.widgets.login import LoginBanner
from chat_tui.ui.widgets.message_list import MessageList
from tests.support.truth import assert_truthful
from tests.support.ui import SIZE, online, shared_conversation, shown, wait_for


def banner_text(app) -> str:
    banners = app.query(LoginBanner)
    return banners.first().plain_text() if banners and banners.first().display else ""


async def test_revoked_token_shows_a_lasting_banner_and_a_new_login_resumes(
        login, make_app, server_api):
    bob, cid, _ = await shared_conversation(server_api, bodies=("hi",))
    account = login("alice")
    app = make_app(account)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
        await assert_truthful(pilot, app)
        async with ApiClient(account.server_url, load_token(account)) as device:
            await device.logout()  # this device's token is revoked
        await pilot.press(*"sent after the revoke", "enter")
        assert await wait_for(pilot, lambda: "chat-tui login" in banner_text(app), timeout=15)
        assert account.server_url in banner_text(app)
        await assert_truthful(pilot, app)
        await pilot.pause(6)  # lasting: not a toast that times out
        assert "Login needed" in banner_text(app)
        messages = app.query_one(MessageList)
        assert messages.views[-1].state in ("queued", "sending")
        login("alice")  # a new login in another terminal: a new token in the same place
        assert await wait_for(pilot, lambda: not banner_text(app), timeout=15)
        assert await wait_for(pilot, lambda: messages.views[-1].state == "sent", timeout=15)
        page = await bob.messages(cid)
        assert page.messages[-1].body == "sent after the revoke"
        await assert_truthful(pilot, app)
