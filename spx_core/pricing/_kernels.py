"""Black-76 price and greeks kernels (scalar, plus the array loops compiled by ``_jit.py``).

Every loop input is a 1-D float64 array (``is_call`` a 1-D bool array) of length ``n`` or 1; a length-1
input is broadcast (index 0), which covers "one discount factor per expiry" without copies.

One option costs one log, one sqrt, one exponential and one to three rational functions: with
A = min(F, K), B = max(F, K), h = -|ln(F/K)|/s, t = s/2 (s = vol*sqrt t) the out-of-the-money member of
the put-call pair is worth A*N(d1) - B*N(d2) with d1,2 = h +- t, and e1 = exp(-d1^2/2) serves the
price in every region (A*e1 = sqrt(AB)*exp(-(h^2+t^2)/2), the factor of Jaeckel's normalised Black
function), N(d1) of the delta and the density of every greek. The in-the-money option is that
time value plus intrinsic.
"""

from __future__ import annotations

from math import exp, fabs, log, sqrt

from spx_core.pricing._black import ASYMPTOTIC_H, SMALL_T, asymptotic_series, small_t_series
from spx_core.pricing._special import (
    ONE_OVER_SQRT_TWO,
    ONE_OVER_SQRT_TWO_PI,
    SQRT_TWO_PI,
    _erf_small,
    _erfcx_positive,
    erfcx,
)

NAN = float("nan")
_ERF_SMALL_LIMIT = 0.46875


def time_value(a: float, h: float, t: float, e1: float) -> float:
    """Out-of-the-money value A*N(h+t) - B*N(h-t) (B = A*exp(-2ht)), h <= 0, t > 0, e1 = exp(-(h+t)^2/2)."""
    if h < ASYMPTOTIC_H and t < SMALL_T + ASYMPTOTIC_H - h:  # Jaeckel's region 1: t < tau + |h| - 10
        return a * e1 * ONE_OVER_SQRT_TWO_PI * asymptotic_series(h, t)
    if t < SMALL_T:
        y = 1.0 + h * (0.5 * SQRT_TWO_PI) * erfcx(-ONE_OVER_SQRT_TWO * h)
        return a * e1 * ONE_OVER_SQRT_TWO_PI * small_t_series(y, h, t)
    d1 = h + t
    if d1 > 0.85:
        v = 1.0 - 0.5 * e1 * (_erfcx_positive(ONE_OVER_SQRT_TWO * d1) + _erfcx_positive(-ONE_OVER_SQRT_TWO * (h - t)))
        return a * max(v, 0.0)
    v = 0.5 * e1 * (erfcx(-ONE_OVER_SQRT_TWO * d1) - erfcx(-ONE_OVER_SQRT_TWO * (h - t)))
    return a * max(v, 0.0)


def valid(forward, strike, t, vol, discount) -> bool:
    return forward > 0.0 and strike > 0.0 and t >= 0.0 and vol >= 0.0 and discount > 0.0 and forward < 1e300


def price_one(forward, strike, t, vol, discount, is_call) -> float:
    if not valid(forward, strike, t, vol, discount):
        return NAN
    intrinsic = max(forward - strike, 0.0) if is_call else max(strike - forward, 0.0)
    s = vol * sqrt(t)
    if not s > 0.0:
        return discount * intrinsic
    h = -fabs(log(forward / strike)) / s
    t2 = 0.5 * s
    d1 = h + t2
    return discount * (time_value(min(forward, strike), h, t2, exp(-0.5 * d1 * d1)) + intrinsic)


def _upper_tail(d: float, e: float) -> float:
    """N(-|d|) given e = exp(-d^2/2)."""
    y = ONE_OVER_SQRT_TWO * fabs(d)
    if y <= _ERF_SMALL_LIMIT:
        return 0.5 - 0.5 * _erf_small(y)
    return 0.5 * e * _erfcx_positive(y)


def _expired(forward, strike, t, discount, sign, out, i):
    """Zero total vol: discounted intrinsic, step delta, no curvature; theta and rho from discounting only."""
    intrinsic = max(sign * (forward - strike), 0.0)
    value = discount * intrinsic
    out[0, i] = value
    out[1, i] = sign if intrinsic > 0.0 else (0.5 * sign if forward == strike else 0.0)
    for j in range(2, 9):
        out[j, i] = 0.0
    out[4, i] = -log(discount) / t * value if t > 0.0 else 0.0
    out[5, i] = -t * value


def greeks_one(forward, strike, t, vol, discount, is_call, out, i):
    """Price and the eight greeks of one option into column ``i`` of ``out`` (rows as in ``Greeks``)."""
    if not valid(forward, strike, t, vol, discount):
        for j in range(9):
            out[j, i] = NAN
        return
    sign = 1.0 if is_call else -1.0
    sq_t = sqrt(t)
    s = vol * sq_t
    if not s > 0.0:
        _expired(forward, strike, t, discount, sign, out, i)
        return
    x = log(forward / strike)
    a = min(forward, strike)
    h = -fabs(x) / s
    half_s = 0.5 * s
    d1n = h + half_s
    e1 = exp(-0.5 * d1n * d1n)
    value = discount * (time_value(a, h, half_s, e1) + max(sign * (forward - strike), 0.0))
    # d1 of this option: d1n when F <= K, else -(h - s/2); its density from e1 (exp(-d^2/2) ratio is A/B).
    if x <= 0.0:
        d1, e_d1 = d1n, e1
    else:
        d1, e_d1 = half_s - h, e1 * (strike / forward)
    tail = _upper_tail(d1, e_d1)
    n_d1 = tail if d1 < 0.0 else 1.0 - tail
    pdf = ONE_OVER_SQRT_TWO_PI * e_d1
    d2 = d1 - s
    vega = discount * forward * pdf * sq_t
    out[0, i] = value
    out[1, i] = n_d1 if is_call else (-tail if d1 >= 0.0 else n_d1 - 1.0)
    out[2, i] = pdf / (discount * forward * s)
    out[3, i] = vega
    out[4, i] = -log(discount) / t * value - vega * vol / (2.0 * t)
    out[5, i] = -t * value
    out[6, i] = -pdf * d2 / vol
    out[7, i] = vega * d1 * d2 / vol
    out[8, i] = pdf * d2 / (2.0 * t)


def price_loop(f, k, t, v, d, c, out):
    n = out.shape[0]
    sf, sk, st, sv, sd, sc = (f.shape[0] > 1, k.shape[0] > 1, t.shape[0] > 1, v.shape[0] > 1,
                              d.shape[0] > 1, c.shape[0] > 1)
    for i in range(n):
        out[i] = price_one(f[i if sf else 0], k[i if sk else 0], t[i if st else 0], v[i if sv else 0],
                           d[i if sd else 0], c[i if sc else 0])


def greeks_loop(f, k, t, v, d, c, out):
    n = out.shape[1]
    sf, sk, st, sv, sd, sc = (f.shape[0] > 1, k.shape[0] > 1, t.shape[0] > 1, v.shape[0] > 1,
                              d.shape[0] > 1, c.shape[0] > 1)
    for i in range(n):
        greeks_one(f[i if sf else 0], k[i if sk else 0], t[i if st else 0], v[i if sv else 0],
                   d[i if sd else 0], c[i if sc else 0], out, i)


FUNCTIONS = (time_value, valid, price_one, _upper_tail, _expired, greeks_one)
LOOPS = (price_loop, greeks_loop)
