"""Black kernels, scalar: the normalised Black function (Jaeckel, "Let's Be Rational", 2013/2016) and the
Black-76 price and greeks of one option, with the array loops over them.

Plain Python on floats, compiled by numba through ``_compile.py`` (and usable uncompiled). With
x = ln(F/K), s = vol*sqrt(T), h = x/s, t = s/2 the normalised call price is

    b(x, s) = Phi(h+t)*exp(x/2) - Phi(h-t)*exp(-x/2),     B = D*sqrt(F*K)*b.

For x <= 0 (out of the money) b = exp(-(h^2+t^2)/2)/2 * [erfcx(w1) - erfcx(w2)], w1,2 = -(h+-t)/sqrt2,
evaluated so the result keeps full *relative* accuracy however small it is: (0) where w1 and w2
lie in one of Cody's two outer erfcx intervals (w >= 0.47: everything but the near-the-money
band), by divided differences of Cody's rational functions (``_special.erfcx_pair``; no
cancellation however small t is); this replaces Jaeckel's asymptotic expansion for h < -10 (his
region 1, kept as ``asymptotic_series`` for the numpy path) at a fifth of the cost. Otherwise
Jaeckel's regions: (2) a 12th-order small-t expansion for t < 0.21, (3) plain tails when h+t > 0.85
and (4) one exponential times a difference of two erfcx values. In-the-money values are the
out-of-the-money value plus intrinsic (put-call symmetry), never a difference of large terms.

The Black-76 kernels. Every loop input is a 1-D float64 array (``is_call`` a 1-D bool array) of length
``n`` or 1; a length-1 input is broadcast (index 0), which covers "one discount factor per expiry" without copies.

One option costs one sqrt, one exponential and one or two rational functions (the logs ln(F/K),
ln(D) come in from numpy's SIMD log; ``_black_simd.py`` has the vectorized loops used for large arrays): with
A = min(F, K), B = max(F, K), h = -|ln(F/K)|/s, t = s/2 (s = vol*sqrt t) the out-of-the-money member of
the put-call pair is worth A*N(d1) - B*N(d2) with d1,2 = h +- t, and e1 = exp(-d1^2/2) serves the
price in every region (A*e1 = sqrt(AB)*exp(-(h^2+t^2)/2), the factor of Jaeckel's normalised Black
function), N(d1) of the delta and the density of every greek. The in-the-money option is that
time value plus intrinsic.
"""

from __future__ import annotations

from math import exp, fabs, isnan, sqrt

from spx_core.pricing._constants import (
    CODY_SMALL,
    HUGE,
    ONE_OVER_SQRT_TWO,
    ONE_OVER_SQRT_TWO_PI,
    SMALL_T,
    SQRT_TWO,
    SQRT_TWO_PI,
    TAILS_D1,
)
from spx_core.pricing._special import _erf_small, _erfcx_positive, erfcx, erfcx_pair

NAN = float("nan")


