"""The app's actions around the assistant and the open conversation: stop a streaming
reply, the settings screen, the local model server offer (F4), copy a message or a code
block, export the conversation to Markdown, and the theme kept across restarts.

:class:`AssistantActions` is a mixin of :class:`chat_tui.ui.app.ChatApp`; its screens
and helpers are imported when an action runs, never for the first frame. The keys are in
:mod:`chat_tui.ui.keymap`.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from textual.timer import Timer

    from chat_tui.store import MessageView

__all__ = ["AssistantActions", "ModelsHost", "export_dir"]

log = logging.getLogger(__name__)

#: Seconds a theme must stay chosen before it is written to config.toml (the theme
#: picker changes it on every highlighted row).
THEME_SAVE_DELAY = 0.5


class ModelsHost(Protocol):
    """What serves the assistant of the local mode (``chat_tui.launch.LocalMode``):

    ``offer``: the local model server found at the start (``url``, ``models``) or None;
    :meth:`reload_models`: give the providers of ``config.toml`` to the running server,
    returns what answers now; :meth:`adopt_offer`: add the offer as a provider, then
    reload. Both blocking (run in a thread)."""

    offer: Any

    def reload_models(self) -> str: ...  # noqa: D102

    def adopt_offer(self) -> str: ...  # noqa: D102


def export_dir() -> Path:
    """``<user data dir>/chat-tui/exports``: where the app writes exported conversations
    (created when missing)."""
    from chat_tui.config import data_dir

    path = data_dir() / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _file_name(title: str, when: datetime) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", title).strip("-.")[:60] or "conversation"
    return f"{slug}-{when.strftime('%Y%m%d-%H%M%S')}.md"


class AssistantActions:
    """Mixin of ``ChatApp`` (see module doc). Needs the app's ``chat`` screen, ``store``,
    ``engine``, ``notify`` and ``models_host`` (a :class:`ModelsHost` in the local mode,
    else None)."""

    models_host: ModelsHost | None
    _theme_timer: Timer | None = None
    _saved_theme: str | None = None

    # ------------------------------------------------------------------ theme memory
    def restore_theme(self) -> None:
        """Apply the theme kept in ``config.toml`` (``[ui] theme``); an unknown name (a
        theme of another version) is ignored. Called before the first frame."""
        from chat_tui.config.settings import load_theme  # config_edit: ~15 ms of imports

        name = load_theme()
        self._saved_theme = name
        app: Any = self
        if name and name in app.available_themes:
            # What App._watch_theme does, done before the app runs: the stylesheet is
            # parsed at the start with these variables, so nothing is parsed twice (the
            # watcher would queue a second parse of the whole stylesheet).
            app.set_reactive(type(app).theme, name)
            dark = app.current_theme.dark
            app.set_class(dark, "-dark-mode", update=False)
            app.set_class(not dark, "-light-mode", update=False)
            app.set_class(True, f"-theme-{name}", update=False)
            app._refresh_truecolor_filter(app.ansi_theme)
            app.stylesheet.set_variables(app.get_css_variables())
        elif name:
            log.info("the saved theme %r is not available", name)

    def watch_theme_changes(self) -> None:
        """From now on a theme chosen in Textual's theme picker or the settings screen is
        written to ``config.toml`` once it stays chosen :data:`THEME_SAVE_DELAY` s."""
        self.theme_changed_signal.subscribe(self, self._theme_changed)  # type: ignore[attr-defined]

    def _theme_changed(self, theme: Any) -> None:
        if self._theme_timer is not None:
            self._theme_timer.stop()
        self._theme_timer = self.set_timer(  # type: ignore[attr-defined]
            THEME_SAVE_DELAY, self.save_theme)

    def save_theme(self) -> None:
        """Write the current theme to ``config.toml`` unless it is the one kept there; a
        failure is a warning toast (the theme still applies to this run)."""
        from chat_tui.config.config_edit import save_theme

        self._theme_timer = None
        name = self.theme  # type: ignore[attr-defined]
        if name == self._saved_theme:
            return
        try:
            save_theme(name)
        except (ValueError, OSError) as exc:
            self.notify(f"The theme could not be kept for the next start: {exc}",
                        severity="warning")
            return
        self._saved_theme = name

    # ------------------------------------------------------------------ stop
    def _streaming_reply(self) -> MessageView | None:
        for view in reversed(self.chat.messages.views):  # type: ignore[attr-defined]
            if view.streaming and not view.mine:
                return view
        return None

    def action_stop_reply(self) -> None:
        """Stop the assistant reply being written in the open conversation (docs/api.md,
        ``POST /v1/messages/{mid}/stop``): the server keeps what was written and marks
        it stopped. Needs the server: offline it says so."""
        reply = self._streaming_reply()
        if reply is None:
            self.notify("No reply is being written here.")
            return
        engine = self.engine  # type: ignore[attr-defined]
        if engine is None:
            self.notify("Still starting up - try again in a moment.")
            return
        self.run_worker(self._stop(engine, reply.id), group="stop",  # type: ignore[attr-defined]
                        exit_on_error=False)

    async def _stop(self, engine: Any, reply_id: str) -> None:
        from chat_tui.api import ApiError

        try:
            await engine.stop_reply(reply_id)
        except ApiError as exc:
            self.notify(f"Could not stop the reply: {exc}", severity="error")
            return
        self.notify("Reply stopped; what it wrote stays.")

    # ------------------------------------------------------------------ settings
    def action_settings(self) -> None:
        """Open the settings screen (providers, default model, theme). Saved provider
        changes apply at once in the local mode (the embedded server reloads them)."""
        from chat_tui.ui.screens.settings import SettingsScreen

        chat = self.chat  # type: ignore[attr-defined]
        if not chat.cache_ready.is_set():
            chat.after_cache(self.action_settings)
            return
        if isinstance(self.screen, SettingsScreen):  # type: ignore[attr-defined]
            return
        engine = self.engine  # type: ignore[attr-defined]
        server = None if self.models_host is not None or engine is None else engine.base_url
        self.push_screen(  # type: ignore[attr-defined]
            SettingsScreen(self.store, local=self.models_host is not None,  # type: ignore[attr-defined]
                           server=server, refresh_models=self.refresh_model_list),
            self._settings_saved)

    async def refresh_model_list(self) -> Any:
        """The server's model list now (``Engine.list_models``, kept in the cache), or
        None when it cannot be asked (offline, starting): the cached one stays."""
        engine = self.engine  # type: ignore[attr-defined]
        if engine is None:
            return None
        from chat_tui.api import ApiError

        try:
            return await engine.list_models()
        except ApiError as exc:
            log.info("model list not refreshed: %s", exc)
            return None

    def _settings_saved(self, result: Any) -> None:
        if result is None or not result.models_changed:
            return
        if self.models_host is None:
            self.notify(f"Saved to {result.path}. Your account's server keeps its own "
                        "models; these providers serve the local mode (chat-tui without a "
                        "login).", timeout=10)
            return
        self.run_worker(self._reload(f"Saved to {result.path}."),  # type: ignore[attr-defined]
                        group="models", exit_on_error=False)

    async def _reload(self, prefix: str, adopt: bool = False) -> None:
        import asyncio

        host = self.models_host
        assert host is not None
        try:
            what = await asyncio.to_thread(host.adopt_offer if adopt else host.reload_models)
        except (LookupError, ValueError, RuntimeError, OSError) as exc:
            self.notify(f"{prefix} The assistant could not switch: {exc}",
                        severity="error", timeout=10)
            return
        if host.offer is None:
            self.hide_local_offer()
        self.notify(f"{prefix} The assistant now answers with {what}.", timeout=8)
        await self.refresh_model_list()

    # ------------------------------------------------------------------ local model offer
    def show_local_offer(self) -> None:
        """In the local mode with no provider, when the start found a local model server:
        a line above the composer offering it (F4)."""
        host = self.models_host
        if host is None or host.offer is None or self.chat.query("#local-offer"):  # type: ignore[attr-defined]
            return
        from chat_tui.ui.widgets.offer import LocalOfferBar

        chat = self.chat  # type: ignore[attr-defined]
        composer = chat.composer
        box = chat.query_one("#chat")
        bar = LocalOfferBar(host.offer.url, tuple(host.offer.models), id="local-offer")
        if composer is not None and composer.parent is box:
            box.mount(bar, before=composer)
        else:
            box.mount(bar)

    def hide_local_offer(self) -> None:
        """Remove the offer line (taken, or nothing to offer)."""
        for bar in self.chat.query("#local-offer"):  # type: ignore[attr-defined]
            bar.remove()

    def action_use_local_model(self) -> None:
        """Take the welcome's offer with one key: the local model server becomes a
        provider in ``config.toml`` and the assistant answers with its first model from
        the next message on (the embedded server reloads; no restart)."""
        host = self.models_host
        if host is None or host.offer is None:
            from chat_tui.config.providers import OLLAMA_BASE_URL

            self.notify("No local model server was found at the start (Ollama answers at "
                        f"{OLLAMA_BASE_URL}). F2 opens the settings to add a provider.")
            return
        self.run_worker(self._reload("Local model server added.", adopt=True),  # type: ignore[attr-defined]
                        group="models", exit_on_error=False)

    # ------------------------------------------------------------------ copy
    def _chosen_message(self, want_code: bool = False) -> MessageView | None:
        """The selected message, else the newest one (with a code block when
        ``want_code``); never a deleted one."""
        from chat_tui.ui.code_blocks import code_blocks

        messages = self.chat.messages  # type: ignore[attr-defined]
        selected = messages.selected_view()
        if selected is not None and not selected.deleted:
            return selected
        for view in reversed(messages.views):
            if not view.deleted and (not want_code or code_blocks(view.body)):
                return view
        return None

    def action_copy_message(self) -> None:
        """Copy the selected message (else the newest) to the clipboard: Textual's
        ``copy_to_clipboard`` (OSC 52, which most terminals honour)."""
        view = self._chosen_message()
        if view is None:
            self.notify("No message to copy here.")
            return
        self.copy_to_clipboard(view.body)  # type: ignore[attr-defined]
        self.notify(f"Copied {view.author}'s message ({len(view.body):,} characters).")

    def action_copy_code(self) -> None:
        """Copy a code block of the selected message (else of the newest one that has
        one); with several, a picker asks which."""
        from chat_tui.ui.code_blocks import code_blocks

        view = self._chosen_message(want_code=True)
        blocks = code_blocks(view.body) if view is not None else []
        if not blocks:
            self.notify("No code block in this message." if view is not None
                        else "No message with a code block here.")
            return
        if len(blocks) == 1:
            self._copy_block(blocks[0])
            return
        from chat_tui.ui.screens.code_picker import CodePickerScreen

        def picked(block: Any) -> None:
            if block is not None:
                self._copy_block(block)

        self.push_screen(CodePickerScreen(blocks), picked)  # type: ignore[attr-defined]

    def _copy_block(self, block: Any) -> None:
        self.copy_to_clipboard(block.code)  # type: ignore[attr-defined]
        lines = len(block.code.splitlines())
        self.notify(f"Copied the {block.language or 'code'} block ({lines} "
                    f"line{'' if lines == 1 else 's'}).")

    # ------------------------------------------------------------------ export
    def action_export_conversation(self) -> None:
        """Write the open conversation, as cached (offline too), to a Markdown file in
        :func:`export_dir` (``<title>-<UTC time>.md``, the same Markdown as ``chat-tui
        export --format md``) and show its path."""
        from chat_tui.store.export_md import conversations_markdown

        chat = self.chat  # type: ignore[attr-defined]
        conv = chat.current_conversation
        if conv is None or not chat.cache_ready.is_set():
            self.notify("No conversation is open.")
            return
        try:
            data = self.store.export([conv.id])  # type: ignore[attr-defined]
            folder = export_dir()
            path = folder / _file_name(conv.title, datetime.now(UTC))
            count = 1
            while path.exists():
                count += 1
                path = path.with_name(f"{path.stem.rsplit('~', 1)[0]}~{count}.md")
            path.write_text(conversations_markdown(data), encoding="utf-8")
        except Exception as exc:  # noqa: BLE001 - a toast, never the end of the app
            log.exception("export failed")
            self.notify(f"Could not export the conversation: {exc}", severity="error")
            return
        self.notify(f"Exported to {path}", title="Export", timeout=15)
