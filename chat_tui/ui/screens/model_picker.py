"""The model picker: the models the server offers, from the list kept in the cache
(``chat-tui models`` and the app save it; docs/api.md ``GET /v1/models``), so a model can
be chosen offline too; a name can also be typed (a model the list does not show yet)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from chat_tui.ui.safe_text import inert_line

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store import Cache

__all__ = ["ModelChoice", "ModelPickerScreen", "saved_listing"]


@dataclass(frozen=True)
class ModelChoice:
    """A chosen model: its ``model`` id and the ``provider`` serving it (None for a typed
    name, whose provider is the default one)."""

    model: str
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


class ModelPickerScreen(ModalScreen["ModelChoice | None"]):
    """Choose a model: Enter on a listed one, or type a name and press Enter; Esc cancels.

    Args:
        listing: the ``GET /v1/models`` object (dict) or None (none saved yet).
        saved_at: when it was saved (shown), or None.
        current: the model chosen now (marked), or None.
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
                 current: str | None = None) -> None:
        super().__init__()
        self.listing = listing
        self.saved_at = saved_at
        self.current = current
        self.choices: list[ModelChoice] = []

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
        (options if self.choices else self.query_one(Input)).focus()

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
        for index, (choice, item) in enumerate(zip(self.choices, models, strict=True)):
            label = Text(inert_line(choice.model, 60))
            label.append(f"  {inert_line(choice.provider or '', 40)}", style="dim")
            if item.get("default"):
                label.append("  default", style="bold")
            if choice.model == self.current:
                label.append("  \u2713 chosen", style="bold green")
            options.add_option(Option(label, id=str(index)))
        if self.choices:
            chosen = next((i for i, c in enumerate(self.choices) if c.model == self.current),
                           None)
            options.highlighted = keep if keep is not None and keep < len(self.choices) \
                else (chosen or 0)
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
        """Enter on a listed model: choose it."""
        event.stop()
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
