"""Waiting on an ``asyncio.Event`` with a timeout, safely under cancellation."""

from __future__ import annotations

import asyncio
import contextlib


async def wait_event(event: asyncio.Event, timeout: float) -> None:
    """Wait until ``event`` is set or ``timeout`` seconds pass.

    ``asyncio.timeout`` rather than ``asyncio.wait_for``: on Python 3.11, ``wait_for``
    swallows a ``cancel()`` that arrives just as the event is set, and the cancelled
    worker then loops on forever (``Engine.stop`` would never return)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
