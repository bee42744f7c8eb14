"""Wall clock and time display for the app, injectable so tests and snapshots are fixed.

Times arrive as aware UTC datetimes (docs/api.md, "Conventions"); they are shown in the
clock's time zone. Snapshot tests pass a :class:`FixedClock` so no wall-clock time ever
reaches a snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

__all__ = ["Clock", "FixedClock", "format_day", "format_time"]


@dataclass
class Clock:
    """The real clock: ``now()`` is the current aware time, ``tz`` the display zone.

    ``tz`` of ``None`` means the machine's local zone.
    """

    tz: tzinfo | None = None

    def now(self) -> datetime:
        """Current time (aware datetime in :attr:`tz`)."""
        return datetime.now(UTC).astimezone(self.tz)

    def local(self, moment: datetime) -> datetime:
        """``moment`` (aware, or naive meaning UTC) converted to the display zone."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.tz)


@dataclass
class FixedClock(Clock):
    """A clock frozen at ``at`` (aware datetime), in UTC unless ``tz`` is given. For tests.

    ``frozen_display``: every time shown (message times, "last synced") displays as ``at``,
    so snapshots of messages sent during the test hold no wall-clock time.
    """

    at: datetime = field(default_factory=lambda: datetime(2026, 11, 22, 14, 5, tzinfo=UTC))
    tz: tzinfo | None = UTC
    frozen_display: bool = False

    def now(self) -> datetime:
        """The frozen time."""
        return self.at.astimezone(self.tz)

    def local(self, moment: datetime) -> datetime:
        """``moment`` in the display zone, or ``at`` with ``frozen_display``."""
        if self.frozen_display:
            return self.now()
        return super().local(moment)


def format_time(moment: datetime | None, clock: Clock) -> str:
    """Short display of ``moment``: ``14:02`` today, ``Nov 21 14:02`` this year, else a date.

    Returns ``""`` for ``None``.
    """
    if moment is None:
        return ""
    local = clock.local(moment)
    now = clock.now()
    if local.date() == now.date():
        return local.strftime("%H:%M")
    if local.year == now.year:
        return local.strftime("%b %d %H:%M")
    return local.strftime("%Y-%m-%d %H:%M")


def format_day(moment: datetime, clock: Clock) -> str:
    """A date for labels such as "cached answer from Nov 20, 2026"."""
    return clock.local(moment).strftime("%b %d, %Y")
