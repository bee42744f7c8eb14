"""The key bar: Textual's ``Footer``, rebuilt once per burst of binding changes.

Textual's ``Footer`` rebuilds all its keys (a ``FooterKey`` widget each) after every
``refresh_bindings`` of the screen: the screen resuming, a focus change, the terminal
reporting focus, a reactive declared with ``bindings=True``. Each rebuild schedules its own
``recompose``, so a start queued five of them (~20 ms each, ~100 ms of the first 0.6 s,
ahead of the conversation list and the engine; benchmarks/NOTES.md), most showing
the same keys again. :class:`KeyFooter` merges a burst into one rebuild and skips it when
the keys it would show are the ones on screen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Footer

if TYPE_CHECKING:  # pragma: no cover
    from textual.screen import Screen

__all__ = ["KeyFooter"]


class KeyFooter(Footer):
    """``Footer`` that rebuilds only when the keys it shows change (see module doc)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rebuild_pending = False
        self._shown: tuple | None = None

    def _shown_keys(self) -> tuple:
        """What the footer would show now: for each binding with ``show``, its key,
        description, action, whether it is enabled and its tooltip; then whether the
        command palette key is shown (what ``Footer.compose`` reads)."""
        keys = tuple((binding.key, binding.description, binding.action, enabled, tooltip)
                     for _node, binding, enabled, tooltip
                     in self.screen.active_bindings.values() if binding.show)
        return keys, self.show_command_palette

    def bindings_changed(self, screen: Screen) -> None:
        """Textual's hook (the screen's ``bindings_updated_signal``): schedule one rebuild
        after the next refresh, as ``Footer`` does, unless one is already scheduled."""
        self._bindings_ready = True  # Footer.compose shows nothing until this is set
        if not screen.app.app_focus or not self.is_attached or screen is not self.screen:
            return
        if not self._rebuild_pending:
            self._rebuild_pending = True
            self.call_after_refresh(self._rebuild)

    async def _rebuild(self) -> None:
        self._rebuild_pending = False
        shown = self._shown_keys()
        if shown != self._shown:
            self._shown = shown
            await self.recompose()
