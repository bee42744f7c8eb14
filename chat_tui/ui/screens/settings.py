"""The settings screen: model providers, the default model and the theme.

Providers are OpenAI-compatible endpoints (``base_url``, where the key is: an environment
variable, an OS keyring entry, or none; a timeout in seconds), written to the model part of
``config.toml`` (:func:`chat_tui.config.config_edit.save_model_settings`). A key typed here
never reaches the file: it goes to the OS keyring (a 0600 file where none works,
:func:`chat_tui.config.providers.store_provider_key`) and the provider names its entry.
The default model is chosen with the model picker
(:class:`~chat_tui.ui.screens.model_picker.ModelPickerScreen`), fed by the model list kept
in the cache, so it works offline. The theme applies as it is chosen and the app keeps it
for the next start; Cancel puts the previous one back.

A mistake (a bad URL, two providers with one name, an invalid file) is said in the
screen, which stays open with everything typed; nothing is written then.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from chat_tui.config.providers import DEFAULT_TIMEOUT, Provider
from chat_tui.ui.safe_text import inert_line
from chat_tui.ui.screens.model_picker import ModelChoice, ModelPickerScreen, saved_listing

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store import Cache

__all__ = ["NEW", "SettingsSaved", "SettingsScreen"]

NEW = "+new"
"""The provider selector's value for "a new provider"."""

KEY_SOURCES = [("No key (Ollama, a local server)", "none"),
               ("Environment variable", "env"),
               ("OS keyring (type the key below)", "keyring")]


@dataclass(frozen=True)
class SettingsSaved:
    """What Save did: ``path`` of ``config.toml``; ``models_changed`` True when the
    providers or the default model changed (the local mode reloads them)."""

    path: Path
    models_changed: bool


