"""The order rate limit: at most N orders (new orders and modifies alike) in any sliding window of time.

The window runs on the market clock the caller passes (``MarketView.now_ns()``), never the wall clock, so a
replay or the backtester limits orders per *market* minute exactly as live trading does. The default is the
Tastyworks plan's 60 orders per minute (issue 9 §3, also what keeps the IB adapter inside its pacing).

A clock that goes backwards (a replay seeked back) forgets the orders stamped after the new time: they are
in a future that did not happen on this clock.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SlidingWindowLimiter"]


class SlidingWindowLimiter:
    """At most ``limit`` events in any half-open window ``(now - window_ns, now]``.

    Not thread-safe: the order service calls it from its one thread (see :mod:`spx_core.execution.service`).
    """

    def __init__(self, limit: int, window_ns: int = 60 * 1_000_000_000) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"rate limit {limit!r} must be a whole number of orders >= 1")
        if window_ns <= 0:
            raise ValueError(f"rate window {window_ns!r} ns must be positive")
        self.limit = limit
        self.window_ns = int(window_ns)
        self._stamps: deque[int] = deque()

    def _expire(self, now_ns: int) -> None:
        while self._stamps and self._stamps[-1] > now_ns:  # the clock went back: drop the future
            self._stamps.pop()
        while self._stamps and self._stamps[0] <= now_ns - self.window_ns:
            self._stamps.popleft()

    def count(self, now_ns: int) -> int:
        """Events inside the window ending at ``now_ns``."""
        self._expire(now_ns)
        return len(self._stamps)

    def wait_ns(self, now_ns: int) -> int:
        """0 when one more event fits at ``now_ns``; else how long (ns) until the oldest one leaves."""
        if self.count(now_ns) < self.limit:
            return 0
        return self._stamps[len(self._stamps) - self.limit] + self.window_ns - now_ns

    def record(self, now_ns: int) -> None:
        """Count one event at ``now_ns`` (the caller checked :meth:`wait_ns` first)."""
        self._expire(now_ns)
        self._stamps.append(int(now_ns))
