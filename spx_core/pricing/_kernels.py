"""Black-76 price and greeks kernels (scalar, plus the array loops compiled by ``_jit.py``).

Every loop input is a 1-D float64 array (``is_call`` a 1-D bool array) of length ``n`` or 1; a length-1
input is broadcast (index 0), which covers "one discount factor per expiry" without copies.

One option costs one sqrt, one exponential and one or two rational functions (the logs ln(F/K),
ln(D) come in from numpy's SIMD log; ``_simd.py`` has the vectorized loops used for large arrays): with
A = min(F, K), B = max(F, K), h = -|ln(F/K)|/s, t = s/2 (s = vol*sqrt t) the out-of-the-money member of
the put-call pair is worth A*N(d1) - B*N(d2) with d1,2 = h +- t, and e1 = exp(-d1^2/2) serves the
price in every region (A*e1 = sqrt(AB)*exp(-(h^2+t^2)/2), the factor of Jaeckel's normalised Black
function), N(d1) of the delta and the density of every greek. The in-the-money option is that
time value plus intrinsic.
"""

from __future__ import annotations

from math import exp, fabs, isnan, sqrt

from spx_core.pricing._black import SMALL_T, small_t_series
from spx_core.pricing._special import (
    ONE_OVER_SQRT_TWO,
    ONE_OVER_SQRT_TWO_PI,
    SQRT_TWO,
    SQRT_TWO_PI,
    _erf_small,
    _erfcx_positive,
    erfcx,
    erfcx_pair,
)

NAN = float("nan")
_ERF_SMALL_LIMIT = 0.46875


def time_value(a: float, h: float, t: float, e1: float) -> float:
    """Out-of-the-money value A*N(h+t) - B*N(h-t) (B = A*exp(-2ht)), h <= 0, t > 0, e1 = exp(-(h+t)^2/2)."""
    # A*N(h+t) - B*N(h-t) = A*e1/2*[erfcx(w1) - erfcx(w2)], w1,2 = -(h+-t)/sqrt2: by divided differences
    # wherever both lie in one of Cody's outer intervals (all of Jaeckel's region 1 and most of the rest).
    _, diff = erfcx_pair(-ONE_OVER_SQRT_TWO * (h + t), SQRT_TWO * t)
    if not isnan(diff):
        return 0.5 * a * e1 * diff
    return _time_value_near_the_money(a, h, t, e1)


def _time_value_near_the_money(a: float, h: float, t: float, e1: float) -> float:
    """``time_value`` where ``erfcx_pair`` does not apply (|h+t| < 0.66 or straddling w = 4): Jaeckel's
    regions 2-4 (his region 1, h < -10, always lies in the pair's domain)."""
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


def price_one(forward, strike, t, vol, discount, is_call, x) -> float:
    """Price of one option; ``x`` = ln(F/K), passed in because numpy's SIMD log is ~5x cheaper than libm's."""
    if not valid(forward, strike, t, vol, discount):
        return NAN
    intrinsic = max(forward - strike, 0.0) if is_call else max(strike - forward, 0.0)
    s = vol * sqrt(t)
    if not s > 0.0:
        return discount * intrinsic
    h = -fabs(x) / s
    t2 = 0.5 * s
    d1 = h + t2
    return discount * (time_value(min(forward, strike), h, t2, exp(-0.5 * d1 * d1)) + intrinsic)


def _upper_tail(d: float, e: float) -> float:
    """N(-|d|) given e = exp(-d^2/2)."""
    y = ONE_OVER_SQRT_TWO * fabs(d)
    if y <= _ERF_SMALL_LIMIT:
        return 0.5 - 0.5 * _erf_small(y)
    return 0.5 * e * _erfcx_positive(y)


def _expired(forward, strike, t, discount, log_d, sign, out, i):
    """Zero total vol: discounted intrinsic, step delta, no curvature; theta and rho from discounting only."""
    intrinsic = max(sign * (forward - strike), 0.0)
    value = discount * intrinsic
    out[0, i] = value
    out[1, i] = sign if intrinsic > 0.0 else (0.5 * sign if forward == strike else 0.0)
    for j in range(2, 9):
        out[j, i] = 0.0
    out[4, i] = -log_d / t * value if t > 0.0 else 0.0
    out[5, i] = -t * value


