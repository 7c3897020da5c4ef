"""Bars built from the simulated snapshots' underlying prices (``spx-data simulate``)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MinuteBars"]

_NS_PER_MINUTE = 60 * 10**9


class MinuteBars:
    """1-minute OHLC bars of one underlying, built from the prices of successive snapshots.

    Consecutive prices ``(t0, p0) -> (t1, p1)`` form a segment of the bar of the minute ``t0`` falls
    in (bars are stamped with their start, like the LEAN minute bars): its open is the first segment's
    ``p0``, its close the last segment's ``p1``, high and low the extremes of every price in between.
    With one snapshot a minute, on the minute, bar 10:00 thus opens at the 10:00 price and closes at
    the 10:01 one (its range is only as wide as the samples show). A gap longer than
    :attr:`max_gap_ns` (the night, a pause) starts afresh: no bar spans it. Volume is unknown (NaN).
    """

    def __init__(self, *, max_gap_ns: int = 5 * _NS_PER_MINUTE) -> None:
        self.max_gap_ns = int(max_gap_ns)
        self._last: tuple[int, float] | None = None
        self._bar: dict[str, float] | None = None

    def add(self, time_ns: int, price: float) -> Any:
        """Take the next price; returns the (one-row) bar it extended as a DataFrame, or None."""
        import pandas as pd

        bar = self.update(time_ns, price)
        if bar is None:
            return None
        return pd.DataFrame({k: [v] for k, v in bar.items()}).astype({"time": "int64"})

    def update(self, time_ns: int, price: float) -> dict[str, float] | None:
        """:meth:`add` without the DataFrame: the bar extended (a copy: time, open, high, low, close, volume)."""
        last, self._last = self._last, (int(time_ns), float(price))
        if not math.isfinite(price):
            self._last = None
            return None
        if last is None or not 0 < time_ns - last[0] <= self.max_gap_ns:
            return None
        start = last[0] - last[0] % _NS_PER_MINUTE
        bar = self._bar
        if bar is None or bar["time"] != start:
            bar = self._bar = {"time": start, "open": last[1], "high": last[1], "low": last[1]}
        bar["high"], bar["low"], bar["close"] = max(bar["high"], price), min(bar["low"], price), float(price)
        return {**bar, "volume": math.nan}
