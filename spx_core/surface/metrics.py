"""Scores and smile summaries of fitted SVI slices: RMSE, in-band share, ATM IV, 25-delta RR/BF, skew."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from spx_core.domain.quotes import QuoteFlag

__all__ = ["SliceMetrics", "slice_metrics", "delta_strikes"]

_NOT_TWO_SIDED = int(QuoteFlag.CROSSED | QuoteFlag.LOCKED | QuoteFlag.NO_QUOTE | QuoteFlag.ZERO_BID)


@dataclass(frozen=True, slots=True)
class SliceMetrics:
    rmse_volpts: np.ndarray  # (E,) vol points
    in_band_share: np.ndarray  # (E,) fraction, NaN when nothing scored
    n_scored: np.ndarray  # (E,) count
    fitted_iv: np.ndarray  # (n_rows,) model IV per snapshot row


def slice_metrics(civ, *, data_mask: np.ndarray, w_rows: np.ndarray, vega_floor: float) -> SliceMetrics:
    """RMSE over the fitted quotes and in-band share over every two-sided quote with vega >= floor.

    ``w_rows`` is the model total variance at every snapshot row. The RMSE compares the model with
    the centre of the bid/ask IV band (what the fit aims at).
    """
    n_exp = len(civ.forwards)
    g = civ.expiry_index
    with np.errstate(invalid="ignore", divide="ignore"):
        model = np.where(civ.t > 0, np.sqrt(np.maximum(w_rows, 0.0) / civ.t), np.nan)
    c = civ.snapshot.columns
    centre = 0.5 * (civ.iv_bid + civ.iv_ask)
    err2 = np.where(data_mask, (model - centre) ** 2, 0.0)
    n_fit = np.bincount(g, weights=data_mask, minlength=n_exp)
    with np.errstate(invalid="ignore", divide="ignore"):
        rmse = 100.0 * np.sqrt(np.bincount(g, weights=np.nan_to_num(err2), minlength=n_exp) / n_fit)
        scored = ((c["bid"] > 0) & (c["ask"] > c["bid"]) & ((c["flags"] & _NOT_TWO_SIDED) == 0)
                  & np.isfinite(civ.iv_bid) & np.isfinite(civ.iv_ask) & (civ.vega >= vega_floor) & (civ.t > 0))
        inside = scored & (model >= civ.iv_bid) & (model <= civ.iv_ask)
        n_scored = np.bincount(g, weights=scored, minlength=n_exp)
        share = np.bincount(g, weights=inside, minlength=n_exp) / n_scored
    return SliceMetrics(rmse, share, n_scored.astype(np.int64), model)


def delta_strikes(*, kgrid: np.ndarray, w_grid: np.ndarray, t: np.ndarray, w0: np.ndarray, w1: np.ndarray,
                  delta: float = 0.25) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """25-delta risk reversal, butterfly, ATM skew and ATM IV per slice.

    The 25-delta strikes use forward (undiscounted) Black deltas: call ``N(d1) = 0.25``, put
    ``N(d1) = 0.75``, with ``d1 = -k/sqrt(w(k)) + sqrt(w(k))/2``, found by linear interpolation of d1 on
    each slice's fine k grid (d1 falls with k on an arbitrage-free slice; the grid may repeat points).

    Args:
        kgrid, w_grid: (E, G) fine grid and the slice total variance on it.
        t: (E,) years; w0, w1: (E,) total variance and its k-derivative at k = 0.

    Returns:
        rr25 = IV(call 25d) - IV(put 25d) (vol); bf25 = (IV(c25) + IV(p25))/2 - ATM IV (vol);
        skew = dIV/dk at k = 0 (vol per unit log-moneyness); atm = IV at k = 0 (vol). NaN for t <= 0
        or when a 25-delta strike falls outside the grid.
    """
    n_exp = len(t)
    tt = np.where(t > 0, t, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        sw = np.sqrt(np.maximum(w_grid, 1e-300))
        d1 = -kgrid / sw + 0.5 * sw
        vol = np.sqrt(np.maximum(w_grid, 0.0) / tt[:, None])
    out = np.full((2, n_exp), np.nan)
    for j, target in enumerate((ndtri(delta), ndtri(1.0 - delta))):
        for e in range(n_exp):
            x = d1[e, ::-1]  # increasing in k reversed
            if not (np.all(np.isfinite(x)) and x[0] <= target <= x[-1] and np.all(np.diff(x) >= 0)):
                continue
            out[j, e] = np.interp(target, x, vol[e, ::-1])
    call25, put25 = out
    with np.errstate(invalid="ignore", divide="ignore"):
        atm = np.sqrt(np.maximum(w0, 0.0) / tt)
        skew = w1 / (2.0 * np.sqrt(np.maximum(w0, 1e-300) * tt))
    return call25 - put25, 0.5 * (call25 + put25) - atm, skew, atm
