"""A smooth, arbitrage-checked correction on top of an SVI slice.

Raw SVI has five parameters and asymptotically linear wings. On real SPX chains (e.g. the 2019-06-26
DataShop file) even a global optimizer (differential evolution) leaves raw SVI inside the bid/ask IV
band for only 55-80% of liquid quotes on 1-3 month expiries: the put wing's curvature changes sign in
a way no SVI slice follows, while the bands are 0.1-0.3 vol points wide. So each slice may carry a
correction ``c(k)``: a cubic P-spline in total variance over the quoted k range, with knots at
quantiles of the quoted strikes. Beyond the quoted range the correction continues linearly (value and
slope of the ends), so the wings keep SVI's curvature and only their slope changes; the slopes are
checked against Lee's bounds (total-variance wing slopes in [0, 2]).

The correction is fitted by penalized weighted least squares to the SVI residuals (same weights as
the SVI fit). After each solve the corrected slice is checked on a fine grid for butterfly arbitrage
(Gatheral-Jacquier ``g >= 0``) and positive total variance; on a violation the smoothing penalty is
raised tenfold and the spline refitted, and after ``max_rounds`` the correction is dropped (pure SVI).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import BSpline

from spx_core.surface.svi import svi_derivatives

__all__ = ["CorrectionConfig", "SmileCorrection", "fit_correction", "corrected_derivatives"]


@dataclass(frozen=True, slots=True)
class CorrectionConfig:
    """How corrections are fitted.

    Attributes:
        enabled: fit corrections at all (False: pure SVI slices).
        points_per_knot: quotes per interior knot (count); fewer knots on thin expiries.
        max_knots: most interior knots per slice (count).
        smoothing: initial second-difference penalty, relative to the data term's scale (dimensionless).
        max_rounds: smoothing increases (x10) tried before the correction is dropped (count).
        active_set_rounds: per smoothing level, solves that add the violated no-arbitrage conditions
            (g >= 0, calendar floor) as heavily weighted linearized rows (count).
    """

    enabled: bool = True
    points_per_knot: int = 5
    max_knots: int = 40
    smoothing: float = 1e-3
    max_rounds: int = 4
    active_set_rounds: int = 12

    def __post_init__(self) -> None:
        if (self.points_per_knot < 2 or self.max_knots < 1 or not self.smoothing > 0 or self.max_rounds < 1
                or self.active_set_rounds < 1):
            raise ValueError("CorrectionConfig: points_per_knot >= 2, max_knots >= 1, smoothing > 0, max_rounds >= 1")


@dataclass(frozen=True, slots=True)
class SmileCorrection:
    """Cubic spline correction in total variance on ``[knots[0], knots[-1]]``, linear beyond."""

    knots: tuple[float, ...]  # full (clamped) knot vector
    coef: tuple[float, ...]  # one per B-spline

    def derivatives(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(c, c', c'')`` at ``k``."""
        k = np.asarray(k, dtype=np.float64)
        t = np.asarray(self.knots)
        lo, hi = t[0], t[-1]
        spline = BSpline(t, np.asarray(self.coef), 3, extrapolate=False)
        kk = np.clip(k, lo, hi)
        c0, c1, c2 = (spline(kk, nu=nu) for nu in (0, 1, 2))
        outside = (k < lo) | (k > hi)
        return c0 + c1 * (k - kk), c1, np.where(outside, 0.0, c2)

    def w(self, k: np.ndarray) -> np.ndarray:
        return self.derivatives(k)[0]


