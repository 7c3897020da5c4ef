"""Raw SVI smiles in total variance, fitted for all expiries at once.

Raw SVI (Gatheral 2004): ``w(k) = a + b * (rho * (k - m) + sqrt((k - m)^2 + sigma^2))`` with ``w`` the
total implied variance ``iv^2 * T`` and ``k = ln(K/F)``.

The fit is one batched Levenberg-Marquardt over every expiry: each expiry has its own 5x5 normal
equations (summed with ``np.bincount``), its own damping and its own accept/reject, but every step
is one vectorized pass over all quotes. Parameters are transformed (``ln b``, ``atanh rho``,
``ln sigma``) so ``b > 0``, ``|rho| < 1``, ``sigma > 0`` always hold. Residuals are in units of the
quote's half bid/ask IV band (so the fit aims for the band, and tight quotes matter more), with a
Huber loss so a stale quote cannot drag the smile.

No-arbitrage is part of the objective, as penalty residuals on a k grid per expiry:
    * butterfly: Gatheral-Jacquier ``g(k) >= 0`` (density non-negative);
    * Lee's moment bound ``b * (1 + |rho|) <= 2`` and ``min w >= 0``;
    * calendar: ``w_prev(k) <= w(k) <= w_next(k)`` against the neighbouring expiries' curves when the
      caller passes them (see :mod:`spx_core.surface.surface`, which refits violators).
The penalties' Jacobian is by forward differences (small: grid points only); the data Jacobian is
analytic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SVIConfig", "SVIParams", "svi_w", "svi_derivatives", "g_function", "fit_svi_batch", "BatchFit"]


@dataclass(frozen=True, slots=True)
class SVIParams:
    """Raw SVI parameters of one expiry (total variance; ``k = ln(K/F)``)."""

    a: float
    b: float
    rho: float
    m: float
    sigma: float

    def as_array(self) -> np.ndarray:
        return np.array([self.a, self.b, self.rho, self.m, self.sigma])

    def w(self, k: np.ndarray) -> np.ndarray:
        return svi_w(k, *self.as_array())

    def as_dict(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b, "rho": self.rho, "m": self.m, "sigma": self.sigma}


@dataclass(frozen=True, slots=True)
class SVIConfig:
    """How SVI smiles are fitted.

    Attributes:
        max_iter: Levenberg-Marquardt iterations (count).
        huber: Huber threshold, in half-bands (dimensionless).
        band_floor: smallest half bid/ask IV band used as a residual scale (vol, 0.002 = 0.2 vol pt).
        grid_points: penalty grid points per expiry (count).
        grid_margin: the penalty grid extends this far beyond the quoted k range, in units of
            ``sqrt(w_atm)`` (dimensionless).
        penalty: weight of an arbitrage violation (per unit of g or of relative total variance).
        tol: stop when no expiry's cost improves by more than this fraction (dimensionless).
    """

    max_iter: int = 40
    huber: float = 1.5
    band_floor: float = 0.002
    grid_points: int = 61
    grid_margin: float = 3.0
    penalty: float = 1e3
    tol: float = 1e-7

    def __post_init__(self) -> None:
        if self.max_iter < 1 or self.grid_points < 5:
            raise ValueError("SVIConfig: max_iter must be >= 1 and grid_points >= 5")
        if not (self.huber > 0 and self.band_floor > 0 and self.penalty > 0 and self.grid_margin >= 0):
            raise ValueError("SVIConfig: huber, band_floor and penalty must be > 0, grid_margin >= 0")


def svi_w(k, a, b, rho, m, sigma):
    """Total variance of raw SVI at ``k`` (all arguments broadcast)."""
    x = k - m
    return a + b * (rho * x + np.sqrt(x * x + sigma * sigma))


def svi_derivatives(k, a, b, rho, m, sigma):
    """``(w, dw/dk, d2w/dk2)`` of raw SVI (broadcasting)."""
    x = k - m
    s = np.sqrt(x * x + sigma * sigma)
    w = a + b * (rho * x + s)
    return w, b * (rho + x / s), b * sigma * sigma / (s * s * s)


def g_function(k, a, b, rho, m, sigma):
    """Gatheral-Jacquier density function ``g(k)``; the smile is butterfly-free where ``g >= 0``."""
    w, w1, w2 = svi_derivatives(k, a, b, rho, m, sigma)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (1.0 - 0.5 * k * w1 / w) ** 2 - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2


@dataclass(frozen=True, slots=True)
class BatchFit:
    """Result of :func:`fit_svi_batch`: one row of ``params`` (a, b, rho, m, sigma) per expiry."""

    params: np.ndarray  # (E, 5)
    cost: np.ndarray  # (E,) final robust cost
    iterations: int


@dataclass(frozen=True, slots=True)
class _Problem:
    g: np.ndarray  # expiry index per point
    k: np.ndarray
    w_mkt: np.ndarray
    scale: np.ndarray  # residual scale in total variance
    n_exp: int
    kgrid: np.ndarray  # (E, G)
    w_lower: np.ndarray  # (E, G) calendar lower bound (NaN: none)
    w_upper: np.ndarray  # (E, G)
    w_ref: np.ndarray  # (E,) ATM-ish total variance scale for relative penalties


def _unpack(p: np.ndarray) -> tuple[np.ndarray, ...]:
    return p[:, 0], np.exp(p[:, 1]), np.tanh(p[:, 2]), p[:, 3], np.exp(p[:, 4])


def _pack(params: np.ndarray) -> np.ndarray:
    a, b, rho, m, sigma = params.T
    return np.stack([a, np.log(np.maximum(b, 1e-10)), np.arctanh(np.clip(rho, -0.999, 0.999)), m,
                     np.log(np.maximum(sigma, 1e-6))], axis=1)


def _data_residuals(p: np.ndarray, pr: _Problem, jac: bool) -> tuple[np.ndarray, np.ndarray | None]:
    a, b, rho, m, sigma = (v[pr.g] for v in _unpack(p))
    x = pr.k - m
    s = np.sqrt(x * x + sigma * sigma)
    w = a + b * (rho * x + s)
    r = (w - pr.w_mkt) / pr.scale
    if not jac:
        return r, None
    inv = 1.0 / pr.scale
    J = np.empty((len(r), 5))
    J[:, 0] = inv
    J[:, 1] = b * (rho * x + s) * inv
    J[:, 2] = b * x * (1.0 - rho * rho) * inv
    J[:, 3] = -b * (rho + x / s) * inv
    J[:, 4] = b * sigma * sigma / s * inv
    return r, J


def _penalties(p: np.ndarray, pr: _Problem, lam: float) -> np.ndarray:
    a, b, rho, m, sigma = (v[:, None] for v in _unpack(p))
    kg = pr.kgrid
    w = svi_w(kg, a, b, rho, m, sigma)
    g = g_function(kg, a, b, rho, m, sigma)
    ref = pr.w_ref[:, None]
    parts = [
        np.minimum(np.nan_to_num(g, nan=-1.0) - 1e-3, 0.0),  # keep a small margin: the check grid is finer
        np.minimum(w / ref, 0.0),
        np.maximum(b * (1.0 + np.abs(rho)) - 2.0, 0.0),
        np.minimum(np.nan_to_num((w - pr.w_lower) / ref, nan=0.0), 0.0),
        np.minimum(np.nan_to_num((pr.w_upper - w) / ref, nan=0.0), 0.0),
    ]
    return lam * np.concatenate(parts, axis=1)


def _subproblem(pr: _Problem, rows: np.ndarray) -> _Problem:
    """The penalty-only view of some slices (grid arrays restricted to ``rows``)."""
    return _Problem(pr.g, pr.k, pr.w_mkt, pr.scale, len(rows), pr.kgrid[rows], pr.w_lower[rows], pr.w_upper[rows],
                    pr.w_ref[rows])


def _huber(r: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss and IRLS weight per residual."""
    ar = np.abs(r)
    loss = np.where(ar <= c, 0.5 * r * r, c * ar - 0.5 * c * c)
    return loss, np.minimum(1.0, c / np.maximum(ar, 1e-300))


