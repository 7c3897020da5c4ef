"""Bars as the analytics want them: one row per US/Eastern trading date, whatever the stored resolution.

The store's ``underlying_bars`` hold daily bars (``spx-data import`` of a daily CSV, stamped 16:00 ET)
and 1-minute bars (LEAN index files, simulated sessions) side by side under one symbol.
:func:`daily_ohlc` folds any mix of them into daily bars by ET date: first open, highest high,
lowest low, last close, summed volume (NaN when no bar of the day has one), so a daily estimator
reads the same frame from an imported history or a recorded session.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["daily_closes", "daily_ohlc"]


def _by_day(bars: Any) -> Any:
    from spx_core.domain.calendar import ET

    return bars.assign(date=bars["time"].dt.tz_convert(ET).dt.date).sort_values("time", kind="stable")


def daily_ohlc(bars: Any) -> Any:
    """Daily OHLCV (DataFrame indexed by ET date, ascending) from a ``Store.load_bars`` frame."""
    import pandas as pd

    cols = ["open", "high", "low", "close", "volume"]
    if len(bars) == 0:
        return pd.DataFrame({c: pd.Series(dtype=np.float64) for c in cols},
                            index=pd.Index([], dtype=object, name="date"))
    groups = _by_day(bars).groupby("date", sort=True)
    out = pd.DataFrame({
        "open": groups["open"].first(), "high": groups["high"].max(), "low": groups["low"].min(),
        "close": groups["close"].last(), "volume": groups["volume"].sum(min_count=1)})
    return out[cols].astype(np.float64)


def daily_closes(bars: Any) -> Any:
    """Last close of each ET trading date of a ``Store.load_bars`` frame, as a Series on dates."""
    return daily_ohlc(bars)["close"].dropna()
