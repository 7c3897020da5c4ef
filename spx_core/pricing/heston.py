"""Heston (1993) European options: semi-analytic, vectorized over strikes and expiries.

Model (risk neutral, on the forward F of the expiry):
    dF/F = sqrt(v) dW1,   dv = kappa (theta - v) dt + sigma sqrt(v) dW2,   d<W1, W2> = rho dt.

Pricing uses Lewis' (2001) single integral with a Black-76 control variate (Andersen-Piterbarg):

    C = C_BS(w) + D sqrt(F K) / pi * int_0^inf Re[e^{iux} (phi_BS(u - i/2) - phi(u - i/2))] / (u^2 + 1/4) du

with x = ln(F/K), phi the characteristic function of ln(F_T/F) in the "little Heston trap" form of
Albrecher et al. (2007) (continuous in u, no branch switching) and w the expected average variance.
The numerator vanishes at both poles u = +-i/2, so the integrand is analytic in a strip whose width
is set by the moment explosions of ln(F_T/F). Why this matters: the trapezoid rule on equally spaced
nodes u_j = j*h is then exponentially accurate, and its error is exactly the aliasing of the price
function at x +- 2*pi/h. Per expiry we pick h from Chernoff bounds on those aliases (moment
generating function of the model) and the cut-off from an envelope of |phi|, so the truncation is
controlled, not guessed. Equal spacing also turns the strike dependence into a polynomial in
z = exp(i h x), which we evaluate with one complex matrix product per expiry instead of a cos and a
sin per node and strike (those cost ~35 ns each on this hardware and dominated the first draft).

Units: forward and strike in index points, t in years (ACT/365 or whatever clock produced it,
consistently with the variance parameters, which are per year), discount factor dimensionless,
prices in the same currency units as forward and strike (undiscounted forward times discount).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spx_core.pricing import black76
from spx_core.pricing._arrays import read_only

__all__ = ["HestonParams", "InvalidHestonParamsError", "price", "price_bsm", "log_cf", "DEFAULT_TOL"]

DEFAULT_TOL = 1e-13  # target absolute error of the normalised integral, relative to sqrt(F*K)
_MAX_NODES = 1 << 17  # safety cap per expiry (~0.1 s); reached only for absurd parameters
# Chernoff search grid for moment orders p (distance from the contour Re = 1/2 of the Lewis integral).
_P_OFFSETS = read_only(np.geomspace(0.55, 5000.0, 40))
# Envelope scan for the integrand cut-off u_max (in the natural variable u, per year^-1/2 scale free).
_U_SCAN = read_only(np.geomspace(0.25, 1e7, 100))


class InvalidHestonParamsError(ValueError):
    """Heston parameters outside the model's domain (the message says which and how to fix it)."""


@dataclass(frozen=True, slots=True)
class HestonParams:
    """Heston model parameters (all per year, variance units = vol**2).

    v0: initial variance (0.04 = 20% vol), >= 0.
    kappa: mean-reversion speed per year, > 0.
    theta: long-run variance, > 0.
    sigma: volatility of variance ("vol of vol"), > 0.
    rho: correlation of the forward and variance shocks, in (-1, 1).
    The Feller condition 2*kappa*theta >= sigma**2 is NOT required: the pricer is exact either way.
    """

    v0: float
    kappa: float
    theta: float
    sigma: float
    rho: float

    def __post_init__(self) -> None:
        checks = (
            (np.isfinite(self.v0) and self.v0 >= 0.0, f"v0={self.v0!r} must be a finite variance >= 0 "
             "(variance = vol**2, e.g. 0.04 for 20% vol); a negative variance has no meaning"),
            (np.isfinite(self.kappa) and self.kappa > 0.0, f"kappa={self.kappa!r} must be > 0 per year "
             "(use a small positive value such as 1e-4 for almost no mean reversion)"),
            (np.isfinite(self.theta) and self.theta > 0.0, f"theta={self.theta!r} must be a long-run variance > 0 "
             "(vol**2, e.g. 0.04)"),
            (np.isfinite(self.sigma) and self.sigma > 0.0, f"sigma={self.sigma!r} (vol of variance) must be > 0; "
             "for sigma -> 0 the model is Black-76 with a deterministic variance: use black76.price"),
            (np.isfinite(self.rho) and -1.0 < self.rho < 1.0, f"rho={self.rho!r} must be strictly inside (-1, 1) "
             "(clip to +-0.999 if a fit drives it to the boundary)"),
        )
        for ok, msg in checks:
            if not ok:
                raise InvalidHestonParamsError(msg)

    @property
    def feller_ratio(self) -> float:
        """2*kappa*theta / sigma**2; < 1 means the variance can touch zero (Feller violated)."""
        return 2.0 * self.kappa * self.theta / (self.sigma * self.sigma)

    def as_array(self) -> np.ndarray:
        return np.array([self.v0, self.kappa, self.theta, self.sigma, self.rho])


