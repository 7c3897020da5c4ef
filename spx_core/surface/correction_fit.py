"""Arbitrage-free corrections: the projection of each slice's spline correction onto the no-arbitrage set.

A slice whose unconstrained correction (:mod:`spx_core.surface.correction`) passes every check keeps
it. Otherwise the correction is found by sequential least squares with inequality constraints:
    * start from the largest feasible shrink ``beta * c_free`` (``beta = 0`` is the SVI slice itself);
    * linearize the conditions at the current point: Gatheral-Jacquier ``g(k) >= min(margin, g_now)``
      on the check grid (``g`` is linear in ``w''`` and smooth in ``w, w'``, all linear in the
      coefficients), ``w > 0`` (exact), and Lee's asymptotic wing slopes in ``[0, 2]`` (exact);
    * solve that inequality-constrained least squares exactly (LSI -> least-distance programming ->
      non-negative least squares, Lawson & Hanson 1974, ``scipy.optimize.nnls``);
    * move toward its solution as far as the true (non-linear) conditions hold and the fit improves.
Every accepted point is arbitrage-free on the check grid, so the result is too; the check grid holds
the knots, where ``g`` has its kinks, so ``g`` stays non-negative between grid points as well.
"""

from __future__ import annotations

import numpy as np

from spx_core.surface.correction import (
    W_TINY,
    CorrectionConfig,
    SmileCorrection,
    _Batch,
    _build,
    _feasible,
    _grid_values,
    _solve,
    _wings,
)
from spx_core.surface.svi import g_from_derivatives

__all__ = ["fit_corrections_batch", "lsi"]

_G_TARGET = 2e-3  # margin asked of g where it is free to move: keeps g >= 0 between grid points too


def _g_rows(bt: _Batch, rows, w, w1):
    """Linearization of g in the coefficients: (E, G, 4) rows (NaN-free; zero where w <= 0)."""
    kg = bt.kgrid[rows]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        wp = np.where(w > 0, w, np.nan)
        f = 1.0 - 0.5 * kg * w1 / wp
        dg_dw = f * kg * w1 / (wp * wp) + 0.25 * w1 * w1 / (wp * wp)
        dg_dw1 = -f * kg / wp - 0.5 * w1 * (1.0 / wp + 0.25)
        R = dg_dw[..., None] * bt.V[rows] + dg_dw1[..., None] * bt.D1[rows] + 0.5 * bt.D2[rows]
    return np.where(np.isfinite(R), R, 0.0)


def _merit(H: np.ndarray, rhs: np.ndarray, c: np.ndarray) -> float:
    """Penalized least-squares objective of one slice (up to a constant)."""
    return float(0.5 * np.einsum("i,ij,j->", c, H, c) - np.dot(rhs, c))


def _violation(bt: _Batch, e: int, c: np.ndarray) -> float:
    """Total size of the butterfly, positivity and wing violations of slice ``e`` (0: feasible)."""
    rows = np.array([e])
    w, w1, w2, cg = _grid_values(bt, c[None, :], rows)
    g = np.nan_to_num(g_from_derivatives(bt.kgrid[rows], w, w1, w2), nan=-1.0)
    wings = _wings(bt, rows, cg)
    return float(np.sum(np.maximum(-g, 0.0)) + np.sum(np.maximum(W_TINY - w, 0.0)) / max(float(np.max(w)), 1e-300)
                 + np.sum(np.maximum(-wings, 0.0) + np.maximum(wings - 2.0, 0.0)))


def lsi(H: np.ndarray, rhs: np.ndarray, G: np.ndarray, h: np.ndarray) -> np.ndarray | None:
    """``min 1/2 c'Hc - rhs'c  s.t.  G c >= h`` (H positive definite) via LDP and NNLS (Lawson-Hanson).

    Returns None when the constraints are infeasible or the factorization fails.
    """
    from scipy.optimize import nnls

    try:
        L = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return None
    # Small products go through einsum, not BLAS: multi-threaded OpenBLAS on a busy 2-core machine
    # takes milliseconds for a (500 x 40) @ (40 x 40) product that einsum does in tens of microseconds.
    Linv = np.linalg.inv(L)  # small (M x M): explicit inverse is cheaper than triangular solves here
    y = np.einsum("ij,j->i", Linv, rhs)  # c = L^-T (z + y) turns the objective into |z|^2 / 2
    E = np.einsum("ij,kj->ik", G, Linv)
    f = h - np.einsum("ij,j->i", E, y)
    norm = np.sqrt(np.sum(E * E, axis=1) + f * f)
    keep = norm > 0
    E, f = E[keep] / norm[keep, None], f[keep] / norm[keep]
    A = np.vstack([E.T, f[None, :]])
    b = np.zeros(A.shape[0])
    b[-1] = 1.0
    try:
        u, _ = nnls(A, b, maxiter=50 * A.shape[1])
    except RuntimeError:
        return None
    r = np.einsum("ij,j->i", A, u) - b
    if not abs(r[-1]) > 1e-12:
        return None  # infeasible
    z = -r[:-1] / r[-1]
    c = np.einsum("ji,j->i", Linv, z + y)
    return c if np.all(np.isfinite(c)) else None


