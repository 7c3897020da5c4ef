"""The margin a broker asks for a structure: Reg-T / Cboe rules for cash-settled broad-based index options.

The rules (``docs/market_rules.md``, "Margin": Reg-T / Cboe rules for broad-based index options as summarised
on IBKR's option margin page; the Cboe Margin Manual and FINRA Rule 4210(f)(2) for the cases the document
does not list), per unit of the structure, in dollars:

- Long premium (every leg long): the debit, paid in full.
- Vertical: a credit (short) vertical needs width x 100 x contracts with the credit received applied,
  i.e. ``width * multiplier * |ratio| - credit``; a debit vertical is paid in full (the debit).
- Iron condor / iron butterfly (sold): the wider wing's width x 100 x contracts, credit applied (only one
  side can finish in the money). Bought (long) ones are debits, paid in full.
- Naked short index option: premium + max(15% x index - out-of-the-money amount,
  10% x index for calls / 10% x strike for puts), x 100 per contract.
- Short straddle / strangle: the larger of the two naked requirements plus the other side's premium
  (Cboe: a short put and call on the same index are margined as the greater side; only one can be in
  the money). The document does not list it; this is the Cboe margin manual's treatment.
- Butterflies and broken-wing butterflies: the document does not list them; Cboe margins them as their
  spreads, which comes to their maximum loss at expiry (the debit for a long butterfly, wing width minus
  the credit for a credit BWB). This module takes that exact maximum loss.
- Calendars / diagonals with the later leg long: the short leg is covered; the debit plus any strike
  distance by which the long leg is further out of the money (Cboe's "long expires after the short"
  spread rule), i.e. the maximum loss with the later leg worth its intrinsic value.
- SPX vs SPY pair: the two underlyings do not offset under Reg-T; the long SPX call's debit plus the
  naked requirement of the short SPY calls (SPY options are broad-based ETF options: the same
  15% / 10% rule under FINRA 4210(f)(2)(D)).
- Anything else: the exact maximum loss at expiry when it is bounded (one expiry); otherwise every
  short leg margined naked plus every long leg's premium (a conservative, offset-free figure).

Prices are per contract in the leg's index points; ``underlying_price`` is the primary underlying's level
(other legs' levels follow by :data:`PRICE_SCALE`). NaN prices give NaN: no margin from made-up numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from spx_core.strategies.expiry_profile import expiry_profile
from spx_core.strategies.recognize import recognize, structure_width
from spx_core.strategies.structure import Leg, Structure, StructureKind

__all__ = ["NAKED_BASE", "NAKED_MINIMUM", "margin_requirement", "naked_requirement"]

#: Naked short index option: this fraction of the index, less the out-of-the-money amount...
NAKED_BASE = 0.15
#: ...but at least this fraction of the index (calls) or of the strike (puts).
NAKED_MINIMUM = 0.10


@runtime_checkable
class _LegPriced(Protocol):
    leg_price: tuple[float, ...]


def naked_requirement(leg: Leg, premium: float, underlying_price: float) -> float:
    """Dollars to hold ``leg`` (a short option) naked, per unit: the Cboe/Reg-T index formula x contracts.

    ``premium`` in the leg's index points per contract; ``underlying_price`` the leg's own underlying level.
    """
    c = leg.contract
    if not (math.isfinite(premium) and math.isfinite(underlying_price)):
        return math.nan
    otm = max(c.strike - underlying_price, 0.0) if c.is_call else max(underlying_price - c.strike, 0.0)
    floor = NAKED_MINIMUM * (underlying_price if c.is_call else c.strike)
    per_contract = premium + max(NAKED_BASE * underlying_price - otm, floor)
    return per_contract * c.multiplier * abs(leg.ratio)


def margin_requirement(structure: Structure, value_or_prices: object, underlying_price: float) -> float:
    """Dollars of Reg-T margin per unit of ``structure`` (rules in the module docstring).

    ``value_or_prices``: a :class:`~spx_core.strategies.valuation.StructureValue` (its ``leg_price``,
    the per-leg prices its figures used) or a sequence of per-leg prices (index points per contract, leg
    order). ``underlying_price``: the primary underlying's level (index points).
    """
    prices = np.asarray(value_or_prices.leg_price if isinstance(value_or_prices, _LegPriced)
                        else value_or_prices, dtype=np.float64)
    if prices.shape != (len(structure.legs),):
        raise ValueError(f"margin needs one price per leg ({len(structure.legs)}), got shape {prices.shape}")
    if not np.all(np.isfinite(prices)):  # the index level matters only to naked legs (NaN there)
        return math.nan
    # Margin follows the legs, not the label: read the shape and its reading order from the legs.
    position = {leg.contract: i for i, leg in enumerate(structure.legs)}
    structure = recognize(structure.legs)
    prices = prices[[position[leg.contract] for leg in structure.legs]]
    legs = structure.legs
    dollars = [leg.ratio * p * leg.contract.multiplier for leg, p in zip(legs, prices, strict=True)]
    debit = float(sum(dollars))
    if all(leg.is_long for leg in legs):
        return debit
    kind = structure.kind
    if kind in (StructureKind.VERTICAL, StructureKind.IRON_CONDOR, StructureKind.IRON_BUTTERFLY):
        return _spread(structure, debit)
    levels = underlying_price * structure.leg_scale()
    if kind in (StructureKind.SINGLE, StructureKind.STRADDLE, StructureKind.STRANGLE):
        return _naked_group(legs, prices, levels)
    if kind is StructureKind.SPX_SPY_PAIR:
        return _offset_free(legs, prices, levels)
    if kind in (StructureKind.CALENDAR, StructureKind.DIAGONAL) or len(structure.expiries) > 1:
        front = structure.front_expiry
        if all(leg.is_long for leg in legs if leg.contract.expiry > front):
            return max(expiry_profile(structure, -debit).max_loss, 0.0)
        return _offset_free(legs, prices, levels)
    loss = expiry_profile(structure, -debit).max_loss
    if math.isfinite(loss):
        return max(loss, 0.0)
    return _offset_free(legs, prices, levels)


def _spread(structure: Structure, debit: float) -> float:
    """Verticals, iron condors and iron butterflies: width x 100 x contracts less the credit, or the debit."""
    legs = structure.legs
    # Reading order puts the leg nearer the money first (verticals) and the short legs inside (irons):
    # the structure was sold when those inner legs are short.
    inner = legs[0] if structure.kind is StructureKind.VERTICAL else legs[1]
    if inner.is_long:
        return debit
    contracts = abs(inner.ratio)
    return structure_width(structure) * inner.contract.multiplier * contracts + debit  # + debit = - credit


def _naked_group(legs: Sequence[Leg], prices: np.ndarray, levels: np.ndarray) -> float:
    """One short option naked, or a short straddle/strangle: the greater side plus the other's premium."""
    reqs = [naked_requirement(leg, float(p), float(s)) for leg, p, s in zip(legs, prices, levels, strict=True)]
    premiums = [float(p) * leg.contract.multiplier * abs(leg.ratio) for leg, p in zip(legs, prices, strict=True)]
    i = int(np.argmax(reqs))
    return reqs[i] + sum(prem for j, prem in enumerate(premiums) if j != i)


def _offset_free(legs: Sequence[Leg], prices: np.ndarray, levels: np.ndarray) -> float:
    """No recognised offset: every short leg naked, every long leg's premium paid."""
    total = 0.0
    for leg, p, s in zip(legs, prices, levels, strict=True):
        if leg.is_long:
            total += leg.ratio * float(p) * leg.contract.multiplier
        else:
            total += naked_requirement(leg, float(p), float(s))
    return total
