"""Elementary functions for the vectorized compiled loops: exp and log without branches or libm calls.

LLVM vectorizes a loop (4-8 options per iteration with AVX2/AVX-512) only when its body has no calls and
no branches. These replace libm's exp and log there (within 1 ulp of them), using bit casts of the
float64 representation; ``inline`` is how every helper of those loops is compiled. Imported only when the
kernels are built (it needs numba).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from spx_core.pricing._constants import LN2_HI, LN2_LO, LOG2_E

# Helpers of the vectorized loops are inlined into them in numba's untyped IR (LLVM vectorizes only a
# loop body without calls). njit(inline="always") does that once, before type inference; inlining
# register_jitable overloads instead multiplies type inference and took ~40 s to compile the IV loop.
inline = njit(inline="always")

_SQRT_HALF_BITS = 0x3FE6A09E667F3BCD  # the bits of sqrt(1/2)


@intrinsic
def bits_to_float(typingctx, bits):
    """Reinterpret an int64 as a float64 (a plain LLVM bitcast, so it vectorizes)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def float_to_bits(typingctx, value):
    """Reinterpret a float64 as an int64 (a plain LLVM bitcast, so it vectorizes)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@inline
def exp(x):
    """exp(x) within 1 ulp for x >= -708 (results below DBL_MIN lose bits), branch-free: x = k*ln2 + r,
    |r| <= ln2/2, exp(r) by its degree-13 Taylor polynomial (truncation < 4e-18), 2^k built in the
    exponent bits (in two halves so k down to -2044 stays exact)."""
    x = min(max(x, -1400.0), 709.0)
    kf = math.floor(x * LOG2_E + 0.5)
    r = (x - kf * LN2_HI) - kf * LN2_LO
    p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (
        1.0 / 5040.0 + r * (1.0 / 40320.0 + r * (1.0 / 362880.0 + r * (1.0 / 3628800.0 + r * (1.0 / 39916800.0 + r * (
            1.0 / 479001600.0 + r / 6227020800.0))))))))))))
    k = np.int64(kf)
    k1 = k >> 1
    return p * bits_to_float((k1 + 1023) << 52) * bits_to_float((k - k1 + 1023) << 52)


@inline
def log(x):
    """ln(x) within ~1 ulp for normal x > 0, branch-free (fdlibm's scheme: x = 2^k*m, m in [sqrt(1/2), sqrt(2)),
    ln(m) = f - f^2/2 + s*(f^2/2 + R(s^2)), s = f/(2+f), R the atanh series to s^22)."""
    bits = float_to_bits(x)
    k = (bits - _SQRT_HALF_BITS) >> 52  # integer arithmetic only: nothing to branch on
    m = bits_to_float(bits - (k << 52))  # x / 2^k, in [sqrt(1/2), sqrt(2))
    kf = float(k)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    r = z * (2.0 / 3.0 + z * (2.0 / 5.0 + z * (2.0 / 7.0 + z * (2.0 / 9.0 + z * (2.0 / 11.0 + z * (
        2.0 / 13.0 + z * (2.0 / 15.0 + z * (2.0 / 17.0 + z * (2.0 / 19.0 + z * (2.0 / 21.0 + z * (2.0 / 23.0)))))))))))
    hfsq = 0.5 * f * f
    return kf * LN2_HI - ((hfsq - (s * (hfsq + r) + kf * LN2_LO)) - f)
