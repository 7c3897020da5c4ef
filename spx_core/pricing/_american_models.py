"""Kernels of the American approximations: Bjerksund-Stensland (2002) and Barone-Adesi-Whaley (1987).

Plain numpy on 1-D float64 arrays of equal length (the caller broadcasts and masks), no Python loop over
options. Notation (Haug, "The Complete Guide to Option Pricing Formulas", 2nd ed., ch. 3): spot ``s``,
strike ``k``, years ``t``, rate ``r``, cost of carry ``b = r - q``, vol ``v``. Puts of Bjerksund-Stensland
use the put-call transformation ``P(S, K, T, r, b, v) = C(K, S, T, r - b, -b, v)``; BAW solves each side's
critical price by a vectorized Newton iteration. Both return at least max(European, immediate exercise).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from spx_core.pricing._constants import CONVERGENCE_TOL, TWO_PI

__all__ = ["bivariate_cdf", "bs2002_call", "baw", "european", "RHO_BS"]

#: t1 = RHO2 * T (the golden-section split of the 2002 paper); the bivariate terms' correlation is sqrt(RHO2)
_RHO2 = 0.5 * (math.sqrt(5.0) - 1.0)
RHO_BS = math.sqrt(_RHO2)
_R_B_SMALL = 1e-7  # |r - b| below this: the B0 = r K/(r - b) limit (Strata's guard)
# 12-point Gauss-Legendre on [-1, 1]: at |rho| = 0.786 it is within 1.3e-15 of the 20-point rule Genz uses for
# |rho| >= 0.75 (measured on 20,000 random points), at 60% of the cost
_GL_X, _GL_W = np.polynomial.legendre.leggauss(12)
_BAW_ITERATIONS = 40


def bivariate_cdf(a: np.ndarray, b: np.ndarray, rho: float) -> np.ndarray:
    """P(X < a, Y < b) for standard normals with correlation ``rho``, |rho| < 0.925 (Genz 2004, the
    arcsine-substitution branch with 12 Gauss-Legendre points: ~1e-15 absolute for |rho| <= 0.8).

    P(X > h, Y > k) = N(-h) N(-k) + 1/(2 pi) int_0^asin(rho) exp(-(h^2 + k^2 - 2hk sin u) / (2 cos^2 u)) du.
    Bjerksund-Stensland only needs rho = +-sqrt((sqrt 5 - 1)/2) ~ +-0.786, so the nodes' sines are constants.
    """
    if not abs(rho) < 0.925:
        raise ValueError(f"bivariate_cdf: |rho| = {abs(rho)} must be < 0.925 (the branch implemented)")
    h, k = -np.asarray(a, dtype=np.float64), -np.asarray(b, dtype=np.float64)
    asr = math.asin(rho)
    sn = np.sin(asr * (_GL_X + 1.0) / 2.0)  # (20,)
    hk = (h * k)[:, None]
    hs = ((h * h + k * k) / 2.0)[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.exp((sn * hk - hs) / (1.0 - sn * sn)) @ _GL_W
    return total * asr / (2.0 * TWO_PI) + ndtr(-h) * ndtr(-k)


def european(s, k, t, r, b, v, is_call):
    """Black-Scholes-Merton with carry b (index points); the no-early-exercise value."""
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = v * np.sqrt(t)
        d1 = (np.log(s / k) + (b + 0.5 * v * v) * t) / sd
        d2 = d1 - sd
        carry, disc = np.exp((b - r) * t), np.exp(-r * t)
        call = s * carry * ndtr(d1) - k * disc * ndtr(d2)
        put = k * disc * ndtr(-d2) - s * carry * ndtr(-d1)
    out = np.where(is_call, call, put)
    # zero vol or time: the discounted forward intrinsic
    flat = ~(sd > 0)
    if flat.any():
        fwd = s * np.exp(b * t)
        intrinsic = np.where(is_call, fwd - k, k - fwd) * np.exp(-r * t)
        out = np.where(flat, np.maximum(intrinsic, 0.0), out)
    return out


def _phi(s, t, gamma, h, i, r, b, v):
    sd = v * np.sqrt(t)
    lam = -r + gamma * b + 0.5 * gamma * (gamma - 1.0) * v * v
    kappa = 2.0 * b / (v * v) + 2.0 * gamma - 1.0
    y = t * (b + (gamma - 0.5) * v * v) / sd
    d1 = -(np.log(s / h) / sd + y)
    d2 = -(np.log(i * i / (s * h)) / sd + y)
    return np.exp(lam * t) * s ** gamma * (ndtr(d1) - (i / s) ** kappa * ndtr(d2))


def _psi(s, t1, t2, gamma, h, i2, i1, r, b, v):
    sd1, sd2 = v * np.sqrt(t1), v * np.sqrt(t2)
    drift = b + (gamma - 0.5) * v * v
    y1, y2 = t1 * drift / sd1, t2 * drift / sd2
    d1 = -(np.log(s / i1) / sd1 + y1)
    d2 = -(np.log(i2 * i2 / (s * i1)) / sd1 + y1)
    d3, d4 = d1 + 2.0 * y1, d2 + 2.0 * y1
    e1 = -(np.log(s / h) / sd2 + y2)
    e2 = -(np.log(i2 * i2 / (s * h)) / sd2 + y2)
    e3 = -(np.log(i1 * i1 / (s * h)) / sd2 + y2)
    e4 = -(np.log(s * i1 * i1 / (h * i2 * i2)) / sd2 + y2)
    lam = -r + gamma * b + 0.5 * gamma * (gamma - 1.0) * v * v
    kappa = 2.0 * b / (v * v) + 2.0 * gamma - 1.0
    return np.exp(lam * t2) * s ** gamma * (
        bivariate_cdf(d1, e1, RHO_BS) - (i2 / s) ** kappa * bivariate_cdf(d2, e2, RHO_BS)
        - (i1 / s) ** kappa * bivariate_cdf(d3, e3, -RHO_BS) + (i1 / i2) ** kappa * bivariate_cdf(d4, e4, -RHO_BS))


def bs2002_call(s, k, t, r, b, v):
    """The 2002 approximation of an American call where early exercise can pay (b < r, v sqrt t > 0).

    Rows whose beta would be complex (r < 0 far enough) come back NaN; the caller keeps its lower bound there.
    """
    v2 = v * v
    t1 = _RHO2 * t
    y = 0.5 - b / v2
    denom = np.abs(r - b)
    small = denom < _R_B_SMALL
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        arg = y * y + 2.0 * r / v2
        beta = np.where(small & (y <= 1.0), 1.0, y + np.sqrt(arg))
        b0 = np.where(small, k, np.maximum(k, r * k / denom))
        b_inf = beta * k / (beta - 1.0)
        # the limit beta = 1 (r = b, y <= 1): B_inf is infinite; the paper's trigger values are
        # x = K (1 + r t + 2 v sqrt t)
        lim = small & (y <= 1.0)

        def trigger(tt):
            h = -(b * tt + 2.0 * v * np.sqrt(tt)) * k * k / (b0 * (b_inf - b0))
            return np.where(lim, k * (1.0 + r * tt + 2.0 * v * np.sqrt(tt)), b0 + (b_inf - b0) * -np.expm1(h))

        x1, x2 = trigger(t1), trigger(t)
        a1 = (x1 - k) * x1 ** -beta
        a2 = (x2 - k) * x2 ** -beta
        price = (a2 * s ** beta - a2 * _phi(s, t1, beta, x2, x2, r, b, v)
                 + _phi(s, t1, 1.0, x2, x2, r, b, v) - _phi(s, t1, 1.0, x1, x2, r, b, v)
                 - k * _phi(s, t1, 0.0, x2, x2, r, b, v) + k * _phi(s, t1, 0.0, x1, x2, r, b, v)
                 + a1 * _phi(s, t1, beta, x1, x2, r, b, v) - a1 * _psi(s, t1, t, beta, x1, x2, x1, r, b, v)
                 + _psi(s, t1, t, 1.0, x1, x2, x1, r, b, v) - _psi(s, t1, t, 1.0, k, x2, x1, r, b, v)
                 - k * _psi(s, t1, t, 0.0, x1, x2, x1, r, b, v) + k * _psi(s, t1, t, 0.0, k, x2, x1, r, b, v))
    price = np.where(s >= x2, s - k, price)
    return np.where(arg >= 0.0, price, np.nan)


def baw(s, k, t, r, b, v, is_call):
    """Barone-Adesi-Whaley (1987) quadratic approximation, both rights (rows where early exercise can pay)."""
    phi = np.where(is_call, 1.0, -1.0)
    v2 = v * v
    sd = v * np.sqrt(t)
    m, n = 2.0 * r / v2, 2.0 * b / v2
    kt = -np.expm1(-r * t)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # m / kt -> 2/(v^2 t) as r -> 0 (the r = 0 limit of 2r/(v^2 (1 - e^{-rt})))
        m_kt = np.where(np.abs(r * t) > 1e-12, m / kt, 2.0 / (v2 * t))
        q = 0.5 * (-(n - 1.0) + phi * np.sqrt((n - 1.0) ** 2 + 4.0 * m_kt))
        q_inf = 0.5 * (-(n - 1.0) + phi * np.sqrt((n - 1.0) ** 2 + 4.0 * m))
        s_inf = k / (1.0 - 1.0 / q_inf)
        # Haug's seed for the critical price
        h = np.where(is_call, -(b * t + 2.0 * sd) * k / (s_inf - k), (b * t - 2.0 * sd) * k / (k - s_inf))
        seed = np.where(is_call, k + (s_inf - k) * -np.expm1(h), s_inf + (k - s_inf) * np.exp(h))
        crit = _baw_critical(seed, k, t, r, b, v, phi, q)
        d1 = (np.log(crit / k) + (b + 0.5 * v2) * t) / sd
        carry = np.exp((b - r) * t)
        amp = phi * (crit / q) * (1.0 - carry * ndtr(phi * d1))
        euro = european(s, k, t, r, b, v, is_call)
        early = euro + amp * (s / crit) ** q
    exercised = np.where(is_call, s >= crit, s <= crit)
    return np.where(exercised, phi * (s - k), early)


def _baw_critical(seed, k, t, r, b, v, phi, q):
    """Critical price S*: phi (S* - K) = European(S*) + phi (1 - e^{(b-r)t} N(phi d1(S*))) S*/q, by Newton."""
    sd = v * np.sqrt(t)
    carry = np.exp((b - r) * t)
    is_call = phi > 0
    x = seed.copy()
    active = np.isfinite(x) & (x > 0)
    for _ in range(_BAW_ITERATIONS):
        if not active.any():
            break
        xa, ka, ta, ra, ba, va, pa, qa, sda, ca = (a[active] for a in (x, k, t, r, b, v, phi, q, sd, carry))
        d1 = (np.log(xa / ka) + (ba + 0.5 * va * va) * ta) / sda
        nd = ndtr(pa * d1)
        euro = european(xa, ka, ta, ra, ba, va, is_call[active])
        g = pa * (xa - ka) - euro - pa * (1.0 - ca * nd) * xa / qa
        # dg/dS: phi - phi e^{(b-r)t} N(phi d1) - phi (1 - e^{(b-r)t} N(phi d1))/q + e^{(b-r)t} n(d1)/(v sqrt t q)
        pdf = np.exp(-0.5 * d1 * d1) / math.sqrt(TWO_PI)
        dg = pa - pa * ca * nd - pa * (1.0 - ca * nd) / qa + ca * pdf / (sda * qa)
        step = g / dg
        new = np.where(xa - step > 0, xa - step, 0.5 * xa)
        x[active] = new
        done = np.abs(new - xa) <= CONVERGENCE_TOL * xa
        active[np.flatnonzero(active)[done]] = False
    return x
