"""American options (SPY): Bjerksund-Stensland 2002 or Barone-Adesi-Whaley prices, greeks and implied vol.

Inputs broadcast and are float64: ``spot`` S (dollars for SPY, index points for an index), ``strike``,
``t`` (years), ``rate`` r and ``div_yield`` q (continuously compounded, decimal per year), ``vol``
(decimal per sqrt year), ``is_call``. ``dividends``: optional discrete cash dividends shared by every option,
``(times, amounts)`` (years from now, dollars per share). They enter as the escrowed-dividend forward: the
prepaid forward is S* = S - sum(D_i exp(-r t_i)) over the dividends paid before each option's expiry, and the
option is priced on the actual spot S with the yield that gives the same forward, q + ln(S/S*)/t. (Pricing on
S* itself would let a put exercise into K - S* rather than K - S and overvalue deep ITM puts by the PV of the
dividends.) With a continuous ``div_yield`` as well, both apply.

``method``: "bs2002" (Bjerksund-Stensland 2002, the primary model) or "baw" (Barone-Adesi-Whaley 1987). Both
return at least max(European value, immediate exercise); a call on an asset with q <= 0 (b >= r) is the
European call. Accuracy measured against QuantLib 1.44 (tests/pricing/test_american.py, as a fraction of
spot, on a grid of yields 0-5%, rates 0-8%, deep ITM/OTM both rights, t from 2 days to 3 years): against an
800x800 Crank-Nicolson ``FdBlackScholesVanillaEngine`` (the truth) BS2002 is within 0.37% (0.20% for
t <= 1 year, 0.07% for t <= 6 months) and BAW within 0.46% (0.09%, 0.03%); BAW equals QuantLib's
``BaroneAdesiWhaleyApproximationEngine`` to 3e-7. (QuantLib's ``BjerksundStenslandApproximationEngine`` is
the 1993 version, so it is not the reference for the 2002 formula.)

``american_iv`` inverts the same model for every element at once (a bracketed Newton iteration with a
finite-difference vega, falling back to bisection), returning an :class:`~spx_core.pricing.iv.IVResult`
with the same reason codes as Black-76's solver: NaN and a reason where no vol reproduces the price.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spx_core.pricing import iv as black_iv
from spx_core.pricing._constants import CONVERGENCE_TOL
from spx_core.pricing.black76 import DAYS_PER_YEAR, GreekUnits
from spx_core.pricing.iv import IVReason, IVResult

__all__ = ["AmericanGreeks", "METHODS", "VOL_MAX", "VOL_MIN", "american_greeks", "american_iv",
           "american_price", "dividend_yield_equivalent", "escrowed_spot"]

METHODS = ("bs2002", "baw")
VOL_MIN = 1e-3  # lowest vol the solver looks at (0.1%): at or below its price there is no time value to imply
VOL_MAX = 5.0  # highest (500%): a price above the model's value there is "above max"
_PRICE_TOL = 1e-11  # stop when |model - price| <= this * max(price, 1e-3 * spot) (relative, with a floor)
_ITERATIONS = 80  # bisection alone needs ~36 to reach CONVERGENCE_TOL from the whole bracket
_DAY = 1.0 / DAYS_PER_YEAR


@dataclass(frozen=True, slots=True)
class AmericanGreeks(GreekUnits):
    """Price and greeks by central differences of the model price (same units as ``black76.Greeks``).

    ``delta`` dV/dS, ``gamma`` d2V/dS2 (per dollar), ``vega`` dV/dvol per 1.00 of vol, ``theta`` dV/dt as a
    calendar day passes, per year (spot, rate, yield fixed), ``rho`` dV/dr per 1.00 of rate.
    """

    price: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray
    rho: np.ndarray


def dividend_yield_equivalent(spot, t, rate, div_yield, dividends) -> np.ndarray:
    """``div_yield`` plus the yield that carries ``spot`` to the escrowed forward: q + ln(S/S*)/t (1/year)."""
    q = np.asarray(div_yield, dtype=np.float64)
    if dividends is None:
        return q
    s, tt = np.asarray(spot, dtype=np.float64), np.asarray(t, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        extra = np.log(s / escrowed_spot(s, tt, rate, dividends)) / tt
    return q + np.where(tt > 0, extra, 0.0)


def escrowed_spot(spot, t, rate, dividends) -> np.ndarray:
    """S minus the present value of the cash dividends paid before ``t`` (the escrowed-dividend spot)."""
    s, tt, r = (np.asarray(a, dtype=np.float64) for a in (spot, t, rate))
    if dividends is None:
        return s
    times, amounts = (np.asarray(a, dtype=np.float64).reshape(-1) for a in dividends)
    if times.shape != amounts.shape:
        raise ValueError(f"dividends: {times.size} times but {amounts.size} amounts; pass (times, amounts)")
    shape = np.broadcast_shapes(s.shape, tt.shape, r.shape)
    pv = np.zeros(shape)
    for ti, ai in zip(times, amounts):  # a handful of dividends: the loop is over dividends, not options
        if ti >= 0:
            pv = pv + np.where(ti < tt, ai * np.exp(-r * ti), 0.0)
    return s - pv


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not known; use one of {METHODS}")


def _price_flat(s, k, t, r, q, v, c, method):
    """Model price of 1-D equal-length arrays (no input checks; NaN where the inputs are invalid)."""
    # the kernels use scipy.special: imported on first use so ``import spx_core.pricing`` stays scipy-free
    from spx_core.pricing import _american_models as models

    b = r - q
    euro = models.european(s, k, t, r, b, v, c)
    immediate = np.maximum(np.where(c, s - k, k - s), 0.0)
    out = np.maximum(euro, immediate)
    # early exercise pays for a call when b < r (q > 0), for a put when r > 0
    early = np.where(c, b < r, r > 0) & (v * np.sqrt(t) > 1e-13) & (t > 0)
    idx = np.flatnonzero(early)
    if idx.size:
        si, ki, ti, ri, bi, vi, ci = (a[idx] for a in (s, k, t, r, b, v, c))
        if method == "bs2002":
            # puts by the put-call transformation P(S, K, T, r, b) = C(K, S, T, r - b, -b)
            am = models.bs2002_call(np.where(ci, si, ki), np.where(ci, ki, si), ti,
                                    np.where(ci, ri, ri - bi), np.where(ci, bi, -bi), vi)
        else:
            am = models.baw(si, ki, ti, ri, bi, vi, ci)
        out[idx] = np.fmax(out[idx], am)  # fmax: a NaN (complex beta) keeps the lower bound
    bad = ~((s > 0) & (k > 0) & (t >= 0) & (v >= 0) & np.isfinite(s + k + t + r + q + v))
    return np.where(bad, np.nan, out)


def _flatten(*arrays):
    arrs = [np.asarray(a) for a in arrays]
    shape = np.broadcast_shapes(*(a.shape for a in arrs))
    flat = [np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1) for a in arrs]
    return flat, shape


def american_price(spot, strike, t, rate, div_yield, vol, is_call, *, method: str = "bs2002",
                   dividends=None) -> np.ndarray:
    """American option value (same units as ``spot``) for every broadcast element; NaN for invalid inputs."""
    _check_method(method)
    q = dividend_yield_equivalent(spot, t, rate, div_yield, dividends)
    flat, shape = _flatten(spot, strike, t, rate, q, vol, is_call)
    f = [a.astype(np.float64) for a in flat[:6]]
    return _price_flat(*f, flat[6].astype(bool), method).reshape(shape)


def american_greeks(spot, strike, t, rate, div_yield, vol, is_call, *, method: str = "bs2002",
                    dividends=None) -> AmericanGreeks:
    """Price, delta, gamma, vega, theta and rho by central differences, all bumps priced in one call."""
    _check_method(method)
    flat, shape = _flatten(spot, strike, t, rate, div_yield, vol, is_call)
    s, k, tt, r, q0, v = (a.astype(np.float64) for a in flat[:6])
    c = flat[6].astype(bool)
    hs = 1e-4 * s  # relative spot bump: gamma's truncation and rounding errors balance near 1e-4
    hv, hr = 1e-4, 1e-5
    ht = np.minimum(_DAY / 24.0, 0.5 * tt)  # an hour of time, or half what is left
    # rows: base, S+, S-, vol+, vol-, t-, r+, r-
    ss = np.stack([s, s + hs, s - hs, s, s, s, s, s])
    vv = np.stack([v, v, v, v + hv, np.maximum(v - hv, 0.0), v, v, v])
    ts = np.stack([tt, tt, tt, tt, tt, tt - ht, tt, tt])
    rs = np.stack([r, r, r, r, r, r, r + hr, r - hr])
    qs = np.broadcast_to(dividend_yield_equivalent(ss, ts, rs, q0, dividends), ss.shape)
    n = s.size
    p = _price_flat(ss.reshape(-1), np.tile(k, 8), ts.reshape(-1), rs.reshape(-1), qs.reshape(-1),
                    vv.reshape(-1), np.tile(c, 8), method).reshape(8, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (p[1] - p[2]) / (2.0 * hs)
        gamma = (p[1] - 2.0 * p[0] + p[2]) / (hs * hs)
        vega = (p[3] - p[4]) / (vv[3] - vv[4])
        theta = np.where(ht > 0, (p[5] - p[0]) / ht, np.nan)
        rho = (p[6] - p[7]) / (2.0 * hr)
    return AmericanGreeks(*(a.reshape(shape) for a in (p[0], delta, gamma, vega, theta, rho)))


def american_iv(price, spot, strike, t, rate, div_yield, is_call, *, method: str = "bs2002",
                dividends=None) -> IVResult:
    """The vol at which the model reproduces ``price``, for every broadcast element (see ``IVReason``).

    Reasons: BAD_INPUT (NaN/inf, S or K <= 0, t < 0, price < 0), EXPIRED (t == 0), BELOW_INTRINSIC (price
    below the model's zero-vol value max(immediate exercise, discounted forward intrinsic)), NO_TIME_VALUE
    (price at or below the model's value at ``VOL_MIN``), ABOVE_MAX (price at or above the model's value at
    ``VOL_MAX``, or above S for a call / K for a put). Converged to |model - price| <= 1e-11 relative or a
    1e-10 vol bracket.
    """
    _check_method(method)
    q = dividend_yield_equivalent(spot, t, rate, div_yield, dividends)
    flat, shape = _flatten(price, spot, strike, t, rate, q, is_call)
    p, s, k, tt, r, q = (a.astype(np.float64) for a in flat[:6])
    c = flat[6].astype(bool)
    n = p.size
    vol = np.full(n, np.nan)
    reason = np.full(n, IVReason.OK, dtype=np.uint8)
    bad = ~(np.isfinite(p + s + k + tt + r + q) & (s > 0) & (k > 0) & (tt >= 0) & (p >= 0))
    reason[bad] = IVReason.BAD_INPUT
    reason[~bad & (tt == 0)] = IVReason.EXPIRED
    live = np.flatnonzero(reason == IVReason.OK)
    if live.size:
        v, why = _solve(p[live], s[live], k[live], tt[live], r[live], q[live], c[live], method)
        vol[live], reason[live] = v, why
    return IVResult(vol.reshape(shape), reason.reshape(shape))


def _solve(p, s, k, t, r, q, c, method):
    """Classify against the model's values at zero, VOL_MIN and VOL_MAX, then solve the rest."""
    n = p.size
    zero = _price_flat(s, k, t, r, q, np.zeros(n), c, method)
    lo_p = _price_flat(s, k, t, r, q, np.full(n, VOL_MIN), c, method)
    hi_p = _price_flat(s, k, t, r, q, np.full(n, VOL_MAX), c, method)
    cap = np.where(c, s, k)
    reason = np.full(n, IVReason.OK, dtype=np.uint8)
    reason[p >= np.minimum(hi_p, cap)] = IVReason.ABOVE_MAX
    reason[p <= lo_p] = IVReason.NO_TIME_VALUE
    reason[p < zero * (1.0 - 1e-12) - 1e-300] = IVReason.BELOW_INTRINSIC
    vol = np.full(n, np.nan)
    todo = np.flatnonzero(reason == IVReason.OK)
    if todo.size:
        vol[todo] = _newton(p[todo], s[todo], k[todo], t[todo], r[todo], q[todo], c[todo], method)
    return vol, reason


def _newton(p, s, k, t, r, q, c, method):
    """Bracketed Newton on every row at once: a Newton step from a finite-difference vega when it stays
    inside the bracket [lo, hi] (price(lo) < target < price(hi)), bisection otherwise."""
    n = p.size
    lo, hi = np.full(n, VOL_MIN), np.full(n, VOL_MAX)
    # start from the Black-76 vol of the same price on the same forward (the early-exercise premium is small
    # where the vol is well defined, so this is within a few vol points); where the price is above what a
    # European option can be worth, from the Brenner-Subrahmanyam ATM guess of the time value
    euro = black_iv.implied_vol(price=p, forward=s * np.exp((r - q) * t), strike=k, t=t, discount=np.exp(-r * t),
                                is_call=c).vol
    time_value = np.maximum(p - np.maximum(np.where(c, s - k, k - s), 0.0), 1e-12 * s)
    v = np.where(np.isfinite(euro), euro, time_value / (0.4 * s * np.sqrt(t)))
    v = np.clip(v, 2.0 * VOL_MIN, 0.5 * VOL_MAX)
    tol = _PRICE_TOL * np.maximum(p, 1e-3 * s)
    active = np.arange(n)
    h = 1e-5
    for _ in range(_ITERATIONS):
        if not active.size:
            break
        a = active
        va = v[a]
        pair = _price_flat(np.tile(s[a], 2), np.tile(k[a], 2), np.tile(t[a], 2), np.tile(r[a], 2),
                           np.tile(q[a], 2), np.r_[va, va + h], np.tile(c[a], 2), method)
        f, vega = pair[:a.size] - p[a], (pair[a.size:] - pair[:a.size]) / h
        below = f < 0
        lo[a] = np.where(below, va, lo[a])
        hi[a] = np.where(below, hi[a], va)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = va - f / vega
        inside = np.isfinite(step) & (step > lo[a]) & (step < hi[a])
        v[a] = np.where(inside, step, 0.5 * (lo[a] + hi[a]))
        done = (np.abs(f) <= tol[a]) | (hi[a] - lo[a] <= CONVERGENCE_TOL)
        v[a[done]] = va[done]
        active = a[~done]
    return v
