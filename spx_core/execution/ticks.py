"""Price increments (ticks) an exchange accepts, per root and order kind.

Sources (``docs/market_rules.md``, "Contracts and ticks"; Cboe SPX and XSP product specifications):
    SPX / SPXW single leg: 0.05 below $3.00, 0.10 at or above $3.00.
    SPX / SPXW complex (multi-leg) orders: the net package price in 0.05 (legs may print in 0.01).
    XSP: 0.01 for all series, single leg and complex (Cboe XSP product specification, "Premium Quotation").
    SPY (Penny Interval Program, ETF options trading in pennies at every price): 0.01, single leg and complex.

A package price may be negative (the request convention allows any sign): its tick is the tick of its
absolute value. Arithmetic is in integer cents, so ``on_tick(2.15)`` is not fooled by binary floats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

from spx_core.domain.contracts import Root

__all__ = ["TICK_BREAK", "on_tick", "order_tick_size", "round_to_tick", "tick_size"]

#: Single-leg prices at or above this (points) use the wider tick.
TICK_BREAK = 3.00

# Ticks in cents: (single leg below the break, single leg at/above it, complex net price).
_TICKS_CENTS: dict[Root, tuple[int, int, int]] = {
    Root.SPX: (5, 10, 5),
    Root.SPXW: (5, 10, 5),
    Root.XSP: (1, 1, 1),
    Root.SPY: (1, 1, 1),
}
_EPS = 1e-6  # cents: a price within a millionth of a cent of the grid is on it (binary float slack)

Direction = Literal["nearest", "up", "down"]


def _tick_cents(abs_price: float, combo: bool, root: Root | str) -> int:
    low, high, net = _TICKS_CENTS[Root(root)]
    if combo:
        return net
    return high if abs_price >= TICK_BREAK - _EPS / 100 else low


def tick_size(price: float, *, combo: bool, root: Root | str) -> float:
    """The increment (points) a price of ``price`` must sit on for ``root`` (single leg or complex order)."""
    return _tick_cents(abs(price), combo, root) / 100


def order_tick_size(price: float, roots: Iterable[Root | str], *, combo: bool) -> float:
    """The coarsest tick among the roots of an order's legs (an SPX-vs-SPY pair prices on SPX's 0.05)."""
    return max(tick_size(price, combo=combo, root=r) for r in roots)


def on_tick(price: float, *, combo: bool, root: Root | str) -> bool:
    """True when ``price`` (points, any sign) is a whole number of ticks."""
    if not math.isfinite(price):
        return False
    cents = abs(price) * 100
    whole = round(cents)
    if abs(cents - whole) > _EPS:
        return False
    return whole % _tick_cents(abs(price), combo, root) == 0


def round_to_tick(price: float, *, combo: bool, root: Root | str, direction: Direction = "nearest") -> float:
    """``price`` moved onto the tick grid: to the nearest tick, or up / down (toward +inf / -inf).

    Near the single-leg break (3.00) the grid below is 0.05 and above 0.10: rounding up from 2.98 gives 3.00
    and from 3.01 gives 3.10; rounding down from 3.01 gives 3.00.
    """
    if not math.isfinite(price):
        raise ValueError(f"cannot round {price!r} to a tick: the price must be finite")
    if direction not in ("nearest", "up", "down"):
        raise ValueError(f"direction {direction!r} must be 'nearest', 'up' or 'down'")
    if price < 0:  # the grid is symmetric: -x up is x down
        flipped = {"up": "down", "down": "up"}.get(direction, direction)
        return -round_to_tick(-price, combo=combo, root=root, direction=flipped)  # type: ignore[arg-type]
    cents = price * 100
    candidates = []
    for tick in sorted({_tick_cents(0.0, combo, root), _tick_cents(TICK_BREAK, combo, root)}):
        down = math.floor(cents / tick + _EPS) * tick
        candidates += [down, down + tick]
    # keep the grid points that are valid for their own price (below the break: small tick; above: wide)
    grid = sorted({c for c in candidates if c >= 0 and c % _tick_cents(c / 100, combo, root) == 0})
    if direction == "up":
        out = min(c for c in grid if c >= cents - _EPS)
    elif direction == "down":
        out = max((c for c in grid if c <= cents + _EPS), default=0)
    else:
        out = min(grid, key=lambda c: (abs(c - cents), -c))  # ties go up, as a half-cent rounds up
    return out / 100
