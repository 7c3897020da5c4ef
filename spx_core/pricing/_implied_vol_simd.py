"""Implied-vol kernels, vectorized: "Let's Be Rational" for large arrays in three passes, compiled by
``_compile.py`` (imported only then: needs numba).

1. ``iv_inputs_simd``: reason codes and normalised inputs (``_implied_vol.solve_inputs``) for every option;
   then ``iv_guess_simd``: ``_implied_vol._initial_guess`` for every option whose price lies below the central
   point b_c (the lower branch through the inverse of the lower map, and the middle branch left of s_c):
   ~98% of an SPX grid. It is the scalar code's formulas, not a new approximation: ``_implied_vol``'s
   helpers are compiled again with their libm calls (exp, expm1, erfcx, the inverse normal cdf's log)
   replaced by branch-free ones (``_branchfree.py``), and every ``if`` becomes a select, so LLVM runs 4-8
   options per loop iteration. What it cannot do the same way (prices above b_c, erfcx outside Cody's outer
   intervals, results that would leave the normal float range) is flagged in ``todo``; ``iv_guess_at`` runs
   the scalar guess there. The guesses agree with the scalar ones to a few ulps; the two Householder steps
   that follow land both on the same machine-precision root.
2. ``iv_iterate_simd`` (no branches): the two Householder steps of ``_implied_vol.normalised_total_vol``
   (``_householder.py``, the same source) with the same objectives, brackets and stopping rule. b(x, s) comes
   from ``erfcx_pair`` as in the scalar code; where that does not apply (near the money) or the scalar code
   would bisect, ``todo`` is set.
3. ``iv_at`` (scalar): the scalar iterations (from pass 1's guess) for the flagged options.
"""

from __future__ import annotations

import math

from spx_core.pricing import _householder, _implied_vol, _special
from spx_core.pricing._black_simd import _pair_large, _pair_middle
from spx_core.pricing._branchfree import exp as _exp
from spx_core.pricing._branchfree import inline
from spx_core.pricing._branchfree import log as _log
from spx_core.pricing._constants import (
    ABOVE_MAX,
    AS241_CENTRAL,
    BAD_INPUT,
    BELOW_INTRINSIC,
    CODY_MIDDLE,
    CODY_SMALL,
    DBL_EPSILON,
    DBL_MAX,
    DBL_MIN,
    EXPIRED,
    NO_TIME_VALUE,
    OK,
    ONE_OVER_SQRT_TWO,
    ONE_OVER_SQRT_TWO_PI,
    SQRT_THREE,
    SQRT_TWO,
    TWO_PI_OVER_SQRT_TWENTY_SEVEN,
)
from spx_core.pricing._implied_vol import _initial_guess, iterate_from_guess
from spx_core.pricing._registry import rebind

_MAX_DECAY_EXPONENT = 700.0  # _exp is exact to 1 ulp only down to -708 (normal results)


def _compiled_on(fn, **replacements):
    """``fn`` inlined with some of the global names it calls replaced (by the branch-free primitives below):
    the scalar formula compiled a second time, so there is one copy of it to maintain."""
    return inline(rebind(fn, **replacements))


_erf_small = inline(_special._erf_small)
_erfcx_positive = inline(_special._erfcx_positive)  # its y <= 4 / y > 4 test becomes a select
_inverse_central = inline(_special._inverse_central)
_inverse_tail = inline(_special._inverse_tail)
_householder_factor = inline(_householder.householder_factor)
_step_lower = _compiled_on(_householder.step_lower, householder_factor=_householder_factor)
_step_upper = _compiled_on(_householder.step_upper, householder_factor=_householder_factor)
_step_middle = _compiled_on(_householder.step_middle, householder_factor=_householder_factor)


