"""IV rank and IV percentile, and the histories they are measured against (VIX bars, our stored ATM IVs).

- IV rank: where today's IV sits in the lookback's range, ``100 (IV - low) / (high - low)``, the
  range taken over the last ``window`` observations *and* today (so it stays within 0..100).
- IV percentile: the share of the last ``window`` observations below today's IV, times 100.

Both are scale-free, so VIX in index points and our ATM IVs as decimals rank alike. A lookback of
252 observations is a year of daily values; fewer are used when the history is shorter (at least
:data:`MIN_OBSERVATIONS`, else NaN).

Histories: :func:`vix_history` reads the daily closes of the ``VIX`` bars in the store (imported with
``spx-data import`` from a daily CSV); :func:`stored_atm_iv_history` computes the 30-day ATM IV of the
last stored snapshot of each day (see :func:`atm_iv`), so a database that records the chain builds its
own IV history. Nothing is cached between calls.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import numpy as np

from spx_core.analytics._series import as_float_array, check_window, like
from spx_core.analytics.bars import daily_closes

__all__ = [
    "ATM_DAYS",
    "MIN_OBSERVATIONS",
    "atm_iv",
    "daily_closes",
    "iv_percentile",
    "iv_percentile_series",
    "iv_rank",
    "iv_rank_series",
    "stored_atm_iv_history",
    "surface_atm_iv",
    "vix_history",
]

#: Fewer finite observations in the lookback than this give NaN rather than a rank of a handful of days.
MIN_OBSERVATIONS = 20
#: Constant maturity of the stored ATM IV history (calendar days), the VIX's horizon.
ATM_DAYS = 30


def _lookback(history: Any, window: int) -> np.ndarray:
    h = as_float_array(history, "history")[-check_window(window):]
    return h[np.isfinite(h)]


def iv_rank(history: Any, current: float | None = None, window: int = 252) -> float:
    """IV rank of ``current`` (default: the last value of ``history``) over the last ``window`` values, 0..100.

    NaN when ``current`` is NaN, the lookback has fewer than :data:`MIN_OBSERVATIONS` finite values or no range.
    """
    h = _lookback(history, window)
    cur = float(h[-1]) if current is None and len(h) else float("nan") if current is None else float(current)
    if len(h) < MIN_OBSERVATIONS or not math.isfinite(cur):
        return float("nan")
    lo, hi = min(float(h.min()), cur), max(float(h.max()), cur)
    return 100.0 * (cur - lo) / (hi - lo) if hi > lo else float("nan")


def iv_percentile(history: Any, current: float | None = None, window: int = 252) -> float:
    """Share (0..100) of the last ``window`` values of ``history`` strictly below ``current``.

    ``current`` defaults to the last value of ``history`` (which then counts in the lookback but
    never below itself). NaN as for :func:`iv_rank`.
    """
    h = _lookback(history, window)
    cur = float(h[-1]) if current is None and len(h) else float("nan") if current is None else float(current)
    if len(h) < MIN_OBSERVATIONS or not math.isfinite(cur):
        return float("nan")
    return 100.0 * float(np.count_nonzero(h < cur)) / len(h)


def _windows(history: Any, window: int) -> tuple[np.ndarray, np.ndarray]:
    from numpy.lib.stride_tricks import sliding_window_view

    h = as_float_array(history, "history")
    window = check_window(window)
    padded = np.concatenate((np.full(window - 1, np.nan), h))
    return h, sliding_window_view(padded, window)  # row i = the lookback ending at (and holding) value i


def iv_rank_series(history: Any, window: int = 252) -> Any:
    """IV rank of every value of ``history`` against its own trailing lookback (vectorized)."""
    h, win = _windows(history, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        lo, hi = np.nanmin(np.where(np.isfinite(win), win, np.inf), axis=1), np.nanmax(
            np.where(np.isfinite(win), win, -np.inf), axis=1)
        out = np.where(hi > lo, 100.0 * (h - lo) / (hi - lo), np.nan)
    out[(np.isfinite(win).sum(axis=1) < MIN_OBSERVATIONS) | ~np.isfinite(h)] = np.nan
    return like(out, history, "iv_rank")


def iv_percentile_series(history: Any, window: int = 252) -> Any:
    """IV percentile of every value of ``history`` against its own trailing lookback (vectorized)."""
    h, win = _windows(history, window)
    count = np.isfinite(win).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 100.0 * (win < h[:, None]).sum(axis=1) / count
    out[(count < MIN_OBSERVATIONS) | ~np.isfinite(h)] = np.nan
    return like(out, history, "iv_percentile")


# --- histories ---------------------------------------------------------------------------------------
def atm_iv(snapshot: Any, days: float = ATM_DAYS) -> float:
    """Constant-maturity ATM implied vol (decimal) of a chain snapshot, ``days`` calendar days out.

    Per expiry, the ATM vol is the out-of-the-money mid IV (puts below the forward, calls above)
    interpolated linearly in log-moneyness to ``k = 0``; the two expiries bracketing ``days`` are then
    interpolated linearly in total variance (``IV^2 t``), as the VIX does; beyond the listed range the
    nearest expiry's ATM vol is used. Only those (at most two) expiries are solved for IVs, on the
    forwards implied from the whole snapshot. NaN when no expiry gives an ATM vol.
    """
    from spx_core.domain.calendar import default_calendar, year_fraction_ns
    from spx_core.surface.chain_iv import expiry_chain_iv

    slices = snapshot.expiries()
    if not slices:
        return float("nan")
    starts = np.array([s.start for s in slices], dtype=np.int64)
    instants = default_calendar().expiry_instants_ns(snapshot.columns["expiry"][starts], snapshot.is_am[starts])
    t = np.asarray(year_fraction_ns(snapshot.time_ns, instants), dtype=np.float64)
    target = float(days) / 365.0
    order = [int(i) for i in np.argsort(t, kind="stable") if t[i] > 0]
    below = [i for i in order if t[i] <= target]
    above = [i for i in order if t[i] > target]
    # nearest expiries first on each side; a side without a usable ATM vol falls back to the next one
    cands = (below[::-1], above)
    found: list[tuple[float, float]] = []
    for side in cands:
        for i in side:
            vol = _expiry_atm_iv(expiry_chain_iv(snapshot, slices[i].root, slices[i].expiry, slices=slices))
            if math.isfinite(vol):
                found.append((float(t[i]), vol))
                break
    if not found:
        return float("nan")
    if len(found) == 1:
        return found[0][1]
    (t1, v1), (t2, v2) = found
    w = v1 * v1 * t1 + (v2 * v2 * t2 - v1 * v1 * t1) * (target - t1) / (t2 - t1)
    return math.sqrt(w / target) if w > 0 else float("nan")


def _expiry_atm_iv(civ: Any) -> float:
    """ATM mid IV of one expiry's :class:`ChainIV`: OTM quotes interpolated in ``k`` to 0."""
    is_call = civ.snapshot.columns["is_call"]
    otm = np.where(civ.k >= 0, is_call, ~is_call) & np.isfinite(civ.iv_mid) & np.isfinite(civ.k)
    if not otm.any():
        return float("nan")
    k, vol = civ.k[otm], civ.iv_mid[otm]
    if k.min() > 0 or k.max() < 0:
        return float("nan")  # no quotes on one side of the money: no ATM vol to read off
    order = np.argsort(k, kind="stable")
    return float(np.interp(0.0, k[order], vol[order]))


