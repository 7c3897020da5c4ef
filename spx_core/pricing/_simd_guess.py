""""Let's Be Rational"'s initial guess for large arrays, vectorized, compiled by ``_jit.py`` (needs numba).

``iv_guess_simd`` computes ``_lbr._initial_guess`` for every option whose price lies below the central
point b_c (the lower branch through the inverse of the lower map, and the middle branch left of s_c):
~98% of an SPX grid. It is the scalar code's formulas, not a new approximation: ``_lbr``'s helpers are
compiled again with their libm calls (exp, expm1, erfcx, the inverse normal cdf's log) replaced by
branch-free ones, and every ``if`` becomes a select, so LLVM runs 4-8 options per loop iteration.
What it cannot do the same way (prices above b_c, erfcx outside Cody's outer intervals, results that
would leave the normal float range) is flagged in ``todo``; ``iv_guess_at`` runs the scalar guess there.
The guesses agree with the scalar ones to a few ulps (exp and log here are within 1 ulp of libm's);
the two Householder steps that follow land both on the same machine-precision root.
"""

from __future__ import annotations

import math
from types import FunctionType

from spx_core.pricing import _lbr, _special
from spx_core.pricing._lbr import (
    DBL_MAX,
    DBL_MIN,
    OK,
    SQRT_THREE,
    TWO_PI_OVER_SQRT_TWENTY_SEVEN,
    _initial_guess,
)
from spx_core.pricing._simd import _exp, inline
from spx_core.pricing._simd_iv import _black_vega, _log

_THRESH = 0.46875  # Cody's first erfcx interval ends here
_CENTRAL_Q = 0.425  # AS241's central region: |u - 0.5| <= this
_MAX_DECAY_EXPONENT = 700.0  # _exp is exact to 1 ulp only down to -708 (normal results)


def _compiled_on(fn, **replacements):
    """``fn`` inlined with some of the global names it calls replaced (by the branch-free primitives below):
    the scalar formula compiled a second time, so there is one copy of it to maintain."""
    return inline(FunctionType(fn.__code__, {**fn.__globals__, **replacements}, fn.__name__, fn.__defaults__))


_erf_small = inline(_special._erf_small)
_erfcx_positive = inline(_special._erfcx_positive)  # its y <= 4 / y > 4 test becomes a select
_inverse_central = inline(_special._inverse_central)
_inverse_tail = inline(_special._inverse_tail)


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
    return _exp(y * y) * (1.0 - _erf_small(y)) if y <= _THRESH else _erfcx_positive(max(y, _THRESH))


_min_control = _compiled_on(_lbr._min_control)
_control_right = _compiled_on(_lbr._control_right, _min_control=_min_control)
_rational_cubic = _compiled_on(_lbr._rational_cubic)
_central_point = _compiled_on(_lbr._central_point, exp=_exp, expm1=_expm1_small, _erf_small=_erf_small,
                              _erfcx_positive=_erfcx_positive)
_lower_map = _compiled_on(_lbr._lower_map, exp=_exp, erfcx=_erfcx_nonneg)


@inline
def _inverse_lower_map(x, f):
    """(ok, s) as ``_lbr._inverse_lower_map``: s = |x / (sqrt3 * Phi^-1(u))|, u = (f / (c*|x|))^(1/3), with
    the cube root as exp(ln(.)/3) and that same logarithm reused by the inverse cdf's tail (u < 0.075);
    ok False where the argument is not a normal float or u is not below 1/2 (the scalar code does those)."""
    a = f / (TWO_PI_OVER_SQRT_TWENTY_SEVEN * abs(x))
    ln_u = _log(max(a, DBL_MIN)) / 3.0
    u = _exp(ln_u)
    q = u - 0.5
    central = _inverse_central(max(q, -_CENTRAL_Q))
    tail = -_inverse_tail(math.sqrt(max(-ln_u, 2.5)))  # >= sqrt(-ln 0.075) = 1.6 where it is selected
    z = central if q >= -_CENTRAL_Q else tail
    return a >= DBL_MIN and a < DBL_MAX and q < 0.0, abs(x / (SQRT_THREE * z))


@inline
def _guess_below_centre(beta, x, b_max):
    """(ok, s, s_left, s_right, branch) of ``_lbr._initial_guess`` for beta below b_c (ok False: elsewhere,
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
    """Pass 1b, scalar: ``_lbr._initial_guess`` for the listed options."""
    for j in range(index.shape[0]):
        i = index[j]
        s[i], s_left[i], s_right[i], branch[i] = _initial_guess(beta[i], x[i], b_max[i])


HASHED = (_compiled_on, _expm1_small.py_func, _erfcx_nonneg.py_func, _inverse_lower_map.py_func,
          _guess_below_centre.py_func)  # for the cache key (_cache.code_digest); the _lbr/_special code is hashed there
LOOPS = (iv_guess_simd, iv_guess_at)
