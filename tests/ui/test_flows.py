"""Pilot tests of the key flows: the real app, the real engine on the
app's loop, the real server process over loopback, real SQLite caches. No mocks."""

from __future__ import annotations

import asyncio
import uuid

from textual.geometry import Region

from chat_tui.ui.screens.search import SearchScreen
from chat_tui.ui.widgets.composer import Composer
from chat_tui.ui.widgets.message_list import MessageList
from chat_tui.ui.widgets.status import OfflineBanner, QueueIndicator
from tests.support.fault_proxy import FaultProxy
from tests.support.truth import assert_truthful
from tests.support.ui import SIZE, online, shared_conversation, shown, wait_for


def rendered_text(widget) -> str:
    """What the widget draws, as plain text (one line per row)."""
    lines = widget.render_lines(Region(0, 0, widget.region.width, widget.region.height))
    return "\n".join("".join(seg.text for seg in strip) for strip in lines)


async def test_send_online(login, make_app, server_api):
    bob, cid, _ = await shared_conversation(server_api, bodies=("hi alice",))
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and app.conversations)
        await wait_for(pilot, lambda: shown(app, cid))
        messages = app.query_one(MessageList)
        await wait_for(pilot, lambda: [v.body for v in messages.views] == ["hi alice"])
        await assert_truthful(pilot, app)
        assert app.query_one(Composer).has_focus
        await pilot.press(*"hello bob", "enter")
        assert app.query_one(Composer).text == ""
        assert await wait_for(pilot, lambda: [(v.body, v.state) for v in messages.views]
                              == [("hi alice", None), ("hello bob", "sent")])
        page = await bob.messages(cid)
        assert [m.body for m in page.messages] == ["hi alice", "hello bob"]
        assert not app.query_one(OfflineBanner).display
        assert not app.query_one(QueueIndicator).display
        await assert_truthful(pilot, app)


async def test_offline_queue_drains_in_order(server, login, make_app, server_api):
    bob, cid, _ = await shared_conversation(server_api, bodies=("are you there?",))
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
        await assert_truthful(pilot, app)
        server.stop()
        assert await wait_for(pilot, lambda: app.connectivity == "offline")
        await assert_truthful(pilot, app)
        await pilot.press(*"first while offline", "enter")
        await pilot.press(*"second while offline", "enter")
        banner, queue = app.query_one(OfflineBanner), app.query_one(QueueIndicator)
        messages = app.query_one(MessageList)
        assert await wait_for(pilot, lambda: [v.state for v in messages.views[-2:]]
                              == ["queued", "queued"])
        await assert_truthful(pilot, app)
        # my two messages; the read marker of bob's message, if still queued, is not counted
        assert queue.counts.get("queued", 0) == 2
        await pilot.pause()
        assert banner.display and queue.display
        assert await wait_for(pilot, lambda: "2 messages will be sent when the connection "
                              "returns" in rendered_text(banner))
        assert "Outbox: 2 queued" in rendered_text(queue)

        server.start()
        assert await wait_for(pilot, lambda: not banner.display and not queue.display,
                              timeout=20)
        assert await wait_for(pilot, lambda: [v.state for v in messages.views[-2:]]
                              == ["sent", "sent"])
        await assert_truthful(pilot, app)
        page = await server_api("bob").messages(cid)
        assert [m.body for m in page.messages] == [
            "are you there?", "first while offline", "second while offline"]


async def test_draft_survives_restart(login, make_app, server_api):
    _, cid, _ = await shared_conversation(server_api, bodies=("draft test",))
    account = login("alice")
    app = make_app(account)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
        await pilot.press(*"half a thought", "ctrl+j", *"and more")
        await pilot.press("left", "left")
        # the debounced save lands on its own, without quitting
        assert await wait_for(pilot, lambda: app.store.get_draft(cid) is not None
                              and app.store.get_draft(cid).text == "half a thought\nand more")
        assert tuple(app.store.get_draft(cid).cursor) == (1, 6)

    again = make_app(account)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        composer = again.query_one(Composer)
        assert again.current_id == cid
        assert composer.text == "half a thought\nand more"
        assert composer.cursor_location == (1, 6)
        assert await wait_for(pilot, lambda: online(again))
        await assert_truthful(pilot, again)


