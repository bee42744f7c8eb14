"""The model picker: the models the server offers, from the list kept in the cache
(``chat-tui models`` and the app save it; docs/api.md ``GET /v1/models``), so a model can
be chosen offline too; a name can also be typed (a model the list does not show yet).

:class:`ModelPickerScreen` is the picker itself (the settings screen opens it for the
default model); :class:`ModelField` is the one-line field of a dialog that shows a
conversation's model and opens the picker (the new-conversation dialog, ctrl+n, and the
conversation menu, alt+c), with a first row for the server's default model."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from chat_tui.ui.safe_text import inert_line

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store import Cache

__all__ = ["DEFAULT_ROW", "ModelChoice", "ModelField", "ModelPickerScreen",
           "saved_listing"]

DEFAULT_ROW = "default"
"""The option id of the picker's "the server's default model" row."""


@dataclass(frozen=True)
class ModelChoice:
    """A chosen model: its ``model`` id and the ``provider`` serving it (None for a typed
    name, whose provider is the default one). ``model`` None is the server's default model
    (the row a picker opened with ``offer_default`` shows first)."""

    model: str | None
    provider: str | None


def saved_listing(store: Cache) -> tuple[dict[str, Any] | None, str | None]:
    """``(listing, saved_at)``: the model list kept in the cache (the ``GET /v1/models``
    object as a dict) and when it was saved (ISO 8601 UTC); ``(None, None)`` when none was
    saved or it cannot be read."""
    try:
        saved = store.saved_model_list()
        if saved is None:
            return None, None
        data = json.loads(saved[0])
        return (data, saved[1]) if isinstance(data, dict) else (None, None)
    except Exception:  # noqa: BLE001 - an unreadable list is no list, never a crash
        return None, None


def listed_default(listing: dict[str, Any] | None) -> str | None:
    """The id of the server's default model in ``listing`` (its ``default``), or None."""
    default = (listing or {}).get("default")
    return str(default) if isinstance(default, str) and default else None


class ModelPickerScreen(ModalScreen["ModelChoice | None"]):
    """Choose a model: Enter on a listed one, or type a name and press Enter; Esc cancels.

    Args:
        listing: the ``GET /v1/models`` object (dict) or None (none saved yet).
        saved_at: when it was saved (shown), or None.
        current: the model chosen now (marked), or None.
        offer_default: show a first row for the server's default model, which returns
            ``ModelChoice(None, None)`` (marked chosen when ``current`` is None).
    """

    DEFAULT_CSS = """
    ModelPickerScreen { align: center middle; background: $background 60%; }
    #picker-box { width: 72; max-width: 100%; height: auto; max-height: 90%;
                  border: round $accent; padding: 0 1; background: $surface; }
    #picker-list { height: auto; max-height: 14; }
    #picker-note, #picker-problems { height: auto; color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, listing: dict[str, Any] | None, saved_at: str | None,
                 current: str | None = None, *, offer_default: bool = False) -> None:
        super().__init__()
        self.listing = listing
        self.saved_at = saved_at
        self.current = current
        self.offer_default = offer_default
        self.choices: list[ModelChoice] = []
        """The listed models, in the listing's order (the default row is not one)."""

    def compose(self):  # noqa: D102 - Textual hook
        with Vertical(id="picker-box") as box:
            box.border_title = "Choose a model"
            yield Static(Text(""), markup=False, id="picker-note")
            yield OptionList(id="picker-list")
            yield Static(Text(""), markup=False, id="picker-problems")
            yield Label("Or type a model name (Enter):")
            yield Input(placeholder="e.g. llama3.2 or gpt-4o-mini", id="picker-name",
                        max_length=200)

    def on_mount(self) -> None:  # noqa: D102 - Textual hook
        self.query_one(Input).cursor_blink = False
        self.show_listing(self.listing, self.saved_at)
        options = self.query_one(OptionList)
        (options if options.option_count else self.query_one(Input)).focus()

    def show_listing(self, listing: dict[str, Any] | None, saved_at: str | None) -> None:
        """Show ``listing`` (a fresher one replaces the shown one, keeping the row)."""
        self.listing, self.saved_at = listing, saved_at
        models = [m for m in (listing or {}).get("models") or []
                  if isinstance(m, dict) and m.get("id")]
        self.choices = [ModelChoice(str(m["id"]), str(m.get("provider") or "") or None)
                        for m in models]
        options = self.query_one(OptionList)
        keep = options.highlighted
        options.clear_options()
        first = 0
        if self.offer_default:
            default = listed_default(listing)
            label = Text("The server's default model")
            label.append(f"  now {inert_line(default, 60)}" if default else "", style="dim")
            if self.current is None:
                label.append("  \u2713 chosen", style="bold green")
            options.add_option(Option(label, id=DEFAULT_ROW))
            first = 1
        for index, (choice, item) in enumerate(zip(self.choices, models, strict=True)):
            label = Text(inert_line(choice.model, 60))
            label.append(f"  {inert_line(choice.provider or '', 40)}", style="dim")
            if item.get("default"):
                label.append("  default", style="bold")
            if choice.model == self.current:
                label.append("  \u2713 chosen", style="bold green")
            options.add_option(Option(label, id=str(index)))
        rows = first + len(self.choices)
        if rows:
            chosen = next((first + i for i, c in enumerate(self.choices)
                           if c.model == self.current), None)
            options.highlighted = keep if keep is not None and keep < rows else (chosen or 0)
        note = self.query_one("#picker-note", Static)
        if listing is None:
            note.update(Text("No model list saved yet: the list comes from the server "
                             "once it is reached (or `chat-tui models`). Type a name below."))
        else:
            when = f", saved {saved_at}" if saved_at else ""
            note.update(Text(f"{len(self.choices)} models{when}. Enter chooses."))
        problems = [f"{inert_line(str(p.get('provider')), 40)}: "
                    f"{inert_line(str(p.get('message')), 160)}"
                    for p in (listing or {}).get("problems") or [] if isinstance(p, dict)]
        self.query_one("#picker-problems", Static).update(Text("\n".join(problems)))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Enter on a listed model (or the default row): choose it."""
        event.stop()
        if event.option.id == DEFAULT_ROW:
            self.dismiss(ModelChoice(None, None))
        else:
            self.dismiss(self.choices[int(event.option.id or 0)])

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter on a typed name: choose it (served by the default provider)."""
        event.stop()
        name = event.value.strip()
        if name:
            known = next((c for c in self.choices if c.model == name), None)
            self.dismiss(known or ModelChoice(name, None))

    def action_cancel(self) -> None:
        """Close without choosing."""
        self.dismiss(None)


