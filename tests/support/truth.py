"""Every indicator true: :func:`untruths` lists each thing the chat screen draws that
disagrees with the cache (``chat_tui.store.Cache``) and the engine's state, and
:func:`assert_truthful` waits (through the pilot) until there is none, failing with the
list. Pilot tests call it after each step of a flow.

Compared: connectivity and "work offline" (title bar marker, banner) with the engine; the
outbox indicator with ``Cache.outbox_counts``; the offline banner's words (how many
messages, new conversations, edits, deletions and other changes will be sent) with the
cache's outbox counted by kind; the login banner with ``Engine.auth_paused``; the conversation list
(rows, titles, unread and queued badges, the open row, every drawn row) with
``Cache.list_conversations``, and each row's failure mark with ``Cache.problems``; the
open conversation's title, and no unread count on it while its newest message is shown;
every message shown (body, state, deleted) with ``Cache.get_message``, and none of them a
replaced assistant reply (sync rule 10); the problem panel
with ``Cache.problems`` of the open conversation; the skeleton with an empty list.
"""

from __future__ import annotations

import re

from tests.support.ui import wait_for


def _waiting_by_kind(store) -> tuple[dict[str, int], int]:
    """The cache's outbox, read here on its own: my actions (no read markers) of every
    listed conversation that will be sent, by kind, and how many wait for the user (a
    failed or expired action, and every queued one after it in its conversation)."""
    rows = store.db.execute_sql(
        "SELECT o.conversation_id, o.id, o.kind, o.state FROM outbox o JOIN conversation c "
        "ON c.id = o.conversation_id WHERE NOT c.removed AND o.kind != 'read' ORDER BY o.id")
    kinds: dict[str, int] = {}
    stopped: set[str] = set()
    stuck = 0
    for cid, _oid, kind, state in rows.fetchall():
        if state in ("failed", "expired"):
            stopped.add(cid)
        if cid in stopped:
            stuck += 1
        else:
            kinds[kind] = kinds.get(kind, 0) + 1
    return kinds, stuck


def _rendered(widget) -> str:
    """What a Static shows (its last update) as plain text."""
    content = widget.render()
    return getattr(content, "plain", str(content))


