"""Black-Scholes-Merton (spot S, continuous rate r, dividend yield q) on top of Black-76.

F = S*exp((r-q)*t) and D = exp(-r*t); prices are ``black76.price`` of those. Inputs are keyword-only,
broadcast, float64: ``spot`` (index points), ``strike``, ``t`` (years), ``vol`` (decimal per sqrt year),
``rate`` and ``div_yield`` (continuously compounded, decimal per year), ``is_call``.
"""

from __future__ import annotations

import numpy as np

from spx_core.pricing import black76
from spx_core.pricing.black76 import Greeks

__all__ = ["greeks", "price"]


def _forward_and_discount(spot, t, rate, div_yield):
    s, tt, r, q = (np.asarray(a, dtype=np.float64) for a in (spot, t, rate, div_yield))
    return s * np.exp((r - q) * tt), np.exp(-r * tt), tt, r, q


def price(*, spot, strike, t, vol, rate, div_yield, is_call, out: np.ndarray | None = None) -> np.ndarray:
    """BSM price (index points) for every broadcast element."""
    forward, discount, tt, _, _ = _forward_and_discount(spot, t, rate, div_yield)
    return black76.price(forward=forward, strike=strike, t=tt, vol=vol, discount=discount, is_call=is_call, out=out)


def greeks(*, spot, strike, t, vol, rate, div_yield, is_call) -> Greeks:
    """BSM price and greeks with spot, r and q held fixed (the textbook BSM greeks).

    Differences from ``black76.Greeks`` (whose S is the prepaid forward S*exp(-q*t)):

    - ``delta``  dV/dS = exp(-q*t)*N(d1) (call), exp(-q*t)*(N(d1)-1) (put).
    - ``gamma``  d2V/dS2 = exp(-q*t)*phi(d1)/(S*vol*sqrt t).
    - ``theta``  dV/dt per year with S, r, q fixed (so the forward drifts as time passes); /365 per day.
    - ``rho``    dV/dr with S and q fixed: K*t*exp(-r*t)*N(d2) (call), -K*t*exp(-r*t)*N(-d2) (put).
    - ``vanna``  d(delta)/dvol = -exp(-q*t)*phi(d1)*d2/vol.
    - ``charm``  d(delta)/dt per year with S, r, q fixed.
    ``vega`` and ``volga`` are the same as Black-76's (per 1.00 vol).
    """
    forward, discount, tt, r, q = _forward_and_discount(spot, t, rate, div_yield)
    g = black76.greeks(forward=forward, strike=strike, t=tt, vol=vol, discount=discount, is_call=is_call)
    carry = np.exp(-q * tt)
    prepaid = forward * discount  # S*exp(-q t): the Black-76 "S"
    with np.errstate(divide="ignore", invalid="ignore"):
        # Chain rule through F(S, t, r) = S*exp((r-q)t): dF/dS = F/S, dF/dt = -(r-q)F, dF/dr = tF.
        theta = g.theta - (r - q) * prepaid * g.delta
        rho = g.rho + tt * prepaid * g.delta
        # phi(d1)/(vol*sqrt t) recovered from Black-76 vega = D*F*phi(d1)*sqrt t.
        dd1_dt = (r - q) * g.vega / (prepaid * np.asarray(vol, dtype=np.float64) * tt)
        charm = carry * (g.charm + q * g.delta - np.where(tt > 0.0, dd1_dt, 0.0))
    return Greeks(price=g.price, delta=carry * g.delta, gamma=carry * carry * g.gamma, vega=g.vega, theta=theta,
                  rho=rho, vanna=carry * g.vanna, volga=g.volga, charm=charm)
