"""Static-arbitrage checks, on the market quotes themselves and on a fitted surface.

Market checks use tradeable prices (bid/ask), so a flag means a real arbitrage at the quoted prices,
not a noisy mid:
    * vertical: a call (put) cheaper to buy at a lower (higher) strike than it sells for at the next
      strike, or a call/put spread whose bid exceeds the discounted strike distance;
    * butterfly: the middle strike's bid above the interpolation of the wings' asks (convexity);
    * calendar: at the same forward-moneyness the longer expiry's ask total variance below the shorter
      expiry's bid total variance (expiries ordered by time to expiry).
Mid-price violations (the same tests on mids) are counted too, as information.

Fit checks work on the SVI slices: minimum Gatheral-Jacquier ``g(k)`` on a fine grid (butterfly) and
minimum ``w_i(k) - w_{i-1}(k)`` between consecutive expiries (calendar).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag

import numpy as np

from spx_core.domain.quotes import QuoteFlag

__all__ = ["ArbFlag", "ArbReport", "market_arbitrage", "fit_arbitrage"]

_UNUSABLE = int(QuoteFlag.CROSSED | QuoteFlag.NO_QUOTE)


class ArbFlag(IntFlag):
    NONE = 0
    VERTICAL = 1
    BUTTERFLY = 2
    CALENDAR = 4

    def names(self) -> list[str]:
        return [f.name.lower() for f in (ArbFlag.VERTICAL, ArbFlag.BUTTERFLY, ArbFlag.CALENDAR) if self & f]


@dataclass(frozen=True, slots=True)
class ArbReport:
    """Arbitrage found for one expiry.

    Attributes:
        flags: which kinds were found.
        vertical / butterfly / calendar: number of violations of each kind (count).
        mid_violations: violations of the same tests on mid prices (count; information only).
        worst: size of the worst violation (index points for market checks; ``-min g`` or
            ``-min dw`` for fit checks).
    """

    flags: ArbFlag = ArbFlag.NONE
    vertical: int = 0
    butterfly: int = 0
    calendar: int = 0
    mid_violations: int = 0
    worst: float = 0.0

    def as_dict(self) -> dict:
        return {"flags": self.flags.names(), "vertical": self.vertical, "butterfly": self.butterfly,
                "calendar": self.calendar, "mid_violations": self.mid_violations, "worst": self.worst}


def _consecutive(group: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) of consecutive entries of ``idx`` within the same group."""
    same = group[idx[1:]] == group[idx[:-1]]
    return idx[:-1][same], idx[1:][same]


def _side_checks(bid, ask, strike, discount, group, rows, is_call: bool, n_exp: int, tol: float):
    """Vertical + butterfly counts per expiry for one option side (rows sorted by strike per expiry)."""
    i, j = _consecutive(group, rows)
    lo, hi = (i, j) if is_call else (j, i)  # lo: the option that must be worth more
    mono = ask[lo] < bid[hi] - tol
    slope = bid[lo] - ask[hi] > discount[i] * (strike[j] - strike[i]) + tol
    mid = 0.5 * (bid + ask)
    mono_mid = mid[lo] < mid[hi] - tol
    vert = np.bincount(group[i], weights=mono | slope, minlength=n_exp)
    worst_v = np.maximum(np.where(mono, bid[hi] - ask[lo], 0.0), 0.0)
    # Butterflies on consecutive triples i < j < l.
    a, b = i[:-1], j[:-1]
    c = j[1:]
    ok = (j[:-1] == i[1:]) & (group[a] == group[c])
    a, b, c = a[ok], b[ok], c[ok]
    lam = (strike[c] - strike[b]) / (strike[c] - strike[a])
    excess = bid[b] - (lam * ask[a] + (1.0 - lam) * ask[c])
    fly = excess > tol
    fly_mid = mid[b] - (lam * mid[a] + (1.0 - lam) * mid[c]) > tol
    bfly = np.bincount(group[b], weights=fly, minlength=n_exp)
    mids = (np.bincount(group[i], weights=mono_mid, minlength=n_exp)
            + np.bincount(group[b], weights=fly_mid, minlength=n_exp))
    worst = np.zeros(n_exp)
    np.maximum.at(worst, group[i], worst_v)
    np.maximum.at(worst, group[b], np.maximum(np.where(fly, excess, 0.0), 0.0))
    return vert, bfly, mids, worst


