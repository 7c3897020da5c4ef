"""Forward and discount factor per expiry, implied from put-call parity.

For European options on one expiry, ``C(K) - P(K) = DF * (F - K)``: a straight line in the strike
with slope ``-DF`` and root ``F``. We fit that line to call/put mid pairs at the same strike with sane
two-sided quotes (no crossed / locked / zero-bid / no-quote / out-of-bounds / wide flags), using the
``n_near`` strikes nearest the money, weighted by the inverse variance of the pair's mid (from the two
half-spreads) and made robust with Huber IRLS (a stale pair far from the line is down-weighted,
not allowed to drag the forward).

Short expiries do not identify the discount factor (over a +-50 point strike range a 0.05 point
quote error moves the implied rate by percents), but they do identify the forward. So when the
slope's standard error in rate terms exceeds ``max_rate_se``, or the rate is implausible, or there
are fewer than ``min_pairs`` pairs, the discount factor comes from the rates implied by the
well-determined expiries (linear in T, flat beyond), and only the forward is fitted. With no usable
pair at all the forward is the spot carried at the carry rate implied by the other expiries. Each
:class:`ExpiryForward` says which of these happened in ``method`` and ``reason``.

Everything is vectorized across expiries (group sums with ``np.bincount``); there is no per-expiry
Python loop in the fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import numpy as np

from spx_core.domain.contracts import Root
from spx_core.domain.quotes import QuoteFlag
from spx_core.domain.snapshot import ChainSnapshot, ExpirySlice

__all__ = ["ForwardConfig", "ForwardMethod", "ExpiryForward", "implied_forwards", "forwards_from_slices"]

_BAD_FLAGS = int(QuoteFlag.CROSSED | QuoteFlag.LOCKED | QuoteFlag.ZERO_BID | QuoteFlag.NO_QUOTE
                 | QuoteFlag.OUTSIDE_BOUNDS | QuoteFlag.WIDE)


class ForwardMethod(StrEnum):
    PARITY_FIT = "parity fit"  # forward and discount factor both from the parity line
    PARITY_FIXED_DF = "parity, discount from term structure"  # forward from parity, DF from other expiries
    SPOT_CARRY = "spot with implied carry"  # no usable pair: spot carried at the other expiries' carry
    EXPIRED = "expired"  # t <= 0: forward = spot, DF = 1


@dataclass(frozen=True, slots=True)
class ForwardConfig:
    """How forwards are implied.

    Attributes:
        n_near: number of call/put pairs nearest the money always used per expiry (count).
        near_width: pairs with ``|ln(K/F)| <= near_width * sqrt(T)`` are used as well (dimensionless;
            long expiries have wide strike steps and need a wider window to pin the discount factor).
        min_pairs: fewest pairs needed to fit the discount factor as well as the forward (count).
        max_rate_se: largest standard error of the implied rate (continuously compounded, per year)
            accepted from the parity slope; above it the discount factor comes from other expiries.
        rate_bounds: plausible implied rates (per year, continuous); outside them the slope is not used.
        fallback_rate: rate (per year, continuous) used when no expiry identifies one.
        huber_c: Huber threshold in robust standard deviations (dimensionless).
        iterations: IRLS iterations (count).
    """

    n_near: int = 20
    near_width: float = 0.1
    min_pairs: int = 4
    max_rate_se: float = 0.004
    rate_bounds: tuple[float, float] = (-0.02, 0.15)
    fallback_rate: float = 0.0
    huber_c: float = 1.345
    iterations: int = 8

    def __post_init__(self) -> None:
        if self.n_near < 2 or self.min_pairs < 2:
            raise ValueError(f"ForwardConfig: n_near ({self.n_near}) and min_pairs ({self.min_pairs}) must be >= 2")
        if not self.max_rate_se > 0 or not self.huber_c > 0 or self.iterations < 1:
            raise ValueError("ForwardConfig: max_rate_se and huber_c must be > 0 and iterations >= 1")
        if not self.rate_bounds[0] < self.rate_bounds[1]:
            raise ValueError(f"ForwardConfig.rate_bounds {self.rate_bounds} must be (low, high) with low < high")


@dataclass(frozen=True, slots=True)
class ExpiryForward:
    """The implied forward of one (root, expiry).

    Attributes:
        t: years to expiry (ACT/365, intraday precise).
        forward: forward price (index points).
        discount: discount factor to expiry (dimensionless).
        n_pairs: call/put pairs used (count).
        rmse: robust-weighted RMS parity residual of the used pairs (index points; NaN if unused).
        rate: implied continuously compounded rate ``-ln(DF)/t`` (per year).
        method / reason: how the forward was obtained, and why a fallback was used ("" when fitted).
        start / stop: the snapshot rows of this expiry.
    """

    root: Root
    expiry: date
    t: float
    forward: float
    discount: float
    n_pairs: int
    rmse: float
    rate: float
    method: ForwardMethod
    reason: str
    start: int
    stop: int


def implied_forwards(snapshot: ChainSnapshot, *, config: ForwardConfig | None = None,
                     t_rows: np.ndarray | None = None) -> list[ExpiryForward]:
    """Forward and discount factor per (root, expiry) of ``snapshot``, in ``snapshot.expiries()`` order."""
    slices = snapshot.expiries()
    if t_rows is None:
        t_rows = snapshot.time_to_expiry()
    return forwards_from_slices(snapshot, slices, t_rows, config or ForwardConfig())


def forwards_from_slices(snapshot: ChainSnapshot, slices: list[ExpirySlice], t_rows: np.ndarray,
                         config: ForwardConfig) -> list[ExpiryForward]:
    n_exp = len(slices)
    if n_exp == 0:
        return []
    starts = np.array([s.start for s in slices], dtype=np.int64)
    t = np.asarray(t_rows, dtype=np.float64)[starts]
    pairs = _pairs(snapshot, slices)
    fit = _fit_lines(pairs, n_exp, np.maximum(t, 0.0), config)
    return _assemble(snapshot, slices, t, fit, config)


@dataclass(frozen=True, slots=True)
class _Pairs:
    group: np.ndarray  # expiry index per pair
    strike: np.ndarray
    y: np.ndarray  # C_mid - P_mid
    w: np.ndarray  # inverse variance of y


def _pairs(snapshot: ChainSnapshot, slices: list[ExpirySlice]) -> _Pairs:
    c = snapshot.columns
    n = len(snapshot)
    group_of_row = np.repeat(np.arange(len(slices)), [s.stop - s.start for s in slices])
    bid, ask, flags = c["bid"], c["ask"], c["flags"]
    with np.errstate(invalid="ignore"):
        sane = (np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask > bid) & ((flags & _BAD_FLAGS) == 0))
    if n < 2:
        empty = np.zeros(0)
        return _Pairs(np.zeros(0, np.int64), empty, empty, empty)
    # Canonical order is (expiry, root, strike, call first): a pair is a call row followed by its put.
    i = np.flatnonzero(c["is_call"][:-1] & ~c["is_call"][1:] & (c["strike"][:-1] == c["strike"][1:])
                       & (group_of_row[:-1] == group_of_row[1:]) & sane[:-1] & sane[1:])
    j = i + 1
    half_c = 0.5 * (ask[i] - bid[i])
    half_p = 0.5 * (ask[j] - bid[j])
    y = 0.5 * (bid[i] + ask[i]) - 0.5 * (bid[j] + ask[j])
    # Floor the variance at a quarter tick so a locked-looking pair cannot take all the weight.
    var = np.maximum(half_c ** 2 + half_p ** 2, 0.025 ** 2)
    return _Pairs(group_of_row[i], c["strike"][i], y, 1.0 / var)


@dataclass(frozen=True, slots=True)
class _LineFit:
    n: np.ndarray  # pairs used per expiry
    f0: np.ndarray  # centring strike (rough forward)
    alpha: np.ndarray  # intercept at f0: DF*(F - f0)
    beta: np.ndarray  # slope: -DF
    beta_se: np.ndarray
    rmse: np.ndarray
    # for the fixed-DF path: per pair values, selected and robust weights
    group: np.ndarray
    strike: np.ndarray
    y: np.ndarray
    weight: np.ndarray


def _group_sum(g: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(g, weights=v, minlength=n)


def _fit_lines(p: _Pairs, n_exp: int, t: np.ndarray, config: ForwardConfig) -> _LineFit:
    g = p.group
    # Rough forward: the strike where C - P is smallest in size, corrected by C - P itself (DF ~ 1).
    f0 = np.full(n_exp, np.nan)
    if len(g):
        order = np.lexsort((np.abs(p.y), g))
        first = order[np.r_[True, g[order][1:] != g[order][:-1]]]
        f0[g[first]] = p.strike[first] + p.y[first]
    # Keep the n_near pairs nearest the rough forward in each expiry.
    dist = np.abs(p.strike - f0[g]) if len(g) else np.zeros(0)
    order = np.lexsort((dist, g))
    gs = g[order]
    group_start = np.searchsorted(gs, np.arange(n_exp))
    rank = np.arange(len(gs)) - group_start[gs]
    with np.errstate(invalid="ignore", divide="ignore"):
        near = np.abs(np.log(p.strike[order] / f0[gs])) <= config.near_width * np.sqrt(t[gs])
    keep = np.sort(order[(rank < config.n_near) | near])
    g, k, y, w0 = g[keep], p.strike[keep], p.y[keep], p.w[keep]
    x = k - f0[g]
    h = np.ones_like(w0)  # Huber weights
    n = np.bincount(g, minlength=n_exp).astype(np.float64)
    alpha = beta = scale = np.zeros(n_exp)
    for _ in range(config.iterations):
        w = w0 * h
        sw, sx, sy = _group_sum(g, w, n_exp), _group_sum(g, w * x, n_exp), _group_sum(g, w * y, n_exp)
        sxx, sxy = _group_sum(g, w * x * x, n_exp), _group_sum(g, w * x * y, n_exp)
        with np.errstate(invalid="ignore", divide="ignore"):
            det = sw * sxx - sx * sx
            beta = np.where(det > 0, (sw * sxy - sx * sy) / det, -1.0)
            alpha = np.where(sw > 0, (sy - beta * sx) / sw, 0.0)
        u = (y - alpha[g] - beta[g] * x) * np.sqrt(w0)  # standardized residuals
        scale = np.maximum(1.4826 * _group_median(g, np.abs(u), n_exp), 1e-3)
        h = np.minimum(1.0, config.huber_c / np.maximum(np.abs(u) / scale[g], 1e-300))
    w = w0 * h
    resid = y - alpha[g] - beta[g] * x
    sw = _group_sum(g, w, n_exp)
    with np.errstate(invalid="ignore", divide="ignore"):
        rmse = np.sqrt(_group_sum(g, w * resid ** 2, n_exp) / sw)
        xbar = _group_sum(g, w * x, n_exp) / sw
        sxx_c = _group_sum(g, w * (x - xbar[g]) ** 2, n_exp)
        # Residual variance in standardized units (scale^2) times the weighted design's inverse.
        chi2 = _group_sum(g, w * resid ** 2, n_exp) / np.maximum(n - 2, 1)
        beta_se = np.sqrt(chi2 / sxx_c)
    return _LineFit(n.astype(np.int64), f0, alpha, beta, beta_se, rmse, g, k, y, w)


def _group_median(g: np.ndarray, v: np.ndarray, n_exp: int) -> np.ndarray:
    """Median of ``v`` per group (0 for an empty group); NaNs sort last, as in ``np.sort``.

    Groups arrive contiguous and in order (pairs follow the snapshot's canonical order), so the
    values are laid out as one row per group (NaN-padded) and sorted along the rows in one call:
    ~10x faster than a lexsort on a full chain, which matters since this runs 8 times per fit.
    """
    out = np.zeros(n_exp)
    if not len(g):
        return out
    count = np.bincount(g, minlength=n_exp)
    if np.any(g[1:] < g[:-1]):  # not contiguous: sort by (group, value)
        order = np.lexsort((v, g))
        g, v = g[order], v[order]
    start = np.cumsum(count) - count
    grid = np.full((n_exp, int(count.max())), np.nan)
    grid[g, np.arange(len(g)) - start[g]] = v
    grid.sort(axis=1)
    has = np.flatnonzero(count)
    c = count[has]
    out[has] = 0.5 * (grid[has, (c - 1) // 2] + grid[has, c // 2])
    return out


def _assemble(snapshot: ChainSnapshot, slices: list[ExpirySlice], t: np.ndarray, fit: _LineFit,
              config: ForwardConfig) -> list[ExpiryForward]:
    n_exp = len(slices)
    live = t > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        df_fit = -fit.beta
        rate_fit = -np.log(df_fit) / t
        rate_se = fit.beta_se / (df_fit * t)
    lo, hi = config.rate_bounds
    good = (live & (fit.n >= config.min_pairs) & np.isfinite(rate_fit) & (rate_fit > lo) & (rate_fit < hi)
            & (rate_se <= config.max_rate_se))
    rate = _rate_term_structure(t, rate_fit, good, config.fallback_rate)
    df = np.where(good, df_fit, np.exp(-rate * t))
    forward = np.full(n_exp, np.nan)
    forward[good] = fit.f0[good] + fit.alpha[good] / df_fit[good]
    # Fixed-DF forward: weighted mean of K + (C - P)/DF over the used pairs (robust weights kept).
    g = fit.group
    with np.errstate(invalid="ignore", divide="ignore"):
        f_pairs = fit.strike + fit.y / df[g]
        f_fixed = _group_sum(g, fit.weight * f_pairs, n_exp) / _group_sum(g, fit.weight, n_exp)
    fixed = live & ~good & (fit.n > 0)
    forward[fixed] = f_fixed[fixed]
    spot = snapshot.underlying_price
    carry = _carry(t, forward, spot, good | fixed)
    none = live & (fit.n == 0)
    forward[none] = spot * np.exp(carry[none] * t[none])
    forward[~live] = spot
    df[~live] = 1.0
    out = []
    for e, s in enumerate(slices):
        method, reason = _method(bool(live[e]), bool(good[e]), int(fit.n[e]), float(rate_fit[e]),
                                 float(rate_se[e]), config)
        out.append(ExpiryForward(s.root, s.expiry, float(t[e]), float(forward[e]), float(df[e]), int(fit.n[e]),
                                 float(fit.rmse[e]) if fit.n[e] else float("nan"),
                                 float(-np.log(df[e]) / t[e]) if live[e] else 0.0, method, reason,
                                 s.start, s.stop))
    return out


def _rate_term_structure(t: np.ndarray, rate: np.ndarray, good: np.ndarray, fallback: float) -> np.ndarray:
    """Implied rates of the well-determined expiries, linear in T with flat ends (fallback if none)."""
    if not good.any():
        return np.full_like(t, fallback)
    order = np.argsort(t[good])
    return np.interp(t, t[good][order], rate[good][order])


def _carry(t: np.ndarray, forward: np.ndarray, spot: float, known: np.ndarray) -> np.ndarray:
    """Carry ln(F/S)/T from expiries with a parity forward, linear in T (0 when none or no spot)."""
    ok = known & np.isfinite(forward) & (t > 0)
    if not ok.any() or not np.isfinite(spot) or spot <= 0:
        return np.zeros_like(t)
    order = np.argsort(t[ok])
    c = np.log(forward[ok] / spot) / t[ok]
    return np.interp(t, t[ok][order], c[order])


def _method(live: bool, good: bool, n: int, rate: float, rate_se: float,
            config: ForwardConfig) -> tuple[ForwardMethod, str]:
    if not live:
        return ForwardMethod.EXPIRED, "expired: forward = spot, discount = 1"
    if good:
        return ForwardMethod.PARITY_FIT, ""
    if n == 0:
        return ForwardMethod.SPOT_CARRY, "no call/put pair with sane two-sided quotes; spot carried at implied carry"
    if n < config.min_pairs:
        why = f"only {n} pair(s) (< {config.min_pairs})"
    elif not np.isfinite(rate) or not config.rate_bounds[0] < rate < config.rate_bounds[1]:
        why = f"implied rate {rate:.4f} outside {config.rate_bounds}"
    else:
        why = f"implied rate too uncertain (se {rate_se:.4f} > {config.max_rate_se})"
    return ForwardMethod.PARITY_FIXED_DF, f"{why}: discount factor from the other expiries' rates"
