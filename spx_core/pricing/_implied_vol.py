"""Implied-vol kernels, scalar: P. Jaeckel's "Let's Be Rational" (Wilmott 2015), compiled by ``_compile.py``.

For an out-of-the-money normalised call price beta in (0, exp(x/2)) with x = ln(F/K) <= 0, the
total volatility s = vol*sqrt(T) is found in two steps: (1) a rational-cubic initial guess on one
of four branches of b(s) (lower branch through the transformation f = ...Phi^3, two middle
branches directly, upper branch through Phi(-s/2)), accurate to a few digits everywhere; (2) two
third-order Householder steps on an objective chosen per branch (1/ln b on the lowest, b itself
in the middle, ln(b_max - b) on the upper), which lands on machine precision. A bracket is
kept so that, for absurd inputs (|x| > ~500), the iteration falls back to bisection.
"""

from __future__ import annotations

from math import exp, expm1, fabs, log, sqrt

from spx_core.pricing._black import black_otm_and_vega, normalised_intrinsic_call
from spx_core.pricing._constants import (
    ABOVE_MAX,
    BAD_INPUT,
    BELOW_INTRINSIC,
    CODY_SMALL,
    DBL_EPSILON,
    DBL_MAX,
    DBL_MIN,
    EXPIRED,
    ITERATIONS,
    NO_TIME_VALUE,
    OK,
    ONE_OVER_SQRT_TWO,
    ONE_OVER_SQRT_TWO_PI,
    PI_OVER_SIX,
    R_MAX,
    R_MIN,
    SQRT_DBL_MAX,
    SQRT_ONE_OVER_THREE,
    SQRT_PI_OVER_TWO,
    SQRT_THREE,
    TWO_PI,
    TWO_PI_OVER_SQRT_TWENTY_SEVEN,
)
from spx_core.pricing._householder import step_lower, step_middle, step_upper
from spx_core.pricing._special import _erf_small, _erfcx_positive, erfcx, inverse_norm_cdf, norm_cdf


def _rational_cubic(x, x_l, x_r, y_l, y_r, d_l, d_r, r):
    """Delbourgo-Gregory shape-preserving rational cubic interpolation."""
    h = x_r - x_l
    if fabs(h) <= 0.0:
        return 0.5 * (y_l + y_r)
    t = (x - x_l) / h
    if not r >= R_MAX:
        omt = 1.0 - t
        t2 = t * t
        omt2 = omt * omt
        return ((y_r * t2 * t + (r * y_r - h * d_r) * t2 * omt + (r * y_l + h * d_l) * t * omt2 + y_l * omt2 * omt)
                / (1.0 + (r - 3.0) * t * omt))
    return y_r * t + y_l * (1.0 - t)


def _min_control(d_l, d_r, s, prefer_shape):
    """Smallest control parameter that keeps the interpolant monotone/convex where the data are."""
    monotonic = d_l * s >= 0.0 and d_r * s >= 0.0
    convex = d_l <= s <= d_r
    concave = d_l >= s >= d_r
    if not monotonic and not convex and not concave:
        return R_MIN
    r1 = -DBL_MAX
    r2 = r1
    if monotonic:
        if fabs(s) >= DBL_MIN:
            r1 = (d_r + d_l) / s
        elif prefer_shape:
            r1 = R_MAX
    if convex or concave:
        if fabs(s - d_l) >= DBL_MIN and fabs(d_r - s) >= DBL_MIN:
            r2 = max(fabs((d_r - d_l) / (d_r - s)), fabs((d_r - d_l) / (s - d_l)))
        elif prefer_shape:
            r2 = R_MAX
    elif monotonic and prefer_shape:
        r2 = R_MAX
    return max(R_MIN, max(r1, r2))


def _control_left(x_l, x_r, y_l, y_r, d_l, d_r, dd_l, prefer_shape):
    """Control parameter matching the second derivative at the left end (bounded for shape)."""
    h = x_r - x_l
    slope = (y_r - y_l) / h
    return _bounded_control(0.5 * h * dd_l + (d_r - d_l), slope - d_l, slope, d_l, d_r, prefer_shape)


