"""A structure: an ordered set of option legs with signed ratios, a name and a kind.

The one type every later part uses to speak about a position: the scanner emits structures, the order
ticket prices and sends them, the portfolio groups fills into them and the backtester opens and closes
them. A structure names contracts only (no market state), compares and hashes by value, and is
quantity-free: ``ratio`` is per one unit of the structure (a 1x2x1 butterfly has ratios +1, -2, +1);
how many units a trade holds belongs to the order or position.

Legs may span underlyings (the SPX vs 10x SPY call pair). Payoffs are stated against one price axis,
the structure's *primary* underlying (the first leg's); the other legs' underlyings are mapped onto it
by :data:`PRICE_SCALE` (SPY and XSP trade at about a tenth of SPX).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Mapping

import numpy as np

from spx_core.domain.contracts import OptionContract, Root

__all__ = ["Leg", "Structure", "StructureKind", "StructureError", "underlying_of", "PRICE_SCALE"]

#: Root -> the underlying symbol its options settle on.
_UNDERLYING = {Root.SPX: "SPX", Root.SPXW: "SPX", Root.XSP: "XSP", Root.SPY: "SPY"}

#: Price of each underlying per one point of SPX, for mapping a multi-underlying structure onto one axis.
#: SPY tracks SPX/10 up to dividends and tracking error; XSP is SPX/10 by definition.
PRICE_SCALE: Mapping[str, float] = {"SPX": 1.0, "XSP": 0.1, "SPY": 0.1}


def underlying_of(root: Root | str) -> str:
    """The underlying symbol a root's options settle on (SPXW -> "SPX")."""
    return _UNDERLYING[Root(root)]


class StructureError(ValueError):
    """A structure's legs are inconsistent (no legs, zero ratio, a contract listed twice)."""


class StructureKind(StrEnum):
    """What a structure is, as a trader names it."""

    SINGLE = "single"
    VERTICAL = "vertical"
    IRON_CONDOR = "iron condor"
    IRON_BUTTERFLY = "iron butterfly"
    BUTTERFLY = "butterfly"
    BROKEN_WING_BUTTERFLY = "broken-wing butterfly"
    CALENDAR = "calendar"
    DIAGONAL = "diagonal"
    STRADDLE = "straddle"
    STRANGLE = "strangle"
    SPX_SPY_PAIR = "SPX vs SPY pair"
    CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class Leg:
    """One option of a structure: ``ratio`` contracts per unit of the structure (negative = short)."""

    contract: OptionContract
    ratio: int

    def __post_init__(self) -> None:
        if not isinstance(self.ratio, (int, np.integer)) or isinstance(self.ratio, bool) or self.ratio == 0:
            raise StructureError(f"leg {self.contract}: ratio {self.ratio!r} must be a non-zero integer")
        object.__setattr__(self, "ratio", int(self.ratio))

    @property
    def is_long(self) -> bool:
        return self.ratio > 0

    @property
    def underlying(self) -> str:
        return underlying_of(self.contract.root)

    def __str__(self) -> str:
        return f"{self.ratio:+d} {self.contract}"


@dataclass(frozen=True, slots=True)
class Structure:
    """An ordered tuple of legs with a name and a kind. Build with :mod:`spx_core.strategies.builders`.

    Attributes:
        legs: the legs in the order a trader reads them (as a ticket shows them).
        kind: what the structure is.
        name: a trader's name for it, e.g. "SPXW 2024-01-05 4700/4675 put credit vertical".
    """

    legs: tuple[Leg, ...]
    kind: StructureKind = StructureKind.CUSTOM
    name: str = ""

    def __post_init__(self) -> None:
        legs = tuple(self.legs)
        if not legs:
            raise StructureError("a structure needs at least one leg")
        seen: set[OptionContract] = set()
        for leg in legs:
            if not isinstance(leg, Leg):
                raise StructureError(f"structure legs must be Leg objects, got {type(leg).__name__}")
            if leg.contract in seen:
                raise StructureError(f"contract {leg.contract} appears twice; merge the legs into one ratio")
            seen.add(leg.contract)
        object.__setattr__(self, "legs", legs)
        object.__setattr__(self, "kind", StructureKind(self.kind))
        if not self.name:
            object.__setattr__(self, "name", f"{self.kind.value}: " + ", ".join(str(leg) for leg in legs))

    # --- shape ------------------------------------------------------------------------------------
    @property
    def contracts(self) -> tuple[OptionContract, ...]:
        return tuple(leg.contract for leg in self.legs)

    @property
    def ratios(self) -> np.ndarray:
        """Signed ratios per leg (int64)."""
        return np.array([leg.ratio for leg in self.legs], dtype=np.int64)

    @property
    def underlying(self) -> str:
        """The primary underlying: the price axis payoffs are stated against (the first leg's)."""
        return self.legs[0].underlying

    @property
    def underlyings(self) -> tuple[str, ...]:
        """Every underlying the legs settle on, primary first."""
        out: list[str] = []
        for leg in self.legs:
            if leg.underlying not in out:
                out.append(leg.underlying)
        return tuple(out)

    @property
    def expiries(self) -> tuple[date, ...]:
        """Distinct leg expiries, earliest first."""
        return tuple(sorted({leg.contract.expiry for leg in self.legs}))

    @property
    def front_expiry(self) -> date:
        return self.expiries[0]

    def leg_scale(self) -> np.ndarray:
        """Per leg: its underlying's price per one point of the primary underlying (1.0 for one underlying)."""
        base = PRICE_SCALE[self.underlying]
        return np.array([PRICE_SCALE[leg.underlying] / base for leg in self.legs], dtype=np.float64)

    # --- payoff at expiry --------------------------------------------------------------------------
    def expiry_value(self, price: np.ndarray | float) -> np.ndarray:
        """Dollar value at expiry of one unit, per primary-underlying price (vectorized over ``price``).

        Every leg is valued at its intrinsic value at the same underlying level, mapped onto its own
        underlying by :meth:`leg_scale`; that is exact for single-expiry structures and the "all legs
        expired" view of calendars (their front-expiry value needs the surface: see ``payoff``).
        """
        s = np.asarray(price, dtype=np.float64)
        strikes = np.array([leg.contract.strike for leg in self.legs])
        calls = np.array([leg.contract.is_call for leg in self.legs])
        weight = np.array([leg.ratio * leg.contract.multiplier for leg in self.legs], dtype=np.float64)
        x = s[..., None] * self.leg_scale()
        intrinsic = np.where(calls, np.maximum(x - strikes, 0.0), np.maximum(strikes - x, 0.0))
        return intrinsic @ weight

    def kinks(self) -> np.ndarray:
        """Primary-underlying prices where the expiry value changes slope (leg strikes mapped back), sorted."""
        scale = self.leg_scale()
        return np.unique(np.array([leg.contract.strike for leg in self.legs]) / scale)

    def __str__(self) -> str:
        return self.name
