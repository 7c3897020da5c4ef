"""Implied-vol kernels, pure numpy (the path used when numba is off): ``_implied_vol.py``'s algorithm on whole
arrays.

Same branches, initial guesses, objectives, Householder steps (``_householder.py``) and iteration count as
the scalar code, with a boolean mask
per branch instead of ``if``; scipy.special supplies ndtr/ndtri/erfcx (scipy.stats is never imported).
The scalar code's bisection safeguard only fires for absurd inputs (|ln(F/K)| > ~500): those few
elements are handed to the scalar solver, so every result is the scalar algorithm's.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from spx_core.pricing import _black_numpy, _implied_vol
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
    R_MAX,
    R_MIN,
    SQRT_DBL_MAX,
    SQRT_THREE,
    TWO_PI_OVER_SQRT_TWENTY_SEVEN,
)
from spx_core.pricing._householder import step_lower, step_middle, step_upper
from spx_core.pricing._registry import rebind


def _black_and_vega(x, s):
    """(b, db/ds) for x <= 0; s <= 0 gives intrinsic (0) and the one-sided vega (nonzero only at x = 0)."""
    b = np.zeros_like(s)
    vega = np.where(x == 0.0, ONE_OVER_SQRT_TWO_PI, 0.0)
    live = s > 0.0
    if live.any():
        xs, ss = x[live], s[live]
        h = xs / ss
        b[live] = _black_numpy.normalised_black_otm(xs, ss)
        vega[live] = ONE_OVER_SQRT_TWO_PI * np.exp(-0.5 * (h * h + 0.25 * ss * ss))
    return b, vega


def _rational_cubic(x, x_l, x_r, y_l, y_r, d_l, d_r, r):
    h = x_r - x_l
    t = (x - x_l) / h
    omt = 1.0 - t
    cubic = ((y_r * t * t * t + (r * y_r - h * d_r) * t * t * omt + (r * y_l + h * d_l) * t * omt * omt
              + y_l * omt * omt * omt) / (1.0 + (r - 3.0) * t * omt))
    out = np.where(r >= R_MAX, y_r * t + y_l * (1.0 - t), cubic)
    return np.where(np.abs(h) <= 0.0, 0.5 * (y_l + y_r), out)


def _min_control(d_l, d_r, s, prefer_shape: bool):
    monotonic = (d_l * s >= 0.0) & (d_r * s >= 0.0)
    curved = ((d_l <= s) & (s <= d_r)) | ((d_l >= s) & (s >= d_r))
    fallback = R_MAX if prefer_shape else -DBL_MAX
    r1 = np.where(monotonic, np.where(np.abs(s) >= DBL_MIN, (d_r + d_l) / s, fallback), -DBL_MAX)
    sharp = (np.abs(s - d_l) >= DBL_MIN) & (np.abs(d_r - s) >= DBL_MIN)
    r2_curved = np.where(sharp, np.maximum(np.abs((d_r - d_l) / (d_r - s)), np.abs((d_r - d_l) / (s - d_l))), fallback)
    r2 = np.where(curved, r2_curved, np.where(monotonic, fallback, -DBL_MAX))
    return np.where(monotonic | curved, np.maximum(R_MIN, np.maximum(r1, r2)), R_MIN)


def _control(num, den, d_l, d_r, slope, prefer_shape: bool):
    r = np.where(np.abs(num) < DBL_MIN, 0.0, np.where(np.abs(den) < DBL_MIN, np.where(num > 0.0, R_MAX, R_MIN),
                                                      num / den))
    return np.maximum(r, _min_control(d_l, d_r, slope, prefer_shape))


# The lower and upper maps of the initial guess are the scalar code's, evaluated on arrays.
_lower_map = rebind(_implied_vol._lower_map, fabs=np.abs, exp=np.exp, erfcx=special.erfcx)
_upper_map = rebind(_implied_vol._upper_map, exp=np.exp, norm_cdf=special.ndtr)


def _lower_guess(beta, x, b_l, s_l):
    f_l, df, ddf = _lower_map(x, s_l)
    h = b_l
    r = _control(0.5 * h * ddf + (df - 1.0), df - f_l / h, 1.0, df, f_l / h, True)
    f = _rational_cubic(beta, 0.0, b_l, 0.0, f_l, 1.0, df, r)
    u = beta / b_l
    f = np.where(f > 0.0, f, (f_l * u + b_l * (1.0 - u)) * u)
    s = np.abs(x / (SQRT_THREE * special.ndtri((f / (TWO_PI_OVER_SQRT_TWENTY_SEVEN * np.abs(x))) ** (1.0 / 3.0))))
    return np.where(np.abs(f) < DBL_MIN, 0.0, s)


def _upper_guess(beta, x, b_h, s_h, b_max):
    f_h, df, ddf = _upper_map(x, s_h)
    h = b_max - b_h
    r = _control(0.5 * h * ddf + (-0.5 - df), (0.0 - f_h) / h - df, df, -0.5, (0.0 - f_h) / h, True)
    f = np.where((ddf > -SQRT_DBL_MAX) & (ddf < SQRT_DBL_MAX),
                 _rational_cubic(beta, b_h, b_max, f_h, 0.0, df, -0.5, r), -DBL_MAX)
    u = (beta - b_h) / h
    f = np.where(f <= 0.0, (f_h * (1.0 - u) + 0.5 * h * u) * (1.0 - u), f)
    return -2.0 * special.ndtri(f)


def _initial_guess(beta, x, b_max):
    """Arrays (s, s_left, s_right, branch) exactly as ``_implied_vol._initial_guess`` per element."""
    s_c = np.sqrt(np.abs(2.0 * x))
    w = ONE_OVER_SQRT_TWO * s_c  # b and vega at s_c in closed form, as _implied_vol._central_point
    b_c = 0.5 * b_max * np.where(w <= CODY_SMALL, np.exp(w * w) * special.erf(w) - np.expm1(w * w),
                                 1.0 - special.erfcx(w))
    v_c = ONE_OVER_SQRT_TWO_PI * b_max
    s, s_left, s_right = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    branch = np.ones(x.shape, dtype=np.int8)
    low = beta < b_c
    s_l = s_c - b_c / v_c
    s_h = np.where(v_c > DBL_MIN, s_c + (b_max - b_c) / v_c, s_c)
    s_e = np.where(low, s_l, s_h)  # the second node: left of s_c below b_c, right of it above
    b_e, v_e = _black_and_vega(x, s_e)
    lower = low & (beta < b_e)
    mid_l = low & ~lower
    mid_h = ~low & (beta <= b_e)
    upper = ~low & ~mid_h
    if lower.any():
        m = lower
        s[m] = _lower_guess(beta[m], x[m], b_e[m], s_e[m])
        s_left[m], s_right[m], branch[m] = DBL_MIN, s_e[m], 0
    for m, (xl, xr, yl, yr, dl, dr, left) in ((mid_l, (b_e, b_c, s_e, s_c, 1.0 / v_e, 1.0 / v_c, False)),
                                             (mid_h, (b_c, b_e, s_c, s_e, 1.0 / v_c, 1.0 / v_e, True))):
        if m.any():
            xl, xr, yl, yr, dl, dr = (a[m] for a in (xl, xr, yl, yr, dl, dr))
            h = xr - xl
            slope = (yr - yl) / h
            num = (dr - dl)  # second derivative taken as 0 at the matched end
            r = _control(num, slope - dl if left else dr - slope, dl, dr, slope, False)
            s[m] = _rational_cubic(beta[m], xl, xr, yl, yr, dl, dr, r)
            s_left[m], s_right[m] = yl, yr
    if upper.any():
        m = upper
        s[m] = _upper_guess(beta[m], x[m], b_e[m], s_e[m], b_max[m])
        s_left[m], s_right[m] = s_e[m], DBL_MAX
        branch[m] = np.where(beta[m] > 0.5 * b_max[m], 2, 1)
    return s, s_left, s_right, branch


def _steps(branch, x, s, beta, b, bp, b_max, s_left, s_right):
    """The Householder step of each element's branch (bisection where the scalar code bisects)."""
    mid = 0.5 * (s_left + s_right) - s
    ds = step_middle(x, s, beta, b, bp)
    lower = branch == 0
    if lower.any():
        step = step_lower(x, s, np.log(beta), np.log(b), b, bp)
        ds = np.where(lower, np.where((b <= 0.0) | (bp <= 0.0), mid, step), ds)
    upper = branch == 2
    if upper.any():
        step = step_upper(x, s, np.log((b_max - beta) / (b_max - b)), b, bp, b_max)
        ds = np.where(upper, np.where((b >= b_max) | (bp <= DBL_MIN), mid, step), ds)
    return ds


