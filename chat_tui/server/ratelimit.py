"""Per-token send rate limit (docs/api.md, Limits: token bucket, default 20/s burst 60)."""

from __future__ import annotations

import math
import time


class RateLimiter:
    """A token bucket per key (the device id of the bearer token).

    ``rate``: sends per second refilled (0 disables the limit); ``burst``: bucket size
    (default ``3 * rate``). Event-loop only (not thread safe). Memory: one small entry per
    active token; idle full buckets are dropped when the table grows past 10,000 entries.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, 3 * self.rate))
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, key: str, now: float | None = None) -> float:
        """Take one send from ``key``'s bucket.

        Returns 0.0 when allowed, else the seconds until a send is allowed (the caller
        answers 429 with ``Retry-After`` rounded up).
        """
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > 10_000:
                self._prune(now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        full = [
            k
            for k, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.rate >= self.burst
        ]
        for k in full:
            del self._buckets[k]


def retry_after_header(wait: float) -> str:
    """``Retry-After`` value (whole seconds, at least 1) for a wait in seconds."""
    return str(max(1, math.ceil(wait)))
