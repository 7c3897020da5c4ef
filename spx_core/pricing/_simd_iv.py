"""Implied vol for large arrays in three passes, compiled by ``_jit.py`` (imported only then: needs numba).

1. ``iv_inputs_simd`` (vectorized): reason codes and normalised inputs (``_lbr.solve_inputs``), then
   "Let's Be Rational"'s initial guess, bracket and branch for solvable prices (``_simd_guess.py``).
2. ``iv_iterate_simd`` (vectorized, no branches): the two Householder steps of ``_lbr.normalised_total_vol``
   with the same objectives, brackets and stopping rule. b(x, s) comes from ``erfcx_pair`` as in the
   scalar code; where that does not apply (near the money) or the scalar code would bisect, ``todo`` is set.
3. ``iv_at`` (scalar): the scalar iterations (from pass 1's guess) for the flagged options.
"""

from __future__ import annotations

import math

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from spx_core.pricing import _lbr
from spx_core.pricing._lbr import (
    ABOVE_MAX,
    BAD_INPUT,
    BELOW_INTRINSIC,
    DBL_EPSILON,
    DBL_MAX,
    DBL_MIN,
    EXPIRED,
    NO_TIME_VALUE,
    OK,
    iterate_from_guess,
)
from spx_core.pricing._simd import (
    _bits_to_float,
    _exp,
    _pair_large,
    _pair_middle,
    inline,
)
from spx_core.pricing._special import ONE_OVER_SQRT_TWO, ONE_OVER_SQRT_TWO_PI, SQRT_TWO

_householder_factor = inline(_lbr._householder_factor)
_step_middle = inline(_lbr._step_middle)
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_SQRT_HALF_BITS = 0x3FE6A09E667F3BCD  # the bits of sqrt(1/2)


@intrinsic
def _float_to_bits(typingctx, value):
    """Reinterpret a float64 as an int64 (a plain LLVM bitcast, so it vectorizes)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@inline
def _log(x):
    """ln(x) within ~1 ulp for normal x > 0, branch-free (fdlibm's scheme: x = 2^k*m, m in [sqrt(1/2), sqrt(2)),
    ln(m) = f - f^2/2 + s*(f^2/2 + R(s^2)), s = f/(2+f), R the atanh series to s^22)."""
    bits = _float_to_bits(x)
    k = (bits - _SQRT_HALF_BITS) >> 52  # integer arithmetic only: nothing to branch on
    m = _bits_to_float(bits - (k << 52))  # x / 2^k, in [sqrt(1/2), sqrt(2))
    kf = float(k)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    r = z * (2.0 / 3.0 + z * (2.0 / 5.0 + z * (2.0 / 7.0 + z * (2.0 / 9.0 + z * (2.0 / 11.0 + z * (
        2.0 / 13.0 + z * (2.0 / 15.0 + z * (2.0 / 17.0 + z * (2.0 / 19.0 + z * (2.0 / 21.0 + z * (2.0 / 23.0)))))))))))
    hfsq = 0.5 * f * f
    return kf * _LN2_HI - ((hfsq - (s * (hfsq + r) + kf * _LN2_LO)) - f)


@inline
def _black_vega(x, s):
    """(ok, b, db/ds) as ``_black.black_otm_and_vega`` where ``erfcx_pair`` applies (ok False elsewhere)."""
    h = x / s
    t = 0.5 * s
    g = _exp(-0.5 * (h * h + t * t))
    w1 = -ONE_OVER_SQRT_TWO * (h + t)
    dw = SQRT_TWO * t
    w2 = w1 + dw
    _, diff_mid = _pair_middle(max(w1, 0.46875), min(max(w2, 0.46875), 4.0), dw)
    _, diff_large = _pair_large(max(w1, 4.0), max(w2, 4.0), dw)
    large = w1 >= 4.0
    ok = (large or (w1 > 0.46875 and w2 <= 4.0)) and s > 0.0 and s < DBL_MAX
    b = 0.5 * g * (diff_large if large else diff_mid)
    return ok, abs(max(b, 0.0)), ONE_OVER_SQRT_TWO_PI * g


@inline
def _step(branch, x, s, beta, ln_beta, b, bp, b_max, s_left, s_right):
    """One step of ``normalised_total_vol`` for each branch, selected (all three are computed; the one
    logarithm is of the selected branch's argument)."""
    mid = 0.5 * (s_left + s_right) - s
    gap = b_max - b
    ln_arg = _log(max(b if branch == 0 else (b_max - beta) / gap, DBL_MIN))
    bpob = bp / b
    h = x / s
    b_halley = h * h / s - s / 4.0
    b_hh3 = b_halley * b_halley - 3.0 * (h / s) * (h / s) - 0.25
    newton = (ln_beta - ln_arg) * ln_arg / ln_beta / bpob
    halley = b_halley - bpob * (1.0 + 2.0 / ln_arg)
    hh3 = (b_hh3 + 2.0 * bpob * bpob * (1.0 + 3.0 / ln_arg * (1.0 + 1.0 / ln_arg))
           - 3.0 * b_halley * bpob * (1.0 + 2.0 / ln_arg))
    lower = newton * _householder_factor(newton, halley, hh3)
    lower = mid if (b <= 0.0 or bp <= 0.0) else lower
    gp = bp / gap
    newton_u = -ln_arg / gp
    upper = newton_u * _householder_factor(newton_u, b_halley + gp, b_hh3 + gp * (2.0 * gp + 3.0 * b_halley))
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
    """Pass 1a, vectorized: ``_lbr.solve_inputs`` for every option (reason codes and beta, x, b_max)."""
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


HASHED = (_float_to_bits._defn, _log.py_func, _black_vega.py_func, _step.py_func, _iteration.py_func,
          _iterate.py_func)  # for the cache key (_cache.code_digest)
LOOPS = (iv_inputs_simd, iv_iterate_simd, iv_at)