def normalised_total_vol(beta, x):
    """Arrays of s with b(x, s) = beta (x <= 0, 0 < beta < exp(x/2)), as ``_implied_vol.normalised_total_vol``."""
    b_max = np.exp(0.5 * x)
    s, s_left, s_right, branch = _initial_guess(beta, x, b_max)
    ds = np.full_like(s, -DBL_MAX)
    active = np.ones(s.shape, dtype=bool)
    scalar = np.zeros(s.shape, dtype=bool)
    for iteration in range(ITERATIONS):
        active &= np.abs(ds) > DBL_EPSILON * s
        if iteration > 0:  # the scalar code would bisect here: let it do the whole element
            escaped = active & ~((s_left < s) & (s < s_right))
            scalar |= escaped
            active &= ~escaped
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        xs, si, bi, sl, sr = x[idx], s[idx], beta[idx], s_left[idx], s_right[idx]
        b, bp = _black_and_vega(xs, si)
        above = (b > bi) & (si < sr)
        below = ~above & (b < bi) & (si > sl)
        sr = np.where(above, si, sr)
        sl = np.where(below, si, sl)
        s_left[idx], s_right[idx] = sl, sr
        step = _steps(branch[idx], xs, si, bi, b, bp, b_max[idx], sl, sr)
        ds[idx] = np.maximum(-0.5 * si, step)
        s[idx] = si + ds[idx]
    for i in np.flatnonzero(scalar):
        s[i] = _implied_vol.normalised_total_vol(float(beta[i]), float(x[i]), float(b_max[i]))
    return s


