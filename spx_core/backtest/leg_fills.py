"""Per-leg fills (``[fills] per = "leg"``): each leg priced as its own single-leg order would print.

The paper :class:`~spx_core.execution.fill_model.FillModel` prices a package per package: the model legs summed and
the package put on the cent, adverse side. Legging in, each leg is a single-leg order on the exchange's single-leg
tick (SPX/SPXW 0.05 below $3.00, 0.10 above; ``spx_core.execution.ticks``): a bought leg pays its model price
rounded UP to its tick, a sold leg receives it rounded DOWN. :class:`LegFillModel` moves every model leg price
onto its tick that way before they are summed; everything else (marketability, size, bad quotes, leg price
allocation) is the paper model's. ``per`` is a field, so the engine's config hash tells the two apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spx_core.execution.fill_model import FillModel, LegQuotes
from spx_core.execution.orders import OrderType, Side
from spx_core.execution.ticks import round_to_tick
from spx_core.strategies.structure import Leg

__all__ = ["LegFillModel"]


@dataclass(frozen=True, slots=True)
class LegFillModel(FillModel):
    """:class:`FillModel` with every leg on its own single-leg tick, adverse side (module docstring)."""

    per: str = "leg"

    def leg_prices(self, legs: Sequence[Leg], side: Side, quotes: LegQuotes, *,
                   order_type: OrderType = OrderType.LMT) -> np.ndarray:
        prices = FillModel.leg_prices(self, legs, side, quotes, order_type=order_type)
        sign = Side(side).sign
        out = prices.astype(float).copy()
        for i, leg in enumerate(legs):
            if math.isfinite(out[i]):
                up = leg.ratio * sign > 0  # bought: pays the tick above
                out[i] = round_to_tick(float(out[i]), combo=False, root=leg.contract.root,
                                       direction="up" if up else "down")
        return out
