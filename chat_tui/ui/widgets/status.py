"""Connectivity and outbox status: ``OfflineBanner``, ``QueueIndicator``, ``SyncIndicator``.

They are fed from engine events (``ConnectivityChanged``, ``OutboxChanged``,
``SyncProgress``; see ``chat_tui/sync/events.py``) by the app, so connectivity changes
show without the user doing anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from chat_tui.store.outbox_state import WAITING_FOR_USER
from chat_tui.ui.clock import Clock, format_time

__all__ = ["OfflineBanner", "QueueIndicator", "SyncIndicator", "offline_text", "pending_text",
           "queue_text"]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


_KIND_NOUNS = (("send", "message"), ("create_conversation", "new conversation"),
               ("edit", "edit"), ("delete", "deletion"))


def pending_text(kinds: Mapping[str, int]) -> str:
    """What waits to be sent, named by kind, e.g. "1 message and 1 new conversation" or
    "2 messages, 1 edit and 1 other change" ("" when nothing waits). ``kinds``: outbox
    actions by kind (``send``, ``create_conversation``, ``edit``, ``delete``; any other
    kind counts as an "other change"; the count under ``WAITING_FOR_USER`` is left out)."""
    parts = [_plural(kinds[k], noun) for k, noun in _KIND_NOUNS if kinds.get(k)]
    known = {k for k, _ in _KIND_NOUNS} | {WAITING_FOR_USER}
    other = sum(n for k, n in kinds.items() if k not in known)
    if other:
        parts.append(_plural(other, "other change"))
    if len(parts) < 2:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def offline_text(pending: Mapping[str, int], last_synced_at: datetime | None, clock: Clock,
                 *, work_offline: bool = False) -> str:
    """The banner sentence, e.g. "Offline - showing cached messages. 1 message and 1 new
    conversation will be sent when the connection returns. 2 actions wait for you (ctrl+b).
    Last synced 14:02."

    ``pending``: my outbox actions by kind (see :func:`pending_text`); those that wait for
    the user (failed, expired, blocked: ``WAITING_FOR_USER``) are not promised to be sent,
    they are named apart with the key of the problems panel.
    """
    parts = ["Working offline" if work_offline else "Offline", " - showing cached messages."]
    waiting = pending_text(pending)
    if waiting:
        verb = ("will be sent when you go back online" if work_offline
                else "will be sent when the connection returns")
        parts.append(f" {waiting} {verb}.")
    stuck = pending.get(WAITING_FOR_USER, 0)
    if stuck:
        parts.append(f" {_plural(stuck, 'action')} {'waits' if stuck == 1 else 'wait'} "
                     "for you (ctrl+b).")
    if last_synced_at is not None:
        parts.append(f" Last synced {format_time(last_synced_at, clock)}.")
    else:
        parts.append(" Not synced yet.")
    return "".join(parts)


def queue_text(counts: Mapping[str, int]) -> str:
    """Outbox summary, e.g. "Outbox: 2 queued · 1 sending · 1 failed"; "" when empty."""
    order = ("queued", "sending", "failed", "blocked", "expired")
    shown = [f"{counts[k]} {k}" for k in order if counts.get(k)]
    return ("Outbox: " + " \u00b7 ".join(shown)) if shown else ""


class OfflineBanner(Static):
    """Visible only while offline (or working offline): what is shown and what will happen."""

    def __init__(self, clock: Clock, *, id: str | None = None) -> None:
        super().__init__(Text(""), markup=False, id=id)
        self._clock = clock
        self.display = False

    def show_state(self, offline: bool, pending: Mapping[str, int],
                   last_synced_at: datetime | None, work_offline: bool) -> None:
        """Show or hide the banner for the given state (``pending``: waiting actions by
        outbox kind)."""
        self.display = offline or work_offline
        if self.display:
            self.update(Text("\u26a0 " + offline_text(pending, last_synced_at, self._clock,
                                                        work_offline=work_offline)))


class QueueIndicator(Static):
    """Visible whenever the outbox holds anything; counts of queued, sending, failed, ..."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text(""), markup=False, id=id)
        self.counts: dict[str, int] = {}
        self.display = False

    def show_counts(self, counts: Mapping[str, int]) -> None:
        """Update from an outbox count mapping (keys queued, sending, failed, blocked, expired)."""
        self.counts = dict(counts)
        label = queue_text(counts)
        self.display = bool(label)
        self.set_class(bool(counts.get("failed") or counts.get("blocked")), "-problem")
        if label:
            self.update(Text(label))


class SyncIndicator(Static):
    """A subtle connection/sync marker for the title bar: ``● online``, ``⟳ syncing`` ..."""

    FRAMES = "\u280b\u2819\u2839\u2838\u283c\u2834\u2826\u2827\u2807\u280f"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text(""), markup=False, id=id)
        self.state = "connecting"
        self.phase = "idle"
        self.done = 0
        self.total: int | None = None

    def show_state(self, state: str | None = None, phase: str | None = None,
                   done: int | None = None, total: int | None = None) -> None:
        """Update connectivity ``state`` and/or sync ``phase`` (``idle`` hides the spinner)."""
        if state is not None:
            self.state = state
        if phase is not None:
            self.phase, self.done, self.total = phase, done or 0, total
        if self.phase != "idle" and self.state == "online":
            label = "\u27f3 syncing"
            if self.total:
                label += f" {self.done}/{self.total}"
            self.update(Text(label, style="cyan"))
        elif self.state == "online":
            self.update(Text("\u25cf online", style="green"))
        elif self.state == "connecting":
            self.update(Text("\u25cc connecting", style="yellow"))
        else:
            self.update(Text("\u25cb offline", style="red"))
