"""Scalar special functions for the compiled kernels: erfc, erfcx, normal cdf and its inverse.

Plain Python on floats, written so numba can compile it (``_compile.py`` compiles whatever a kernel calls);
the pure-numpy path uses scipy.special instead. Sources: W. J. Cody, "Rational Chebyshev
approximations for the error function", Math. Comp. 1969 (CALERF, ~18 digits) and Wichura's
AS241 (1988) for the inverse normal, both as used by P. Jaeckel's "Let's Be Rational".
"""

from __future__ import annotations

from math import exp, fabs, floor, log, sqrt

from spx_core.pricing._constants import (
    AS241_CENTRAL,
    CODY_MIDDLE,
    CODY_SMALL,
    ONE_OVER_SQRT_PI,
    ONE_OVER_SQRT_TWO,
    ONE_OVER_SQRT_TWO_PI,
)

_XNEG = -26.628  # below this, 2*exp(x*x) overflows
_XBIG = 26.543  # above this, erfc underflows
_XHUGE = 6.71e7
# Cody's rational functions for erfcx, highest power first: P/Q on (CODY_SMALL, CODY_MIDDLE], and
# (1/sqrt(pi) - z*P(z)/Q(z))/x with z = 1/x^2 above it. Each is evaluated by Horner's rule over these tuples
# (the same operations, in the same order, as writing the polynomial out), in the function's own body: the
# vectorized loops inline these functions, and a call would stop LLVM from vectorizing them.
_MIDDLE_P = (2.15311535474403846e-8, 0.564188496988670089, 8.88314979438837594, 66.1191906371416295,
             298.635138197400131, 881.95222124176909, 1712.04761263407058, 2051.07837782607147, 1230.33935479799725)
_MIDDLE_Q = (1.0, 15.7449261107098347, 117.693950891312499, 537.181101862009858, 1621.38957456669019,
             3290.79923573345963, 4362.61909014324716, 3439.36767414372164, 1230.33935480374942)
_LARGE_P = (0.0163153871373020978, 0.305326634961232344, 0.360344899949804439, 0.125781726111229246,
            0.0160837851487422766, 6.58749161529837803e-4)
_LARGE_Q = (1.0, 2.56852019228982242, 1.87295284992346047, 0.527905102951428412, 0.0605183413124413191,
            0.00233520497626869185)


def _erf_small(y: float) -> float:
    """erf(y) for |y| <= CODY_SMALL (Cody's first interval)."""
    ysq = y * y
    num = (((0.185777706184603153 * ysq + 3.1611237438705656) * ysq + 113.864154151050156) * ysq
           + 377.485237685302021) * ysq + 3209.37758913846947
    den = (((ysq + 23.6012909523441209) * ysq + 244.024637934444173) * ysq
           + 1282.61652607737228) * ysq + 2844.23683343917062
    return y * num / den


def _erfcx_positive(y: float) -> float:
    """exp(y*y)*erfc(y) for y > CODY_SMALL (Cody's second and third intervals, no exponential)."""
    if y <= CODY_MIDDLE:
        p = _MIDDLE_P[0]
        for a in _MIDDLE_P[1:]:
            p = p * y + a
        q = _MIDDLE_Q[0]
        for a in _MIDDLE_Q[1:]:
            q = q * y + a
        return p / q
    if y >= _XHUGE:
        return ONE_OVER_SQRT_PI / y
    ysq = 1.0 / (y * y)
    p = _LARGE_P[0]
    for a in _LARGE_P[1:]:
        p = p * ysq + a
    q = _LARGE_Q[0]
    for a in _LARGE_Q[1:]:
        q = q * ysq + a
    return (ONE_OVER_SQRT_PI - ysq * p / q) / y


def _exp_minus_square(y: float) -> float:
    """exp(-y*y) with the square split (Cody) so the result keeps full relative accuracy for large y."""
    ysq = floor(y * 16.0) / 16.0
    return exp(-ysq * ysq) * exp(-(y - ysq) * (y + ysq))


def erfc(x: float) -> float:
    """Complementary error function, full relative accuracy in the right tail."""
    y = fabs(x)
    if y <= CODY_SMALL:
        return 1.0 - _erf_small(x)
    if y >= _XBIG:
        r = 0.0
    elif y <= CODY_MIDDLE:  # y*y rounds by <= 1.8e-15 here, so one plain exponential keeps full accuracy
        r = exp(-y * y) * _erfcx_positive(y)
    else:
        r = _exp_minus_square(y) * _erfcx_positive(y)
    return 2.0 - r if x < 0.0 else r


def erfcx(x: float) -> float:
    """Scaled complementary error function exp(x*x)*erfc(x)."""
    y = fabs(x)
    if y <= CODY_SMALL:
        return exp(x * x) * (1.0 - _erf_small(x))
    r = _erfcx_positive(y)
    if x < 0.0:
        if x < _XNEG:
            return 1.79e308
        if y <= CODY_MIDDLE:
            e = exp(y * y)
        else:
            ysq = floor(y * 16.0) / 16.0
            e = exp(ysq * ysq) * exp((y - ysq) * (y + ysq))
        return (e + e) - r
    return r


def _pair_middle(w1: float, w2: float, dw: float):
    """(erfcx(w1), erfcx(w1) - erfcx(w2)) on Cody's middle interval, erfcx = P(w)/Q(w) there: the
    difference (P1*Q2 - P2*Q1)/(Q1*Q2) = dw*(P2*Q[w1,w2] - Q2*P[w1,w2])/(Q1*Q2) uses the divided
    differences P[.,.], Q[.,.] (a second Horner pass over the first one's partial sums), so it keeps
    full relative accuracy however close w1 and w2 are (no subtraction of nearly equal values)."""
    p = _MIDDLE_P[0]
    dp = 0.0
    for a in _MIDDLE_P[1:]:
        dp = dp * w2 + p
        p = p * w1 + a
    q = _MIDDLE_Q[0]
    dq = 0.0
    for a in _MIDDLE_Q[1:]:
        dq = dq * w2 + q
        q = q * w1 + a
    p2 = p + dw * dp
    q2 = q + dw * dq
    inv = 1.0 / (q * q2)
    return p * q2 * inv, dw * (p2 * dq - q2 * dp) * inv