class SettingsScreen(ModalScreen["SettingsSaved | None"]):
    """Edit providers, the default model and the theme (see module doc).

    Args:
        store: the account's cache (the saved model list, for the picker).
        local: True in the local mode (the providers serve this account's assistant).
        server: the account's server URL otherwise (its models are its own), or None.
        refresh_models: async callable giving a fresh model list (or None when the server
            cannot be asked); called once as the screen opens.
    """

    DEFAULT_CSS = """
    SettingsScreen { align: center middle; background: $background 60%; }
    #settings-box { width: 84; max-width: 100%; height: auto; max-height: 100%;
                    border: round $accent; padding: 0 1; background: $surface; }
    #settings-box Label { margin-top: 1; }
    #settings-box .heading { text-style: bold; color: $accent; margin-top: 1; }
    #settings-note, #settings-error, #default-model, #key-note { height: auto; }
    #settings-note, #key-note { color: $text-muted; }
    #settings-error { color: $error; text-style: bold; }
    #provider-row, #model-row, #settings-buttons { height: auto; }
    #provider-row Select { width: 1fr; }
    #model-row Static { width: 1fr; padding: 1 0 0 0; }
    #settings-buttons { align-horizontal: right; margin-top: 1; }
    #settings-buttons Button, #provider-row Button, #model-row Button { margin-left: 2; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, store: Cache, *, local: bool, server: str | None = None,
                 refresh_models: Callable[[], Awaitable[Any]] | None = None,
                 path: Path | None = None) -> None:
        super().__init__()
        from chat_tui.config.providers import load_model_config
        from chat_tui.config.settings import config_file

        self.store = store
        self.local = local
        self.server = server
        self._refresh = refresh_models
        self.path = path or config_file()
        self.load_error: str | None = None
        try:
            config = load_model_config(self.path)
        except ValueError as exc:
            self.load_error = str(exc)
            config = None
        self.providers: list[Provider] = list(config.providers) if config else []
        self.default_model = config.default_model if config else None
        self.default_provider = config.default_provider if config else None
        self._original = (tuple(self.providers), self.default_model, self.default_provider)
        self.editing: int | None = 0 if self.providers else None
        self.typed_keys: dict[str, str] = {}
        self._theme_before = ""
        self._switching = False
        self.picker: ModelPickerScreen | None = None

    # ------------------------------------------------------------------ layout
    def compose(self):  # noqa: D102 - Textual hook
        with VerticalScroll(id="settings-box") as box:
            box.border_title = "Settings"
            yield Static(Text(self._note()), markup=False, id="settings-note")
            yield Static(Text(self.load_error or "", style="bold"), markup=False,
                         id="settings-error")
            yield Static("Default model", classes="heading")
            with Horizontal(id="model-row"):
                yield Static(Text(self._model_text()), markup=False, id="default-model")
                yield Button("Choose\u2026", id="choose-model")
            yield Static("Theme", classes="heading")
            themes = sorted(self.app.available_themes)
            yield Select([(name, name) for name in themes], allow_blank=False,
                         value=self.app.theme, id="theme")
            yield Static("Model providers", classes="heading")
            with Horizontal(id="provider-row"):
                yield Select(self._provider_options(), allow_blank=False,
                             value=self._pick_value(), id="provider-pick")
                yield Button("Remove", id="provider-remove")
            yield Label("Name")
            yield Input(placeholder="e.g. ollama, openai", id="p-name", max_length=64)
            yield Label("Base URL (OpenAI-compatible API root)")
            yield Input(placeholder="http://127.0.0.1:11434/v1", id="p-url")
            yield Label("Key")
            yield Select(KEY_SOURCES, allow_blank=False, value="none", id="p-key-source")
            yield Input(placeholder="environment variable (OPENAI_API_KEY) or keyring entry",
                        id="p-key-name", max_length=64)
            yield Input(placeholder="the key itself, kept in the OS keyring (optional)",
                        password=True, id="p-key")
            yield Static(Text("A key typed here goes to the OS keyring (a 0600 file where "
                              "none works), never into config.toml."), markup=False,
                         id="key-note")
            yield Label("Timeout (seconds a reply may take)")
            yield Input(placeholder=f"{DEFAULT_TIMEOUT:g}", id="p-timeout", type="number")
            with Horizontal(id="settings-buttons"):
                yield Button("Save", variant="primary", id="settings-save")
                yield Button("Cancel", id="settings-cancel")

    def on_mount(self) -> None:  # noqa: D102 - Textual hook
        self._theme_before = self.app.theme
        for field in self.query(Input):
            field.cursor_blink = False
        self._fill_form()
        self.query_one("#p-name", Input).focus()
        if self._refresh is not None:
            self.run_worker(self._refresh_listing(), exit_on_error=False)

    def shown_path(self) -> str:
        """The config file's path, with ``~`` for the home directory."""
        home = str(Path.home())
        text = str(self.path)
        return "~" + text[len(home):] if home != "/" and text.startswith(home + "/") else text

    def _note(self) -> str:
        if self.local:
            return ("Enter saves, Esc cancels. These providers serve the assistant of this "
                    f"local account; saving applies them at once ({self.shown_path()}).")
        return ("Enter saves, Esc cancels. Your account's server keeps its own models; "
                "these providers serve the local mode (chat-tui without a login) "
                f"({self.shown_path()}).")

    def _provider_options(self) -> list[tuple[str, str]]:
        return [(inert_line(p.name, 40), str(i)) for i, p in enumerate(self.providers)] + \
            [("New provider\u2026", NEW)]

    def _pick_value(self) -> str:
        return NEW if self.editing is None else str(self.editing)

    def _model_text(self) -> str:
        if not self.default_model:
            return "The first model the provider lists"
        where = f" ({inert_line(self.default_provider, 60)})" if self.default_provider else ""
        return inert_line(self.default_model, 60) + where

    def _error(self, message: str) -> None:
        self.query_one("#settings-error", Static).update(Text(message, style="bold"))

    # ------------------------------------------------------------------ the form
    def _fill_form(self) -> None:
        provider = self.providers[self.editing] if self.editing is not None else None
        self.query_one("#p-name", Input).value = provider.name if provider else ""
        self.query_one("#p-url", Input).value = provider.base_url if provider else ""
        source = "none"
        key_name = ""
        if provider and provider.api_key_env:
            source, key_name = "env", provider.api_key_env
        elif provider and provider.api_key_keyring:
            source, key_name = "keyring", provider.api_key_keyring
        self.query_one("#p-key-source", Select).value = source
        self.query_one("#p-key-name", Input).value = key_name
        self.query_one("#p-key", Input).value = ""
        self.query_one("#p-timeout", Input).value = f"{provider.timeout:g}" if provider else ""

    def _form_empty(self) -> bool:
        return not any(self.query_one(f"#{name}", Input).value.strip()
                       for name in ("p-name", "p-url", "p-key-name", "p-key"))

    def form_provider(self) -> tuple[Provider, str | None] | None:
        """The provider the form describes and the key typed for it (or None); None
        for an untouched "new provider" form.

        Raises:
            ValueError: what is wrong, in words (the message of the config's checks).
        """
        from chat_tui.config.providers import _provider

        if self.editing is None and self._form_empty():
            return None
        name = self.query_one("#p-name", Input).value.strip()
        url = self.query_one("#p-url", Input).value.strip()
        source = self.query_one("#p-key-source", Select).value
        key_name = self.query_one("#p-key-name", Input).value.strip()
        key = self.query_one("#p-key", Input).value.strip()
        timeout_text = self.query_one("#p-timeout", Input).value.strip()
        table: dict[str, Any] = {"name": name, "base_url": url}
        if timeout_text:
            try:
                table["timeout"] = float(timeout_text)
            except ValueError:
                raise ValueError(f"timeout: {timeout_text!r} is not a number of seconds") from None
        if source == "env":
            if key:
                raise ValueError("A key typed here is kept in the OS keyring: choose \"OS "
                                 "keyring\", or clear the key and set the environment "
                                 "variable.")
            if not key_name:
                raise ValueError("Name the environment variable that holds the key.")
            table["api_key_env"] = key_name
        elif source == "keyring" or key:
            table["api_key_keyring"] = key_name or name
        provider = _provider(0, table)
        return provider, key or None

    def commit_form(self) -> bool:
        """Put the form into :attr:`providers` (a new provider is added at the end).
        False, with the reason shown, when the form is not valid."""
        try:
            result = self.form_provider()
        except ValueError as exc:
            self._error(str(exc))
            return False
        if result is None:
            return True
        provider, key = result
        others = [p.name for i, p in enumerate(self.providers) if i != self.editing]
        if provider.name in others:
            self._error(f"A provider named {provider.name!r} exists already.")
            return False
        if self.editing is None:
            self.providers.append(provider)
            self.editing = len(self.providers) - 1
        else:
            old = self.providers[self.editing]
            self.providers[self.editing] = provider
            if self.default_provider == old.name:
                self.default_provider = provider.name
        if key is not None and provider.api_key_keyring:
            self.typed_keys[provider.api_key_keyring] = key
        self._error("")
        return True

    def _reselect(self) -> None:
        pick = self.query_one("#provider-pick", Select)
        self._switching = True
        pick.set_options(self._provider_options())
        pick.value = self._pick_value()
        self._switching = False

    def on_select_changed(self, event: Select.Changed) -> None:
        """The provider selector (commit the form, then show the chosen one), the key
        source, or the theme (applies at once)."""
        if event.select.id == "theme" and isinstance(event.value, str):
            self.app.theme = event.value
        elif event.select.id == "provider-pick" and not self._switching:
            if event.value != event.select.value:
                return  # a value set while the options were rebuilt, changed since
            target = None if event.value == NEW else int(str(event.value))
            if target == self.editing:
                return
            if not self.commit_form():
                self.call_after_refresh(self._reselect)
                return
            self.editing = target
            self._reselect()
            self._fill_form()

    # ------------------------------------------------------------------ default model
    def open_picker(self) -> None:
        """The model picker over the model list kept in the cache (works offline)."""
        listing, saved_at = saved_listing(self.store)
        self.picker = ModelPickerScreen(listing, saved_at, self.default_model)

        def chosen(choice: ModelChoice | None) -> None:
            self.picker = None
            if choice is None:
                return
            # a provider not configured (yet) is dropped on Save
            self.default_model = choice.model
            self.default_provider = choice.provider
            self.query_one("#default-model", Static).update(Text(self._model_text()))

        self.app.push_screen(self.picker, chosen)

    async def _refresh_listing(self) -> None:
        assert self._refresh is not None
        try:
            fresh = await self._refresh()
        except Exception:  # noqa: BLE001 - the cached list stays
            return
        if fresh is not None and self.picker is not None and self.picker.is_attached:
            self.picker.show_listing(*saved_listing(self.store))

    # ------------------------------------------------------------------ buttons
    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Save, Cancel, Remove (the shown provider), Choose (the default model)."""
        event.stop()
        button = event.button.id
        if button == "settings-save":
            self.save()
        elif button == "settings-cancel":
            self.action_cancel()
        elif button == "choose-model":
            self.open_picker()
        elif button == "provider-remove":
            self.remove_provider()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in a field saves."""
        event.stop()
        self.save()

    def remove_provider(self) -> None:
        """Drop the shown provider (from the file on Save)."""
        if self.editing is None:
            self._fill_form()
            return
        removed = self.providers.pop(self.editing)
        if self.default_provider == removed.name:
            self.default_provider = None
        self.editing = 0 if self.providers else None
        self._reselect()
        self._fill_form()
        self.query_one("#default-model", Static).update(Text(self._model_text()))

    def save(self) -> None:
        """Commit the form, keep typed keys in the keyring, write ``config.toml`` when the
        model part changed, and close with :class:`SettingsSaved`; on any error say it
        and stay open (nothing of the file is written)."""
        from chat_tui.config.config_edit import save_model_settings
        from chat_tui.config.providers import store_provider_key

        if self.load_error is not None:
            self._error(f"{self.load_error} - fix the file first; nothing was written.")
            return
        if not self.commit_form():
            return
        names = [p.name for p in self.providers]
        if self.default_provider not in names:
            self.default_provider = None
        changed = (tuple(self.providers), self.default_model,
                   self.default_provider) != self._original or bool(self.typed_keys)
        try:
            for entry, key in self.typed_keys.items():
                store_provider_key(entry, key)
            if (tuple(self.providers), self.default_model,
                    self.default_provider) != self._original:
                save_model_settings(self.providers, self.default_model,
                                    self.default_provider, self.path)
        except (ValueError, OSError) as exc:
            self._error(f"Not saved: {exc}")
            return
        self.typed_keys.clear()
        self.dismiss(SettingsSaved(self.path, changed))

    def action_cancel(self) -> None:
        """Close without writing; the theme shown before comes back."""
        if self._theme_before and self.app.theme != self._theme_before:
            self.app.theme = self._theme_before
        self.dismiss(None)