async def test_retry_failed_message(server, login, make_app, server_api):
    _, cid, _ = await shared_conversation(server_api, bodies=("hello",))
    with FaultProxy(server.url) as proxy:
        app = make_app(login("alice", url=proxy.url))
        proxy.respond(422, method="PUT", path_contains="/messages/", count=1)
        async with app.run_test(size=SIZE) as pilot:
            assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
            await pilot.press(*"will fail once", "enter")
            messages = app.query_one(MessageList)
            assert await wait_for(pilot, lambda: messages.views[-1].state == "failed")
            failed = messages.views[-1]
            assert failed.failure_reason
            await pilot.press(*"behind it", "enter")
            assert await wait_for(pilot, lambda: [v.state for v in messages.views[-2:]]
                                  == ["failed", "blocked"])
            header = rendered_text(messages._items[failed.id])
            assert "failed" in header
            assert "blocked behind a failed action" in rendered_text(
                messages._items[messages.views[-1].id])
            assert app.query_one(QueueIndicator).has_class("-problem")
            await assert_truthful(pilot, app)

            await pilot.press("ctrl+r")
            assert await wait_for(pilot, lambda: [(v.body, v.state) for v in messages.views[-2:]]
                                  == [("will fail once", "sent"), ("behind it", "sent")])
            await assert_truthful(pilot, app)
            page = await server_api("bob").messages(cid)
            assert [m.body for m in page.messages] == ["hello", "will fail once", "behind it"]


async def test_search_opens_hit_in_context(login, make_app, server_api):
    bodies = tuple(f"filler message {i}" for i in range(120))
    bodies = bodies[:10] + ("the ferry to zanzibar leaves at nine",) + bodies[10:]
    _, cid, ids = await shared_conversation(server_api, "Travel", bodies)
    _, other, _ = await shared_conversation(server_api, "Other", ("unrelated",))
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and len(app.conversations) == 2)
        # the initial sync brings the newest page; backfill the rest (as scrolling up does)
        while await app.engine.backfill(cid):
            pass
        assert app.store.search("zanzibar")
        await pilot.press("ctrl+f")
        assert isinstance(app.screen, SearchScreen)
        await pilot.press(*"zanz")
        assert await wait_for(pilot, lambda: app.screen.hits)
        assert [h.message_id for h in app.screen.hits] == [ids[10]]
        await pilot.press("enter")
        messages = app.query_one(MessageList)
        assert await wait_for(pilot, lambda: messages.selected_id == ids[10]
                              and ids[10] in messages._items)
        await pilot.pause()
        assert app.current_id == cid
        # opened in context: neighbours on both sides, not the newest page
        window = [v.id for v in messages.views]
        assert ids[9] in window and ids[11] in window
        assert ids[-1] not in window
        assert len(window) <= MessageList.MAX_WINDOW
        item = messages._items[ids[10]]
        # scrolled into view once laid out
        assert await wait_for(pilot, lambda: messages.scroll_y <= item.virtual_region.y
                              < messages.scroll_y + messages.size.height)
        assert messages.has_focus and messages.selected_id == ids[10]
        await assert_truthful(pilot, app)


async def test_untrusted_body_renders_literally(login, make_app, server_api):
    nasty = ("[bold red]not bold[/] [link=http://x]x[/link] \x1b[31mred\x1b[0m "
             "\x1b]8;;http://evil.example\x07click\x1b]8;;\x07 bell\x07 back\x08 \x9b2J")
    _, cid, ids = await shared_conversation(server_api, "[blink]t[/blink]\x1b[2J", (nasty,))
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
        messages = app.query_one(MessageList)
        assert await wait_for(pilot, lambda: ids[0] in messages._items)
        await pilot.pause()
        text = rendered_text(messages._items[ids[0]])
        assert "[bold red]not bold[/]" in text
        assert "[link=http://x]x[/link]" in text
        assert "\u241b[31mred\u241b[0m" in text  # ESC shown as a control picture
        assert "\u241b]8;;http://evil.example\u2407click" in text
        assert "<U+009B>2J" in text
        for char in "\x1b\x07\x08\x9b":
            assert char not in text
        title = rendered_text(app.query_one("#chat-title"))
        assert "[blink]t[/blink]\u241b[2J" in title
        await assert_truthful(pilot, app)


async def test_offline_question_shows_cached_answer(server, login, make_app, server_api):
    alice = server_api("alice")
    cid = str(uuid.uuid4())
    await alice.put_conversation(cid, "Ask", [], True)
    await alice.put_message(cid, str(uuid.uuid4()), "what is the capital of france")
    deadline = asyncio.get_running_loop().time() + 15
    while True:  # the echo assistant streams its reply; wait for the finished answer
        page = await alice.messages(cid)
        last = page.messages[-1]
        if last.author == "assistant" and not last.streaming and last.body:
            break
        assert asyncio.get_running_loop().time() < deadline, "no assistant reply"
        await asyncio.sleep(0.1)

    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
        messages = app.query_one(MessageList)
        assert await wait_for(pilot, lambda: len(messages.views) == 2
                              and not messages.views[-1].streaming)
        server.stop()
        assert await wait_for(pilot, lambda: app.connectivity == "offline")
        await pilot.press(*"What's the capital of France?", "enter")
        assert await wait_for(pilot, lambda: messages._answers)
        (question_id, widget), = messages._answers.items()
        assert app.store.get_message(question_id).state == "queued"
        assert widget.answer.id == last.id
        assert widget.border_title.startswith("cached answer from ")
        await pilot.pause()
        shown_text = rendered_text(widget)
        assert "You wrote:" in shown_text and "france" in shown_text
        await assert_truthful(pilot, app)


