"""Polling helpers: :func:`wait_until` (blocking) and :func:`wait_for` (asyncio)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout: float = 10.0,
               interval: float = 0.02) -> bool:
    """Poll ``predicate()`` every ``interval`` seconds until it is truthy or ``timeout``
    seconds pass; returns whether it became (or finally is) truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


async def wait_for(predicate: Callable[[], object], timeout: float = 10.0,
                   interval: float = 0.02) -> object:
    """Await until ``predicate()`` is truthy or ``timeout`` seconds pass; returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    return predicate()