def asymptotic_series(h, t):
    """(t/r)*A(h,t) of region 1, A = r/t*[Y(h+t)-Y(h-t)], Y = Phi/phi, r = (h+t)(h-t); arithmetic only
    (works on floats and on numpy arrays). 17th order in q = (h/r)^2: 1.6e-16 relative for h <= -10."""
    e = (t / h) * (t / h)
    r = (h + t) * (h - t)
    q = (h / r) * (h / r)
    # Coefficients of A(h,t) = r/t*[Y(h+t)-Y(h-t)], Y = Phi/phi, as a series in q with polynomials in e.
    a = (2.0+q*(-6.0E0-2.0*e+3.0*q*(1.0E1+e*(2.0E1+2.0*e)+5.0*q*(-1.4E1+e*(-7.0E1+e*(-4.2E1-2.0*e))+
         7.0*q*(1.8E1+e*(1.68E2+e*(2.52E2+e*(7.2E1+2.0*e)))+9.0*q*(-2.2E1+e*(-3.3E2+e*(-9.24E2+e*(-6.6E2+
         e*(-1.1E2-2.0*e))))+1.1E1*q*(2.6E1+e*(5.72E2+e*(2.574E3+e*(3.432E3+e*(1.43E3+e*(1.56E2+2.0*e)))))+
         1.3E1*q*(-3.0E1+e*(-9.1E2+e*(-6.006E3+e*(-1.287E4+e*(-1.001E4+e*(-2.73E3+e*(-2.1E2-2.0*e))))))+
         1.5E1*q*(3.4E1+e*(1.36E3+e*(1.2376E4+e*(3.8896E4+e*(4.862E4+e*(2.4752E4+e*(4.76E3+e*(2.72E2+
         2.0*e)))))))+1.7E1*q*(-3.8E1+e*(-1.938E3+e*(-2.3256E4+e*(-1.00776E5+e*(-1.84756E5+e*(-1.51164E5+
         e*(-5.4264E4+e*(-7.752E3+e*(-3.42E2-2.0*e))))))))+1.9E1*q*(4.2E1+e*(2.66E3+e*(4.0698E4+e*(2.3256E5+
         e*(5.8786E5+e*(7.05432E5+e*(4.0698E5+e*(1.08528E5+e*(1.197E4+e*(4.2E2+2.0*e)))))))))+2.1E1*q*(-4.6E1+
         e*(-3.542E3+e*(-6.7298E4+e*(-4.90314E5+e*(-1.63438E6+e*(-2.704156E6+e*(-2.288132E6+e*(-9.80628E5+
         e*(-2.01894E5+e*(-1.771E4+e*(-5.06E2-2.0*e))))))))))+2.3E1*q*(5.0E1+e*(4.6E3+e*(1.0626E5+e*(9.614E5+
         e*(4.08595E6+e*(8.9148E6+e*(1.04006E7+e*(6.53752E6+e*(2.16315E6+e*(3.542E5+e*(2.53E4+e*(6.0E2+
         2.0*e)))))))))))+2.5E1*q*(-5.4E1+e*(-5.85E3+e*(-1.6146E5+e*(-1.77606E6+e*(-9.37365E6+e*(-2.607579E7+
         e*(-4.01166E7+e*(-3.476772E7+e*(-1.687257E7+e*(-4.44015E6+e*(-5.9202E5+e*(-3.51E4+
         e*(-7.02E2-2.0*e))))))))))))+2.7E1*q*(5.8E1+e*(7.308E3+e*(2.3751E5+e*(3.12156E6+e*(2.003001E7+
         e*(6.919458E7+e*(1.3572783E8+e*(1.5511752E8+e*(1.0379187E8+e*(4.006002E7+e*(8.58429E6+e*(9.5004E5+
         e*(4.7502E4+e*(8.12E2+2.0*e)))))))))))))+2.9E1*q*(-6.2E1+e*(-8.99E3+e*(-3.39822E5+e*(-5.25915E6+
         e*(-4.032015E7+e*(-1.6934463E8+e*(-4.1250615E8+e*(-6.0108039E8+e*(-5.3036505E8+e*(-2.8224105E8+
         e*(-8.870433E7+e*(-1.577745E7+e*(-1.472562E6+e*(-6.293E4+e*(-9.3E2-2.0*e))))))))))))))+3.1E1*q*(6.6E1+
         e*(1.0912E4+e*(4.74672E5+e*(8.544096E6+e*(7.71342E7+e*(3.8707344E8+e*(1.14633288E9+e*(2.07431664E9+
         e*(2.33360622E9+e*(1.6376184E9+e*(7.0963464E8+e*(1.8512208E8+e*(2.7768312E7+e*(2.215136E6+e*(8.184E4+
         e*(1.056E3+2.0*e)))))))))))))))+3.3E1*(-7.0E1+e*(-1.309E4+e*(-6.49264E5+e*(-1.344904E7+e*(-1.4121492E8+
         e*(-8.344518E8+e*(-2.9526756E9+e*(-6.49588632E9+e*(-9.0751353E9+e*(-8.1198579E9+e*(-4.6399188E9+
         e*(-1.6689036E9+e*(-3.67158792E8+e*(-4.707164E7+e*(-3.24632E6+e*(-1.0472E5+
         e*(-1.19E3-2.0*e)))))))))))))))))*q)))))))))))))))))
    return (t / r) * a


def small_t_series(a, h, t):
    """12th-order expansion of Y(h+t)-Y(h-t) in t, given a = 1 + h*Y(h); arithmetic only (floats or arrays).
    Accurate to eps for h <= 0 and t < 0.21."""
    w = t * t
    h2 = h * h
    expansion = 2.0 * t * (a + w * ((-1.0 + 3.0 * a + a * h2) / 6.0 + w * (
        (-7.0 + 15.0 * a + h2 * (-1.0 + 10.0 * a + a * h2)) / 120.0 + w * (
            (-57.0 + 105.0 * a + h2 * (-18.0 + 105.0 * a + h2 * (-1.0 + 21.0 * a + a * h2))) / 5040.0 + w * (
                (-561.0 + 945.0 * a + h2 * (-285.0 + 1260.0 * a + h2 * (-33.0 + 378.0 * a + h2 * (
                    -1.0 + 36.0 * a + a * h2)))) / 362880.0 + w * (
                    (-6555.0 + 10395.0 * a + h2 * (-4680.0 + 17325.0 * a + h2 * (-840.0 + 6930.0 * a + h2 * (
                        -52.0 + 990.0 * a + h2 * (-1.0 + 55.0 * a + a * h2))))) / 39916800.0
                    + ((-89055.0 + 135135.0 * a + h2 * (-82845.0 + 270270.0 * a + h2 * (
                        -20370.0 + 135135.0 * a + h2 * (-1926.0 + 25740.0 * a + h2 * (
                            -75.0 + 2145.0 * a + h2 * (-1.0 + 78.0 * a + a * h2)))))) * w) / 6227020800.0))))))
    return expansion