def _control_right(x_l, x_r, y_l, y_r, d_l, d_r, dd_r, prefer_shape):
    """Control parameter matching the second derivative at the right end (bounded for shape)."""
    h = x_r - x_l
    slope = (y_r - y_l) / h
    return _bounded_control(0.5 * h * dd_r + (d_r - d_l), d_r - slope, slope, d_l, d_r, prefer_shape)


def _bounded_control(num, den, slope, d_l, d_r, prefer_shape):
    """num / den as a rational-cubic control parameter: 0 for a vanishing numerator, the bound for a
    vanishing denominator, and never below the shape-preserving minimum."""
    if fabs(num) < DBL_MIN:
        r = 0.0
    elif fabs(den) < DBL_MIN:
        r = R_MAX if num > 0.0 else R_MIN
    else:
        r = num / den
    return max(r, _min_control(d_l, d_r, slope, prefer_shape))


def _lower_map(x, s):
    """f(s) = 2pi/sqrt(27)*|x|*Phi(-z)^3, z = |x|/(sqrt(3)s), and its first two derivatives w.r.t. beta.
    With Phi(-z) = exp(-z^2/2)*erfcx(z/sqrt2)/2 the four exponentials of the textbook form reduce to two."""
    ax = fabs(x)
    z = SQRT_ONE_OVER_THREE * ax / s
    y = z * z
    s2 = s * s
    e = erfcx(ONE_OVER_SQRT_TWO * z)
    decay = exp(-1.5 * y)  # Phi(-z)^3 = decay*e^3/8
    q = exp(0.125 * s2)
    fpp = (PI_OVER_SIX * y / (s2 * s) * 0.5 * e * (8.0 * SQRT_THREE * s * ax + (3.0 * s2 * (s2 - 8.0) - 8.0 * x * x)
                                                    * SQRT_PI_OVER_TWO * e) * (q * q / decay))
    fp = TWO_PI * y * 0.25 * e * e * q
    f = TWO_PI_OVER_SQRT_TWENTY_SEVEN * ax * (0.125 * e * e * e * decay)
    return f, fp, fpp


def _inverse_lower_map(x, f):
    if fabs(f) < DBL_MIN:
        return 0.0
    return fabs(x / (SQRT_THREE * inverse_norm_cdf((f / (TWO_PI_OVER_SQRT_TWENTY_SEVEN * fabs(x))) ** (1.0 / 3.0))))


def _upper_map(x, s):
    """f(s) = Phi(-s/2) and its first two derivatives w.r.t. beta."""
    f = norm_cdf(-0.5 * s)
    w = (x / s) * (x / s)
    fp = -0.5 * exp(0.5 * w)
    fpp = SQRT_PI_OVER_TWO * exp(w + 0.125 * s * s) * w / s
    return f, fp, fpp


def _black_and_vega(x, s):
    """(b, db/ds) for x <= 0 and any s (s <= 0: intrinsic and the one-sided vega, nonzero only at x = 0)."""
    if not s > 0.0:
        return normalised_intrinsic_call(x), (ONE_OVER_SQRT_TWO_PI if x == 0.0 else 0.0)
    return black_otm_and_vega(x, s)


def _central_point(s_c, b_max):
    """(b, vega) at s_c = sqrt(2|x|), where h + t = 0: b = b_max*(1 - erfcx(w))/2, w = s_c/sqrt2, vega = b_max*phi(0)
    (for small w, 1 - erfcx(w) = exp(w^2)*erf(w) - expm1(w^2) has no cancellation)."""
    w = ONE_OVER_SQRT_TWO * s_c
    if w <= CODY_SMALL:
        one_minus = exp(w * w) * _erf_small(w) - expm1(w * w)
    else:
        one_minus = 1.0 - _erfcx_positive(w)
    return 0.5 * b_max * one_minus, ONE_OVER_SQRT_TWO_PI * b_max


