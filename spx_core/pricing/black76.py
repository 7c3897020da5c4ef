"""Black-76: European options on a forward, vectorized, with analytic greeks.

Inputs (keyword-only, anything that broadcasts with numpy; converted to float64):

- ``forward``  F, the forward price for the option's expiry (index points).
- ``strike``   K (index points).
- ``t``        time to expiry in years (ACT/365 or whatever the caller's clock uses; >= 0).
- ``vol``      Black volatility as a decimal per sqrt(year) (0.20 = 20%).
- ``discount`` discount factor D to the payment date, exp(-r*t).
- ``is_call``  True for calls, False for puts.

price = D*(F*N(d1) - K*N(d2)) for a call, D*(K*N(-d2) - F*N(-d1)) for a put, with
d1,2 = ln(F/K)/(vol*sqrt t) +- vol*sqrt(t)/2. Prices keep full relative accuracy however far out
of the money (<= 1e-12 against 50-digit arithmetic), through Jaeckel's normalised Black function
(see ``_black.py``); nothing is rounded. Invalid inputs (F, K or D <= 0, t or vol < 0, NaN) give NaN;
t = 0 or vol = 0 give the discounted intrinsic value.

Compiled with numba on first use (see ``_compile.py``); ``SPX_NO_NUMBA=1`` selects the numpy path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spx_core.pricing import _black_numpy
from spx_core.pricing._arrays import SIMD_MIN, broadcast_views, log_ratio, materialise, prepare
from spx_core.pricing._compile import KERNELS

__all__ = ["DAYS_PER_YEAR", "GreekUnits", "Greeks", "greeks", "price"]

DAYS_PER_YEAR = 365.0  # calendar days per year used by theta_per_day()


class GreekUnits:
    """Trader units of ``vega`` (per 1.00 of vol) and ``theta`` (per year), for every greeks result."""

    __slots__ = ()
    vega: np.ndarray
    theta: np.ndarray

    def vega_per_point(self) -> np.ndarray:
        """Vega for a one vol-point (0.01) move."""
        return self.vega / 100.0

    def theta_per_day(self) -> np.ndarray:
        """Theta per calendar day (theta per year / 365)."""
        return self.theta / DAYS_PER_YEAR


@dataclass(frozen=True, slots=True)
class Greeks(GreekUnits):
    """Price and greeks, each an ndarray of the broadcast input shape.

    With S = D*F (the spot-equivalent: the discounted forward, i.e. the prepaid forward S*exp(-q*t)),
    and r = -ln(D)/t held fixed:

    - ``price``  option value (index points).
    - ``delta``  dV/dS = N(d1) for a call, N(d1) - 1 for a put (dimensionless). The forward delta
      dV/dF is ``delta * D`` (see ``forward_delta``); the delta with respect to an index spot that pays
      dividend yield q is ``delta * exp(-q*t)`` (``bsm.greeks`` returns that one).
    - ``gamma``  d2V/dS2 = phi(d1)/(S*vol*sqrt t) per index point.
    - ``vega``   dV/dvol per 1.00 of vol (for a 1 vol-point move use ``vega_per_point()`` = vega/100).
    - ``theta``  dV/dt as calendar time passes (t shrinks), F and r held fixed, per year:
      r*V - D*F*phi(d1)*vol/(2 sqrt t). ``theta_per_day()`` divides by 365.
    - ``rho``    dV/dr with D = exp(-r*t) and F fixed: -t*V (per 1.00 of rate).
    - ``vanna``  d(delta)/dvol = -phi(d1)*d2/vol (per 1.00 of vol).
    - ``volga``  d(vega)/dvol = vega*d1*d2/vol (per 1.00 of vol, squared).
    - ``charm``  d(delta)/dt as calendar time passes, F fixed, per year: phi(d1)*d2/(2t).
    """

    price: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray
    rho: np.ndarray
    vanna: np.ndarray
    volga: np.ndarray
    charm: np.ndarray

    def forward_delta(self, discount: np.ndarray | float) -> np.ndarray:
        """dV/dF = delta * D, for the discount factor the greeks were computed with."""
        return self.delta * np.asarray(discount, dtype=np.float64)


_FIELDS = ("price", "delta", "gamma", "vega", "theta", "rho", "vanna", "volga", "charm")


def _compiled_price(kern, flat, target) -> None:
    n = target.shape[0]
    if n < SIMD_MIN:
        kern.price_loop(*flat, log_ratio(flat[0], flat[1]), target)
        return
    full = materialise(flat, n)
    x = log_ratio(full[0], full[1])
    todo = np.empty(n, dtype=np.bool_)
    kern.price_simd(*full, x, target, todo)  # vectorized, for most options; flags the rest
    index = np.flatnonzero(todo)
    if index.size:
        kern.price_at(*full, x, target, index)


def _compiled_greeks(kern, flat, table) -> None:
    n = table.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        if n < SIMD_MIN:
            kern.greeks_loop(*flat, log_ratio(flat[0], flat[1]), np.log(flat[4]), table)
            return
        full = materialise(flat, n)
        x = log_ratio(full[0], full[1])
        log_d = np.log(full[4])
    todo = np.empty(n, dtype=np.bool_)
    kern.greeks_simd(*full, x, log_d, table, todo)  # vectorized, for most options; flags the rest
    index = np.flatnonzero(todo)
    if index.size:
        kern.greeks_at(*full, x, log_d, table, index)


def price(*, forward, strike, t, vol, discount, is_call, out: np.ndarray | None = None) -> np.ndarray:
    """Black-76 price (index points, discounted) for every broadcast element; see the module docstring.

    ``out``: optional preallocated float64 array of the broadcast shape, filled and returned.
    """
    flat, shape = prepare(forward, strike, t, vol, discount, is_call)
    if out is None:
        out = np.empty(shape, dtype=np.float64)
    elif out.shape != shape or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float64 array of shape {shape}; got {out.dtype} {out.shape}")
    target = out.reshape(-1)
    kern = KERNELS.get()
    if kern is not None:
        _compiled_price(kern, flat, target)
    else:
        _black_numpy.price(*broadcast_views(flat, target.shape[0]), target)
    return out


def greeks(*, forward, strike, t, vol, discount, is_call, out: np.ndarray | None = None) -> Greeks:
    """Price and analytic greeks (see ``Greeks`` for definitions and units).

    ``out``: optional preallocated C-contiguous float64 array of shape (9, *broadcast shape); the
    returned Greeks fields are views of its rows (in the order of the ``Greeks`` fields).
    """
    flat, shape = prepare(forward, strike, t, vol, discount, is_call)
    n = int(np.prod(shape, dtype=np.int64))
    if out is None:
        out = np.empty((9, *shape), dtype=np.float64)
    elif out.shape != (9, *shape) or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float64 array of shape {(9, *shape)}; got {out.dtype} {out.shape}")
    table = out.reshape(9, n)
    kern = KERNELS.get()
    if kern is not None:
        _compiled_greeks(kern, flat, table)
    else:
        _black_numpy.greeks(*broadcast_views(flat, n), table)
    return Greeks(**{name: out[i] for i, name in enumerate(_FIELDS)})
