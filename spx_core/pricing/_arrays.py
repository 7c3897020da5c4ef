"""Array plumbing shared by the pricing entry points (``black76``, ``iv``): inputs to the flat 1-D arrays the
kernels take, numpy's SIMD logarithm, and the size above which the vectorized compiled loops pay off; and
``read_only`` for the arrays that modules keep as constants."""

from __future__ import annotations

import numpy as np


def prepare(forward, strike, t, vol, discount, is_call):
    """Float64/bool arrays, their broadcast shape, and 1-D views of length n or 1 for the kernels."""
    arrays = [np.asarray(a, dtype=np.float64) for a in (forward, strike, t, vol, discount)]
    calls = np.asarray(is_call, dtype=np.bool_)
    shape = np.broadcast_shapes(*(a.shape for a in arrays), calls.shape)
    flat = []
    for a in (*arrays, calls):
        if a.size == 1:
            flat.append(a.reshape(1))
        elif a.shape == shape:
            flat.append(np.ascontiguousarray(a).reshape(-1))
        else:  # partial broadcasting (e.g. a strike column against an expiry row): materialise it
            flat.append(np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1))
    return flat, shape


def log_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """ln(a/b) of 1-D length-n-or-1 arrays by numpy's SIMD log (~1 ns, vs ~5-10 ns for libm's log and a
    division inside the compiled loop); any NaN/inf it makes belongs to inputs the kernels reject."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.log(numerator / denominator)


SIMD_MIN = 256  # below this many options the plain scalar loop is as fast (no copies, no second pass)


def materialise(flat, n):
    """Contiguous length-n arrays (the vectorized loops index every input; length-1 inputs are repeated)."""
    return [a if a.shape[0] == n else np.full(n, a[0], dtype=a.dtype) for a in flat]


def broadcast_views(flat, n):
    """Length-n views of 1-D length-n-or-1 arrays (no copies; for the numpy path, which indexes every input)."""
    return [a if a.shape[0] == n else np.broadcast_to(a, (n,)) for a in flat]


def read_only(array: np.ndarray) -> np.ndarray:
    """``array``, made read-only: a module-level array is a constant, and writing into it must fail."""
    array.setflags(write=False)
    return array
