"""Structures (sets of option legs), their pricing, payoff and probability, and the spread scanner."""

from spx_core.strategies.structure import PRICE_SCALE, Leg, Structure, StructureError, StructureKind, underlying_of

__all__ = ["PRICE_SCALE", "Leg", "Structure", "StructureError", "StructureKind", "underlying_of"]