def _cost(p: np.ndarray, pr: _Problem, cfg: SVIConfig) -> np.ndarray:
    r, _ = _data_residuals(p, pr, jac=False)
    loss, _ = _huber(r, cfg.huber)
    pen = _penalties(p, pr, cfg.penalty)
    return np.bincount(pr.g, weights=loss, minlength=pr.n_exp) + 0.5 * np.sum(pen * pen, axis=1)


_IU = np.triu_indices(5)


def _normal_equations(p: np.ndarray, pr: _Problem, cfg: SVIConfig) -> tuple[np.ndarray, np.ndarray]:
    r, J = _data_residuals(p, pr, jac=True)
    _, h = _huber(r, cfg.huber)
    E = pr.n_exp
    A = np.zeros((E, 5, 5))
    for i, j in zip(*_IU, strict=True):
        A[:, i, j] = np.bincount(pr.g, weights=h * J[:, i] * J[:, j], minlength=E)
    A = A + np.triu(A, 1).transpose(0, 2, 1)
    grad = np.stack([np.bincount(pr.g, weights=h * J[:, i] * r, minlength=E) for i in range(5)], axis=1)
    pen = _penalties(p, pr, cfg.penalty)
    rows = np.flatnonzero(np.any(pen != 0.0, axis=1))  # only slices with an active penalty need its Jacobian
    if len(rows):
        sub = _subproblem(pr, rows)
        base = pen[rows]
        step = 1e-6
        PJ = np.empty(base.shape + (5,))
        for i in range(5):
            q = p[rows].copy()
            q[:, i] += step
            PJ[..., i] = (_penalties(q, sub, cfg.penalty) - base) / step
        PJt = PJ.transpose(0, 2, 1)
        A[rows] += PJt @ PJ
        grad[rows] += (PJt @ base[:, :, None])[:, :, 0]
    return A, grad


