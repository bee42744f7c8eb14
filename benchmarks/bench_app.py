"""Benchmarks 1, 2 and 6: the Textual app on the big cache, against their targets.

Setup: an isolated user directory (XDG variables) holds one saved account whose cache file
is a private copy of the big client cache (``benchmarks.data.client_cache``: 1,000,000
messages in 10,000 conversations at ``--size full``; the last open conversation is the
one with 100,000 messages). Its server URL is a closed loopback port, so the app runs from
the cache alone (offline) and no network answer can change what is measured.

1. **Cold start**: ``chat-tui`` (the console script of the virtualenv) in a fresh tmux
   session at 120x40; the clock stops at the first ``capture-pane`` that shows the second
   newest messages of the last open conversation (the longest of the 2nd to 5th newest: text
   found only in the message pane, the newest one is also the conversation list's
   preview). Baseline: the bare Textual app (``benchmarks/bare_textual_app.py``, one
   Static) started the same way by the same interpreter. Runs alternate; medians. Target:
   ratio <= 1.5 (:data:`COLD_START_TARGET`). Also timed in the same rounds, to the same
   text: ``benchmarks/static_screen_app.py``, chat-tui's first-frame layout, Textual
   widgets and stylesheet filled with fixed text (written from the cache before timing):
   what Textual needs to draw this screen at all, reported as ``static_screen_ratio``.
2. **Opening a conversation** inside the app (headless ``App.run_test`` at 120x40, read
   only): ``ChatApp.open_conversation`` of the 100,000-message conversation vs the 100-message
   one, alternating, each timed until its worker finished and the next frame was drawn
   (``call_after_refresh``); then, untimed, the app is let go idle and the newest message
   must be in the list. Target: ratio <= 1.1.
6. **Memory**: the peak resident set (``VmHWM``) of the ``chat-tui`` process two seconds
   (``Size.settle``) after its cold start (engine started, offline), vs the bare app's measured the same way.
   Target: at most 30 MB more.

Encryption on and off: every round of 1 and 6 also starts ``chat-tui`` on a second user
directory whose cache is the same cache encrypted (``Context.encrypted_cache``:
``chat-tui cache encrypt``'s copy, SQLCipher with a raw key kept in the account's key file),
between the plain start and the static screen; benchmark 2 alternates sessions on the plain
and the encrypted cache. Each result's ``encryption`` entry gives both ratios (the same
bare-app baseline) and what encryption costs on the ratio (goal: at most 5%). Memory's
note and metrics name the ``sqlcipher3`` build that ran (``common.sqlcipher_build``): the
PyPI wheel links its own OpenSSL into the extension, a build from the sdist loads the
system's shared ``libcrypto``, and the two differ by ~4 MB of peak RSS.

Each program is quit with ctrl+q after the reading, as a user would, so the cache is closed
cleanly; one unmeasured start of each comes first (warm OS page cache, and the copied cache
gets its clean-close stamp: sync rule D4 skips the full ``quick_check`` then). Before that the
``chat_tui`` package is byte-compiled (``compileall``), as ``pip install`` does for every
installed package: with an editable install and ``PYTHONDONTWRITEBYTECODE=1`` (set in some
shells and CI) every start would otherwise compile the app's sources again (~50 ms,
~1.3 MB), a cost no installed copy has; Textual and the bare app's imports come
precompiled from the virtualenv.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

from benchmarks.common import (
    ROOT,
    encryption_pair,
    isolated_env,
    median,
    ratio,
    rss_kb,
    sqlcipher_build,
)
from benchmarks.tmux_timing import pane_pids, run_until_text

BARE_APP = ROOT / "benchmarks" / "bare_textual_app.py"
BARE_TEXT = "bare-textual-ready"
STATIC_SCREEN_APP = ROOT / "benchmarks" / "static_screen_app.py"
COLD_START_TARGET = 1.5
"""Benchmark 1's target: the cold start at most this many times the bare app's."""


def _missing() -> dict | None:
    try:
        import chat_tui.launch  # noqa: F401
    except ImportError as exc:
        return {"status": "not measured", "reason": f"the app is not available ({exc})"}
    if shutil.which("tmux") is None:
        return {"status": "not measured", "reason": "tmux is not installed"}
    return None


def _newest(cache: Path, cid: str, n: int = 2) -> list[tuple[str, str]]:
    """``(id, body)`` of the ``n`` newest messages of a conversation, newest first."""
    con = sqlite3.connect(f"file:{cache}?mode=ro", uri=True)
    try:
        return con.execute("SELECT id, body FROM message WHERE conv = "
                           "(SELECT pk FROM conversation WHERE id = ?) "
                           "ORDER BY sort_key DESC LIMIT ?", (cid, n)).fetchall()
    finally:
        con.close()


def _screen_text(cache: Path, cid: str, rows: int = 38, messages: int = 17) -> dict:
    """The text of chat-tui's first frame, for ``static_screen_app.py``: the ``rows`` most
    recent conversations (title, newest body as the preview) and the ``messages`` newest
    messages of ``cid`` as ``[header, body]``, oldest first (``MessageList.first_page`` at
    40 rows is 17)."""
    con = sqlite3.connect(f"file:{cache}?mode=ro", uri=True)
    try:
        convs = con.execute(
            "SELECT c.title, (SELECT m.body FROM message m WHERE m.conv = c.pk "
            "ORDER BY m.sort_key DESC LIMIT 1) FROM conversation c "
            "ORDER BY coalesce(c.last_activity_at, 0) DESC, c.title LIMIT ?", (rows,)).fetchall()
        title = con.execute("SELECT title FROM conversation WHERE id = ?", (cid,)).fetchone()[0]
        newest = con.execute(
            "SELECT author, created_at, body FROM message WHERE conv = "
            "(SELECT pk FROM conversation WHERE id = ?) ORDER BY sort_key DESC LIMIT ?",
            (cid, messages)).fetchall()
    finally:
        con.close()
    return {"title": title,
            "conversations": [[t, " ".join((p or "").split())[:40]] for t, p in convs],
            "messages": [[f"{a}  {time.strftime('%H:%M', time.gmtime(at))}", body]
                         for a, at, body in reversed(newest)]}


def _probe_text(body: str) -> str:
    """A piece of ``body`` that fits on one line of the message pane (no wrap)."""
    words = " ".join(body.split())
    return words[:30].rsplit(" ", 1)[0] if len(words) > 30 else words


@contextlib.contextmanager
def _environ(env: dict[str, str]):
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def app_home(ctx, encrypted: bool = False) -> dict:
    """Set up (once per run) the isolated user directory with the account and a copy of the
    big cache: the plain one, or with ``encrypted`` the encrypted one
    (``Context.encrypted_cache``) with its key in the account's key file (``[cache] key =
    "file"``, sync rule D7). Returns ``{"env", "cache", "info", "probe", "screen", "key"}``
    (``key``: the raw key, None for the plain cache)."""
    name = "app_home_enc" if encrypted else "app_home"
    if name in ctx.shared:
        return ctx.shared[name]
    plain = app_home(ctx) if encrypted else None
    src, info = ctx.cache()
    key = None
    if encrypted:
        src, key = ctx.encrypted_cache()
    base = ctx.workdir / ("app-home-enc" if encrypted else "app-home")
    env = isolated_env(base)
    from chat_tui.config import Account, cachekeys, config_file, save_account, store_token

    with _environ(env):
        account = Account("http://127.0.0.1:9", info["me"],
                          str(uuid.uuid5(uuid.NAMESPACE_URL, "bench-user")), "bench-device")
        save_account(account)
        store_token(account, "bench-token-offline")
        cache = account.db_path
        cache.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, cache)
        if key is not None:
            config_file().write_text('[cache]\nkey = "file"\n', encoding="utf-8")
            cachekeys.store_cache_key(cache, key, "file")
    if plain is not None:  # the same messages: the same text to wait for
        home = {**plain, "env": {k: env[k] for k in env
                                 if k.startswith(("XDG_", "PYTHON_KEYRING", "CHAT_TUI_"))},
                "cache": cache, "key": key}
        ctx.shared[name] = home
        return home
    # The longest of the 2nd to 5th newest messages: only in the message pane (the newest
    # is also the conversation list's preview) and unlikely to occur anywhere else.
    newest = sorted(_newest(cache, info["big_id"], 5)[1:], key=lambda r: -len(r[1]))
    screen = base / "static-screen.json"
    screen.write_text(json.dumps(_screen_text(cache, info["big_id"])), encoding="utf-8")
    home = {"env": {k: env[k] for k in env if k.startswith(("XDG_", "PYTHON_KEYRING",
                                                               "CHAT_TUI_"))},
            "cache": cache, "info": info, "probe": _probe_text(newest[0][1]),
            "screen": screen, "key": None}
    ctx.shared[name] = home
    return home


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _peak_rss_then_quit(session: str, settle: float) -> float | None:
    """Wait ``settle`` seconds, read the peak RSS of the pane's processes, then quit the
    program with ctrl+q like a user (the cache is closed cleanly) and wait for it to exit."""
    time.sleep(settle)
    pids = pane_pids(session)
    peaks = [p for p in (rss_kb(pid)[1] for pid in pids) if p]
    subprocess.run(["tmux", "send-keys", "-t", session, "C-q"], capture_output=True)
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return round(max(peaks) / 1024, 1) if peaks else None


def _quit(session: str) -> None:
    """Quit the program in ``session`` with ctrl+q and wait for it to exit."""
    _peak_rss_then_quit(session, 0.0)


def _byte_compile_app() -> None:
    """Write the ``chat_tui`` package's ``__pycache__`` (as ``pip install`` does), so the
    timed starts read bytecode like an installed copy (see module doc)."""
    import chat_tui

    subprocess.run([sys.executable, "-m", "compileall", "-q",
                    str(Path(chat_tui.__file__).parent)], check=True, capture_output=True)


def _cold_starts(ctx) -> dict:
    """Rounds of bare app / chat-tui on the plain and on the encrypted cache (in turns
    first) / static screen, alternating; cached for the memory benchmark."""
    if "cold" in ctx.shared:
        return ctx.shared["cold"]
    home = app_home(ctx)
    enc = app_home(ctx, encrypted=True)
    chat_tui = shutil.which("chat-tui", path=str(Path(sys.executable).parent)) or "chat-tui"
    app_s, bare_s, app_mb, bare_mb, screen_s = [], [], [], [], []
    enc_s, enc_mb = [], []
    static_screen = [sys.executable, str(STATIC_SCREEN_APP), str(home["screen"])]
    settle = ctx.size.settle

    def _peak_rss(session: str) -> float | None:
        return _peak_rss_then_quit(session, settle)

    _byte_compile_app()
    # Warm-up, not measured: the OS page cache, and a first clean quit of the copied caches.
    run_until_text([sys.executable, str(BARE_APP)], BARE_TEXT, env=home["env"],
                   on_ready=_peak_rss)
    run_until_text([chat_tui], home["probe"], env=home["env"], on_ready=_peak_rss)
    run_until_text([chat_tui], enc["probe"], env=enc["env"], on_ready=_peak_rss)
    run_until_text(static_screen, home["probe"], env=home["env"], on_ready=_quit)
    stamp = Path(str(home["cache"]) + ".clean").exists()
    enc_stamp = Path(str(enc["cache"]) + ".clean").exists()
    for n in range(ctx.size.runs):
        t, mb = run_until_text([sys.executable, str(BARE_APP)], BARE_TEXT, env=home["env"],
                               on_ready=_peak_rss)
        bare_s.append(t)
        bare_mb.append(mb)
        # Plain and encrypted swap places every round, so neither always runs first.
        for which in (("plain", "encrypted") if n % 2 == 0 else ("encrypted", "plain")):
            h = home if which == "plain" else enc
            t, mb = run_until_text([chat_tui], h["probe"], env=h["env"], on_ready=_peak_rss)
            (app_s if which == "plain" else enc_s).append(t)
            (app_mb if which == "plain" else enc_mb).append(mb)
        screen_s.append(run_until_text(static_screen, home["probe"], env=home["env"],
                                       on_ready=_quit)[0])
    cold = {"app_s": app_s, "bare_s": bare_s, "app_mb": app_mb, "bare_mb": bare_mb,
            "static_screen_s": screen_s, "app_encrypted_s": enc_s, "app_encrypted_mb": enc_mb,
            "probe_text": home["probe"], "clean_close_stamp": stamp and enc_stamp}
    ctx.shared["cold"] = cold
    return cold


def run_cold_start(ctx) -> dict:
    """Benchmark 1 (see module doc)."""
    missing = _missing()
    if missing:
        return missing
    c = _cold_starts(ctx)
    info = ctx.cache()[1]
    r = ratio(median(c["app_s"]), median(c["bare_s"]))
    r_enc = ratio(median(c["app_encrypted_s"]), median(c["bare_s"]))
    floor = ratio(median(c["static_screen_s"]), median(c["bare_s"]))
    return {
        "encryption": encryption_pair(
            {"value": f"{median(c['app_s']):.3f} s", "ratio": r},
            {"value": f"{median(c['app_encrypted_s']):.3f} s", "ratio": r_enc},
            note="the same cache encrypted by `cache encrypt`'s export, key in a key "
                 "file; the same rounds, alternating"),
        "title": f"Cold start to the last conversation on screen (tmux 120x40, cache of "
                 f"{info['messages']:,} messages in {info['conversations']:,} conversations)",
        "target": f"<= {COLD_START_TARGET} x the bare Textual app",
        "value": f"{median(c['app_s']):.2f} s (median of {len(c['app_s'])})",
        "baseline": f"{median(c['bare_s']):.2f} s (bare Textual app); chat-tui's screen "
                    f"drawn from fixed text: {median(c['static_screen_s']):.2f} s "
                    f"({floor}x)",
        "ratio": r,
        "met": bool(r is not None and r <= COLD_START_TARGET),
        "metrics": {"app_s": [round(x, 3) for x in c["app_s"]],
                    "bare_s": [round(x, 3) for x in c["bare_s"]],
                    "static_screen_s": [round(x, 3) for x in c["static_screen_s"]],
                    "app_encrypted_s": [round(x, 3) for x in c["app_encrypted_s"]],
                    "static_screen_ratio": floor,
                    "probe_text": c["probe_text"],
                    "clean_close_stamp_after_warmup": c["clean_close_stamp"]},
    }


def run_memory(ctx) -> dict:
    """Benchmark 6 (see module doc)."""
    missing = _missing()
    if missing:
        return missing
    c = _cold_starts(ctx)
    app_mb = median([x for x in c["app_mb"] if x is not None])
    bare_mb = median([x for x in c["bare_mb"] if x is not None])
    enc_mb = median([x for x in c["app_encrypted_mb"] if x is not None])
    extra = None if app_mb is None or bare_mb is None else round(app_mb - bare_mb, 1)
    enc_extra = None if enc_mb is None or bare_mb is None else round(enc_mb - bare_mb, 1)
    build = sqlcipher_build()
    return {
        "encryption": encryption_pair(
            {"value": f"{app_mb} MB (+{extra} MB)", "ratio": ratio(app_mb, bare_mb)},
            {"value": f"{enc_mb} MB (+{enc_extra} MB)", "ratio": ratio(enc_mb, bare_mb)},
            note="peak RSS of the cold starts of benchmark 1; "
                 + build.get("summary", f"sqlcipher3 not loadable: {build.get('error')}")),
        "title": "Peak RSS of the app with the big cache open",
        "target": "<= bare app + 30 MB",
        "value": f"{app_mb} MB (+{extra} MB)",
        "baseline": f"{bare_mb} MB (bare Textual app)",
        "ratio": ratio(app_mb, bare_mb),
        "met": bool(extra is not None and extra <= 30),
        "metrics": {"app_peak_mb": c["app_mb"], "bare_peak_mb": c["bare_mb"],
                    "extra_mb": extra, "read_after_s": ctx.size.settle,
                    "app_encrypted_peak_mb": c["app_encrypted_mb"],
                    "encrypted_extra_mb": enc_extra, "sqlcipher_build": build},
    }


async def _open_timings(cache: Path, me: str, big: str, small: str, pairs: int,
                        newest: dict[str, str], key: bytes | None = None) -> dict:
    """One app session on ``cache`` (encrypted with the raw ``key`` when given): a warm-up
    pair, then ``pairs`` alternating opens of ``small`` and ``big``. Returns the timings
    (seconds) by conversation id. Raises RuntimeError when the newest message
    (``newest[cid]``) is not in the list after an open."""
    from chat_tui.store import Cache
    from chat_tui.ui.app import ChatApp
    from chat_tui.ui.widgets.message_list import MessageList

    store = Cache(cache, me, key=key)
    store.open()
    app = ChatApp(store, None, start_engine=False)
    times: dict[str, list[float]] = {big: [], small: []}
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        messages = app.query_one(MessageList)
        order = [small, big] * (pairs + 1)
        for i, cid in enumerate(order):
            t0 = time.perf_counter()
            worker = app.open_conversation(cid)
            await worker.wait()
            drawn = asyncio.Event()
            app.call_after_refresh(drawn.set)  # set once the next frame has been drawn
            await drawn.wait()
            elapsed = time.perf_counter() - t0
            await pilot.pause()  # idle (timers, later refreshes) before the check, untimed
            shown = [v.id for v in messages.views]
            if newest[cid] not in shown:
                raise RuntimeError("the newest message is not in the list after opening")
            if i >= 2:  # the first pair warms caches (SQLite pages, imports)
                times[cid].append(elapsed)
    store.close()
    return times


async def _open_rounds(plain: dict, enc: dict, rounds: int, pairs: int) -> dict:
    """``rounds`` x (a plain session, an encrypted session) of :func:`_open_timings`,
    alternating; the timings by ``"plain"`` / ``"encrypted"`` and conversation id."""
    info = plain["info"]
    big, small = info["big_id"], info["small_id"]
    newest = {cid: _newest(plain["cache"], cid, 1)[0][0] for cid in (big, small)}
    out: dict[str, dict[str, list[float]]] = {
        "plain": {big: [], small: []}, "encrypted": {big: [], small: []}}
    for n in range(rounds):
        kinds = (("plain", plain), ("encrypted", enc))
        for name, home in (kinds if n % 2 == 0 else kinds[::-1]):
            times = await _open_timings(home["cache"], info["me"], big, small, pairs,
                                        newest, home["key"])
            for cid, values in times.items():
                out[name][cid] += values
    return out


def run_open_conversation(ctx) -> dict:
    """Benchmark 2 (see module doc), with the cache plain and encrypted in alternating
    sessions."""
    missing = _missing()
    if missing:
        return missing
    home = app_home(ctx)
    enc = app_home(ctx, encrypted=True)
    info = home["info"]
    with _environ(home["env"]):
        # Opening takes ~0.1 s, and one open is at the mercy of the machine's load: three
        # times the runs of the other timings for each kind of cache, in sessions that
        # alternate plain and encrypted.
        both = asyncio.run(_open_rounds(home, enc, ctx.size.runs, 3))
    figures = {}
    for name, times in both.items():
        big, small = median(times[info["big_id"]]), median(times[info["small_id"]])
        figures[name] = (big, small, ratio(big, small))
    big, small, r = figures["plain"]
    ebig, esmall, er = figures["encrypted"]
    times = both["plain"]
    return {
        "title": f"Opening a conversation of {info['big_messages']:,} messages vs one of "
                 f"{info['small_messages']:,} (in the app)",
        "target": "<= 1.1 x the small one",
        "value": f"{big * 1000:.1f} ms (median of {len(times[info['big_id']])})",
        "baseline": f"{small * 1000:.1f} ms",
        "ratio": r,
        "met": bool(r is not None and r <= 1.1),
        "encryption": encryption_pair(
            {"value": f"{big * 1000:.1f} ms vs {small * 1000:.1f} ms", "ratio": r},
            {"value": f"{ebig * 1000:.1f} ms vs {esmall * 1000:.1f} ms", "ratio": er},
            note="sessions alternate plain and encrypted (the same cache encrypted by "
                 f"`cache encrypt`'s export); the big one encrypted vs plain: "
                 f"{ratio(ebig, big)}x"),
        "metrics": {"big_ms": [round(x * 1000, 2) for x in times[info["big_id"]]],
                    "small_ms": [round(x * 1000, 2) for x in times[info["small_id"]]],
                    "encrypted_big_ms": [round(x * 1000, 2)
                                         for x in both["encrypted"][info["big_id"]]],
                    "encrypted_small_ms": [round(x * 1000, 2)
                                           for x in both["encrypted"][info["small_id"]]]},
    }