def corrected_derivatives(params: np.ndarray, corr: SmileCorrection | None,
                          k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(w, w', w'')`` of an SVI slice plus its correction (if any) at ``k``."""
    w, w1, w2 = svi_derivatives(k, *params)
    if corr is None:
        return w, w1, w2
    c0, c1, c2 = corr.derivatives(k)
    return w + c0, w1 + c1, w2 + c2


def _g(k: np.ndarray, w: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return (1.0 - 0.5 * k * w1 / w) ** 2 - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2


def fit_correction(*, k: np.ndarray, resid: np.ndarray, scale: np.ndarray, params: np.ndarray,
                   config: CorrectionConfig, check_points: int = 401, margin: float = 3.0,
                   w_floor=None) -> SmileCorrection | None:
    """Correction for one slice from its points' SVI residuals ``w_mkt - w_svi`` (total variance).

    The arbitrage checks run on ``check_points`` over the quoted range widened by ``margin`` ATM
    standard deviations (``sqrt(w(0))``) each side. ``w_floor(k)``, when given, is the previous expiry's total variance: the corrected slice must stay
    at or above it (no calendar arbitrage introduced by the correction).

    Returns None when there are too few points for two interior knots or no arbitrage-free
    correction was found.
    """
    n_int = min(config.max_knots, len(k) // config.points_per_knot)
    if n_int < 2 or np.all(np.abs(resid) <= scale):
        return None  # too thin to correct, or SVI already inside every band
    lo, hi = float(k.min()), float(k.max())
    if not hi > lo:
        return None
    interior = np.unique(np.quantile(k, np.linspace(0.0, 1.0, n_int + 2)[1:-1]))
    interior = interior[(interior > lo) & (interior < hi)]
    t = np.r_[[lo] * 4, interior, [hi] * 4]
    n_basis = len(t) - 4
    basis = BSpline.design_matrix(np.clip(k, lo, hi), t, 3).toarray()
    weight = 1.0 / scale ** 2
    ata = basis.T @ (basis * weight[:, None])
    atb = basis.T @ (weight * resid)
    d2 = np.diff(np.eye(n_basis), 2, axis=0)
    pen = d2.T @ d2 + 1e-9 * np.eye(n_basis)
    lam = config.smoothing * np.trace(ata) / n_basis
    sd = float(np.sqrt(max(svi_derivatives(0.0, *params)[0], 1e-8)))
    grid = np.linspace(lo - margin * sd, hi + margin * sd, check_points)
    floor = np.full(check_points, -np.inf) if w_floor is None else np.minimum(
        w_floor(grid), svi_derivatives(grid, *params)[0])  # never demand more than SVI itself gives
    w_base, w1_base, w2_base = svi_derivatives(grid, *params)
    # The correction must not add butterfly arbitrage; a (tiny) violation of the SVI slice itself is
    # not its to fix (it is reported by the fit check).
    g_floor = np.minimum(np.nan_to_num(_g(grid, w_base, w1_base, w2_base), nan=0.0), 0.0)
    v_row, d2_row = _grid_design(t, grid)
    mu = 1e4 * np.trace(ata) / n_basis  # weight of an active no-arbitrage row
    for _ in range(config.max_rounds):
        cons_a = np.zeros_like(ata)
        cons_b = np.zeros(n_basis)
        for _ in range(config.active_set_rounds):
            try:
                coef = np.linalg.solve(ata + lam * pen + cons_a, atb + cons_b)
            except np.linalg.LinAlgError:
                break
            if not np.all(np.isfinite(coef)) or np.abs(coef).max() > 10.0:  # diverging active set
                break
            corr = SmileCorrection(tuple(t.tolist()), tuple(coef.tolist()))
            with np.errstate(all="ignore"):
                w, w1, w2 = corrected_derivatives(params, corr, grid)
            g = _g(grid, w, w1, w2)
            bad_g = ~(g >= g_floor)
            bad_w = ~(w >= np.maximum(floor, 0.0) - 1e-12)
            wings_ok = 0.0 <= -w1[0] <= 2.0 and 0.0 <= w1[-1] <= 2.0  # Lee: wing slopes in [0, 2]
            if wings_ok and not bad_g.any() and not bad_w.any():
                return corr
            # Active set: pin c'' up where g < 0 (g holds +w''/2) and c up where w is below its floor.
            c2 = d2_row @ coef
            target = c2[bad_g] + 2.0 * (1e-3 + g_floor[bad_g] - np.nan_to_num(g[bad_g], nan=-1.0))
            cons_a += mu * d2_row[bad_g].T @ d2_row[bad_g]
            cons_b += mu * d2_row[bad_g].T @ target
            need = np.maximum(floor, 1e-12)[bad_w] - w[bad_w] + (v_row[bad_w] @ coef)
            cons_a += mu * v_row[bad_w].T @ v_row[bad_w]
            cons_b += mu * v_row[bad_w].T @ need
        lam *= 10.0
    return None


def _grid_design(t: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Design rows on ``grid`` for the correction's value (linear beyond the knots) and c''."""
    n_basis = len(t) - 4
    lo, hi = t[0], t[-1]
    eye = BSpline(t, np.eye(n_basis), 3, extrapolate=False)
    kk = np.clip(grid, lo, hi)
    value = eye(kk) + eye(kk, nu=1) * (grid - kk)[:, None]
    second = np.where(((grid < lo) | (grid > hi))[:, None], 0.0, eye(kk, nu=2))
    return value, second
