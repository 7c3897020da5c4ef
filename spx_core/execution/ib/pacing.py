"""Token buckets: the order rate limit (orders per minute) and TWS message pacing (messages per second).

One mechanism for both: a bucket holds up to ``burst`` tokens and refills at ``rate`` per second. Orders take a
token or are refused (an order sent a minute late is a different order); messages wait for their tokens.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up. ``clock`` is monotonic seconds (injectable)."""

    def __init__(self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"token bucket needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    @classmethod
    def per_minute(cls, count: int, **kwargs: Callable[[], float]) -> TokenBucket:
        return cls(count / 60.0, count, **kwargs)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_take(self, n: float = 1.0) -> bool:
        """Take ``n`` tokens if they are there now."""
        self._refill()
        if self._tokens + 1e-9 >= n:
            self._tokens -= n
            return True
        return False

    def wait_time(self, n: float = 1.0) -> float:
        """Seconds until ``n`` tokens are there (0 if now)."""
        self._refill()
        return max(0.0, (n - self._tokens) / self.rate)

    async def take(self, n: float = 1.0) -> None:
        """Wait until ``n`` tokens are there, then take them (n above the burst is taken in burst-sized parts)."""
        while n > 0:
            part = min(n, self.burst)
            while not self.try_take(part):
                await asyncio.sleep(self.wait_time(part))
            n -= part
