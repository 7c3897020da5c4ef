"""Max profit, max loss and breakevens of a structure at expiry, exactly, from its piecewise-linear value.

The expiry value of a set of options is linear between strikes, so it is known everywhere from its
values at the kinks (:meth:`Structure.kinks`) and at 0 (the index cannot go below it) plus its slope
beyond the last kink (the signed number of calls, weighted by multiplier and price scale). Extremes sit
at those points or are unbounded along that slope; breakevens are the zero crossings on each linear
piece, found by exact linear interpolation. Nothing is sampled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spx_core.strategies.structure import Structure

__all__ = ["ExpiryProfile", "expiry_profile", "slope_beyond"]


@dataclass(frozen=True, slots=True)
class ExpiryProfile:
    """Profit and loss at expiry of one unit, given what opening it received.

    Attributes:
        max_profit: best P&L (dollars); ``math.inf`` when unbounded as the index rises.
        max_loss: worst loss as a positive number (dollars; negative = a profit in every outcome);
            ``math.inf`` when unbounded as the index rises. Falling to 0 is bounded (a naked short put
            loses at most strike x multiplier minus the credit) and reported as that number.
        breakevens: primary-underlying prices where the P&L crosses zero, ascending.
    """

    max_profit: float
    max_loss: float
    breakevens: tuple[float, ...]


def slope_beyond(structure: Structure) -> float:
    """Dollars of expiry value per primary-underlying point above the highest strike (the calls' net)."""
    scale = structure.leg_scale()
    return float(sum(leg.ratio * leg.contract.multiplier * s
                     for leg, s in zip(structure.legs, scale, strict=True) if leg.contract.is_call))


def expiry_profile(structure: Structure, credit_usd: float) -> ExpiryProfile:
    """P&L extremes and breakevens of ``structure`` held to expiry after receiving ``credit_usd``.

    ``credit_usd``: dollars received per unit when opening (negative for a debit). A NaN credit leaves
    the finite figures NaN; an unbounded side stays ``math.inf`` whatever was paid.
    Every leg is valued at its intrinsic value at the same price (see :meth:`Structure.expiry_value`).
    """
    kinks = structure.kinks()
    xs = np.unique(np.concatenate([[0.0], kinks[kinks > 0]]))
    pnl = structure.expiry_value(xs) + credit_usd
    slope = slope_beyond(structure)
    max_profit = math.inf if slope > 0 else float(np.max(pnl))
    max_loss = math.inf if slope < 0 else float(-np.min(pnl))
    return ExpiryProfile(max_profit, max_loss, _breakevens(xs, pnl, slope))


def _breakevens(xs: np.ndarray, pnl: np.ndarray, slope: float) -> tuple[float, ...]:
    if not np.all(np.isfinite(pnl)):
        return ()
    roots: list[float] = []
    for i in range(len(xs)):
        x0, v0 = float(xs[i]), float(pnl[i])
        if v0 == 0.0:
            roots.append(x0)
        if i + 1 < len(xs):
            x1, v1 = float(xs[i + 1]), float(pnl[i + 1])
            if v0 * v1 < 0.0:  # a strict crossing inside this linear piece
                roots.append(x0 - v0 * (x1 - x0) / (v1 - v0))
        elif slope != 0.0 and v0 * slope < 0.0:  # beyond the last kink the line still crosses zero
            roots.append(x0 - v0 / slope)
    return tuple(sorted(set(roots)))