def market_arbitrage(civ, *, tol: float = 1e-9) -> list[ArbReport]:
    """Static-arbitrage violations in the quotes of ``civ.snapshot``, one report per expiry."""
    snap = civ.snapshot
    c = snap.columns
    n_exp = len(civ.forwards)
    group = civ.expiry_index
    bid, ask, strike = c["bid"], c["ask"], c["strike"]
    with np.errstate(invalid="ignore"):
        quoted = (np.isfinite(bid) & np.isfinite(ask) & (ask > 0) & (bid >= 0) & ((c["flags"] & _UNUSABLE) == 0))
    bid = np.where(quoted, np.nan_to_num(bid), np.nan)
    vert = np.zeros(n_exp)
    bfly = np.zeros(n_exp)
    mids = np.zeros(n_exp)
    worst = np.zeros(n_exp)
    for is_call in (True, False):
        rows = np.flatnonzero(quoted & (c["is_call"] == is_call))
        v, b, m, w = _side_checks(bid, ask, strike, civ.discount, group, rows, is_call, n_exp, tol)
        vert += v
        bfly += b
        mids += m
        worst = np.maximum(worst, w)
    cal, cal_worst = _market_calendar(civ, quoted)
    out = []
    for e in range(n_exp):
        flags = ((ArbFlag.VERTICAL if vert[e] else ArbFlag.NONE) | (ArbFlag.BUTTERFLY if bfly[e] else ArbFlag.NONE)
                 | (ArbFlag.CALENDAR if cal[e] else ArbFlag.NONE))
        out.append(ArbReport(flags, int(vert[e]), int(bfly[e]), int(cal[e]), int(mids[e]),
                             float(max(worst[e], cal_worst[e]))))
    return out


def _market_calendar(civ, quoted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per expiry: OTM quotes whose ask total variance is below the previous expiry's bid total variance."""
    n_exp = len(civ.forwards)
    count = np.zeros(n_exp, dtype=np.int64)
    worst = np.zeros(n_exp)
    t = np.array([f.t for f in civ.forwards])
    otm = quoted & (civ.snapshot.columns["is_call"] == (civ.k >= 0)) & np.isfinite(civ.iv_bid) & np.isfinite(civ.iv_ask)
    live = [e for e in np.argsort(t, kind="stable") if t[e] > 0]
    prev = None
    for e in live:
        f = civ.forwards[e]
        rows = np.flatnonzero(otm[f.start:f.stop]) + f.start
        if prev is not None and len(rows) and len(prev[0]) >= 2:
            k_prev, w_bid_prev = prev
            k = civ.k[rows]
            inside = (k >= k_prev[0]) & (k <= k_prev[-1])
            w_ask = civ.iv_ask[rows] ** 2 * civ.t[rows]
            gap = np.interp(k, k_prev, w_bid_prev) - w_ask
            bad = inside & (gap > 0)
            count[e] = int(bad.sum())
            worst[e] = float(gap[bad].max()) if bad.any() else 0.0
        if len(rows) >= 2:
            order = np.argsort(civ.k[rows])
            prev = (civ.k[rows][order], (civ.iv_bid[rows] ** 2 * civ.t[rows])[order])
    return count, worst


def fit_arbitrage(*, t: np.ndarray, kgrid: np.ndarray, w_grid: np.ndarray, g_grid: np.ndarray,
                  w_prev_grid: np.ndarray, fitted: np.ndarray, tol: float = 1e-10) -> list[ArbReport]:
    """Butterfly (``g < 0``) and calendar (``w`` below the previous expiry's) violations of fitted slices.

    Args:
        t: (E,) years. kgrid, w_grid, g_grid: (E, G) fine k grid per slice with its total variance and
            Gatheral-Jacquier g. w_prev_grid: (E, G) the previous (shorter) fitted slice's total variance
            on this slice's grid (NaN where there is none). fitted: (E,) which slices hold a fit.
    """
    n_exp = len(t)
    with np.errstate(invalid="ignore"):
        bad_g = ~(g_grid >= -tol) & fitted[:, None]
        min_g = np.where(fitted, np.min(np.where(np.isfinite(g_grid), g_grid, -np.inf), axis=1), 0.0)
        dw = w_grid - w_prev_grid
        bad_c = (dw < -tol) & fitted[:, None]
        cal_worst = np.where(bad_c.any(axis=1), -np.nanmin(np.where(bad_c, dw, np.inf), axis=1), 0.0)
    out = []
    for e in range(n_exp):
        nb, nc = int(bad_g[e].sum()), int(bad_c[e].sum())
        flags = (ArbFlag.BUTTERFLY if nb else ArbFlag.NONE) | (ArbFlag.CALENDAR if nc else ArbFlag.NONE)
        out.append(ArbReport(flags, 0, nb, nc, 0, float(max(-min_g[e] if nb else 0.0, cal_worst[e], 0.0))))
    return out
