"""The composer arrives after the first frame, and nothing typed before it is lost.

The first frame shows what can be read (conversation list, newest messages); the composer
and the key bar (a ``TextArea`` and a ``Footer``: their imports, layout and rendering)
follow in the next frame. Printable keys and Enter typed meanwhile are kept, in order, and
handed to the composer once it is mounted and focused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.message import Message
from textual.widget import MountError

from chat_tui.ui.keymap import is_typing

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.ui.widgets.composer import Composer

__all__ = ["EarlyKeys"]


class EarlyKeys:
    """Mixin of :class:`~chat_tui.ui.screens.chat.ChatScreen`: mounts the composer and
    hands it the keys typed before it existed.

    State: ``_early_keys`` (the keys kept so far; None once the composer took them)."""

    AUTO_FOCUS = ""
    """Nothing has the focus on the first frame: keys typed then wait for the composer
    (see :meth:`on_key`), which gets the focus as it mounts."""
    EARLY_KEYS = frozenset({"enter", "shift+enter", "ctrl+j"})
    """Keys (besides printable characters) kept for the composer while it is not there."""

    composer: Composer | None
    _early_keys: list[events.Key] | None

    class _ComposerMounted(Message, bubble=False):
        """The composer is mounted; queued behind the keys that reached the screen."""

    async def _mount_composer(self) -> None:
        """Mount the composer (with the open conversation's draft, focused) and the key
        bar, then hand the composer the keys typed before it existed, in order."""
        from chat_tui.ui.widgets.composer import Composer
        from chat_tui.ui.widgets.footer import KeyFooter

        composer = Composer(id="composer")
        self.composer = self.place.composer = composer
        try:
            await self.query_one("#chat").mount(composer)
            await self.mount(KeyFooter())
        except MountError:  # the app closed meanwhile
            return
        self.place.restore_draft(self.current_id)
        # Keys already in this screen's queue are kept before the composer takes them.
        self.post_message(self._ComposerMounted())

    def on_early_keys__composer_mounted(self, _: EarlyKeys._ComposerMounted) -> None:
        """Focus the composer and hand it the keys typed before it existed, in order."""
        composer = self.composer
        if composer is None:
            return
        self.set_focus(composer)  # at once: keys from now on go to the composer's queue
        early, self._early_keys = self._early_keys or [], None
        for key in early:
            composer.post_message(events.Key(key.key, key.character))

    def on_key(self, event: events.Key) -> None:
        """Typing keys (printable characters, Enter) that reach the screen while the
        composer is not there or not yet focused are kept for it (or, once it has the
        focus, passed on to it); every other key works as usual (bindings)."""
        if not (is_typing(event.key, event.is_printable) or event.key in self.EARLY_KEYS):
            return
        if self._early_keys is not None and self.focused is None:
            event.stop()
            event.prevent_default()
            self._early_keys.append(event)
        elif (self._early_keys is None and self.composer is not None
              and self.focused is self.composer):
            event.stop()
            event.prevent_default()
            self.composer.post_message(events.Key(event.key, event.character))