class ModelField(Horizontal):
    """A dialog's model field, one line: the chosen model and a "Choose…" button that
    opens :class:`ModelPickerScreen` over the model list kept in the cache (offline too),
    with a first row for the server's default model.

    Args:
        store: the account's cache (its saved model list), or None (no list).
        current: the model chosen now; None: the server's default.
        provider: the provider of ``current``, when known.
        refresh: async callable that asks the server for a fresh model list (kept in the
            cache by it), or None; called each time the picker opens, and the picker shows
            the fresh list when it comes. Any error leaves the cached one.

    :attr:`value` is the chosen model (None: the server's default); a choice posts
    :class:`ModelField.Changed`.
    """

    DEFAULT_CSS = """
    ModelField { height: auto; }
    ModelField > .model-value { width: 1fr; height: auto; }
    ModelField > Button { margin-left: 1; }
    """

    class Changed(Message):
        """The user chose a model in the field's picker: ``choice`` (a
        :class:`ModelChoice`; ``model`` None is the server's default)."""

        def __init__(self, field: ModelField, choice: ModelChoice) -> None:
            super().__init__()
            self.field = field
            self.choice = choice

    def __init__(self, store: Cache | None, current: str | None = None,
                 provider: str | None = None, *,
                 refresh: Callable[[], Awaitable[Any]] | None = None,
                 id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.store = store
        self.value = current
        self.provider = provider
        self._refresh = refresh
        self.picker: ModelPickerScreen | None = None

    def _listing(self) -> tuple[dict[str, Any] | None, str | None]:
        return saved_listing(self.store) if self.store is not None else (None, None)

    def describe(self) -> Text:
        """What the field shows: the chosen model and its provider, or the server's
        default (named when the saved list says which)."""
        if self.value is None:
            default = listed_default(self._listing()[0])
            text = Text("The server's default model")
            if default:
                text.append(f" (now {inert_line(default, 40)})", style="dim")
            return text
        text = Text(inert_line(self.value, 60))
        if self.provider:
            text.append(f"  {inert_line(self.provider, 30)}", style="dim")
        return text

    def compose(self):  # noqa: D102 - Textual hook
        yield Static(self.describe(), markup=False, classes="model-value")
        yield Button("Choose\u2026", compact=True, classes="model-choose")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """The "Choose…" button opens the picker."""
        event.stop()
        self.open_picker()

    def open_picker(self) -> None:
        """Push the picker over the saved list (and ask for a fresh one, see ``refresh``);
        a choice becomes :attr:`value`."""
        listing, saved_at = self._listing()
        self.picker = ModelPickerScreen(listing, saved_at, self.value, offer_default=True)

        def chosen(choice: ModelChoice | None) -> None:
            self.picker = None
            if choice is None:
                return
            self.value, self.provider = choice.model, choice.provider
            self.query_one(".model-value", Static).update(self.describe())
            self.post_message(self.Changed(self, choice))

        self.app.push_screen(self.picker, chosen)
        if self._refresh is not None:
            self.run_worker(self._refresh_listing(), group="model-list", exclusive=True,
                            exit_on_error=False)

    async def _refresh_listing(self) -> None:
        assert self._refresh is not None
        try:
            fresh = await self._refresh()
        except Exception:  # noqa: BLE001 - the cached list stays
            return
        if fresh is None:
            return
        if self.picker is not None and self.picker.is_attached:
            self.picker.show_listing(*self._listing())
        if self.is_attached:
            self.query_one(".model-value", Static).update(self.describe())
