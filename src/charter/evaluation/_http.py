"""HTTP helpers for targets: a token-bucket rate limiter and retry back-off."""

from __future__ import annotations

import asyncio
import random
import time
from email.utils import parsedate_to_datetime

__all__ = ["TokenBucket", "backoff_delay", "retry_after_seconds"]


class TokenBucket:
    """An asyncio token bucket: at most ``rate`` acquisitions per second on average.

    The bucket holds up to ``burst`` tokens (default: a tenth of a second's worth, at
    least one), so short bursts pass without waiting while the long-run rate holds.

    Example::

        bucket = TokenBucket(rate=5)
        for _ in range(10):
            await bucket.acquire()  # returns at about 5 per second
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        """Args:
        rate: tokens per second (> 0).
        burst: bucket capacity (default ``max(1, rate / 10)``).
        """
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.capacity = float(burst) if burst is not None else max(1.0, self.rate / 10)
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock: asyncio.Lock | None = None

    async def acquire(self) -> None:
        """Wait until a token is available and take it."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


def backoff_delay(
    attempt: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Exponential back-off with full jitter: uniform in ``[0, min(cap, base * 2**attempt)]``.

    Args:
        attempt: 0 for the first retry.
        base: delay scale in seconds.
        cap: maximum delay in seconds.
        rng: random source (default: the module's).

    Returns:
        Seconds to wait.
    """
    ceiling = min(cap, base * (2**attempt))
    return (rng or random).uniform(0, ceiling)


def retry_after_seconds(value: str | None, *, cap: float) -> float | None:
    """Parse a ``Retry-After`` header (seconds or an HTTP date), capped; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = moment.timestamp() - time.time()
    return max(0.0, min(cap, seconds))