def normalised_intrinsic_call(x: float) -> float:
    """max(exp(x/2) - exp(-x/2), 0), via its Taylor series near x = 0 to avoid cancellation."""
    if x <= 0.0:
        return 0.0
    x2 = x * x
    if x2 < 98.0 * 1.220703125e-4:  # 98*eps^(1/4): the series below is exact to eps there
        return x * (1.0 + x2 * (1.0 / 24.0 + x2 * (1.0 / 1920.0 + x2 * (1.0 / 322560.0 + x2 / 92897280.0))))
    b_max = exp(0.5 * x)
    return b_max - 1.0 / b_max


def black_otm_and_vega(x: float, s: float):
    """(b(x, s), db/ds) for x <= 0, s > 0: both share the factor exp(-(h^2+t^2)/2), so one exponential."""
    h = x / s
    t = 0.5 * s
    g = exp(-0.5 * (h * h + t * t))
    vega = ONE_OVER_SQRT_TWO_PI * g
    # b = g/2*[erfcx(w1) - erfcx(w2)], w1,2 = -(h+-t)/sqrt2, by divided differences (no cancellation)
    # wherever both lie in one of Cody's outer intervals; that covers all of region 1 (h < -10).
    _, diff = erfcx_pair(-ONE_OVER_SQRT_TWO * (h + t), SQRT_TWO * t)
    if not isnan(diff):
        b = 0.5 * g * diff
    elif t < SMALL_T:
        a = 1.0 + h * (0.5 * SQRT_TWO_PI) * erfcx(-ONE_OVER_SQRT_TWO * h)
        b = vega * small_t_series(a, h, t)  # region 2
    elif x + 0.5 * s * s > s * TAILS_D1:
        # Region 3 (h+t > 0.85): b is most of b_max = exp(x/2), so b = b_max - (two small tails); with
        # Phi(z) = 1 - exp(-z^2/2)*erfcx(z/sqrt2)/2 both tails share the exponential g (no cancellation).
        b = exp(0.5 * x) - 0.5 * g * (erfcx(ONE_OVER_SQRT_TWO * (h + t)) + erfcx(-ONE_OVER_SQRT_TWO * (h - t)))
    else:  # region 4: one exponential times a difference of two rational functions
        b = 0.5 * g * (erfcx(-ONE_OVER_SQRT_TWO * (h + t)) - erfcx(-ONE_OVER_SQRT_TWO * (h - t)))
    return fabs(max(b, 0.0)), vega


def normalised_black_otm(x: float, s: float) -> float:
    """Normalised call value b(x, s) for x <= 0 (out of the money or at the money), s > 0."""
    return black_otm_and_vega(x, s)[0]


def normalised_black_call(x: float, s: float) -> float:
    """Normalised call value for any x; s <= 0 gives intrinsic."""
    if s <= 0.0:
        return normalised_intrinsic_call(x)
    if x > 0.0:
        return normalised_intrinsic_call(x) + normalised_black_otm(-x, s)
    return normalised_black_otm(x, s)


def normalised_vega(x: float, s: float) -> float:
    """d b / d s."""
    if x == 0.0:
        return ONE_OVER_SQRT_TWO_PI * exp(-0.125 * s * s)
    if s <= 0.0:
        return 0.0
    h = x / s
    return ONE_OVER_SQRT_TWO_PI * exp(-0.5 * (h * h + 0.25 * s * s))


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
    if d1 > TAILS_D1:
        v = 1.0 - 0.5 * e1 * (_erfcx_positive(ONE_OVER_SQRT_TWO * d1) + _erfcx_positive(-ONE_OVER_SQRT_TWO * (h - t)))
        return a * max(v, 0.0)
    v = 0.5 * e1 * (erfcx(-ONE_OVER_SQRT_TWO * d1) - erfcx(-ONE_OVER_SQRT_TWO * (h - t)))
    return a * max(v, 0.0)


def valid(forward, strike, t, vol, discount) -> bool:
    return forward > 0.0 and strike > 0.0 and t >= 0.0 and vol >= 0.0 and discount > 0.0 and forward < HUGE


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
    if y <= CODY_SMALL:
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
    """``price_one`` for the listed elements of full-length inputs (the options ``_black_simd`` leaves to us)."""
    for j in range(index.shape[0]):
        i = index[j]
        out[i] = price_one(f[i], k[i], t[i], v[i], d[i], c[i], x[i])


def greeks_at(f, k, t, v, d, c, x, log_d, out, index):
    """``greeks_one`` for the listed elements of full-length inputs (the options ``_black_simd`` leaves to us)."""
    for j in range(index.shape[0]):
        i = index[j]
        greeks_one(f[i], k[i], t[i], v[i], d[i], c[i], x[i], log_d[i], out, i)


LOOPS = (price_loop, greeks_loop, price_at, greeks_at)
