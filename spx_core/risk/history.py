"""Daily SPX returns and VIX changes for historical VaR, from the store, never past the instant asked for.

Two sources, tried in this order:

1. **index bars**: the store's ``SPX`` and ``VIX`` daily bars (``spx-data import`` of the daily CSVs, or any
   mix with 1-minute bars: each ET date's last close is that day's value, :func:`~spx_core.analytics.bars.daily_closes`),
   or frames the caller passes instead (``bars=``: the simulated market's simulated past, never stored);
2. **stored sessions**: the last stored SPX snapshot of each ET date, its underlying price and its 30-day ATM
   implied vol in points (:func:`~spx_core.analytics.iv_rank.atm_iv`, the VIX's construction on our chain).

The two series of a source are aligned on the dates both have (a day missing, NaN or non-positive in either is
left out; duplicate bars of a day fold into its last close). A return spans two consecutive usable dates only
when no exchange trading day lies strictly between them (XNYS calendar): a gap would make a multi-day move count
as a 1-day one, so such returns are dropped and counted in ``source``. The last ``lookback`` returns are kept.

``end_ns`` bounds every read (bars and snapshots stamped after it are never loaded): a backtest at day D sees
only the closes up to D. Fewer than :data:`MIN_DAYS` usable returns raise :class:`HistoryError` (one line).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

__all__ = ["MIN_DAYS", "HistoryError", "ReturnHistory", "aligned_history", "return_history"]

#: Fewer usable 1-day returns than this and a historical VaR is not worth showing (5% tail = 3 days).
MIN_DAYS = 60
_BARS = "SPX + VIX daily bars"
_SESSIONS = "stored SPX sessions (price + 30-day ATM IV)"


class HistoryError(ValueError):
    """Not enough daily history in the store; the message (one line) says what to import."""


@dataclass(frozen=True, slots=True, eq=False)
class ReturnHistory:
    """Aligned daily moves, oldest first.

    Attributes:
        dates: datetime64[D], the ET date each move ends on.
        spot_returns: 1-day log returns of SPX, ``log(S_d / S_prev)``.
        vol_changes: 1-day changes of VIX in vol points (``VIX_d - VIX_prev``; 30-day ATM IV x 100 for
            the sessions source), NaN-free.
        source: where they came from, the date range and how many gap-spanning moves were dropped.
        last_spot: the last SPX close used (index points; NaN unknown).
        last_vol: the last VIX (or ATM IV) level used, in vol points (NaN unknown).
    """

    dates: np.ndarray
    spot_returns: np.ndarray
    vol_changes: np.ndarray
    source: str
    last_spot: float = math.nan
    last_vol: float = math.nan

    def __post_init__(self) -> None:
        n = len(self.dates)
        if len(self.spot_returns) != n or len(self.vol_changes) != n:
            raise ValueError(f"ReturnHistory needs aligned arrays, got {n} dates, {len(self.spot_returns)} "
                             f"returns and {len(self.vol_changes)} vol changes")
        if not (np.all(np.isfinite(self.spot_returns)) and np.all(np.isfinite(self.vol_changes))):
            raise ValueError("ReturnHistory moves must be finite (drop NaN days before building it)")

    def __len__(self) -> int:
        return len(self.dates)

    @property
    def last_date(self) -> date | None:
        return self.dates[-1].astype(object) if len(self.dates) else None


def return_history(store: Any, *, end_ns: int | None = None, lookback: int = 500,
                   bars: tuple[Any, Any, str] | None = None) -> ReturnHistory:
    """The last ``lookback`` daily moves up to ``end_ns`` (inclusive; None = everything stored).

    Args:
        bars: ``(spx, vix, label)``: daily-bars frames shaped as ``Store.load_bars`` returns them, read instead of
            the store's bars and named ``label`` in ``source`` (the simulated market's past,
            :func:`spx_core.marketdata.simulator.history.simulated_daily_history`); ``end_ns`` bounds them too.
            The store (None allowed then) is only read for the stored-sessions fallback.

    Raises:
        HistoryError: neither source has :data:`MIN_DAYS` usable moves (names both counts and the fix).
    """
    if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback < MIN_DAYS:
        raise ValueError(f"lookback must be a whole number of days >= {MIN_DAYS}, got {lookback!r}")
    from spx_core.analytics.bars import daily_closes

    if bars is None:
        spx, vix, label = store.load_bars("SPX", None, end_ns), store.load_bars("VIX", None, end_ns), _BARS
    else:
        spx, vix, label = _until(bars[0], end_ns), _until(bars[1], end_ns), bars[2]
    daily = aligned_history(_as_dict(daily_closes(spx)), _as_dict(daily_closes(vix)), lookback=lookback,
                            source=label)
    if len(daily) >= MIN_DAYS:
        return daily
    sessions = _session_history(store, end_ns, lookback) if store is not None else _empty(_SESSIONS)
    if len(sessions) >= MIN_DAYS:
        return sessions
    raise HistoryError(f"only {len(daily)} usable days of {label} and {len(sessions)} of stored SPX "
                       f"sessions (need {MIN_DAYS}); import the daily files with `spx-data import --format "
                       f"daily-bars sp500.csv.gz vix.csv.gz`")


def _until(frame: Any, end_ns: int | None) -> Any:
    """The rows of a bars frame stamped at or before ``end_ns`` (all of them for None)."""
    if end_ns is None or len(frame) == 0:
        return frame
    times = frame["time"].dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view(np.int64)
    return frame[times <= int(end_ns)]


def aligned_history(spot: dict[date, float], vol: dict[date, float], *, lookback: int = 500,
                    source: str = "") -> ReturnHistory:
    """Moves of two daily series (date -> level) on their common usable dates (rules in the module docstring).

    Never raises for shortness: the caller decides whether the length suffices.
    """
    days = sorted(d for d in spot.keys() & vol.keys() if _usable(spot[d]) and _usable(vol[d]))
    if len(days) < 2:
        return _empty(source)
    d = np.array(days, dtype="datetime64[D]")
    s = np.array([spot[k] for k in days], dtype=np.float64)
    v = np.array([vol[k] for k in days], dtype=np.float64)
    one_day = _trading_days_between(d[:-1], d[1:]) <= 1
    keep = np.flatnonzero(one_day)[-lookback:]
    dropped = int((~one_day).sum())
    r = np.log(s[1:] / s[:-1])[keep]
    dv = np.diff(v)[keep]
    dates = d[1:][keep]
    span = f"{dates[0]}..{dates[-1]}" if len(dates) else "no moves"
    gaps = f", {dropped} gap-spanning move(s) dropped" if dropped else ""
    return ReturnHistory(dates, r, dv, f"{source}, {len(dates)} days {span}{gaps}", float(s[-1]), float(v[-1]))


def _usable(x: float) -> bool:
    return math.isfinite(x) and x > 0


def _empty(source: str) -> ReturnHistory:
    return ReturnHistory(np.array([], dtype="datetime64[D]"), np.array([]), np.array([]), f"{source}, no moves")


def _as_dict(series: Any) -> dict[date, float]:
    return {k: float(v) for k, v in series.items()}


def _trading_days_between(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Exchange trading days in (start, end] per pair (0 when end is not a trading day and nothing lies between)."""
    from spx_core.domain.calendar import default_calendar

    cal = default_calendar()
    first, last = start.min().astype(object), end.max().astype(object)
    sessions = np.array(cal.trading_days(first, last), dtype="datetime64[D]")
    lo = np.searchsorted(sessions, start, side="right")
    hi = np.searchsorted(sessions, end, side="right")
    return hi - lo


def _session_history(store: Any, end_ns: int | None, lookback: int) -> ReturnHistory:
    """Daily closes of stored SPX sessions: the last snapshot of each ET date, newest days first until enough.

    Only the snapshots of the days used are loaded (each solves two expiries for its ATM vol).
    """
    from spx_core.analytics.iv_rank import atm_iv
    from spx_core.domain.calendar import ET

    last: dict[date, Any] = {}
    for info in store.list_snapshots(underlying="SPX", end=end_ns):  # ordered by time: the last one wins
        last[info.time.astimezone(ET).date()] = info
    spot: dict[date, float] = {}
    vol: dict[date, float] = {}
    for day in sorted(last, reverse=True):
        info = last[day]
        if not _usable(float(info.underlying_price)):
            continue
        level = 100.0 * atm_iv(store.load_snapshot(info.id))
        if _usable(level):
            spot[day], vol[day] = float(info.underlying_price), level
        if len(vol) > lookback:
            break
    return aligned_history(spot, vol, lookback=lookback, source=_SESSIONS)