@inline
def _expm1_small(y):
    """exp(y) - 1 for 0 <= y <= 0.22 (where ``_central_point`` uses it): Taylor to y^14, truncation < 1e-19
    relative; no cancellation, unlike exp(y) - 1."""
    p = 1.0 + y * (1.0 / 14.0)
    for inverse_n in (1.0 / 13.0, 1.0 / 12.0, 1.0 / 11.0, 1.0 / 10.0, 1.0 / 9.0, 1.0 / 8.0, 1.0 / 7.0, 1.0 / 6.0,
                      1.0 / 5.0, 1.0 / 4.0, 1.0 / 3.0, 0.5):
        p = 1.0 + y * inverse_n * p
    return y * p


@inline
def _erfcx_nonneg(y):
    """erfcx(y) for y >= 0 as ``_special.erfcx``, all of Cody's intervals evaluated and one selected."""
    return _exp(y * y) * (1.0 - _erf_small(y)) if y <= CODY_SMALL else _erfcx_positive(max(y, CODY_SMALL))


_min_control = _compiled_on(_implied_vol._min_control)
_bounded_control = _compiled_on(_implied_vol._bounded_control, _min_control=_min_control)
_control_right = _compiled_on(_implied_vol._control_right, _bounded_control=_bounded_control)
_rational_cubic = _compiled_on(_implied_vol._rational_cubic)
_central_point = _compiled_on(_implied_vol._central_point, exp=_exp, expm1=_expm1_small, _erf_small=_erf_small,
                              _erfcx_positive=_erfcx_positive)
_lower_map = _compiled_on(_implied_vol._lower_map, exp=_exp, erfcx=_erfcx_nonneg)


@inline
def _black_vega(x, s):
    """(ok, b, db/ds) as ``_black.black_otm_and_vega`` where ``erfcx_pair`` applies (ok False elsewhere)."""
    h = x / s
    t = 0.5 * s
    g = _exp(-0.5 * (h * h + t * t))
    w1 = -ONE_OVER_SQRT_TWO * (h + t)
    dw = SQRT_TWO * t
    w2 = w1 + dw
    _, diff_mid = _pair_middle(max(w1, CODY_SMALL), min(max(w2, CODY_SMALL), CODY_MIDDLE), dw)
    _, diff_large = _pair_large(max(w1, CODY_MIDDLE), max(w2, CODY_MIDDLE), dw)
    large = w1 >= CODY_MIDDLE
    ok = (large or (w1 > CODY_SMALL and w2 <= CODY_MIDDLE)) and s > 0.0 and s < DBL_MAX
    b = 0.5 * g * (diff_large if large else diff_mid)
    return ok, abs(max(b, 0.0)), ONE_OVER_SQRT_TWO_PI * g


@inline
def _inverse_lower_map(x, f):
    """(ok, s) as ``_implied_vol._inverse_lower_map``: s = |x / (sqrt3 * Phi^-1(u))|, u = (f / (c*|x|))^(1/3), with
    the cube root as exp(ln(.)/3) and that same logarithm reused by the inverse cdf's tail (u < 0.075);
    ok False where the argument is not a normal float or u is not below 1/2 (the scalar code does those)."""
    a = f / (TWO_PI_OVER_SQRT_TWENTY_SEVEN * abs(x))
    ln_u = _log(max(a, DBL_MIN)) / 3.0
    u = _exp(ln_u)
    q = u - 0.5
    central = _inverse_central(max(q, -AS241_CENTRAL))
    tail = -_inverse_tail(math.sqrt(max(-ln_u, 2.5)))  # >= sqrt(-ln 0.075) = 1.6 where it is selected
    z = central if q >= -AS241_CENTRAL else tail
    return a >= DBL_MIN and a < DBL_MAX and q < 0.0, abs(x / (SQRT_THREE * z))


