"""Raw SVI smiles in total variance, fitted for all expiries at once.

Raw SVI (Gatheral 2004): ``w(k) = a + b * (rho * (k - m) + sqrt((k - m)^2 + sigma^2))`` with ``w`` the
total implied variance ``iv^2 * T`` and ``k = ln(K/F)``.

Start: the quasi-explicit method (Zeliade 2009). For fixed ``(m, sigma)``, with ``y = (k - m)/sigma``,
``w = a + d*y + c*sqrt(y^2 + 1)`` is linear in ``(a, d, c)``; we solve that weighted least squares for
every expiry and every ``(m, sigma)`` of a small grid in one vectorized pass, project each solution
onto the admissible set (``c > 0``, ``|d| < c``, Lee's ``c + |d| <= 2 sigma``, ``min w >= 0``) and keep
the best per expiry (or the caller's warm start when that is better).

Refinement: one batched Levenberg-Marquardt over every expiry. Each expiry has its own 5x5 normal
equations (segment sums over its points), damping, accept/reject and convergence test (relative cost
decrease or relative step below tolerance); converged expiries drop out of the batch, so the work
per iteration shrinks. Parameters are transformed (``ln b``, ``atanh rho``, ``ln sigma``) and clipped
to a finite box, so ``b > 0``, ``|rho| < 1``, ``sigma > 0`` hold and no step can overflow. Residuals
are in units of the quote's half bid/ask band in total variance (tight quotes matter more), with a
Huber loss so a stale quote cannot drag the smile.

No-arbitrage enters the objective as penalty residuals on a k grid per expiry: Gatheral-Jacquier
``g(k) >= 0``, Lee's ``b (1 + |rho|) <= 2``, ``w >= 0``, and optional calendar bounds ``w_lower <= w <=
w_upper`` (neighbouring expiries). The penalties' Jacobian is by forward differences, only for the
expiries whose penalty is active.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BatchFit",
    "SVIConfig",
    "SVIParams",
    "fit_svi_batch",
    "g_function",
    "initial_guess",
    "svi_derivatives",
    "svi_w",
]

# Box of the transformed parameters: keeps exp/tanh finite and every slice evaluable.
_LO = np.array([-10.0, -25.0, -7.0, -5.0, -14.0])
_HI = np.array([10.0, 2.0, 7.0, 5.0, 3.0])
_SIGMA_MIN = float(np.exp(_LO[4]))


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
        max_iter: most Levenberg-Marquardt iterations (count).
        max_iter_corrected: most iterations when a spline correction follows (count): the correction
            takes up what SVI leaves, so SVI needs to be a good base, not converged to the last digit.
        huber: Huber threshold, in half-bands (dimensionless).
        band_floor: smallest half bid/ask IV band used as a residual scale (vol, 0.002 = 0.2 vol pt).
        grid_points: penalty grid points per expiry (count).
        grid_margin: the penalty grid extends this far beyond the quoted k range, in units of
            ``sqrt(w_atm)`` (dimensionless).
        penalty: weight of an arbitrage violation (per unit of g or of relative total variance).
        tol: an expiry has converged when an accepted step lowers its cost by less than this
            fraction (dimensionless).
        xtol: ... or moves its transformed parameters by less than this (relative, dimensionless).
    """

    max_iter: int = 30
    max_iter_corrected: int = 15
    huber: float = 1.5
    band_floor: float = 0.002
    grid_points: int = 41
    grid_margin: float = 3.0
    penalty: float = 1e3
    tol: float = 1e-5
    xtol: float = 1e-6

    def __post_init__(self) -> None:
        if self.max_iter < 1 or self.max_iter_corrected < 1 or self.grid_points < 5:
            raise ValueError("SVIConfig: max_iter and max_iter_corrected must be >= 1, grid_points >= 5")
        if not (self.huber > 0 and self.band_floor > 0 and self.penalty > 0 and self.grid_margin >= 0):
            raise ValueError("SVIConfig: huber, band_floor and penalty must be > 0, grid_margin >= 0")
        if not (self.tol > 0 and self.xtol > 0):
            raise ValueError("SVIConfig: tol and xtol must be > 0")


def svi_w(k, a, b, rho, m, sigma):
    """Total variance of raw SVI at ``k`` (all arguments broadcast)."""
    x = k - m
    return a + b * (rho * x + np.sqrt(x * x + sigma * sigma))