def untruths(app) -> list[str]:
    """Each disagreement between what ``app`` (a running ``ChatApp``) shows and the
    cache and engine, as a readable sentence; [] when everything shown is true."""
    from chat_tui.ui.safe_text import inert_line
    from chat_tui.ui.widgets.login import LoginBanner
    from chat_tui.ui.widgets.status import queue_text

    chat, store, engine = app.chat, app.store, app.engine
    out: list[str] = []

    def check(ok: bool, what: str) -> None:
        if not ok:
            out.append(what)

    if engine is not None and app.engine_ready:
        check(chat.connectivity == engine.connectivity,
              f"connectivity shown {chat.connectivity}, engine {engine.connectivity}")
        check(chat.work_offline == engine.work_offline,
              f"work offline shown {chat.work_offline}, engine {engine.work_offline}")
        if engine.auth_paused or engine.connectivity != "online" or engine.work_offline:
            check(chat.sync_phase[0] == "idle",
                  f"sync progress {chat.sync_phase} shown while the engine cannot sync")
        banners = app.query(LoginBanner)
        login_shown = bool(banners) and banners.first().display
        check(login_shown == engine.auth_paused,
              f"login banner shown {login_shown}, engine auth paused {engine.auth_paused}")

    marker = _rendered(chat.sync_indicator)
    expected = {"online": ("online", "syncing"), "offline": ("offline",),
                "connecting": ("connecting",)}[chat.connectivity]
    check(any(word in marker for word in expected),
          f"title bar marker {marker!r} for {chat.connectivity}")

    counts = {k: v for k, v in store.outbox_counts(reads=False).items() if v}
    queue = chat.queue_indicator
    label = queue_text(counts)
    check(queue.display == bool(label) and (not label or _rendered(queue) == label),
          f"outbox indicator {_rendered(queue) if queue.display else '(hidden)'!r}, "
          f"outbox {label or '(empty)'!r}")

    banner = chat.banner
    offline = chat.connectivity == "offline" or chat.work_offline
    check(banner.display == offline, f"offline banner shown {banner.display}, offline {offline}")
    if banner.display:
        text = _rendered(banner)
        kinds, stuck = _waiting_by_kind(store)
        nouns = {"send": "message", "create_conversation": "new conversation",
                 "edit": "edit", "delete": "deletion"}
        for kind, noun in nouns.items():
            n = kinds.get(kind, 0)
            said = re.search(rf"(\d+) {noun}s?\b", text)
            check((int(said.group(1)) if said else 0) == n,
                  f"offline banner {text!r} with {n} {kind} actions waiting")
        others = sum(n for k, n in kinds.items() if k not in nouns)
        said = re.search(r"(\d+) other changes?\b", text)
        check((int(said.group(1)) if said else 0) == others,
              f"offline banner {text!r} with {others} other actions waiting")
        check(("will be sent" in text) == bool(kinds),
              f"offline banner {text!r} with {sum(kinds.values())} actions waiting")
        said = re.search(r"(\d+) actions? waits? for you", text)
        check((int(said.group(1)) if said else 0) == stuck,
              f"offline banner {text!r} with {stuck} actions waiting for the user")

    rows = chat.conversation_list.conversations
    truth = store.list_conversations(limit=len(rows)) if rows else store.list_conversations(1)
    check([(c.id, c.title, c.unread_count, c.queued_count, c.problem_count) for c in rows]
          == [(c.id, c.title, c.unread_count, c.queued_count, c.problem_count) for c in truth],
          "conversation list rows differ from the cache: "
          f"{[(c.title, c.unread_count, c.queued_count, c.problem_count) for c in rows]} vs "
          f"{[(c.title, c.unread_count, c.queued_count, c.problem_count) for c in truth]}")
    out.extend(_row_untruths(chat, store, truth))
    check(chat.conversation_list.current_id == chat.current_id,
          f"list marks {chat.conversation_list.current_id} open, open is {chat.current_id}")
    check(chat.skeleton.display == (not rows), f"skeleton shown {chat.skeleton.display} "
          f"with {len(rows)} conversations")
    if chat.skeleton.display:
        label = _rendered(chat.query_one("#skeleton-status"))
        if engine is not None and engine.auth_paused:
            check("Login needed" in label, f"skeleton says {label!r} while a login is needed")
        elif chat.sync_phase[0] != "initial":
            check("Loading" not in label, f"skeleton says {label!r} with no sync running")

    conv = chat.current_conversation
    title = _rendered(chat._title)
    check((conv is None and title == "")
          or (conv is not None and inert_line(conv.title, 60) in title),
          f"title {title!r} for {conv.title if conv else None!r}")

    messages = chat.messages
    if (engine is not None and app.engine_ready and conv is not None
            and messages.conversation_id == conv.id and messages.at_newest):
        # what is on screen up to the newest message has been read (a read marker)
        check(conv.unread_count == 0, f"open conversation {conv.title!r} shows its newest "
              f"message and {conv.unread_count} unread")
    if chat.current_id is not None and messages.conversation_id == chat.current_id:
        for view in messages.views:
            cached = store.get_message(view.id)
            if cached is None:
                out.append(f"message {view.body[:20]!r} shown but not in the cache")
                continue
            if cached.deleted and cached.author == "assistant":
                out.append(f"replaced assistant reply {view.id} shown (sync rule 10)")
                continue
            item = messages._items.get(view.id)
            shown = item.view if item is not None else view
            check((shown.body, shown.state, shown.deleted)
                  == (cached.body, cached.state, cached.deleted),
                  f"message shown {(shown.body[:20], shown.state, shown.deleted)}, cache "
                  f"{(cached.body[:20], cached.state, cached.deleted)}")

    panel = chat._problem_panel
    here = chat.problems_here()
    shown_problems = (panel.problems if panel is not None and panel.is_attached
                      and panel.display else [])
    check([(p.outbox_id, p.state, p.reason) for p in shown_problems]
          == [(p.outbox_id, p.state, p.reason) for p in here],
          f"problem panel {[(p.kind, p.state) for p in shown_problems]}, cache "
          f"{[(p.kind, p.state) for p in here]}")
    return out


def _row_untruths(chat, store, truth) -> list[str]:
    """The drawn rows of the conversation list against the cache: each row built on
    screen draws what ``render_conversation`` draws for the cache's row (title, counters,
    the open marker, the preview), and carries the failure mark exactly when the cache
    holds actions of that conversation that wait for the user (``Cache.problems``)."""
    from collections import Counter

    from chat_tui.ui.widgets.conversation_list import PROBLEM_MARK, render_conversation

    out = []
    waiting = Counter(p.conversation_id for p in store.problems())
    clist = chat.conversation_list
    for index, conv in enumerate(truth):
        want = waiting.get(conv.id, 0)
        if conv.problem_count != want:
            out.append(f"cache row {conv.title!r} counts {conv.problem_count} actions "
                       f"waiting for the user, the outbox {want}")
        if index >= clist.option_count or not clist._built_width:
            continue  # not built yet (rows are built as the list scrolls)
        prompt = clist.get_option_at_index(index).prompt
        drawn = getattr(prompt, "plain", str(prompt))
        if (f"{PROBLEM_MARK}{want}" in drawn) != bool(want) or (
                not want and PROBLEM_MARK in drawn):
            out.append(f"row {conv.title!r} draws {drawn!r} with {want} actions waiting "
                       "for the user")
        expected = render_conversation(conv, current=conv.id == chat.current_id,
                                       width=clist._built_width).plain
        if drawn != expected:
            out.append(f"row {index} draws {drawn!r}, the cache says {expected!r}")
    return out


async def assert_truthful(pilot, app, timeout: float = 3.0) -> None:
    """Let the app settle (coalesced refreshes: a fraction of a second) until everything
    it shows agrees with the cache and the engine; fail listing what does not after
    ``timeout`` seconds."""
    await wait_for(pilot, lambda: not untruths(app), timeout=timeout)
    wrong = untruths(app)
    assert wrong == [], "\n".join(wrong)