def log_cf(u: np.ndarray, t: np.ndarray, p: HestonParams) -> np.ndarray:
    """log E[exp(i u ln(F_T/F))] for complex u (broadcast with t, years); Albrecher et al. form."""
    iu = 1j * u
    xi = p.kappa - p.rho * p.sigma * iu
    d = np.sqrt(xi * xi + p.sigma * p.sigma * (iu + u * u))
    a = xi - d
    g = a / (xi + d)
    e = np.exp(-d * t)
    q = 1.0 - g * e
    s2 = p.sigma * p.sigma
    c = (p.kappa * p.theta / s2) * (a * t - 2.0 * np.log(q / (1.0 - g)))
    return c + p.v0 * (a / s2) * (1.0 - e) / q


def average_variance(t: np.ndarray, p: HestonParams) -> np.ndarray:
    """E[(1/t) int_0^t v ds] = theta + (v0 - theta)(1 - e^{-kappa t})/(kappa t): the control-variate variance."""
    kt = p.kappa * np.asarray(t, dtype=float)
    frac = np.where(kt > 1e-8, -np.expm1(-kt) / np.where(kt > 1e-8, kt, 1.0), 1.0 - 0.5 * kt)
    return p.theta + (p.v0 - p.theta) * frac


def _log_mgf(pp: np.ndarray, t: np.ndarray, p: HestonParams) -> np.ndarray:
    """log E[(F_T/F)^pp] for real pp (n_p x n_t); +inf past the moment explosion.

    The closed form stays finite (but wrong) past the explosion, so we cut it where it stops being a
    real, increasing-away-from-[0, 1] function: log M is convex with zeros at 0 and 1.
    """
    with np.errstate(all="ignore"):
        z = log_cf(-1j * pp, t, p)
    val = np.where(np.isfinite(z) & (np.abs(z.imag) <= 1e-9 * (1.0 + np.abs(z.real))), z.real, np.inf)
    # pp is ordered outward from 1/2; once invalid or decreasing, everything further out is unusable.
    bad = ~np.isfinite(val)
    with np.errstate(invalid="ignore"):
        bad[1:] |= np.diff(val, axis=0) < 0.0
    bad = np.logical_or.accumulate(bad, axis=0)
    return np.where(bad, np.inf, val)