async def test_up_in_empty_composer_edits_last_message(login, make_app, server_api):
    bob, cid, _ = await shared_conversation(server_api, bodies=("what time?",))
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
        await pilot.press(*"at 9", "enter")
        messages = app.query_one(MessageList)
        assert await wait_for(pilot, lambda: messages.views[-1].state == "sent")
        mine = messages.views[-1].id
        await pilot.press("up")
        composer = app.query_one(Composer)
        assert composer.editing_id == mine and composer.text == "at 9"
        await pilot.press("backspace", "1", "0", "enter")
        assert await wait_for(pilot, lambda: messages.views[-1].body == "at 10"
                              and messages.views[-1].state == "sent")
        assert composer.editing_id is None and composer.text == ""
        await assert_truthful(pilot, app)
        page = await bob.messages(cid)
        assert [(m.body, m.edited_at is not None) for m in page.messages][-1] == ("at 10", True)


async def test_scroll_position_restored_and_window_bounded(login, make_app, server_api):
    bodies = tuple(f"line {i}" for i in range(200))
    _, cid, ids = await shared_conversation(server_api, "Long", bodies)
    account = login("alice")
    app = make_app(account)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
        while await app.engine.backfill(cid):
            pass
        messages = app.query_one(MessageList)
        for _ in range(60):  # page up through the whole history
            await pilot.press("pageup")
            await pilot.pause(0.02)
            assert len(messages._items) <= MessageList.MAX_WINDOW
            if messages.views[0].id == ids[0]:
                break
        assert messages.views[0].id == ids[0]
        assert ids[-1] not in messages._items  # the newest end was trimmed
        await assert_truthful(pilot, app)
        await pilot.pause(0.1)
        for _ in range(3):
            await pilot.press("pagedown")
        await pilot.pause(0.7)  # the anchor is saved after ANCHOR_DEBOUNCE
        anchor = messages.first_visible_id()
        assert anchor is not None and anchor != ids[-1]
    assert app.store.get_ui_state().scroll_anchors.get(cid) == anchor

    again = make_app(account, engine=False)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.pause()
        messages = again.query_one(MessageList)
        assert anchor in messages._items
        assert messages.first_visible_id() == anchor


async def test_delete_and_discard(server, login, make_app, server_api):
    bob, cid, _ = await shared_conversation(server_api, bodies=("ok?",))
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
        await pilot.press(*"typo here", "enter")
        messages = app.query_one(MessageList)
        assert await wait_for(pilot, lambda: messages.views[-1].state == "sent")
        sent_id = messages.views[-1].id
        await pilot.press("ctrl+t")  # message list, the newest message selected
        assert messages.selected_id == sent_id
        await pilot.press("d", "y")  # delete asks first
        assert await wait_for(pilot, lambda: messages.views[-1].deleted
                              and messages.views[-1].state == "sent")
        await pilot.pause()
        assert "message deleted" in rendered_text(messages._items[sent_id])
        await assert_truthful(pilot, app)
        page = await bob.messages(cid)
        assert page.messages[-1].deleted

        # offline: a queued message discarded goes back into the composer, never sent
        server.stop()
        assert await wait_for(pilot, lambda: app.connectivity == "offline")
        await pilot.press("i", *"second thoughts", "enter")
        assert await wait_for(pilot, lambda: messages.views[-1].state == "queued")
        await assert_truthful(pilot, app)
        await pilot.press("ctrl+t", "x")
        composer = app.query_one(Composer)
        assert await wait_for(pilot, lambda: composer.text == "second thoughts")
        assert await wait_for(pilot, lambda: messages.views[-1].id == sent_id)
        await assert_truthful(pilot, app)
        server.start()
        assert await wait_for(pilot, lambda: app.connectivity == "online", timeout=20)
        await assert_truthful(pilot, app)
        page = await server_api("bob").messages(cid)
        assert [m.body for m in page.messages if not m.deleted] == ["ok?"]


