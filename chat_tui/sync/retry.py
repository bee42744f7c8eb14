"""Backoff schedules for outbox retries and connectivity probes (outbox rule 3, sync rule C2).

Delays come from the ``backoff`` package: ``backoff.expo`` (base 2, first step
``Settings.backoff_base`` seconds, capped at ``Settings.backoff_cap``) with
``backoff.full_jitter`` (a uniform draw in ``[0, step]``). Tests use small base and cap.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import backoff


def _steps(base: float, cap: float) -> Iterator[float]:
    gen = backoff.expo(base=2, factor=base, max_value=cap)
    next(gen)  # prime the generator (backoff's own decorators do the same)
    return gen  # type: ignore[return-value]


def retry_delay(failures: int, base: float, cap: float) -> float:
    """Seconds to wait after the ``failures``-th consecutive transient failure (0-based):
    ``full_jitter(min(cap, base * 2**failures))``."""
    step = next(itertools.islice(_steps(base, cap), failures, None))
    return backoff.full_jitter(step)


class Schedule:
    """A stateful schedule: :meth:`next_delay` walks the jittered exponential steps,
    :meth:`reset` starts over (after a success)."""

    def __init__(self, base: float, cap: float):
        self.base, self.cap = base, cap
        self._gen = _steps(base, cap)

    def next_delay(self) -> float:
        """The next jittered delay, in seconds."""
        return backoff.full_jitter(next(self._gen))

    def reset(self) -> None:
        """Start from the first step again."""
        self._gen = _steps(self.base, self.cap)
