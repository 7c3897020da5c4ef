"""Daily bars as official settlement values for the backtest's settlement watch (end-of-day data).

An end-of-day chain is stamped at 15:45 or 16:15 ET: the watch never sees the index within its tolerance of
the 16:00 close (or the 09:30 open of an AM expiry), so expiring positions would stay open for good. The stored
daily bars know those values: a bar stamped at 16:00 ET of a trading day (how ``spx-data import`` stamps them)
gives the day's close for PM-settled roots and its open for AM SPX (the opening print standing in for the
Special Opening Quotation, as the live watch does). Each value is handed to the watch only once the clock
reaches the bar's stamp: no look-ahead.

A date holding many bars is intraday (1-minute bars of a recorded session): the watch observes those sessions'
snapshots directly, so such dates are left alone.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np

from spx_core.domain.calendar import ET, MarketCalendar, default_calendar, to_ns
from spx_core.domain.contracts import Settlement
from spx_core.portfolio.settlement_watch import SettlementWatch

__all__ = ["DailySettlements"]


class DailySettlements:
    """The stored daily bars of ``symbols`` as (stamp, underlying, settlement instant, value), revealed in time."""

    def __init__(self, store: Any, symbols: tuple[str, ...] = ("SPX", "SPY"), *,
                 calendar: MarketCalendar | None = None) -> None:
        cal = calendar or default_calendar()
        items: list[tuple[int, str, int, float]] = []
        for symbol in symbols:
            items.extend(_values(store.load_bars(symbol), symbol, cal))
        items.sort()
        self._items = items
        self._stamps = [i[0] for i in items]
        self._next = 0

    def __len__(self) -> int:
        return len(self._items)

    def reveal(self, now_ns: int, watch: SettlementWatch) -> int:
        """Hand the watch every value whose bar is stamped at or before ``now_ns``; returns how many."""
        end = bisect.bisect_right(self._stamps, int(now_ns))
        for _, symbol, instant, price in self._items[self._next:end]:
            watch.add_official(symbol, instant, price)
        count, self._next = end - self._next, max(self._next, end)
        return max(count, 0)


def _values(bars: Any, symbol: str, cal: MarketCalendar) -> list[tuple[int, str, int, float]]:
    if bars is None or len(bars) == 0:
        return []
    local = bars["time"].dt.tz_convert(ET)
    days = local.dt.date
    per_day = days.map(days.value_counts())
    daily = (per_day == 1) & (local.dt.hour == 16) & (local.dt.minute == 0)
    out = []
    stamps = bars["time"].dt.as_unit("ns").astype("int64").to_numpy()
    for i in np.flatnonzero(daily.to_numpy()):
        d = days.iloc[i]
        stamp = int(stamps[i])
        for settlement, column in ((Settlement.PM, "close"), (Settlement.AM, "open")):
            price = float(bars[column].iloc[i])
            if not math.isfinite(price) or price <= 0:
                continue
            try:
                instant = to_ns(cal.expiry_instant(d, settlement))
            except (ValueError, KeyError):  # not a trading day on the calendar: no settlement that date
                continue
            if instant <= stamp:
                out.append((stamp, symbol, instant, price))
    return out