def fit_svi_batch(*, group: np.ndarray, k: np.ndarray, w_mkt: np.ndarray, scale: np.ndarray, n_exp: int,
                  kgrid: np.ndarray, init: np.ndarray, w_lower: np.ndarray | None = None,
                  w_upper: np.ndarray | None = None, config: SVIConfig | None = None) -> BatchFit:
    """Fit raw SVI to every expiry at once.

    Args:
        group: int64 expiry index (0..n_exp-1) per point; every expiry needs >= 5 points.
        k, w_mkt: log forward-moneyness and market total variance per point.
        scale: residual scale per point in total variance (e.g. ``2 * iv * T * half_band``).
        kgrid: (n_exp, G) k grid for the arbitrage penalties.
        init: (n_exp, 5) starting parameters (a, b, rho, m, sigma).
        w_lower, w_upper: (n_exp, G) calendar bounds on ``kgrid`` (NaN where none).
    """
    cfg = config or SVIConfig()
    nan = np.full(kgrid.shape, np.nan)
    w_ref = np.maximum(np.abs(init[:, 0] + init[:, 1] * init[:, 4] * np.sqrt(1 - init[:, 2] ** 2)), 1e-8)
    w_ref = np.maximum(w_ref, np.bincount(group, weights=w_mkt, minlength=n_exp)
                       / np.maximum(np.bincount(group, minlength=n_exp), 1) * 0.1)
    pr = _Problem(group, k, w_mkt, scale, n_exp, kgrid, nan if w_lower is None else w_lower,
                  nan if w_upper is None else w_upper, w_ref)
    p = _pack(init)
    cost = _cost(p, pr, cfg)
    lam = np.full(n_exp, 1e-3)
    done = np.zeros(n_exp, dtype=bool)
    eye = np.eye(5)
    it = 0
    for it in range(1, cfg.max_iter + 1):
        A, grad = _normal_equations(p, pr, cfg)
        diag = np.einsum("eii->ei", A)
        M = A + (lam[:, None] * np.maximum(diag, 1e-12))[:, :, None] * eye + 1e-12 * eye
        step = -np.linalg.solve(M, grad[:, :, None])[:, :, 0]
        step = np.where(np.isfinite(step) & ~done[:, None], step, 0.0)
        trial = p + step
        new_cost = _cost(trial, pr, cfg)
        better = ~done & np.isfinite(new_cost) & (new_cost < cost)
        gain = np.where(better, (cost - new_cost) / np.maximum(cost, 1e-300), 0.0)
        p = np.where(better[:, None], trial, p)
        cost = np.where(better, new_cost, cost)
        lam = np.clip(np.where(better, lam * 0.3, lam * 10.0), 1e-9, 1e9)
        # Converged: an accepted step that barely helps, or damping so high no step helps.
        done |= (better & (gain < cfg.tol)) | (lam >= 1e8)
        if done.all():
            break
    a, b, rho, m, sigma = _unpack(p)
    return BatchFit(np.stack([a, b, rho, m, sigma], axis=1), cost, it)


def initial_guess(*, group: np.ndarray, k: np.ndarray, w_mkt: np.ndarray, weight: np.ndarray, n_exp: int,
                  w_atm: np.ndarray) -> np.ndarray:
    """Quasi-explicit start (Zeliade): for m = 0 and a few sigmas, ``w = a + d*y + c*sqrt(y^2+1)`` with
    ``y = k/sigma`` is linear in (a, d, c); solve it per expiry by weighted least squares and keep the
    sigma with the smallest error."""
    best = np.full((n_exp, 5), np.nan)
    best_err = np.full(n_exp, np.inf)
    sd = np.sqrt(np.maximum(w_atm, 1e-8))
    for mult in (0.3, 0.7, 1.5):
        sig = mult * sd
        y = k / sig[group]
        X = np.stack([np.ones_like(y), y, np.sqrt(y * y + 1.0)], axis=1)
        A = np.zeros((n_exp, 3, 3))
        for i in range(3):
            for j in range(i, 3):
                A[:, i, j] = A[:, j, i] = np.bincount(group, weights=weight * X[:, i] * X[:, j], minlength=n_exp)
        rhs = np.stack([np.bincount(group, weights=weight * X[:, i] * w_mkt, minlength=n_exp) for i in range(3)], 1)
        coef = np.linalg.solve(A + 1e-12 * np.eye(3), rhs[:, :, None])[:, :, 0]
        resid = w_mkt - np.einsum("ni,ni->n", X, coef[group])
        err = np.bincount(group, weights=weight * resid * resid, minlength=n_exp)
        c = np.maximum(coef[:, 2], 1e-6 * sd)
        rho = np.clip(coef[:, 1] / c, -0.95, 0.95)
        b = np.clip(c / sig, 1e-4, 1.5)
        a = coef[:, 0]
        cand = np.stack([a, b, rho, np.zeros(n_exp), sig], axis=1)
        use = np.isfinite(err) & (err < best_err) & np.all(np.isfinite(cand), axis=1)
        best[use] = cand[use]
        best_err[use] = err[use]
    flat = ~np.all(np.isfinite(best), axis=1)
    best[flat] = np.stack([w_atm[flat], np.full(flat.sum(), 1e-4), np.zeros(flat.sum()), np.zeros(flat.sum()),
                           sd[flat]], axis=1)
    return best
