"""Black kernels, pure numpy: Black-76 price and greeks (the path used when numba is off: SPX_NO_NUMBA=1 or
unavailable).

Same regions and formulas as the compiled scalar kernels in ``_black.py``, on
whole arrays with masks; scipy.special supplies erfcx and ndtr (scipy.stats is never imported).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from spx_core.pricing._black import asymptotic_series, small_t_series
from spx_core.pricing._constants import (
    ASYMPTOTIC_H,
    ONE_OVER_SQRT_TWO,
    ONE_OVER_SQRT_TWO_PI,
    SMALL_T,
    SQRT_TWO_PI,
    TAILS_D1,
)


def normalised_black_otm(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """b(x, s) for x <= 0, s > 0 (1-D arrays of equal length), full relative accuracy in the tails."""
    out = np.empty_like(x)
    r1 = (x < s * ASYMPTOTIC_H) & (0.5 * s * s + x < s * (SMALL_T + ASYMPTOTIC_H))
    r2 = ~r1 & (0.5 * s < SMALL_T)
    r3 = ~r1 & ~r2 & (x + 0.5 * s * s > TAILS_D1 * s)
    r4 = ~(r1 | r2 | r3)
    if r1.any():
        h, t = x[r1] / s[r1], 0.5 * s[r1]
        out[r1] = ONE_OVER_SQRT_TWO_PI * np.exp(-0.5 * (h * h + t * t)) * asymptotic_series(h, t)
    if r2.any():
        h, t = x[r2] / s[r2], 0.5 * s[r2]
        a = 1.0 + h * (0.5 * SQRT_TWO_PI) * special.erfcx(-ONE_OVER_SQRT_TWO * h)
        out[r2] = ONE_OVER_SQRT_TWO_PI * np.exp(-0.5 * (h * h + t * t)) * small_t_series(a, h, t)
    if r3.any():
        h, t, half_x = x[r3] / s[r3], 0.5 * s[r3], 0.5 * x[r3]
        out[r3] = special.ndtr(h + t) * np.exp(half_x) - special.ndtr(h - t) * np.exp(-half_x)
    if r4.any():
        h, t = x[r4] / s[r4], 0.5 * s[r4]
        out[r4] = 0.5 * np.exp(-0.5 * (h * h + t * t)) * (
            special.erfcx(-ONE_OVER_SQRT_TWO * (h + t)) - special.erfcx(-ONE_OVER_SQRT_TWO * (h - t)))
    return np.abs(np.maximum(out, 0.0))


def _valid(f, k, t, v, d):
    return (f > 0.0) & (k > 0.0) & (t >= 0.0) & (v >= 0.0) & (d > 0.0)


def price(f, k, t, v, d, c, out: np.ndarray) -> None:
    """Black-76 prices of 1-D equal-length arrays into ``out``."""
    sign = np.where(c, 1.0, -1.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        intrinsic = np.maximum(sign * (f - k), 0.0)
        s = v * np.sqrt(t)
        live = _valid(f, k, t, v, d) & (s > 0.0)
        x = -np.abs(np.log(f / k))
        tv = np.zeros_like(out)
        tv[live] = np.sqrt(f[live]) * np.sqrt(k[live]) * normalised_black_otm(x[live], s[live])
        np.multiply(d, tv + intrinsic, out=out)
        out[~_valid(f, k, t, v, d)] = np.nan


def greeks(f, k, t, v, d, c, out: np.ndarray) -> None:
    """Price and eight greeks (rows as in ``Greeks``) of 1-D equal-length arrays into ``out`` (9, n)."""
    price(f, k, t, v, d, c, out[0])
    sign = np.where(c, 1.0, -1.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sq_t = np.sqrt(t)
        s = v * sq_t
        x = np.log(f / k)
        d1 = x / s + 0.5 * s
        d2 = d1 - s
        pdf = ONE_OVER_SQRT_TWO_PI * np.exp(-0.5 * d1 * d1)
        rate = np.where(t > 0.0, -np.log(d) / t, 0.0)
        vega = d * f * pdf * sq_t
        out[1] = sign * special.ndtr(sign * d1)
        out[2] = pdf / (d * f * s)
        out[3] = vega
        out[4] = rate * out[0] - vega * v / (2.0 * t)
        out[5] = -t * out[0]
        out[6] = -pdf * d2 / v
        out[7] = vega * d1 * d2 / v
        out[8] = pdf * d2 / (2.0 * t)
    dead = _valid(f, k, t, v, d) & ~(s > 0.0)
    if dead.any():
        # Expired or zero vol: discounted intrinsic, step delta, no curvature; theta/rho from discounting only.
        itm = sign * (f - k)
        out[1, dead] = np.where(itm > 0.0, sign, np.where(x == 0.0, 0.5 * sign, 0.0))[dead]
        out[2:, dead] = 0.0
        out[4, dead] = np.where(t > 0.0, rate * out[0], 0.0)[dead]
        out[5, dead] = (-t * out[0])[dead]
    out[1:, ~_valid(f, k, t, v, d)] = np.nan
