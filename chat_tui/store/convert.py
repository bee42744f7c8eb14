"""Conversions between the cache's columns and the values its API hands out: epoch
seconds (float, UTC) <-> timezone-aware datetimes, and one-line previews of a text."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> float:
    """The current time in epoch seconds (the unit of every time column)."""
    return time.time()


def ts(dt: datetime | None) -> float | None:
    """Epoch seconds of ``dt`` (a timezone-aware datetime), or None."""
    return None if dt is None else dt.timestamp()


def dt(ts: float | None) -> datetime | None:
    """The UTC datetime of epoch seconds ``ts``, or None."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def preview(text: str, width: int = 80) -> str:
    """``text`` on one line (runs of whitespace become one space), cut to ``width``
    characters with a trailing ``…`` when longer."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


__all__ = ["dt", "now", "preview", "ts"]