def _initial_guess(beta, x, b_max):
    """Rational-cubic initial guess; returns (s, s_left, s_right, branch) with branch 0 lower, 1 middle, 2 upper.
    b and its vega come together from one exponential (``black_otm_and_vega``)."""
    s_c = sqrt(fabs(2.0 * x))
    b_c, v_c = _central_point(s_c, b_max)
    if beta < b_c:
        s_l = s_c - b_c / v_c
        b_l, v_l = _black_and_vega(x, s_l)
        if beta < b_l:
            f_l, df_l, ddf_l = _lower_map(x, s_l)
            r = _control_right(0.0, b_l, 0.0, f_l, 1.0, df_l, ddf_l, True)
            f = _rational_cubic(beta, 0.0, b_l, 0.0, f_l, 1.0, df_l, r)
            if not f > 0.0:  # round-off for extreme |x|: quadratic through f(0)=0, f'(0)=1, f(b_l)
                u = beta / b_l
                f = (f_l * u + b_l * (1.0 - u)) * u
            return _inverse_lower_map(x, f), DBL_MIN, s_l, 0
        r = _control_right(b_l, b_c, s_l, s_c, 1.0 / v_l, 1.0 / v_c, 0.0, False)
        return _rational_cubic(beta, b_l, b_c, s_l, s_c, 1.0 / v_l, 1.0 / v_c, r), s_l, s_c, 1
    s_h = s_c + (b_max - b_c) / v_c if v_c > DBL_MIN else s_c
    b_h, v_h = _black_and_vega(x, s_h)
    if beta <= b_h:
        r = _control_left(b_c, b_h, s_c, s_h, 1.0 / v_c, 1.0 / v_h, 0.0, False)
        return _rational_cubic(beta, b_c, b_h, s_c, s_h, 1.0 / v_c, 1.0 / v_h, r), s_c, s_h, 1
    f_h, df_h, ddf_h = _upper_map(x, s_h)
    f = -DBL_MAX
    if ddf_h > -SQRT_DBL_MAX and ddf_h < SQRT_DBL_MAX:
        r = _control_left(b_h, b_max, f_h, 0.0, df_h, -0.5, ddf_h, True)
        f = _rational_cubic(beta, b_h, b_max, f_h, 0.0, df_h, -0.5, r)
    if f <= 0.0:  # quadratic through f(b_h), f(b_max)=0, f'(b_max)=-1/2
        h = b_max - b_h
        u = (beta - b_h) / h
        f = (f_h * (1.0 - u) + 0.5 * h * u) * (1.0 - u)
    s = -2.0 * inverse_norm_cdf(f)
    # Near b_max the upper objective is the well-conditioned one; below half of it the middle one is.
    return s, s_h, DBL_MAX, 2 if beta > 0.5 * b_max else 1


def normalised_total_vol(beta: float, x: float, b_max: float) -> float:
    """Total vol s with b(x, s) = beta, for x <= 0 and 0 < beta < b_max = exp(x/2) (caller checks the bounds)."""
    s, s_left, s_right, branch = _initial_guess(beta, x, b_max)
    return iterate_from_guess(beta, x, b_max, s, s_left, s_right, branch)


def iterate_from_guess(beta, x, b_max, s, s_left, s_right, branch):
    """The Householder iterations of ``normalised_total_vol`` from an ``_initial_guess`` result."""
    ln_beta = log(beta) if branch == 0 else 0.0
    ds = -DBL_MAX
    ds_previous = 0.0
    reversals = 0
    iterations = 0
    while iterations < ITERATIONS and fabs(ds) > DBL_EPSILON * s:
        if ds * ds_previous < 0.0:
            reversals += 1
        if iterations > 0 and (reversals == 3 or not (s_left < s < s_right)):
            # Looping or outside the bracket (only for extreme |x|): bisect instead.
            s = 0.5 * (s_left + s_right)
            if s_right - s_left <= DBL_EPSILON * s:
                break
            reversals = 0
            ds = 0.0
        ds_previous = ds
        b, bp = _black_and_vega(x, s)
        if b > beta and s < s_right:
            s_right = s
        elif b < beta and s > s_left:
            s_left = s
        if branch == 0:
            ds = 0.5 * (s_left + s_right) - s if (b <= 0.0 or bp <= 0.0) else step_lower(x, s, ln_beta, log(b), b, bp)
        elif branch == 2:
            ds = (0.5 * (s_left + s_right) - s if (b >= b_max or bp <= DBL_MIN)
                  else step_upper(x, s, log((b_max - beta) / (b_max - b)), b, bp, b_max))
        else:
            ds = step_middle(x, s, beta, b, bp)
        ds = max(-0.5 * s, ds)
        s += ds
        iterations += 1
    return s