def svi_derivatives(k, a, b, rho, m, sigma):
    """``(w, dw/dk, d2w/dk2)`` of raw SVI (broadcasting; ``sigma`` is floored so ``s > 0``)."""
    x = k - m
    sig2 = np.maximum(sigma * sigma, _SIGMA_MIN * _SIGMA_MIN)
    s = np.sqrt(x * x + sig2)
    w = a + b * (rho * x + s)
    return w, b * (rho + x / s), b * sig2 / (s * s * s)


def g_from_derivatives(k, w, w1, w2):
    """Gatheral-Jacquier ``g`` from ``w, w', w''``; NaN where ``w <= 0`` (no density defined)."""
    wp = np.where(w > 0, w, np.nan)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return (1.0 - 0.5 * k * w1 / wp) ** 2 - 0.25 * w1 * w1 * (1.0 / wp + 0.25) + 0.5 * w2


def g_function(k, a, b, rho, m, sigma):
    """Gatheral-Jacquier density function ``g(k)``; the smile is butterfly-free where ``g >= 0``."""
    return g_from_derivatives(k, *svi_derivatives(k, a, b, rho, m, sigma))


@dataclass(frozen=True, slots=True)
class BatchFit:
    """Result of :func:`fit_svi_batch`: one row of ``params`` (a, b, rho, m, sigma) per expiry."""

    params: np.ndarray  # (E, 5)
    cost: np.ndarray  # (E,) final robust cost
    iterations: int


@dataclass(frozen=True, slots=True)
class _Problem:
    """Points of some expiries (``g`` local 0..n-1, sorted) and their penalty grids."""

    g: np.ndarray
    k: np.ndarray
    w_mkt: np.ndarray
    scale: np.ndarray
    n_exp: int
    kgrid: np.ndarray  # (E, G)
    w_lower: np.ndarray  # (E, G) calendar lower bound (NaN: none)
    w_upper: np.ndarray  # (E, G)
    w_ref: np.ndarray  # (E,) total variance scale for relative penalties

    def subset(self, rows: np.ndarray) -> _Problem:
        """The problem restricted to expiries ``rows`` (renumbered 0..len(rows)-1)."""
        remap = np.full(self.n_exp, -1)
        remap[rows] = np.arange(len(rows))
        pts = np.flatnonzero(remap[self.g] >= 0)
        return _Problem(remap[self.g[pts]], self.k[pts], self.w_mkt[pts], self.scale[pts], len(rows),
                        self.kgrid[rows], self.w_lower[rows], self.w_upper[rows], self.w_ref[rows])


def _unpack(p: np.ndarray) -> tuple[np.ndarray, ...]:
    q = np.clip(p, _LO, _HI)
    return q[:, 0], np.exp(q[:, 1]), np.tanh(q[:, 2]), q[:, 3], np.exp(q[:, 4])


def _pack(params: np.ndarray) -> np.ndarray:
    a, b, rho, m, sigma = np.nan_to_num(params, nan=0.0).T
    out = np.stack([a, np.log(np.maximum(b, 1e-10)), np.arctanh(np.clip(rho, -0.999, 0.999)), m,
                    np.log(np.maximum(sigma, 1e-6))], axis=1)
    return np.clip(out, _LO, _HI)


