"""Realized volatility estimators over rolling windows, and the variance risk premium.

All estimators return the annualized vol (decimal, 0.20 = 20%) of the last ``window`` bars at each
bar, NaN until the window is full (and for windows containing a missing or non-positive price).
Annualization multiplies the per-bar variance by ``periods_per_year`` (252 trading days for daily
bars; pass ``252 * 390`` for 1-minute regular-session bars). Vectorized: rolling sums are cumulative
sums (see :mod:`._series`), no Python loop over bars.

With ``o, h, l, c`` the logs of open, high, low, close of bar t and ``c'`` the log close of bar t-1:

- close-to-close: sample standard deviation (ddof=1) of ``c - c'`` over ``window`` returns
  (so it needs ``window + 1`` closes).
- Parkinson (1980): ``mean((h - l)^2) / (4 ln 2)``.
- Garman-Klass (1980): ``mean(0.5 (h - l)^2 - (2 ln 2 - 1) (c - o)^2)``.
- Rogers-Satchell (1991): ``mean((h - c)(h - o) + (l - c)(l - o))`` (drift-independent).
- Yang-Zhang (2000): ``var(o - c') + k var(c - o) + (1 - k) RS`` with sample variances (ddof=1),
  ``RS`` the Rogers-Satchell mean and ``k = 0.34 / (1.34 + (n + 1) / (n - 1))``; needs the previous
  close, so like close-to-close it starts one bar later.

The range estimators ignore overnight gaps (they see only each bar's own open..close), which is why
Yang-Zhang adds the overnight variance back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from spx_core.analytics._series import (
    TRADING_DAYS,
    as_float_array,
    check_window,
    like,
    rolling_mean,
    rolling_var,
)

__all__ = [
    "TRADING_DAYS",
    "VarianceRiskPremium",
    "close_to_close",
    "garman_klass",
    "log_returns",
    "parkinson",
    "rogers_satchell",
    "variance_risk_premium",
    "yang_zhang",
]

_LN2 = float(np.log(2.0))


def _logs(values: Any, name: str) -> np.ndarray:
    arr = as_float_array(values, name)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(arr > 0, np.log(np.where(arr > 0, arr, 1.0)), np.nan)


def _annualized(var: np.ndarray, periods_per_year: float) -> np.ndarray:
    return np.sqrt(var * float(periods_per_year))


def log_returns(close: Any) -> np.ndarray:
    """``ln(C_t / C_{t-1})`` per bar; the first is NaN (same length as ``close``)."""
    lc = _logs(close, "close")
    return np.concatenate(([np.nan], np.diff(lc)))


def close_to_close(close: Any, window: int = 21, *, periods_per_year: float = TRADING_DAYS) -> Any:
    """Close-to-close vol: sample std of the last ``window`` log returns, annualized."""
    window = check_window(window, 2)
    var = rolling_var(log_returns(close), window, ddof=1)
    return like(_annualized(var, periods_per_year), close, "close_to_close")


def parkinson(high: Any, low: Any, window: int = 21, *, periods_per_year: float = TRADING_DAYS) -> Any:
    """Parkinson high-low vol over the last ``window`` bars, annualized."""
    window = check_window(window)
    hl = _logs(high, "high") - _logs(low, "low")
    var = rolling_mean(hl * hl, window) / (4.0 * _LN2)
    return like(_annualized(var, periods_per_year), high, "parkinson")


def garman_klass(open: Any, high: Any, low: Any, close: Any, window: int = 21, *,
                 periods_per_year: float = TRADING_DAYS) -> Any:
    """Garman-Klass OHLC vol over the last ``window`` bars, annualized."""
    window = check_window(window)
    hl = _logs(high, "high") - _logs(low, "low")
    co = _logs(close, "close") - _logs(open, "open")
    var = rolling_mean(0.5 * hl * hl - (2.0 * _LN2 - 1.0) * co * co, window)
    return like(_annualized(np.maximum(var, 0.0), periods_per_year), close, "garman_klass")


def _rs_terms(open: Any, high: Any, low: Any, close: Any) -> np.ndarray:
    lo_, lh, ll, lc = _logs(open, "open"), _logs(high, "high"), _logs(low, "low"), _logs(close, "close")
    return (lh - lc) * (lh - lo_) + (ll - lc) * (ll - lo_)


def rogers_satchell(open: Any, high: Any, low: Any, close: Any, window: int = 21, *,
                    periods_per_year: float = TRADING_DAYS) -> Any:
    """Rogers-Satchell drift-independent OHLC vol over the last ``window`` bars, annualized."""
    window = check_window(window)
    var = rolling_mean(_rs_terms(open, high, low, close), window)
    return like(_annualized(var, periods_per_year), close, "rogers_satchell")


def yang_zhang(open: Any, high: Any, low: Any, close: Any, window: int = 21, *,
               periods_per_year: float = TRADING_DAYS) -> Any:
    """Yang-Zhang vol (overnight + open-to-close + Rogers-Satchell) over ``window`` bars, annualized."""
    window = check_window(window, 2)
    lo_, lc = _logs(open, "open"), _logs(close, "close")
    overnight = np.concatenate(([np.nan], lo_[1:] - lc[:-1]))
    intraday = lc - lo_
    rs = _rs_terms(open, high, low, close)
    rs[0] = np.nan  # every term starts with the bar that has a previous close, like the overnight one
    k = 0.34 / (1.34 + (window + 1) / (window - 1))
    var = rolling_var(overnight, window) + k * rolling_var(intraday, window) + (1 - k) * rolling_mean(rs, window)
    return like(_annualized(var, periods_per_year), close, "yang_zhang")


@dataclass(frozen=True, slots=True)
class VarianceRiskPremium:
    """Implied minus realized, in the two units traders quote.

    Attributes:
        vol_points: ``(implied - realized) * 100`` (vol points; +3.0 = implied 3 points over realized).
        variance: ``implied^2 - realized^2`` (annualized variance, decimal; what a variance swap pays).
        ratio: ``implied / realized`` (dimensionless; > 1 when options are rich to realized).
    """

    vol_points: Any
    variance: Any
    ratio: Any


def variance_risk_premium(implied_vol: Any, realized_vol: Any) -> VarianceRiskPremium:
    """The variance risk premium of ``implied_vol`` over ``realized_vol`` (both annualized decimals).

    Scalars give floats; arrays broadcast and give arrays (NaN where either input is NaN). The usual
    pairing is the 30-day ATM IV against the 21-trading-day realized vol.
    """
    iv = np.asarray(implied_vol, dtype=np.float64)
    rv = np.asarray(realized_vol, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(rv > 0, iv / np.where(rv > 0, rv, 1.0), np.nan)
    out = ((iv - rv) * 100.0, iv * iv - rv * rv, ratio)
    if out[0].ndim == 0:
        return VarianceRiskPremium(*(float(x) for x in out))
    template = implied_vol if hasattr(implied_vol, "index") else realized_vol
    if out[0].ndim == 1 and len(out[0]) == len(getattr(template, "index", ())):
        out = tuple(like(x, template) for x in out)  # a Series in gives Series out, on its index
    return VarianceRiskPremium(*out)