def _tail_bounds(ut: np.ndarray, w: np.ndarray, p: HestonParams, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Per expiry: log-moneyness L_left, L_right beyond which |C_heston - C_black(w)| < tol*D*sqrt(FK).

    Chernoff: the normalised price difference at x is below M(p) exp(-|p - 1/2| |x|) for every moment
    order p where M(p) = E[(F_T/F)^p] is finite (Heston or Black, whichever is larger).
    """
    log_eps = -np.log(tol)
    bounds = []
    for sign in (1.0, -1.0):  # p > 1/2 bounds the left tail of the price function, p < 1/2 the right
        pp = 0.5 + sign * _P_OFFSETS[:, None]
        lm = np.maximum(_log_mgf(pp, ut[None, :], p), 0.5 * w * ut * pp * (pp - 1.0))
        bounds.append(np.min((lm + log_eps) / _P_OFFSETS[:, None], axis=0))
    return bounds[0], bounds[1]


def _node_plan(ut: np.ndarray, w: np.ndarray, period: np.ndarray, p: HestonParams,
               tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Per expiry: trapezoid step h = 2 pi / period and node count n (cut-off from the |phi| envelope)."""
    h = 2.0 * np.pi / period
    with np.errstate(all="ignore"):
        lc = log_cf(_U_SCAN[:, None] - 0.5j, ut[None, :], p).real
    env = (np.exp(np.where(np.isfinite(lc), lc, 0.0)) + np.exp(-0.5 * w * ut * (_U_SCAN[:, None] ** 2 + 0.25)))
    small = env / _U_SCAN[:, None] < tol
    # u_max: first scan point after which the envelope stays below the tolerance.
    tail_ok = np.logical_and.accumulate(small[::-1], axis=0)[::-1]
    first = np.where(tail_ok.any(axis=0), np.argmax(tail_ok, axis=0), len(_U_SCAN) - 1)
    umax = _U_SCAN[first]
    n = np.minimum(np.ceil(umax / h).astype(np.int64) + 1, _MAX_NODES)
    return h, n


def _poly_sum(coef: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Re sum_j coef[j, r] z^j for every z (one expiry) and column r: blocked powers + one complex GEMM.

    Splitting j = q*B + r gives sum_q (z^B)^q sum_r c[qB+r] z^r, i.e. a (Q x B) @ (B x m) product,
    so the work per option is ~2*sqrt(n) complex multiplies plus BLAS, with no cos/sin per node.
    coef: (n,) or (n, n_rhs); returns (m,) or (n_rhs, m).
    """
    flat = coef.ndim == 1
    coef = coef.reshape(coef.shape[0], -1)
    n, n_rhs = coef.shape
    b = int(np.ceil(np.sqrt(n)))
    q = -(-n // b)
    c = np.zeros((q * b, n_rhs), dtype=complex)
    c[:n] = coef
    p1 = np.empty((b, z.shape[0]), dtype=complex)
    p1[0] = 1.0
    if b > 1:
        p1[1:] = z
        np.cumprod(p1[1:], axis=0, out=p1[1:])
    p2 = np.empty((q, z.shape[0]), dtype=complex)
    p2[0] = 1.0
    if q > 1:
        p2[1:] = p1[b - 1] * z
        np.cumprod(p2[1:], axis=0, out=p2[1:])
    c = np.ascontiguousarray(c.reshape(q, b, n_rhs).transpose(2, 0, 1)).reshape(n_rhs * q, b)
    y = (c @ p1).reshape(n_rhs, q, -1)
    y *= p2
    out = y.sum(axis=1).real
    return out[0] if flat else out


def _coefficients(ut: np.ndarray, w: np.ndarray, h: np.ndarray, n: np.ndarray, p: HestonParams) -> np.ndarray:
    """All expiries' trapezoid weights times (phi_BS - phi)(u - i/2)/(u^2 + 1/4), u_j = j*h_e, j < n_e.

    One flat array (expiry after expiry) so the characteristic function is one vectorized call.
    """
    start = np.repeat(np.cumsum(n) - n, n)
    j = np.arange(start.size) - start
    e = np.repeat(np.arange(ut.size), n)
    u = j * h[e]
    t = ut[e]
    den = u * u + 0.25
    with np.errstate(under="ignore"):
        diff = np.exp(-0.5 * w[e] * t * den) - np.exp(log_cf(u - 0.5j, t, p))
    coef = diff / den * h[e]
    coef[j == 0] *= 0.5
    return coef


def _group(inv: np.ndarray, n_groups: int) -> list[np.ndarray]:
    order = np.argsort(inv, kind="stable")
    cuts = np.searchsorted(inv[order], np.arange(1, n_groups))
    return np.split(order, cuts)


def price(*, forward, strike, t, discount, is_call, params: HestonParams, tol: float = DEFAULT_TOL,
          out: np.ndarray | None = None) -> np.ndarray:
    """Heston European option prices (discounted, currency units), vectorized over strikes and expiries.

    forward: forward price of each option's expiry (index points); strike: index points;
    t: time to expiry in years (> 0; t == 0 gives the discounted intrinsic value);
    discount: discount factor to expiry (e.g. exp(-r t)); is_call: bool array (False = put).
    All array arguments broadcast. params: one HestonParams for the whole chain (one underlying).
    tol: target absolute error of each price relative to discount*sqrt(forward*strike)
    (default 1e-13, i.e. ~3e-10 index points at SPX 2,900); achieved error against QuantLib's
    adaptive AnalyticHestonEngine is in tests/pricing/test_heston.py.
    Invalid inputs (non-positive forward/strike/discount, negative or NaN t) give NaN, not an error.
    """
    if not (0.0 < tol < 1e-2):
        raise ValueError(f"tol={tol!r} must be in (0, 1e-2); the default {DEFAULT_TOL} is right for quoting")
    f, k, tt, d, call = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (forward, strike, t, discount)),
                                             np.asarray(is_call, dtype=bool))
    shape = f.shape
    f, k, tt, d, call = (a.ravel() for a in (f, k, tt, d, call))
    res = np.full(f.shape, np.nan)
    ok = (f > 0) & (k > 0) & (d > 0) & (tt >= 0) & np.isfinite(f + k + tt + d)
    expired = ok & (tt == 0.0)
    res[expired] = d[expired] * np.maximum(np.where(call[expired], f[expired] - k[expired], k[expired] - f[expired]), 0)
    live = np.flatnonzero(ok & (tt > 0.0))
    if live.size:
        res[live] = _price_live(f[live], k[live], tt[live], d[live], call[live], params, tol)
    if out is not None:
        out[...] = res.reshape(shape)
        return out
    return res.reshape(shape)


def _price_live(f, k, tt, d, call, p: HestonParams, tol: float) -> np.ndarray:
    ut, inv = np.unique(tt, return_inverse=True)
    inv = inv.ravel()
    x = np.log(f / k)
    xmin = np.full(ut.shape, np.inf)
    xmax = np.full(ut.shape, -np.inf)
    np.minimum.at(xmin, inv, x)
    np.maximum.at(xmax, inv, x)
    w = average_variance(ut, p)
    left, right = _tail_bounds(ut, w, p, tol)
    # Beyond the Chernoff bounds the Heston-Black difference is below tol: those strikes keep the
    # control variate alone, so absurdly far strikes cannot inflate the node count (period).
    inside = (x >= -left[inv]) & (x <= right[inv])
    period = np.maximum(right - np.maximum(xmin, -left), left + np.minimum(xmax, right))
    h, n = _node_plan(ut, w, period, p, tol)
    coefs = np.split(_coefficients(ut, w, h, n, p), np.cumsum(n)[:-1])
    integral = np.zeros_like(x)
    for e, idx in enumerate(_group(inv, ut.size)):
        idx = idx[inside[idx]]
        if idx.size:
            integral[idx] = _poly_sum(coefs[e], np.exp(1j * h[e] * x[idx]))
    cv = black76.price(forward=f, strike=k, t=tt, vol=np.sqrt(w)[inv], discount=d, is_call=call)
    return cv + d * np.sqrt(f * k) / np.pi * integral


def price_bsm(*, spot, strike, t, rate, div_yield, is_call, params: HestonParams,
              tol: float = DEFAULT_TOL) -> np.ndarray:
    """Heston prices from spot (index points), continuously compounded rate and dividend yield (per year)."""
    t = np.asarray(t, dtype=float)
    discount = np.exp(-np.asarray(rate, dtype=float) * t)
    forward = np.asarray(spot, dtype=float) * np.exp((np.asarray(rate, dtype=float) - div_yield) * t)
    return price(forward=forward, strike=strike, t=t, discount=discount, is_call=is_call, params=params, tol=tol)