def _linearized(bt: _Batch, e: int, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The conditions linearized at ``c``, as rows ``G c_new >= h``.

    Butterfly rows ask ``g_lin >= min(margin, g)`` (no further fall where g is already small), positivity
    rows are exact, and the wings' asymptotic slopes must stay in [0, 2].
    """
    rows = np.array([e])
    w, w1, w2, _ = _grid_values(bt, c[None, :], rows)
    g = np.nan_to_num(g_from_derivatives(bt.kgrid[rows], w, w1, w2), nan=-1.0)[0]
    Rg = _g_rows(bt, rows, w, w1)[0]
    M, G = bt.M, bt.kgrid.shape[1]
    cols = bt.i0[e][:, None] + np.arange(4)

    def dense(R: np.ndarray) -> np.ndarray:
        out = np.zeros((G, M))
        np.put_along_axis(out, cols, R, axis=1)
        return out

    Gg = dense(Rg)
    hg = np.einsum("ij,j->i", Gg, c) + (np.minimum(_G_TARGET, np.maximum(g, 0.0)) - g)
    Gw = dense(bt.V[e])
    hw = W_TINY * 2.0 - bt.svi[0][e]
    d_lo, d_hi = dense(bt.D1[e])[[0, -1]]
    wl, wr = bt.wing[e]
    Gs = np.stack([-d_lo, d_lo, d_hi, -d_hi])
    hs = np.array([-wl + 1e-6, wl - 2.0 + 1e-6, -wr + 1e-6, wr - 2.0 + 1e-6])
    near = g < 0.25  # far from binding rows only slow the solver down
    return np.vstack([Gg[near], Gw, Gs]), np.concatenate([hg[near], hw, hs])


def _project_one(bt: _Batch, e: int, free: np.ndarray, rounds: int) -> np.ndarray:
    """Sequential LSI for slice ``e``: start at the largest feasible shrink of ``free``, then move toward
    the solution of the linearized problem as far as the true conditions allow, while the fit improves."""
    H, rhs = bt.base[e], bt.rhs[e]
    c = np.zeros_like(free)
    for beta in (0.8, 0.6, 0.4, 0.25, 0.12, 0.05, 0.02):
        if _violation(bt, e, beta * free) == 0.0:
            c = beta * free
            break
    viol = _violation(bt, e, c)
    for _ in range(rounds):
        Gm, hv = _linearized(bt, e, c)
        cand = lsi(H, rhs, Gm, hv)
        if cand is None:
            break
        accepted = False
        for beta in (1.0, 0.5, 0.25, 0.1):
            trial = c + beta * (cand - c)
            v = _violation(bt, e, trial)
            # From a feasible point: stay feasible and fit better. From an infeasible SVI slice: violate less.
            better = (v == 0.0 and _merit(H, rhs, trial) < _merit(H, rhs, c)) if viol == 0.0 else v < viol
            if better:
                c, viol, accepted = trial, v, True
                break
        if not accepted or (beta == 1.0 and viol == 0.0 and np.allclose(cand, c)):
            break
    return c if viol == 0.0 else np.zeros_like(free)


def project(bt: _Batch, rows: np.ndarray, config: CorrectionConfig) -> np.ndarray:
    """Butterfly-free corrections of slices ``rows``: the free spline where it passes, else the sequential
    LSI projection (:func:`_project_one`); c = 0 (the SVI slice) when nothing better passes."""
    free = _solve(bt, rows)
    coef = free.copy()
    for j in np.flatnonzero(~_feasible(bt, free, rows)):
        coef[j] = _project_one(bt, int(rows[j]), free[j], config.active_set_rounds)
    return coef


def to_correction(bt: _Batch, e: int, coef: np.ndarray) -> SmileCorrection | None:
    """The :class:`SmileCorrection` of batch row ``e`` (None when it is zero)."""
    n = int(bt.n_seg[e])
    c = coef[:n + 3]
    if not np.any(c != 0.0):
        return None
    knots = bt.lo[e] + bt.h[e] * np.arange(-3, n + 4)
    return SmileCorrection(tuple(float(x) for x in knots), tuple(float(x) for x in c))


def fit_corrections_batch(*, group: np.ndarray, k: np.ndarray, resid: np.ndarray, weight: np.ndarray,
                          params: np.ndarray, kgrid: np.ndarray,
                          config: CorrectionConfig) -> list[SmileCorrection | None]:
    """Butterfly-free corrections of E slices (points: ``group`` 0..E-1, SVI residuals ``w_mkt - w_svi``)."""
    bt = _build(group=group, k=k, resid=resid, weight=weight, params=params, kgrid=kgrid, config=config)
    coef = project(bt, np.arange(len(params)), config)
    return [to_correction(bt, e, coef[e]) for e in range(len(params))]
