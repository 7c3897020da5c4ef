"""Scalar normalised Black function (Jaeckel, "Let's Be Rational", 2013/2016) and the Black-76 kernel.

Plain Python on floats, compiled by numba through ``_jit.py`` (and usable uncompiled). With
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
"""

from __future__ import annotations

from math import exp, fabs, isnan

from spx_core.pricing._special import (
    ONE_OVER_SQRT_TWO,
    ONE_OVER_SQRT_TWO_PI,
    SQRT_TWO,
    SQRT_TWO_PI,
    erfcx,
    erfcx_pair,
)

ASYMPTOTIC_H = -10.0
SMALL_T = 2.0 * 2.220446049250313e-16 ** (1.0 / 16.0)  # 2*eps^(1/16) ~ 0.21


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
    elif x + 0.5 * s * s > s * 0.85:
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


FUNCTIONS = (asymptotic_series, small_t_series, normalised_intrinsic_call,
             black_otm_and_vega, normalised_black_otm, normalised_black_call, normalised_vega)
