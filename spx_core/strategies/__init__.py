"""Structures (sets of option legs), their pricing, payoff and probability, and the spread scanner."""

from spx_core.strategies.builders import BuildError
from spx_core.strategies.margin import margin_requirement
from spx_core.strategies.market import Market, MarketChain, MarketError
from spx_core.strategies.recognize import recognize
from spx_core.strategies.structure import (
    PRICE_SCALE,
    Leg,
    Structure,
    StructureError,
    StructureKind,
    underlying_of,
)
from spx_core.strategies.valuation import PriceBasis, StructureValue, value_structure

__all__ = [
    "PRICE_SCALE", "BuildError", "Leg", "Market", "MarketChain", "MarketError", "PriceBasis", "Structure",
    "StructureError", "StructureKind", "StructureValue", "margin_requirement", "recognize", "underlying_of",
    "value_structure",
]