@inline
def _guess_below_centre(beta, x, b_max):
    """(ok, s, s_left, s_right, branch) of ``_implied_vol._initial_guess`` for beta below b_c (ok False: elsewhere,
    or where only the scalar code gives the same result)."""
    s_c = math.sqrt(abs(2.0 * x))
    b_c, v_c = _central_point(s_c, b_max)
    s_l = s_c - b_c / v_c
    fine, b_l, v_l = _black_vega(x, s_l)
    f_l, df_l, ddf_l = _lower_map(x, s_l)
    lower = beta < b_l
    # Both branches interpolate with the same two functions: select their nodes, call each function once.
    r = _control_right(0.0 if lower else b_l, b_l if lower else b_c, 0.0 if lower else s_l, f_l if lower else s_c,
                       1.0 if lower else 1.0 / v_l, df_l if lower else 1.0 / v_c, ddf_l if lower else 0.0, lower)
    y = _rational_cubic(beta, 0.0 if lower else b_l, b_l if lower else b_c, 0.0 if lower else s_l,
                        f_l if lower else s_c, 1.0 if lower else 1.0 / v_l, df_l if lower else 1.0 / v_c, r)
    u = beta / b_l
    f = y if y > 0.0 else (f_l * u + b_l * (1.0 - u)) * u  # the scalar code's round-off fallback
    mapped, s_lower = _inverse_lower_map(x, f)
    s = s_lower if lower else y
    ok = (beta < b_c and fine and b_l >= DBL_MIN and s > 0.0 and s < DBL_MAX
          and ((not lower) or (mapped and 1.5 * (x * x / (3.0 * s_l * s_l)) < _MAX_DECAY_EXPONENT)))
    return ok, s, DBL_MIN if lower else s_l, s_l if lower else s_c, 0 if lower else 1


def iv_guess_simd(beta, x, b_max, s, s_left, s_right, branch, vol, reason, todo):
    """Pass 1b, vectorized: the initial guess where pass 1a found a price to solve; ``todo`` where the scalar
    guess (``iv_guess_at``) is needed. vol is NaN and branch -1 where there is nothing to solve."""
    for i in range(vol.shape[0]):
        live = reason[i] == OK
        ok, si, sl, sr, br = _guess_below_centre(beta[i] if live else 0.1, x[i] if live else -1.0,
                                                 b_max[i] if live else 0.6)
        vol[i] = math.nan
        s[i], s_left[i], s_right[i] = si, sl, sr
        branch[i] = br if live else -1
        todo[i] = live and not ok


def iv_guess_at(beta, x, b_max, s, s_left, s_right, branch, index):
    """Pass 1b, scalar: ``_implied_vol._initial_guess`` for the listed options."""
    for j in range(index.shape[0]):
        i = index[j]
        s[i], s_left[i], s_right[i], branch[i] = _initial_guess(beta[i], x[i], b_max[i])


@inline
def _step(branch, x, s, beta, ln_beta, b, bp, b_max, s_left, s_right):
    """One step of ``normalised_total_vol`` for each branch, selected (all three are computed; the one
    logarithm is of the selected branch's argument)."""
    mid = 0.5 * (s_left + s_right) - s
    ln_arg = _log(max(b if branch == 0 else (b_max - beta) / (b_max - b), DBL_MIN))
    lower = _step_lower(x, s, ln_beta, ln_arg, b, bp)
    lower = mid if (b <= 0.0 or bp <= 0.0) else lower
    upper = _step_upper(x, s, ln_arg, b, bp, b_max)
    upper = mid if (b >= b_max or bp <= DBL_MIN) else upper
    middle = _step_middle(x, s, beta, b, bp)
    ds = lower if branch == 0 else (upper if branch == 2 else middle)
    return max(-0.5 * s, ds)


@inline
def _iteration(first, beta, ln_beta, x, b_max, s, s_left, s_right, branch, ds, ok):
    """One pass of ``normalised_total_vol``'s loop on the state (s, s_left, s_right, ds, ok)."""
    again = abs(ds) > DBL_EPSILON * s  # the scalar loop's condition (always true the first time)
    inside = first or s_left < s < s_right  # else the scalar code would bisect
    fine, b, bp = _black_vega(x, s)
    fine = fine and b >= DBL_MIN  # _log is for normal numbers; the scalar code takes subnormal b
    ok = ok and ((not again) or (inside and fine))
    above = b > beta and s < s_right
    below = (not above) and b < beta and s > s_left
    s_right = s if (again and above) else s_right
    s_left = s if (again and below) else s_left
    step = _step(branch, x, s, beta, ln_beta, b, bp, b_max, s_left, s_right)
    ds = step if again else 0.0
    return s + ds, s_left, s_right, ds, ok


