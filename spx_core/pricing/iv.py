"""Black-76 implied volatility at machine precision (Jaeckel's "Let's Be Rational"), vectorized.

``implied_vol`` returns an ``IVResult`` (vol array, NaN where there is no solution, and a reason
code per element); ``implied_vol_scalar`` returns one float or raises a named exception. Inputs are
those of ``black76.price`` with ``price`` (the discounted option price, index points) in place of
``vol``. The solver works on the out-of-the-money member of the put-call pair (an in-the-money
price minus intrinsic), in normalised form, so deep out-of-the-money prices down to ~1e-300 are
solved to full relative precision: |vol error| <= 1e-12 wherever one ulp of price moves vol by
< 1e-10 (the problem is well posed). Where it is not (prices indistinguishable from intrinsic or
from the upper bound in float64), the result is NaN with a reason, never a wrong number.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType

import numpy as np

from spx_core.pricing import _constants, _implied_vol, _implied_vol_numpy
from spx_core.pricing._arrays import SIMD_MIN, log_ratio, materialise, prepare
from spx_core.pricing._compile import KERNELS

__all__ = [
    "IVReason", "IVResult", "ImpliedVolError", "InvalidInputError", "NoTimeValueError", "OptionExpiredError",
    "PriceAboveMaximumError", "PriceBelowIntrinsicError", "implied_vol", "implied_vol_scalar",
]


class IVReason(IntEnum):
    """Why an implied vol is NaN (OK when it is not)."""

    OK = _constants.OK
    BELOW_INTRINSIC = _constants.BELOW_INTRINSIC  # undiscounted price < intrinsic max(theta*(F-K), 0)
    ABOVE_MAX = _constants.ABOVE_MAX  # price >= D*F (call) or D*K (put), or indistinguishable from it in float64
    NO_TIME_VALUE = _constants.NO_TIME_VALUE  # price equals intrinsic (or the time value is subnormal): vol undefined
    EXPIRED = _constants.EXPIRED  # t == 0
    BAD_INPUT = _constants.BAD_INPUT  # NaN/inf, F, K or D <= 0, t < 0, price < 0


@dataclass(frozen=True, slots=True)
class IVResult:
    """``vol``: implied Black vol (decimal per sqrt year), NaN where ``reason`` != OK;
    ``reason``: uint8 array of ``IVReason`` codes, same shape."""

    vol: np.ndarray
    reason: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        return self.reason == IVReason.OK


class ImpliedVolError(ValueError):
    """Base class: no implied volatility exists for the given inputs."""


class PriceBelowIntrinsicError(ImpliedVolError):
    pass


class PriceAboveMaximumError(ImpliedVolError):
    pass


class NoTimeValueError(ImpliedVolError):
    pass


class OptionExpiredError(ImpliedVolError):
    pass


class InvalidInputError(ImpliedVolError):
    pass


def implied_vol(*, price, forward, strike, t, discount, is_call) -> IVResult:
    """Implied Black-76 vol for every broadcast element; see the module docstring and ``IVReason``."""
    flat, shape = prepare(forward, strike, t, discount, price, is_call)
    f, k, tt, d, pr, c = flat
    n = int(np.prod(shape, dtype=np.int64))
    vol = np.empty(n, dtype=np.float64)
    reason = np.empty(n, dtype=np.uint8)
    kern = KERNELS.get()
    if kern is not None:
        _compiled_iv(kern, [pr, f, k, tt, d, c], vol, reason)
    else:
        _iv_numpy(pr, f, k, tt, d, c, vol, reason)
    return IVResult(vol.reshape(shape), reason.reshape(shape))


def _compiled_iv(kern, flat, vol, reason) -> None:
    n = vol.shape[0]
    if n < SIMD_MIN:
        kern.iv_loop(*flat, log_ratio(flat[1], flat[2]), vol, reason)
        return
    full = materialise(flat, n)
    lx = log_ratio(full[1], full[2])
    beta, ln_beta, x, b_max, s, s_left, s_right = (np.empty(n) for _ in range(7))
    branch = np.empty(n, dtype=np.int8)
    # Reason codes, initial guesses and Householder steps in vectorized passes; after each of the last two,
    # the scalar code for what the vectorized pass could not do the same way (prices above the central
    # point, near the money, bisection cases).
    kern.iv_inputs_simd(*full, lx, beta, ln_beta, x, b_max, reason)
    todo = np.empty(n, dtype=np.bool_)
    kern.iv_guess_simd(beta, x, b_max, s, s_left, s_right, branch, vol, reason, todo)
    index = np.flatnonzero(todo)
    if index.size:
        kern.iv_guess_at(beta, x, b_max, s, s_left, s_right, branch, index)
    guess = (beta, ln_beta, x, b_max, s, s_left, s_right, branch, np.sqrt(full[3]))
    kern.iv_iterate_simd(*guess, vol, reason, todo)
    index = np.flatnonzero(todo)
    if index.size:
        kern.iv_at(*guess, vol, reason, index)


def _iv_numpy(pr, f, k, t, d, c, vol, reason) -> None:
    """Fallback without numba: the same algorithm on whole arrays (``_implied_vol_numpy``)."""
    n = vol.shape[0]
    _implied_vol_numpy.implied_vol(*(np.broadcast_to(a, (n,)) for a in (pr, f, k, t, d, c)), vol, reason)


_ERRORS = MappingProxyType({
    IVReason.BELOW_INTRINSIC: (PriceBelowIntrinsicError,
                               ("price {p!r} is below the discounted intrinsic value {i!r}; check the forward, "
                                "discount factor and that the quote is not stale or crossed")),
    IVReason.ABOVE_MAX: (PriceAboveMaximumError,
                         ("price {p!r} is at or above the no-arbitrage maximum {m!r} (D*F for a call, D*K for a put); "
                          "check the forward, discount factor and option right")),
    IVReason.NO_TIME_VALUE: (NoTimeValueError,
                             "price {p!r} has no time value over intrinsic {i!r}; no volatility is implied"),
    IVReason.EXPIRED: (OptionExpiredError, "t is 0: the option has expired, no volatility is implied"),
    IVReason.BAD_INPUT: (InvalidInputError,
                         "invalid input: need finite price >= 0, forward > 0, strike > 0, discount > 0 and t >= 0"),
})


def implied_vol_scalar(*, price: float, forward: float, strike: float, t: float, discount: float,
                       is_call: bool) -> float:
    """Implied Black-76 vol of one option; raises a subclass of ``ImpliedVolError`` when there is none."""
    vol, code = _implied_vol.implied_vol_one(float(price), float(forward), float(strike), float(t), float(discount),
                                     bool(is_call))
    if code == IVReason.OK:
        return float(vol)
    error, message = _ERRORS[IVReason(code)]
    intrinsic = discount * max((forward - strike) if is_call else (strike - forward), 0.0)
    maximum = discount * (forward if is_call else strike)
    raise error(message.format(p=price, i=intrinsic, m=maximum)
                + f" (forward={forward!r}, strike={strike!r}, t={t!r}, discount={discount!r}, is_call={is_call!r})")