def _pair_large(w1: float, w2: float, dw: float):
    """As ``_pair_middle`` for w1 >= CODY_MIDDLE, where erfcx(w) = z*(1/sqrt(pi) - z^2*R(z^2)), z = 1/w, R = P/Q:
    erfcx(w1) - erfcx(w2) = (z1-z2)*[1/sqrt(pi) - (z1^2+z1*z2+z2^2)*R(v1) - z2^3*(z1+z2)*R[v1,v2]], v = z^2."""
    zz = 1.0 / (w1 * w2)
    z1 = w2 * zz
    z2 = w1 * zz
    v1 = z1 * z1
    v2 = z2 * z2
    p = _LARGE_P[0]
    dp = 0.0
    for a in _LARGE_P[1:]:
        dp = dp * v2 + p
        p = p * v1 + a
    q = _LARGE_Q[0]
    dq = 0.0
    for a in _LARGE_Q[1:]:
        dq = dq * v2 + q
        q = q * v1 + a
    dv = v1 - v2  # = (z1 - z2)(z1 + z2) > 0
    p2 = p - dv * dp
    q2 = q - dv * dq
    inv = 1.0 / (q * q2)
    r1 = p * q2 * inv
    r12 = (dp * q2 - p2 * dq) * inv
    bracket = ONE_OVER_SQRT_PI - (v1 + z1 * z2 + v2) * r1 - v2 * z2 * (z1 + z2) * r12
    return z1 * (ONE_OVER_SQRT_PI - v1 * r1), dw * z1 * z2 * bracket


def erfcx_pair(w1: float, dw: float):
    """(erfcx(w1), erfcx(w1) - erfcx(w1 + dw)) for dw >= 0 with full relative accuracy of the difference,
    when w1 and w1 + dw lie in one of Cody's two outer intervals; (nan, nan) otherwise (use another way)."""
    w2 = w1 + dw
    if w1 >= CODY_MIDDLE:
        return _pair_large(w1, w2, dw)
    if w1 > CODY_SMALL and w2 <= CODY_MIDDLE:
        return _pair_middle(w1, w2, dw)
    return float("nan"), float("nan")


def norm_cdf(z: float) -> float:
    """Standard normal cdf with full relative accuracy in the left tail."""
    return 0.5 * erfc(-z * ONE_OVER_SQRT_TWO)


def norm_pdf(z: float) -> float:
    return ONE_OVER_SQRT_TWO_PI * exp(-0.5 * z * z)


def _inverse_central(q: float) -> float:
    """AS241's central region: Phi^-1(0.5 + q) for |q| <= 0.425."""
    r = 0.180625 - q * q
    num = (((((((2.5090809287301226727e3 * r + 3.3430575583588128105e4) * r + 6.7265770927008700853e4) * r
               + 4.5921953931549871457e4) * r + 1.3731693765509461125e4) * r + 1.9715909503065514427e3) * r
            + 1.3314166789178437745e2) * r + 3.3871328727963666080e0)
    den = (((((((5.2264952788528545610e3 * r + 2.8729085735721942674e4) * r + 3.9307895800092710610e4) * r
               + 2.1213794301586595867e4) * r + 5.3941960214247511077e3) * r + 6.8718700749205790830e2) * r
            + 4.2313330701600911252e1) * r + 1.0)
    return q * num / den


def _inverse_tail(r: float) -> float:
    """AS241's tails: |Phi^-1(u)| for r = sqrt(-ln(min(u, 1-u))) >= sqrt(-ln(0.075))."""
    if r < 5.0:
        r -= 1.6
        num = (((((((7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r + 2.41780725177450611770e-1) * r
                   + 1.27045825245236838258e0) * r + 3.64784832476320460504e0) * r + 5.76949722146069140550e0) * r
                + 4.63033784615654529590e0) * r + 1.42343711074968357734e0)
        den = (((((((1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r + 1.51986665636164571966e-2) * r
                   + 1.48103976427480074590e-1) * r + 6.89767334985100004550e-1) * r + 1.67638483018380384940e0) * r
                + 2.05319162663775882187e0) * r + 1.0)
    else:
        r -= 5.0
        num = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r + 1.24266094738807843860e-3) * r
                   + 2.65321895265761230930e-2) * r + 2.96560571828504891230e-1) * r + 1.78482653991729133580e0) * r
                + 5.46378491116411436990e0) * r + 6.65790464350110377720e0)
        den = (((((((2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r + 1.84631831751005468180e-5) * r
                   + 7.86869131145613259100e-4) * r + 1.48753612908506148525e-2) * r + 1.36929880922735805310e-1) * r
                + 5.99832206555887937690e-1) * r + 1.0)
    return num / den


def inverse_norm_cdf(u: float) -> float:
    """Inverse standard normal cdf (Wichura AS241, ~1e-16 relative)."""
    if u <= 0.0:
        return -float("inf") if u == 0.0 else float("nan")
    if u >= 1.0:
        return float("inf") if u == 1.0 else float("nan")
    q = u - 0.5
    if fabs(q) <= AS241_CENTRAL:
        return _inverse_central(q)
    ret = _inverse_tail(sqrt(-log(u if q < 0.0 else 1.0 - u)))
    return -ret if q < 0.0 else ret