def implied_vol(pr, f, k, t, d, c, vol, reason) -> None:
    """``_implied_vol.implied_vol_one`` on equal-length 1-D arrays, into ``vol`` and ``reason``."""
    with np.errstate(all="ignore"):
        ok_input = ((f > 0.0) & (k > 0.0) & (d > 0.0) & (t >= 0.0) & (pr >= 0.0) & (f < DBL_MAX) & (k < DBL_MAX)
                    & (t < DBL_MAX) & (pr < DBL_MAX))
        p = pr / d
        intrinsic = np.where(c, np.maximum(f - k, 0.0), np.maximum(k - f, 0.0))
        beta = (p - intrinsic) / (np.sqrt(f) * np.sqrt(k))
        x = -np.abs(np.log(f / k))
        codes = np.select(
            [~ok_input, t == 0.0, p < intrinsic, p >= np.where(c, f, k), ~(beta >= DBL_MIN), beta >= np.exp(0.5 * x)],
            [BAD_INPUT, EXPIRED, BELOW_INTRINSIC, ABOVE_MAX, NO_TIME_VALUE, ABOVE_MAX], OK).astype(np.uint8)
        live = codes == OK
        s = normalised_total_vol(beta[live], x[live]) if live.any() else np.empty(0)
        codes[np.flatnonzero(live)[~(s < DBL_MAX)]] = ABOVE_MAX
        vol[:] = np.nan
        vol[live] = s / np.sqrt(t[live])
        vol[codes != OK] = np.nan
        reason[:] = codes