async def test_expired_message_sent_anyway(server, login, make_app, server_api, ui_settings):
    _, cid, _ = await shared_conversation(server_api, bodies=("still there?",))
    app = make_app(login("alice"), settings=ui_settings.replace(max_queue_age=1.0))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
        server.stop()
        assert await wait_for(pilot, lambda: app.connectivity == "offline")
        await pilot.press(*"late reply", "enter")
        messages = app.query_one(MessageList)
        assert await wait_for(pilot, lambda: messages.views[-1].state == "queued")
        await pilot.pause(1.2)  # older than max_queue_age when the connection returns
        server.start()
        assert await wait_for(pilot, lambda: messages.views[-1].state == "expired", timeout=10)
        await pilot.pause()
        assert "a send anyway" in rendered_text(messages._items[messages.views[-1].id])
        await assert_truthful(pilot, app)
        await pilot.press("ctrl+t", "a")
        assert await wait_for(pilot, lambda: messages.views[-1].state == "sent")
        await assert_truthful(pilot, app)
        page = await server_api("bob").messages(cid)
        assert [m.body for m in page.messages] == ["still there?", "late reply"]


async def test_work_offline_stays_on_across_a_restart(server, login, make_app, server_api):
    """Sync rule C3: "work offline" holds until the user turns it off, a restart included
    (on a metered or roaming line a restart must not go online by itself). The next start
    shows it from the first frame, makes no request, keeps what is written in the outbox,
    and ctrl+o sends it."""
    _, cid, _ = await shared_conversation(server_api, bodies=("before the trip",))
    with FaultProxy(server.url) as proxy:
        account = login("alice", url=proxy.url)
        app = make_app(account)
        async with app.run_test(size=SIZE) as pilot:
            assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
            await pilot.press("ctrl+o")
            assert await wait_for(pilot, lambda: app.work_offline)
            await assert_truthful(pilot, app)

        # The proxy logs a request when its answer is relayed: the first session's last
        # long-poll (timeout 2 s, cut by the quit) is logged up to 2 s later.
        await asyncio.sleep(2.5)
        seen_before = len(proxy.requests())
        again = make_app(account)
        async with again.run_test(size=SIZE) as pilot:
            await pilot.pause()
            banner = again.query_one(OfflineBanner)
            assert banner.display and "Working offline" in rendered_text(banner)
            assert await wait_for(pilot, lambda: again.engine_ready)
            assert again.engine.work_offline and again.connectivity == "offline"
            await assert_truthful(pilot, again)
            await pilot.press(*"written offline", "enter")
            messages = again.query_one(MessageList)
            assert await wait_for(pilot, lambda: messages.views[-1].state == "queued")
            await assert_truthful(pilot, again)
            await asyncio.sleep(1.0)  # the engine runs; nothing may reach the network
            assert proxy.requests()[seen_before:] == []
            assert messages.views[-1].state == "queued"

            await pilot.press("ctrl+o")
            assert await wait_for(pilot, lambda: messages.views[-1].state == "sent",
                                  timeout=15)
            await assert_truthful(pilot, again)
            page = await server_api("bob").messages(cid)
            assert [m.body for m in page.messages] == ["before the trip", "written offline"]
        assert not again.store.get_ui_state().work_offline


async def test_replies_arriving_and_switching_by_key(login, make_app, server_api):
    """Every indicator stays true as replies arrive, in the open conversation and in the
    other one, and as the keys switch between them."""
    bob, plans, _ = await shared_conversation(server_api, "Plans", ("first",))
    _, other, _ = await shared_conversation(server_api, "Other", ("unrelated",))
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and len(app.conversations) == 2)
        assert await wait_for(pilot, lambda: app.current_id and shown(app, app.current_id))
        await assert_truthful(pilot, app)
        opened = app.current_id
        elsewhere = plans if opened == other else other
        messages = app.query_one(MessageList)

        await bob.put_message(opened, str(uuid.uuid4()), "a reply where you look")
        assert await wait_for(pilot, lambda: messages.views[-1].body
                              == "a reply where you look")
        await assert_truthful(pilot, app)

        await bob.put_message(elsewhere, str(uuid.uuid4()), "a reply elsewhere")
        assert await wait_for(pilot, lambda: app.chat.window.get(elsewhere) is not None
                              and app.chat.window.get(elsewhere).unread_count == 1)
        await assert_truthful(pilot, app)

        await pilot.press("alt+down")
        assert await wait_for(pilot, lambda: shown(app, elsewhere))
        assert await wait_for(pilot, lambda: messages.views[-1].body == "a reply elsewhere")
        await assert_truthful(pilot, app)
        await pilot.press("alt+up")
        assert await wait_for(pilot, lambda: shown(app, opened))
        await assert_truthful(pilot, app)
