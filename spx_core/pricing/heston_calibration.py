"""Heston calibration to an option chain: vega-scaled price errors (~ implied-vol errors), analytic gradient.

Residual per quote: weight * (model price - market price) / max(vega, vega_floor), with vega the Black-76
vega (per 1.00 vol) at the market implied vol, so residuals are implied-vol errors to first order without
an implied-vol solve per iteration. The Jacobian is analytic: d price / d param is the same Lewis
integral with phi replaced by phi * d log(phi) / d param, evaluated on the pricer's node set, so one
evaluation of prices and all five derivatives costs little more than prices alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from spx_core.pricing import black76, iv
from spx_core.pricing._arrays import read_only
from spx_core.pricing._constants import CONVERGENCE_TOL
from spx_core.pricing.heston import (
    DEFAULT_TOL,
    HestonParams,
    _group,
    _node_plan,
    _poly_sum,
    _tail_bounds,
    average_variance,
    price,
)

__all__ = ["HestonFit", "CalibrationInputError", "calibrate", "price_and_gradient", "log_cf_gradient"]

LOWER = read_only(np.array([1e-5, 1e-2, 1e-5, 1e-2, -0.999]))  # v0, kappa, theta, sigma, rho
UPPER = read_only(np.array([4.0, 30.0, 4.0, 8.0, 0.999]))


class CalibrationInputError(ValueError):
    """The chain given to calibrate() cannot be fitted (message says what to fix)."""


@dataclass(frozen=True, slots=True)
class HestonFit:
    """Result of calibrate(). rmse_vol_pts: RMS of (model IV - market IV) in vol points (1 = 1%)
    over the quotes used whose vega is above the floor, from exact implied vols of the fitted prices;
    n_used: quotes with a valid market IV."""

    params: HestonParams
    rmse_vol_pts: float
    max_abs_vol_pts: float
    n_used: int
    n_evaluations: int
    seconds: float
    success: bool
    message: str


def log_cf_gradient(u: np.ndarray, t: np.ndarray, p: HestonParams) -> tuple[np.ndarray, np.ndarray]:
    """log phi(u) and its derivatives w.r.t. (v0, kappa, theta, sigma, rho), stacked on a new last axis."""
    iu = 1j * u
    s2 = p.sigma * p.sigma
    xi = p.kappa - p.rho * p.sigma * iu
    d = np.sqrt(xi * xi + s2 * (iu + u * u))
    a, b = xi - d, xi + d
    g = a / b
    e = np.exp(-d * t)
    q = 1.0 - g * e
    omg = 1.0 - g
    big_l = np.log(q / omg)
    kts = p.kappa * p.theta / s2
    c = kts * (a * t - 2.0 * big_l)
    dd = a * (1.0 - e) / (s2 * q)
    # Partials holding the other of (xi, d) fixed.
    g_xi, g_d = 2.0 * d / (b * b), -2.0 * xi / (b * b)
    q_xi, q_d = -e * g_xi, -(g_d * e - g * t * e)
    l_xi, l_d = q_xi / q + g_xi / omg, q_d / q + g_d / omg
    f_xi = kts * (t - 2.0 * l_xi) + p.v0 * ((1.0 - e) / (s2 * q) - a * (1.0 - e) * q_xi / (s2 * q * q))
    f_d = kts * (-t - 2.0 * l_d) + p.v0 * ((-(1.0 - e) + a * t * e) / (s2 * q) - a * (1.0 - e) * q_d / (s2 * q * q))
    xi_s, xi_r = -p.rho * iu, -p.sigma * iu
    d_k, d_s, d_r = xi / d, (xi * xi_s + p.sigma * (iu + u * u)) / d, xi * xi_r / d
    logphi = c + p.v0 * dd
    grad = np.stack([
        dd,
        c / p.kappa + f_xi + f_d * d_k,
        c / p.theta,
        -2.0 * logphi / p.sigma + f_xi * xi_s + f_d * d_s,
        f_xi * xi_r + f_d * d_r,
    ], axis=-1)
    return logphi, grad


def price_and_gradient(*, forward, strike, t, discount, is_call, params: HestonParams,
                       tol: float = DEFAULT_TOL) -> tuple[np.ndarray, np.ndarray]:
    """Heston prices (n,) and d price / d (v0, kappa, theta, sigma, rho) (n, 5) for flat arrays with t > 0."""
    f, k, tt, d, call = (np.ascontiguousarray(np.broadcast_to(np.asarray(a), np.broadcast(
        forward, strike, t, discount, is_call).shape)).ravel() for a in (forward, strike, t, discount, is_call))
    f, k, tt, d = (a.astype(float) for a in (f, k, tt, d))
    p = params
    ut, inv = np.unique(tt, return_inverse=True)
    inv = inv.ravel()
    x = np.log(f / k)
    xmin, xmax = np.full(ut.shape, np.inf), np.full(ut.shape, -np.inf)
    np.minimum.at(xmin, inv, x)
    np.maximum.at(xmax, inv, x)
    w = average_variance(ut, p)
    left, right = _tail_bounds(ut, w, p, tol)
    period = np.maximum(right - np.maximum(xmin, -left), left + np.minimum(xmax, right))
    h, n = _node_plan(ut, w, period, p, tol)
    e_idx = np.repeat(np.arange(ut.size), n)
    j = np.arange(e_idx.size) - np.repeat(np.cumsum(n) - n, n)
    u = j * h[e_idx]
    den = u * u + 0.25
    logphi, grad = log_cf_gradient(u - 0.5j, ut[e_idx], p)
    with np.errstate(under="ignore"):
        phi = np.exp(logphi)
        bs = np.exp(-0.5 * w[e_idx] * ut[e_idx] * den)
    wts = h[e_idx] / den
    wts[j == 0] *= 0.5
    coef = np.concatenate([((bs - phi) * wts)[:, None], -(phi * wts)[:, None] * grad], axis=1)
    coefs = np.split(coef, np.cumsum(n)[:-1])
    sums = np.zeros((6, x.size))
    for e, idx in enumerate(_group(inv, ut.size)):
        sums[:, idx] = _poly_sum(coefs[e], np.exp(1j * h[e] * x[idx]))
    scale = d * np.sqrt(f * k) / np.pi
    cv = black76.price(forward=f, strike=k, t=tt, vol=np.sqrt(w)[inv], discount=d, is_call=call.astype(bool))
    return cv + scale * sums[0], (scale * sums[1:]).T


def _market_vega(f, k, tt, d, call, market_price, vega_floor):
    res = iv.implied_vol(price=market_price, forward=f, strike=k, t=tt, discount=d, is_call=call)
    vol = res.vol
    ok = np.isfinite(vol) & (vol > 0)
    vega = np.full(f.shape, np.nan)
    vega[ok] = black76.greeks(forward=f[ok], strike=k[ok], t=tt[ok], vol=vol[ok], discount=d[ok],
                              is_call=call[ok]).vega
    floor = vega_floor * d * f * np.sqrt(tt)
    return vol, ok, np.maximum(vega, floor), vega >= floor


def calibrate(*, forward, strike, t, discount, is_call, market_price, weight=None,
              initial: HestonParams | None = None, vega_floor: float = 1e-3, max_evaluations: int = 200) -> HestonFit:
    """Fit Heston to a chain (all arguments broadcast; prices discounted, currency units; t in years).

    weight: per-quote weights (default 1). Residuals are weight * price error / vega (vega per 1.00 vol at
    the market IV, floored at vega_floor * D * F * sqrt(t) so far wings cannot dominate), i.e. ~IV errors.
    Quotes whose market price has no implied vol (outside no-arbitrage bounds) are left out (see n_used).
    initial: starting point (default: v0 = theta = median market variance, kappa 2, sigma 1, rho -0.7).
    """
    t0 = time.perf_counter()
    shape = np.broadcast(forward, strike, t, discount, is_call, market_price, 1.0 if weight is None else weight).shape
    f, k, tt, d, mp_, wt = (np.broadcast_to(np.asarray(a, dtype=float), shape).ravel() for a in (
        forward, strike, t, discount, market_price, 1.0 if weight is None else weight))
    call = np.broadcast_to(np.asarray(is_call, dtype=bool), shape).ravel()
    vol, ok, vega, sharp = _market_vega(f, k, tt, d, call, mp_, vega_floor)
    ok &= (tt > 0) & (wt > 0)
    if ok.sum() < 5:
        raise CalibrationInputError(f"only {int(ok.sum())} quotes have a valid implied vol and positive weight; "
                                    "Heston has 5 parameters: pass more quotes (mid prices of two-sided markets)")
    f, k, tt, d, call, mp_, wt, vol, vega, sharp = (a[ok] for a in (f, k, tt, d, call, mp_, wt, vol, vega, sharp))
    scale = wt / vega
    if initial is None:
        var = float(np.median(vol) ** 2)
        initial = HestonParams(var, 2.0, var, 1.0, -0.7)
    kw = dict(forward=f, strike=k, t=tt, discount=d, is_call=call)
    cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def evaluate(z):  # least_squares asks for residuals and Jacobian at the same point: compute both once
        key = z.tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = price_and_gradient(params=HestonParams(*z), **kw)
        return cache[key]

    x0 = np.clip(initial.as_array(), LOWER, UPPER)
    sol = least_squares(lambda z: scale * (evaluate(z)[0] - mp_), x0, jac=lambda z: scale[:, None] * evaluate(z)[1],
                        bounds=(LOWER, UPPER), method="trf", x_scale="jac", max_nfev=max_evaluations,
                        ftol=CONVERGENCE_TOL, xtol=CONVERGENCE_TOL, gtol=CONVERGENCE_TOL)
    params = HestonParams(*(float(v) for v in sol.x))
    model_iv = iv.implied_vol(price=price(params=params, **kw), forward=f, strike=k, t=tt, discount=d,
                              is_call=call).vol
    # Reported over quotes whose vega is above the floor: below it an IV is ill-posed (1e-12 of price noise
    # moves it by vol points), and the fit itself treats those quotes as price errors.
    err = (model_iv - vol)[sharp] * 100.0
    err = err[np.isfinite(err)]
    return HestonFit(params=params, rmse_vol_pts=float(np.sqrt(np.mean(err ** 2))),
                     max_abs_vol_pts=float(np.max(np.abs(err))), n_used=int(ok.sum()), n_evaluations=int(sol.nfev),
                     seconds=time.perf_counter() - t0, success=bool(sol.success), message=str(sol.message))