def _segment_sum(g: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """Sums of the rows of ``v`` (N, ...) per group (``g`` sorted, all groups 0..n-1 present or not)."""
    out = np.zeros((n,) + v.shape[1:])
    if len(g):
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        out[g[starts]] = np.add.reduceat(v, starts, axis=0)
    return out


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
    w, w1, w2 = svi_derivatives(kg, a, b, rho, m, sigma)
    g = g_from_derivatives(kg, w, w1, w2)
    ref = pr.w_ref[:, None]
    with np.errstate(invalid="ignore"):
        parts = [
            np.minimum(np.nan_to_num(g, nan=-1.0) - 1e-3, 0.0),  # keep a small margin: the check grid is finer
            np.minimum(w / ref, 0.0),
            np.maximum(b * (1.0 + np.abs(rho)) - 2.0, 0.0),
            np.minimum(np.nan_to_num((w - pr.w_lower) / ref, nan=0.0), 0.0),
            np.minimum(np.nan_to_num((pr.w_upper - w) / ref, nan=0.0), 0.0),
        ]
    return lam * np.maximum(np.concatenate(parts, axis=1), -1e6)


def _huber(r: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss and IRLS weight per residual."""
    ar = np.abs(r)
    loss = np.where(ar <= c, 0.5 * r * r, c * ar - 0.5 * c * c)
    return loss, c / np.maximum(ar, c)


def _cost(p: np.ndarray, pr: _Problem, cfg: SVIConfig) -> np.ndarray:
    r, _ = _data_residuals(p, pr, jac=False)
    loss, _ = _huber(r, cfg.huber)
    pen = _penalties(p, pr, cfg.penalty)
    return _segment_sum(pr.g, loss, pr.n_exp) + 0.5 * np.sum(pen * pen, axis=1)


_IU = np.triu_indices(5)


def _normal_equations(p: np.ndarray, pr: _Problem, cfg: SVIConfig) -> tuple[np.ndarray, np.ndarray]:
    r, J = _data_residuals(p, pr, jac=True)
    _, h = _huber(r, cfg.huber)
    hJ = h[:, None] * J
    prods = np.concatenate([hJ[:, _IU[0]] * J[:, _IU[1]], hJ * r[:, None]], axis=1)
    sums = _segment_sum(pr.g, prods, pr.n_exp)
    A = np.zeros((pr.n_exp, 5, 5))
    A[:, _IU[0], _IU[1]] = sums[:, :15]
    A = A + np.triu(A, 1).transpose(0, 2, 1)
    grad = sums[:, 15:]
    pen = _penalties(p, pr, cfg.penalty)
    rows = np.flatnonzero(np.any(pen != 0.0, axis=1))  # only slices with an active penalty need its Jacobian
    if len(rows):
        sub = _Problem(pr.g, pr.k, pr.w_mkt, pr.scale, len(rows), pr.kgrid[rows], pr.w_lower[rows],
                       pr.w_upper[rows], pr.w_ref[rows])
        base = pen[rows]
        step = 1e-6
        PJ = np.empty(base.shape + (5,))
        for i in range(5):
            q = p[rows].copy()
            q[:, i] += step
            PJ[..., i] = (_penalties(q, sub, cfg.penalty) - base) / step
        # einsum, not BLAS: small batched products are slow under multi-threaded OpenBLAS contention.
        A[rows] += np.einsum("egi,egj->eij", PJ, PJ)
        grad[rows] += np.einsum("egi,eg->ei", PJ, base)
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
    order = np.argsort(group, kind="stable")
    group, k, w_mkt, scale = group[order], k[order], w_mkt[order], scale[order]
    nan = np.full(kgrid.shape, np.nan)
    counts = np.maximum(np.bincount(group, minlength=n_exp), 1)
    w_mean = _segment_sum(group, w_mkt, n_exp) / counts
    w_ref = np.maximum(np.maximum(svi_w(0.0, *init.T), 0.1 * w_mean), 1e-10)
    pr = _Problem(group, k, w_mkt, scale, n_exp, kgrid, nan if w_lower is None else w_lower,
                  nan if w_upper is None else w_upper, w_ref)
    p = _pack(init)
    cost = _cost(p, pr, cfg)
    lam = np.full(n_exp, 1e-3)
    active = np.isfinite(cost)
    eye = np.eye(5)
    it = 0
    for it in range(1, cfg.max_iter + 1):
        rows = np.flatnonzero(active)
        if not len(rows):
            break
        sub = pr if len(rows) == n_exp else pr.subset(rows)
        A, grad = _normal_equations(p[rows], sub, cfg)
        diag = np.maximum(np.einsum("eii->ei", A), 1e-12)
        M = A + (lam[rows, None] * diag)[:, :, None] * eye + 1e-12 * eye
        with np.errstate(invalid="ignore", over="ignore"):
            step = -np.linalg.solve(M, grad[:, :, None])[:, :, 0]
        step = np.where(np.isfinite(step), np.clip(step, -2.0, 2.0), 0.0)
        trial = np.clip(p[rows] + step, _LO, _HI)
        new_cost = _cost(trial, sub, cfg)
        old = cost[rows]
        better = np.isfinite(new_cost) & (new_cost < old)
        gain = np.where(better, (old - new_cost) / np.maximum(old, 1e-300), 0.0)
        moved = np.max(np.abs(trial - p[rows]) / (1.0 + np.abs(p[rows])), axis=1)
        p[rows] = np.where(better[:, None], trial, p[rows])
        cost[rows] = np.where(better, new_cost, old)
        lam[rows] = np.clip(np.where(better, lam[rows] * 0.3, lam[rows] * 10.0), 1e-9, 1e9)
        # Converged: an accepted step that barely helps or barely moves, or damping so high nothing helps.
        done = (better & ((gain < cfg.tol) | (moved < cfg.xtol))) | (lam[rows] >= 1e7)
        active[rows[done]] = False
    a, b, rho, m, sigma = _unpack(p)
    return BatchFit(np.stack([a, b, rho, m, sigma], axis=1), cost, it)


def initial_guess(*, group: np.ndarray, k: np.ndarray, w_mkt: np.ndarray, weight: np.ndarray, n_exp: int,
                  w_atm: np.ndarray, warm: np.ndarray | None = None) -> np.ndarray:
    """Quasi-explicit start (Zeliade): best projected linear solution over an ``(m, sigma)`` grid.

    ``warm`` (n_exp, 5; NaN rows: none) are candidates too, e.g. the previous surface's parameters.
    """
    order = np.argsort(group, kind="stable")
    g, k, w_mkt, weight = group[order], k[order], w_mkt[order], weight[order]
    sd = np.sqrt(np.maximum(np.nan_to_num(w_atm, nan=1e-4), 1e-8))
    m_mult, s_mult = np.meshgrid([-0.6, -0.2, 0.2, 0.6], [0.25, 0.6, 1.5, 3.5], indexing="ij")
    m_c = sd[:, None] * m_mult.ravel()[None, :]  # (E, C)
    s_c = sd[:, None] * s_mult.ravel()[None, :]
    y = (k[:, None] - m_c[g]) / s_c[g]  # (N, C)
    X = (np.ones_like(y), y, np.sqrt(y * y + 1.0))
    idx = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    prods = np.empty(y.shape + (9,))
    for n, (i, j) in enumerate(idx):
        prods[..., n] = weight[:, None] * X[i] * X[j]
    for i in range(3):
        prods[..., 6 + i] = (weight * w_mkt)[:, None] * X[i]
    sums = _segment_sum(g, prods, n_exp)  # (E, C, 9)
    A = np.empty(sums.shape[:2] + (3, 3))
    for n, (i, j) in enumerate(idx):
        A[..., i, j] = A[..., j, i] = sums[..., n]
    rhs = sums[..., 6:]
    trace = np.maximum(np.trace(A, axis1=-2, axis2=-1), 1e-300)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        coef = np.linalg.solve(A + (1e-10 * trace)[..., None, None] * np.eye(3), rhs[..., None])[..., 0]
    cand = _project(coef, m_c, s_c)  # (E, C, 5)
    # The model is linear in (a, d = b rho sigma, c = b sigma) at fixed (m, sigma): the weighted squared
    # error of a projected candidate is a quadratic form in those, with no pass over the points.
    q = np.stack([cand[..., 0], cand[..., 1] * cand[..., 2] * cand[..., 4], cand[..., 1] * cand[..., 4]], -1)
    yy = _segment_sum(g, weight * w_mkt * w_mkt, n_exp)
    err = yy[:, None] - 2.0 * np.einsum("eci,eci->ec", q, rhs) + np.einsum("eci,ecij,ecj->ec", q, A, q)
    err = np.where(np.all(np.isfinite(cand), axis=2) & np.isfinite(err), err, np.inf)
    if warm is not None:
        ok = np.all(np.isfinite(warm), axis=1)
        wp = np.where(ok[:, None], warm, np.array([1e-4, 1e-3, 0.0, 0.0, 0.1]))[g]
        model = svi_w(k, wp[:, 0], wp[:, 1], wp[:, 2], wp[:, 3], wp[:, 4])
        err_warm = np.where(ok, _segment_sum(g, weight * (model - w_mkt) ** 2, n_exp), np.inf)
        cand = np.concatenate([cand, np.where(ok[:, None], warm, 0.0)[:, None, :]], axis=1)
        err = np.concatenate([err, err_warm[:, None]], axis=1)
    best = cand[np.arange(n_exp), np.argmin(err, axis=1)]
    flat = ~np.isfinite(np.min(err, axis=1))
    best[flat] = np.stack([np.nan_to_num(w_atm[flat], nan=1e-4), np.full(flat.sum(), 1e-4),
                           np.zeros(flat.sum()), np.zeros(flat.sum()), sd[flat]], axis=1)
    return best


def _project(coef: np.ndarray, m: np.ndarray, sig: np.ndarray) -> np.ndarray:
    """Linear solutions ``(a, d, c)`` -> admissible raw SVI ``(a, b, rho, m, sigma)``."""
    a, d, c = np.nan_to_num(coef, nan=0.0, posinf=0.0, neginf=0.0).transpose(2, 0, 1)
    c = np.maximum(c, 1e-6 * sig)
    d = np.clip(d, -0.98 * c, 0.98 * c)
    shrink = np.minimum(1.0, 1.98 * sig / (c + np.abs(d)))  # Lee: b (1 + |rho|) <= 2
    c, d = c * shrink, d * shrink
    rho = d / c
    a = np.maximum(a, -c * np.sqrt(1.0 - rho * rho) + 1e-10)  # minimum total variance >= 0
    return np.stack([a, c / sig, rho, m, sig], axis=-1)