@inline
def _iterate(beta, ln_beta, x, b_max, s, s_left, s_right, branch):
    """(ok, s) after ``normalised_total_vol``'s ITERATIONS (= 2) passes; ok False: the scalar code must do it.
    Unrolled by hand: LLVM only vectorizes the innermost loop."""
    s, s_left, s_right, ds, ok = _iteration(True, beta, ln_beta, x, b_max, s, s_left, s_right, branch, -DBL_MAX,
                                            True)
    s, s_left, s_right, ds, ok = _iteration(False, beta, ln_beta, x, b_max, s, s_left, s_right, branch, ds, ok)
    return ok, s


def iv_inputs_simd(pr, f, k, t, d, c, lx, beta, ln_beta, x, b_max, reason):
    """Pass 1a, vectorized: ``_implied_vol.solve_inputs`` for every option (reason codes and beta, x, b_max)."""
    for i in range(reason.shape[0]):
        fi, ki, ti, di, pi = f[i], k[i], t[i], d[i], pr[i]
        bad = not (fi > 0.0 and ki > 0.0 and di > 0.0 and ti >= 0.0 and pi >= 0.0 and fi < DBL_MAX
                   and ki < DBL_MAX and ti < DBL_MAX and pi < DBL_MAX)
        p = pi / di
        intrinsic = max((fi - ki) if c[i] else (ki - fi), 0.0)
        bi = (p - intrinsic) / (math.sqrt(fi) * math.sqrt(ki))
        xi = -abs(lx[i])
        bm = _exp(0.5 * xi)
        code = (BAD_INPUT if bad else EXPIRED if ti == 0.0 else BELOW_INTRINSIC if p < intrinsic
                else ABOVE_MAX if p >= (fi if c[i] else ki) else NO_TIME_VALUE if not bi >= DBL_MIN
                else ABOVE_MAX if bi >= bm else OK)
        reason[i] = code
        beta[i], x[i], b_max[i] = bi, xi, bm
        ln_beta[i] = _log(bi if code == OK else 1.0)


def iv_iterate_simd(beta, ln_beta, x, b_max, s, s_left, s_right, branch, sqrt_t, vol, reason, todo):
    """Pass 2, vectorized: vol and reason for every option with branch >= 0 that needs no scalar help."""
    for i in range(vol.shape[0]):
        live = branch[i] >= 0
        bi = beta[i] if live else 0.5  # harmless stand-ins for lanes that are not solved here
        ok, si = _iterate(bi, ln_beta[i] if live else -0.7, x[i] if live else -1.0, b_max[i] if live else 0.6,
                          s[i] if live else 1.0, s_left[i] if live else 0.0, s_right[i] if live else 2.0, branch[i])
        solved = si < DBL_MAX
        vol[i] = (si / sqrt_t[i] if solved else math.nan) if live else vol[i]
        reason[i] = (OK if solved else ABOVE_MAX) if live else reason[i]
        todo[i] = live and not ok


def iv_at(beta, ln_beta, x, b_max, s, s_left, s_right, branch, sqrt_t, vol, reason, index):
    """Pass 3: the scalar iterations, from pass 1's guess, for the listed options."""
    for j in range(index.shape[0]):
        i = index[j]
        si = iterate_from_guess(beta[i], x[i], b_max[i], s[i], s_left[i], s_right[i], branch[i])
        solved = si < DBL_MAX  # else the price cannot be told apart from its upper bound in float64
        vol[i] = si / sqrt_t[i] if solved else math.nan
        reason[i] = OK if solved else ABOVE_MAX


LOOPS = (iv_inputs_simd, iv_guess_simd, iv_guess_at, iv_iterate_simd, iv_at)