def greeks_one(forward, strike, t, vol, discount, is_call, x, log_d, out, i):
    """Price and the eight greeks of one option into column ``i`` of ``out`` (rows as in ``Greeks``);
    ``x`` = ln(F/K) and ``log_d`` = ln(D) come from numpy's SIMD log (see ``price_one``)."""
    if not valid(forward, strike, t, vol, discount):
        for j in range(9):
            out[j, i] = NAN
        return
    sign = 1.0 if is_call else -1.0
    sq_t = sqrt(t)
    s = vol * sq_t
    if not s > 0.0:
        _expired(forward, strike, t, discount, log_d, sign, out, i)
        return
    a = min(forward, strike)
    h = -fabs(x) / s
    half_s = 0.5 * s
    d1n = h + half_s
    e1 = exp(-0.5 * d1n * d1n)
    # d1 of this option: d1n when F <= K, else -(h - s/2); its density from e1 (exp(-d^2/2) ratio is A/B).
    if x <= 0.0:
        d1, e_d1 = d1n, e1
    else:
        d1, e_d1 = half_s - h, e1 * (strike / forward)
    e_w1, diff = erfcx_pair(-ONE_OVER_SQRT_TWO * d1n, SQRT_TWO * half_s)
    if not isnan(diff):  # the erfcx values of the price also give the delta's tail N(-|d1|)
        tv = 0.5 * a * e1 * diff
        tail = 0.5 * e_d1 * (e_w1 if x <= 0.0 else e_w1 - diff)
    else:
        tv = _time_value_near_the_money(a, h, half_s, e1)
        tail = _upper_tail(d1, e_d1)
    value = discount * (tv + max(sign * (forward - strike), 0.0))
    n_d1 = tail if d1 < 0.0 else 1.0 - tail
    pdf = ONE_OVER_SQRT_TWO_PI * e_d1
    d2 = d1 - s
    vega = discount * forward * pdf * sq_t
    out[0, i] = value
    out[1, i] = n_d1 if is_call else (-tail if d1 >= 0.0 else n_d1 - 1.0)
    out[2, i] = pdf / (discount * forward * s)
    out[3, i] = vega
    out[4, i] = -log_d / t * value - vega * vol / (2.0 * t)
    out[5, i] = -t * value
    out[6, i] = -pdf * d2 / vol
    out[7, i] = vega * d1 * d2 / vol
    out[8, i] = pdf * d2 / (2.0 * t)


def price_loop(f, k, t, v, d, c, x, out):
    """Prices into ``out``; ``x`` = ln(F/K) of length n or 1 like the other inputs."""
    n = out.shape[0]
    if f.shape[0] == n and k.shape[0] == n and t.shape[0] == n and v.shape[0] == n and d.shape[0] == n \
            and c.shape[0] == n and x.shape[0] == n:
        for i in range(n):  # fast path, no per-element broadcast selects
            out[i] = price_one(f[i], k[i], t[i], v[i], d[i], c[i], x[i])
        return
    sf, sk, st, sv, sd, sc, sx = (f.shape[0] > 1, k.shape[0] > 1, t.shape[0] > 1, v.shape[0] > 1,
                                  d.shape[0] > 1, c.shape[0] > 1, x.shape[0] > 1)
    for i in range(n):
        out[i] = price_one(f[i if sf else 0], k[i if sk else 0], t[i if st else 0], v[i if sv else 0],
                           d[i if sd else 0], c[i if sc else 0], x[i if sx else 0])


def greeks_loop(f, k, t, v, d, c, x, log_d, out):
    """Price and greeks into the (9, n) ``out``; ``x`` = ln(F/K), ``log_d`` = ln(D), length n or 1."""
    n = out.shape[1]
    if f.shape[0] == n and k.shape[0] == n and t.shape[0] == n and v.shape[0] == n and d.shape[0] == n \
            and c.shape[0] == n and x.shape[0] == n and log_d.shape[0] == n:
        for i in range(n):  # fast path, no per-element broadcast selects
            greeks_one(f[i], k[i], t[i], v[i], d[i], c[i], x[i], log_d[i], out, i)
        return
    sf, sk, st, sv, sd, sc, sx, sl = (f.shape[0] > 1, k.shape[0] > 1, t.shape[0] > 1, v.shape[0] > 1,
                                      d.shape[0] > 1, c.shape[0] > 1, x.shape[0] > 1, log_d.shape[0] > 1)
    for i in range(n):
        greeks_one(f[i if sf else 0], k[i if sk else 0], t[i if st else 0], v[i if sv else 0],
                   d[i if sd else 0], c[i if sc else 0], x[i if sx else 0], log_d[i if sl else 0], out, i)


def price_at(f, k, t, v, d, c, x, out, index):
    """``price_one`` for the listed elements of full-length inputs (the options ``_simd`` leaves to us)."""
    for j in range(index.shape[0]):
        i = index[j]
        out[i] = price_one(f[i], k[i], t[i], v[i], d[i], c[i], x[i])


def greeks_at(f, k, t, v, d, c, x, log_d, out, index):
    """``greeks_one`` for the listed elements of full-length inputs (the options ``_simd`` leaves to us)."""
    for j in range(index.shape[0]):
        i = index[j]
        greeks_one(f[i], k[i], t[i], v[i], d[i], c[i], x[i], log_d[i], out, i)


FUNCTIONS = (_time_value_near_the_money, time_value, valid, price_one, _upper_tail, _expired, greeks_one)
LOOPS = (price_loop, greeks_loop, price_at, greeks_at)
