"""A smooth correction on top of the SVI slices: the spline, its evaluation, and the batched problem.

Raw SVI has five parameters and asymptotically linear wings. On real SPX chains (e.g. the 2019-06-26
DataShop file) even a global optimizer leaves raw SVI inside the bid/ask IV band for only 55-80% of
liquid quotes on 1-3 month expiries: the put wing's curvature changes in a way no SVI slice follows,
while the bands are 0.1-0.3 vol points wide (measured here: raw SVI 49% in band overall). So each
slice carries a correction ``c(k)`` in total variance: a cubic B-spline with uniform knots over the
quoted k range (a P-spline: second-difference penalty on the coefficients), natural at the ends
(``c'' = 0``) and linear beyond, so the wings keep SVI's curvature and only their slopes change.

The unconstrained correction of every slice is one penalized weighted least squares (same weights
as the SVI fit). Design rows have four non-zero B-splines per point, so the normal equations of all
slices are built with one ``bincount`` and solved with one batched solve. Making the corrected
slices arbitrage-free is :mod:`spx_core.surface.correction_fit`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spx_core.surface.svi import g_from_derivatives, svi_derivatives

__all__ = ["CorrectionConfig", "SmileCorrection", "corrected_derivatives", "knot_points", "spline_layout"]

W_TINY = 1e-10  # smallest accepted total variance
MU = 1e4  # weight of a hard condition (natural ends) relative to the mean data weight per coefficient


@dataclass(frozen=True, slots=True)
class CorrectionConfig:
    """How corrections are fitted.

    Attributes:
        enabled: fit corrections at all (False: pure SVI slices).
        points_per_knot: quotes per spline segment (count); fewer knots on thin expiries.
        max_knots: most spline segments per slice (count).
        smoothing: second-difference penalty, relative to the data term's scale (dimensionless).
        active_set_rounds: most linearize-solve-line-search rounds per slice whose unconstrained
            correction is not arbitrage-free (count).
    """

    enabled: bool = True
    points_per_knot: int = 4
    max_knots: int = 40
    smoothing: float = 1e-3
    active_set_rounds: int = 10

    def __post_init__(self) -> None:
        if (self.points_per_knot < 2 or self.max_knots < 1 or not self.smoothing > 0
                or self.active_set_rounds < 1):
            raise ValueError("CorrectionConfig: points_per_knot >= 2, max_knots >= 1, smoothing > 0 and "
                             "active_set_rounds >= 1")


def _basis(x: np.ndarray, lo: np.ndarray, h: np.ndarray, n_seg: np.ndarray):
    """Uniform cubic B-splines on ``[lo, lo + n_seg h]`` (linear beyond), broadcast over ``x``.

    Returns ``(i0, V, D1, D2)``: the first of the four non-zero basis indices per point and their
    value, first and second k-derivative weights (``(..., 4)`` each).
    """
    u_all = (x - lo) / h
    u_all = np.where(np.isfinite(u_all), u_all, 0.0)  # NaN k: any segment (the result is NaN anyway)
    s = np.clip(np.floor(u_all), 0, n_seg - 1)
    u = np.clip(u_all - s, 0.0, 1.0)
    v = 1.0 - u
    uu, hh = u * u, np.broadcast_to(h, u.shape)
    ext = x - np.clip(x, lo, lo + n_seg * h)
    inside = ext == 0.0
    V, D1, D2 = (np.empty(u.shape + (4,)) for _ in range(3))
    D1[..., 0], D1[..., 1], D1[..., 2], D1[..., 3] = -v * v, 3 * uu - 4 * u, -3 * uu + 2 * u + 1, uu
    D1 /= (2.0 * hh)[..., None]
    V[..., 0], V[..., 1] = v * v * v / 6.0, (3 * uu * u - 6 * uu + 4) / 6.0
    V[..., 2], V[..., 3] = (-3 * uu * u + 3 * uu + 3 * u + 1) / 6.0, uu * u / 6.0
    V += D1 * ext[..., None]  # linear continuation beyond the knots
    c2 = np.where(inside, 1.0 / (hh * hh), 0.0)
    D2[..., 0], D2[..., 1], D2[..., 2], D2[..., 3] = v * c2, (3 * u - 2) * c2, (1 - 3 * u) * c2, u * c2
    return s.astype(np.int64), V, D1, D2


def dot4(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sum over the last axis (length 4) of ``a * b`` (einsum: much faster than ``np.sum`` here)."""
    return np.einsum("...i,...i->...", a, b)


