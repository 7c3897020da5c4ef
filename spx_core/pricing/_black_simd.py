"""Black kernels, vectorized: branch-free Black-76 price and greeks loops that LLVM vectorizes (AVX2/AVX-512),
compiled by ``_compile.py``.

Imported only when the kernels are built (it needs numba). The scalar kernels in ``_black.py`` stay
the reference: these loops handle every option whose time value comes from ``erfcx_pair`` (both
erfcx arguments in one of Cody's outer intervals: all deep-out-of-the-money options and most others,
~80% of an SPX grid) with the same formulas, and flag the rest (near the money, invalid or expired
inputs) in ``todo`` for the scalar loop. Why it is fast: no branches (every ``if`` is a select, both
erfcx intervals are evaluated), no libm calls (``_branchfree.exp`` is a polynomial exp that vectorizes;
the logs come from numpy's SIMD log), so one loop iteration runs on 4-8 options at once.
"""

from __future__ import annotations

import math

from spx_core.pricing import _special
from spx_core.pricing._branchfree import exp as _exp
from spx_core.pricing._branchfree import inline
from spx_core.pricing._constants import CODY_MIDDLE, CODY_SMALL, HUGE, ONE_OVER_SQRT_TWO, ONE_OVER_SQRT_TWO_PI, SQRT_TWO

_pair_middle = inline(_special._pair_middle)
_pair_large = inline(_special._pair_large)


@inline
def _time_value(f, k, t, v, x):
    """(ok, time value, e1, erfcx(w1), difference, s, d1n, u) of the out-of-the-money member, from
    ``erfcx_pair``; ok False (near the money, invalid or expired inputs): use the scalar loop."""
    s = v * math.sqrt(t)
    half = 0.5 * s
    u = abs(x) / s
    d1n = half - u
    e1 = _exp(-0.5 * d1n * d1n)
    w1 = -ONE_OVER_SQRT_TWO * d1n
    dw = SQRT_TWO * half
    w2 = w1 + dw
    e_mid, diff_mid = _pair_middle(max(w1, CODY_SMALL), min(max(w2, CODY_SMALL), CODY_MIDDLE), dw)
    e_large, diff_large = _pair_large(max(w1, CODY_MIDDLE), max(w2, CODY_MIDDLE), dw)
    large = w1 >= CODY_MIDDLE
    pair = large or (w1 > CODY_SMALL and w2 <= CODY_MIDDLE)
    ok = (pair and f > 0.0 and k > 0.0 and t > 0.0 and v > 0.0 and f < HUGE and s > 0.0
          and s < HUGE)
    e_w1 = e_large if large else e_mid
    diff = diff_large if large else diff_mid
    return ok, 0.5 * min(f, k) * e1 * diff, e1, e_w1, diff, s, d1n, u


def price_simd(f, k, t, v, d, c, x, out, todo):
    """Prices of full-length 1-D inputs into ``out``; ``todo[i]`` set where the scalar loop must price."""
    for i in range(out.shape[0]):
        fi, ki, di = f[i], k[i], d[i]
        ok, tv, _, _, _, _, _, _ = _time_value(fi, ki, t[i], v[i], x[i])
        out[i] = di * (tv + max((fi - ki) if c[i] else (ki - fi), 0.0))
        todo[i] = not (ok and di > 0.0)


def greeks_simd(f, k, t, v, d, c, x, log_d, out, todo):
    """Price and greeks (rows of the (9, n) ``out`` as in ``Greeks``), formulas of ``_black.greeks_one``."""
    for i in range(out.shape[1]):
        fi, ki, ti, vi, di, xi = f[i], k[i], t[i], v[i], d[i], x[i]
        ok, tv, e1, e_w1, diff, s, d1n, u = _time_value(fi, ki, ti, vi, xi)
        call = c[i]
        sign = 1.0 if call else -1.0
        itm = xi > 0.0
        # d1 of this option and its density: d1n out of the money, -(d2n) in it (exp(-d^2/2) ratio is K/F).
        d1 = (0.5 * s + u) if itm else d1n
        e_d1 = e1 * (ki / fi) if itm else e1
        tail = 0.5 * e_d1 * ((e_w1 - diff) if itm else e_w1)  # N(-|d1|)
        value = di * (tv + max(sign * (fi - ki), 0.0))
        n_d1 = (1.0 - tail) if d1 >= 0.0 else tail
        pdf = ONE_OVER_SQRT_TWO_PI * e_d1
        d2 = d1 - s
        sq_t = math.sqrt(ti)
        vega = di * fi * pdf * sq_t
        out[0, i] = value
        out[1, i] = n_d1 if call else (-tail if d1 >= 0.0 else n_d1 - 1.0)
        out[2, i] = pdf / (di * fi * s)
        out[3, i] = vega
        out[4, i] = -log_d[i] / ti * value - vega * vi / (2.0 * ti)
        out[5, i] = -ti * value
        out[6, i] = -pdf * d2 / vi
        out[7, i] = vega * d1 * d2 / vi
        out[8, i] = pdf * d2 / (2.0 * ti)
        todo[i] = not (ok and di > 0.0)


LOOPS = (price_simd, greeks_simd)