def surface_atm_iv(surface: Any, days: float = ATM_DAYS) -> float:
    """Constant-maturity ATM vol (decimal) read off a fitted :class:`~spx_core.surface.VolSurface`."""
    return float(surface.iv(k=np.array(0.0), t=np.array(float(days) / 365.0)))


def vix_history(store: Any, symbol: str = "VIX", *, start: Any = None, end: Any = None) -> Any:
    """Daily VIX closes (index points) from the store's ``symbol`` bars, as a Series on ET dates."""
    return daily_closes(store.load_bars(symbol, start, end)).rename(symbol)


def stored_atm_iv_history(store: Any, underlying: str, *, days: float = ATM_DAYS,
                          start: Any = None, end: Any = None) -> Any:
    """The ``days``-day ATM IV (decimal) of the last stored snapshot of each ET date, as a Series on dates.

    Only one snapshot per day is loaded and only its bracketing expiries are solved (see
    :func:`atm_iv`), so a year of recorded days costs a year of single-snapshot reads. Days whose
    snapshot gives no ATM vol are left out.
    """
    import pandas as pd

    from spx_core.domain.calendar import ET

    last: dict[date, int] = {}
    for info in store.list_snapshots(underlying=underlying, start=start, end=end):  # ordered by time
        last[info.time.astimezone(ET).date()] = info.id
    values = {day: atm_iv(store.load_snapshot(sid), days) for day, sid in last.items()}
    series = pd.Series(values, dtype=np.float64, name=f"atm_iv_{int(days)}d")
    series.index.name = "date"
    return series[np.isfinite(series.to_numpy())]