@dataclass(frozen=True, slots=True)
class SmileCorrection:
    """Uniform cubic spline correction in total variance on ``[knots[3], knots[-4]]``, linear beyond."""

    knots: tuple[float, ...]  # full uniform knot vector (3 extra knots each side)
    coef: tuple[float, ...]  # one per B-spline (len(knots) - 4)

    def derivatives(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(c, c', c'')`` at ``k``."""
        k = np.asarray(k, dtype=np.float64)
        t = self.knots
        n_seg = len(t) - 7
        lo, h = np.float64(t[3]), np.float64((t[-4] - t[3]) / n_seg)
        i0, V, D1, D2 = _basis(k, lo, np.full(k.shape, h), np.full(k.shape, n_seg))
        cg = np.asarray(self.coef)[i0[..., None] + np.arange(4)]
        return dot4(V, cg), dot4(D1, cg), dot4(D2, cg)

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


@dataclass(frozen=True, slots=True)
class _Batch:
    """Fixed parts of the batched problem for E slices: spline layout, data normal equations, grid."""

    M: int  # padded basis count
    n_seg: np.ndarray  # (E,)
    lo: np.ndarray
    h: np.ndarray
    base: np.ndarray  # (E, M, M) data normal matrix + smoothing penalty
    rhs: np.ndarray  # (E, M)
    scale: np.ndarray  # (E,) mean diagonal of the data normal matrix
    i0: np.ndarray  # (E, G) grid
    V: np.ndarray  # (E, G, 4)
    D1: np.ndarray
    D2: np.ndarray
    kgrid: np.ndarray  # (E, G)
    svi: tuple[np.ndarray, np.ndarray, np.ndarray]  # (E, G) SVI w, w', w'' on the grid
    params: np.ndarray  # (E, 5) SVI parameters
    wing: np.ndarray  # (E, 2) SVI asymptotic wing slopes b (1 - rho), b (1 + rho)


def _accumulate(n: int, M: int, e: np.ndarray, i0: np.ndarray, R: np.ndarray, wt: np.ndarray,
                target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum over rows of ``wt * R R^T`` and ``wt * R * target`` into (n, M, M), (n, M)."""
    ab = np.arange(4)
    cols = i0[:, None] + ab  # (P, 4)
    flat = (e[:, None, None] * M + cols[:, :, None]) * M + cols[:, None, :]
    outer = (wt[:, None, None] * R[:, :, None]) * R[:, None, :]
    A = np.bincount(flat.ravel(), weights=outer.ravel(), minlength=n * M * M).reshape(n, M, M)
    b = np.bincount((e[:, None] * M + cols).ravel(), weights=((wt * target)[:, None] * R).ravel(), minlength=n * M)
    return A, b.reshape(n, M)


def spline_layout(*, group: np.ndarray, k: np.ndarray, n_exp: int,
                  config: CorrectionConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lo, h, n_seg)`` per slice: uniform knots over the slice's quoted k range."""
    counts = np.bincount(group, minlength=n_exp)
    n_seg = np.clip(counts // config.points_per_knot, 1, config.max_knots)
    kmin, kmax = np.full(n_exp, np.inf), np.full(n_exp, -np.inf)
    np.minimum.at(kmin, group, k)
    np.maximum.at(kmax, group, k)
    width = np.where(kmax > kmin, kmax - kmin, 1e-3)
    lo = np.where(np.isfinite(kmin), kmin, -5e-4) - 1e-9 * width
    return lo, width * (1.0 + 2e-9) / n_seg, n_seg


def knot_points(lo: np.ndarray, h: np.ndarray, n_seg: np.ndarray) -> np.ndarray:
    """(E, max n_seg + 1) knot positions (padded with the last knot).

    ``g`` has a kink at every knot (the spline's third derivative jumps there), so its minimum between
    check points is often at a knot: the check grids include them.
    """
    j = np.minimum(np.arange(int(n_seg.max(initial=1)) + 1)[None, :], n_seg[:, None])
    return lo[:, None] + h[:, None] * j


def _build(*, group, k, resid, weight, params, kgrid, config: CorrectionConfig) -> _Batch:
    n = len(params)
    lo, h, n_seg = spline_layout(group=group, k=k, n_exp=n, config=config)
    M = int(n_seg.max()) + 3
    i0, V, _, _ = _basis(k, lo[group], h[group], n_seg[group])
    A, b = _accumulate(n, M, group, i0, V, weight, resid)
    diag = np.einsum("eii->ei", A)
    basis_count = n_seg + 3
    scale = np.maximum(diag.sum(axis=1) / basis_count, 1e-300)
    D = np.diff(np.eye(M), 2, axis=0)
    pen = np.empty((n, M, M))
    for nb in np.unique(basis_count):
        Dn = D[:nb - 2, :]
        pen[basis_count == nb] = Dn.T @ Dn
    used = np.arange(M)[None, :] < basis_count[:, None]
    ridge = np.where(used, 1e-9, 1.0)  # padded coefficients are pinned to zero
    base = A + (config.smoothing * scale)[:, None, None] * pen
    # Natural ends (c'' = 0 at the first and last knot): beyond the knots the correction is linear,
    # so a curvature jump there would make g jump between check-grid points.
    ends = np.zeros((n, 2, M))
    ends[:, 0, :3] = (1.0, -2.0, 1.0)
    last = basis_count[:, None] - 3 + np.arange(3)
    np.put_along_axis(ends[:, 1], last, np.array([1.0, -2.0, 1.0])[None, :].repeat(n, 0), axis=1)
    base += MU * scale[:, None, None] * np.einsum("eri,erj->eij", ends, ends)
    base[:, np.arange(M), np.arange(M)] += ridge * scale[:, None]
    G = kgrid.shape[1]
    gi0, gV, gD1, gD2 = _basis(kgrid, lo[:, None], np.repeat(h[:, None], G, 1), np.repeat(n_seg[:, None], G, 1))
    svi = svi_derivatives(kgrid, *(params.T[:, :, None]))
    wing = np.stack([params[:, 1] * (1.0 - params[:, 2]), params[:, 1] * (1.0 + params[:, 2])], axis=1)
    return _Batch(M, n_seg, lo, h, base, b, scale, gi0, gV, gD1, gD2, kgrid, svi, params, wing)


def _grid_values(bt: _Batch, coef: np.ndarray, rows: np.ndarray):
    cg = np.take_along_axis(coef[:, None, :], bt.i0[rows][..., None] + np.arange(4), axis=2)
    w = bt.svi[0][rows] + dot4(bt.V[rows], cg)
    w1 = bt.svi[1][rows] + dot4(bt.D1[rows], cg)
    w2 = bt.svi[2][rows] + dot4(bt.D2[rows], cg)
    return w, w1, w2, cg


def _wings(bt: _Batch, rows, cg) -> np.ndarray:
    """Asymptotic total-variance wing slopes (left: -dw/dk at -inf, right: dw/dk at +inf), (E, 2).

    Beyond the knots the correction is linear, so each wing is SVI's ``b (1 -+ rho)`` plus the
    correction's end slope (the grid's first and last points lie beyond the knots).
    """
    c_lo = np.sum(bt.D1[rows][:, 0] * cg[:, 0], -1)
    c_hi = np.sum(bt.D1[rows][:, -1] * cg[:, -1], -1)
    return np.stack([bt.wing[rows, 0] - c_lo, bt.wing[rows, 1] + c_hi], axis=1)


def _check(kg, w, w1, w2, floor, wings):
    """Per grid point: butterfly and floor violations; per slice: Lee wing-slope violations."""
    g = g_from_derivatives(kg, w, w1, w2)
    bad_g = ~(g >= 0.0)
    bad_w = ~(w >= floor)
    bad_slope = ~np.all((wings >= 0.0) & (wings <= 2.0), axis=1)
    return g, bad_g, bad_w, bad_slope


def _feasible(bt: _Batch, coef: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Which slices pass butterfly, positivity and Lee's wing slopes with these coefficients."""
    w, w1, w2, cg = _grid_values(bt, coef, rows)
    _, bad_g, bad_w, bad_slope = _check(bt.kgrid[rows], w, w1, w2, W_TINY, _wings(bt, rows, cg))
    return ~(bad_g.any(axis=1) | bad_w.any(axis=1) | bad_slope)


def _solve(bt: _Batch, rows: np.ndarray) -> np.ndarray:
    """Unconstrained penalized least squares of slices ``rows`` (one batched solve)."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        coef = np.linalg.solve(bt.base[rows], bt.rhs[rows][:, :, None])[:, :, 0]
    return np.where(np.all(np.isfinite(coef), axis=1, keepdims=True), coef, 0.0)
