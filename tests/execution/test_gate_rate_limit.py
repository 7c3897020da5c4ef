"""The sliding-window order rate limit on the market clock."""

from __future__ import annotations

import pytest

from spx_core.execution.rate_limit import SlidingWindowLimiter

S = 1_000_000_000


def test_window_is_sliding_not_fixed():
    limiter = SlidingWindowLimiter(2, 60 * S)
    limiter.record(0)
    limiter.record(50 * S)
    assert limiter.wait_ns(59 * S) == 1 * S  # the order at 0 leaves the window at 60 s
    assert limiter.wait_ns(60 * S) == 0  # (now - 60 s, now]: the order at exactly now - 60 s is out
    limiter.record(60 * S)
    assert limiter.count(60 * S) == 2
    assert limiter.wait_ns(61 * S) == 49 * S  # now the one at 50 s must leave first


def test_a_clock_going_back_forgets_the_future():
    limiter = SlidingWindowLimiter(1, 60 * S)
    limiter.record(100 * S)
    assert limiter.wait_ns(130 * S) == 30 * S
    assert limiter.wait_ns(10 * S) == 0  # a replay seeked back: the order at 100 s has not happened yet


@pytest.mark.parametrize(("limit", "window"), [(0, S), (True, S), (1.5, S), (1, 0)])
def test_bad_settings_are_refused(limit, window):
    with pytest.raises(ValueError):
        SlidingWindowLimiter(limit, window)
