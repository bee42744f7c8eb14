"""The local model server offer: one line above the composer, in the local mode with no
provider configured, when the start found an OpenAI-compatible server on loopback
(Ollama). F4 takes it (``ChatApp.action_use_local_model``)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from chat_tui.ui.safe_text import inert_line

__all__ = ["LocalOfferBar"]


class LocalOfferBar(Static):
    """Says where the local model server answers, its first models, and that F4 uses it.

    ``url``: its API root; ``models``: the names it lists (the first becomes the default
    model when taken)."""

    DEFAULT_CSS = """
    LocalOfferBar {
        height: auto;
        padding: 0 1;
        background: $accent 20%;
        color: $text;
    }
    """

    def __init__(self, url: str, models: tuple[str, ...], *, id: str | None = None) -> None:
        shown = ", ".join(models[:3]) + (", …" if len(models) > 3 else "")
        text = Text()
        text.append("Local model server found ", style="bold")
        text.append(f"at {inert_line(url, 80)} ({inert_line(shown, 80)}). ")
        text.append("Press F4", style="bold reverse")
        text.append(f" to use it ({inert_line(models[0], 60) if models else 'its first model'}"
                    "); F2 opens the settings.")
        super().__init__(text, markup=False, id=id)