def implied_vol_one(price, forward, strike, t, discount, is_call):
    """(vol, reason) for one discounted Black-76 price; vol is NaN unless reason is OK."""
    if not (forward > 0.0 and strike > 0.0):
        return float("nan"), BAD_INPUT
    return implied_vol_with_log(price, forward, strike, t, discount, is_call, log(forward / strike))


def solve_inputs(price, forward, strike, t, discount, is_call, log_moneyness):
    """(reason, beta, x, b_max): with reason OK, the vol is s/sqrt(t) for the s with b(x, s) = beta
    (x = -|ln(F/K)| <= 0, b_max = exp(x/2)); otherwise there is none, for that reason."""
    nan = float("nan")
    if not (forward > 0.0 and strike > 0.0 and discount > 0.0 and t >= 0.0 and price >= 0.0
            and forward < DBL_MAX and strike < DBL_MAX and t < DBL_MAX and price < DBL_MAX):
        return BAD_INPUT, nan, nan, nan
    if t == 0.0:
        return EXPIRED, nan, nan, nan
    p = price / discount
    intrinsic = max(forward - strike, 0.0) if is_call else max(strike - forward, 0.0)
    if p < intrinsic:
        return BELOW_INTRINSIC, nan, nan, nan
    if p >= (forward if is_call else strike):
        return ABOVE_MAX, nan, nan, nan
    # Solve for the out-of-the-money member of the put-call pair: its price is the time value.
    beta = (p - intrinsic) / (sqrt(forward) * sqrt(strike))
    if not beta >= DBL_MIN:  # zero (or subnormal) time value: no volatility is implied
        return NO_TIME_VALUE, nan, nan, nan
    x = -fabs(log_moneyness)
    b_max = exp(0.5 * x)
    if beta >= b_max:
        return ABOVE_MAX, nan, nan, nan
    return OK, beta, x, b_max


def implied_vol_with_log(price, forward, strike, t, discount, is_call, log_moneyness):
    """``implied_vol_one`` given log_moneyness = ln(F/K) (the array loop takes it from numpy's SIMD log)."""
    code, beta, x, b_max = solve_inputs(price, forward, strike, t, discount, is_call, log_moneyness)
    if code != OK:
        return float("nan"), code
    s = normalised_total_vol(beta, x, b_max)
    if not s < DBL_MAX:  # the price cannot be told apart from its upper bound in float64
        return float("nan"), ABOVE_MAX
    return s / sqrt(t), OK


def iv_loop(pr, f, k, t, d, c, lx, out_vol, out_reason):
    """Implied vols into ``out_vol``/``out_reason``; every input has length n or 1, lx = ln(F/K)."""
    n = out_vol.shape[0]
    sp, sf, sk, st, sd, sc, sx = (pr.shape[0] > 1, f.shape[0] > 1, k.shape[0] > 1, t.shape[0] > 1,
                                  d.shape[0] > 1, c.shape[0] > 1, lx.shape[0] > 1)
    for i in range(n):
        vol, reason = implied_vol_with_log(pr[i if sp else 0], f[i if sf else 0], k[i if sk else 0],
                                           t[i if st else 0], d[i if sd else 0], c[i if sc else 0],
                                           lx[i if sx else 0])
        out_vol[i] = vol
        out_reason[i] = reason


LOOPS = (iv_loop,)
