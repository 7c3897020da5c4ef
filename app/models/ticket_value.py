"""What the order would do, before it is sent: the ticket's worker job and its figures.

:func:`compute_ticket` (worker thread, a pure function of its arguments) values one unit of the order's
legs *as held after the fill* (``value_structure``: dollar greeks, max profit/loss at the mid, Reg-T
margin) and the dollar greeks of the open positions, on the latest snapshot per underlying (chain IVs
and surface through the window's shared fits, as the strategy builder gets them), and, when asked, the
book's VaR/ES and stresses before and after the order (:mod:`app.models.ticket_risk`).

:func:`order_figures` (GUI thread, cheap) scales that to the order at its limit: max profit and max loss
move one for one with the premium (the expiry P&L is the expiry value plus what opening received, so a
limit ``d`` points better adds ``d x 100`` dollars per unit to both), times the quantity; margin; the
commission and fees estimate (:class:`~spx_core.execution.fees.FeeSchedule` on the legs' mids; the
order minimum applies per order); and the greeks after the fill (positions + this order).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

# the builder's market assembly (shared fits, SPY's IVs); imported here, on the GUI thread: it imports the
# surface panel's module, whose Qt objects must not be created by a worker's first import
from app.models.builder_data import market_caches
from app.models.ticket_model import PackageQuote, TicketOrder, held_legs
from app.models.ticket_risk import RiskRequest, RiskWhatIf, compute_what_if
from app.shared_fits import SharedFits
from spx_core.domain import ChainSnapshot
from spx_core.strategies.structure import Leg, Structure

if TYPE_CHECKING:  # the valuation core loads the surface layer (scipy): in the worker, not at start-up
    from spx_core.execution.fees import FeeSchedule
    from spx_core.strategies.valuation import StructureValue

__all__ = ["NO_GREEKS", "Greeks", "OrderFigures", "TicketValue", "compute_ticket", "order_figures", "position_legs"]


@dataclass(frozen=True, slots=True)
class Greeks:
    """Dollar greeks (valuation's units): delta $ per index point, gamma $ per 1% move, vega $ per vol point,
    theta $ per calendar day. NaN where unknown."""

    delta: float = 0.0
    gamma: float = 0.0
    vega: float = 0.0
    theta: float = 0.0

    def __add__(self, other: Greeks) -> Greeks:
        return Greeks(self.delta + other.delta, self.gamma + other.gamma, self.vega + other.vega,
                      self.theta + other.theta)

    def scaled(self, k: float) -> Greeks:
        return Greeks(self.delta * k, self.gamma * k, self.vega * k, self.theta * k)


NO_GREEKS = Greeks(math.nan, math.nan, math.nan, math.nan)


@dataclass(frozen=True, slots=True, eq=False)
class TicketValue:
    """The worker's result for one order's legs (per unit as held) and the open positions."""

    held: tuple[Leg, ...]
    value: StructureValue | None
    reason: str  # "" or why ``value`` is missing or partial
    positions: Greeks  # of the open positions (zeros when flat, NaN when unknown)
    positions_reason: str
    caches: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    risk: RiskWhatIf | None = None  # VaR/ES and stresses before and after the order (None: not asked this job)


def _greeks(value: StructureValue) -> Greeks:
    return Greeks(value.delta_usd, value.gamma_usd_1pct, value.vega_usd_volpt, value.theta_usd_day)


def compute_ticket(snapshots: dict[str, ChainSnapshot], held: tuple[Leg, ...], positions: tuple[Leg, ...],
                   caches: dict[str, Any], fits: SharedFits, risk: RiskRequest | None = None) -> TicketValue:
    """Worker-thread job: value one unit of ``held`` and the greeks of ``positions`` (legs = signed
    contracts held) on the latest snapshot per underlying; with ``risk``, the book's risk what-if on the same
    market (:mod:`app.models.ticket_risk`)."""
    # the surface package first, as the surface and chain workers take it in parallel: the same package first
    # keeps the module locks acyclic (see app.panels.scanner_panel._import_core)
    import spx_core.surface  # noqa: F401, I001 (this order on purpose)
    from spx_core.strategies.market import Market, MarketError
    from spx_core.strategies.valuation import value_structure

    t0 = time.perf_counter()
    new_caches = market_caches(snapshots, held + positions, caches, fits)
    market = Market({u: c.chain for u, c in new_caches.items()})
    value, reason = None, ""
    try:
        value = value_structure(Structure(held), market)
        reason = "; ".join(r for r in (value.reason, value.approximated) if r)
    except MarketError as exc:
        reason = str(exc)
    book, book_reason = Greeks(), ""
    if positions:
        try:
            book = _greeks(value_structure(Structure(positions), market))
        except MarketError as exc:
            book, book_reason = NO_GREEKS, f"position greeks: {exc}"
    what_if = compute_what_if(risk, market) if risk is not None else None
    return TicketValue(held, value, reason, book, book_reason, new_caches, time.perf_counter() - t0, what_if)


@dataclass(frozen=True, slots=True)
class OrderFigures:
    """The order's figures at its limit, in dollars for the whole quantity (NaN where unknown).

    Attributes:
        premium: received (+) or paid (-) at the limit.
        max_profit / max_loss: at expiry after the premium (max_loss positive = a loss; inf = unlimited).
        margin: Reg-T (local rule) at the legs' mids.
        commission / fees: broker commission (order minimum applied) and exchange/clearing/regulatory fees.
        order_greeks / after: this order's dollar greeks, and the positions' plus this order's.
    """

    premium: float
    max_profit: float
    max_loss: float
    margin: float
    commission: float
    fees: float
    order_greeks: Greeks
    before: Greeks
    after: Greeks


def order_figures(order: TicketOrder, quote: PackageQuote, limit: float, value: TicketValue | None,
                  fees: FeeSchedule) -> OrderFigures:
    """Figures of ``order`` at ``limit`` (a MKT order: at its natural price); see the module docstring."""
    qty = order.quantity
    mult = order.legs[0].contract.multiplier
    price = quote.natural if not math.isfinite(limit) else limit
    premium = -order.side.sign * price * qty * mult
    commission, charges = _charges(order, quote, fees)
    v = value.value if value is not None and value.held == held_legs(order) else None
    if v is None:
        nan = math.nan
        before = value.positions if value is not None else NO_GREEKS
        return OrderFigures(premium, nan, nan, nan, commission, charges, NO_GREEKS, before, NO_GREEKS)
    # v.mid: the credit (points, + = received) of one unit as held at the mids; the order's at its price
    shift = (-order.side.sign * price - v.mid) * mult
    greeks = _greeks(v).scaled(qty)
    return OrderFigures(premium, (v.max_profit + shift) * qty, (v.max_loss - shift) * qty, v.margin * qty,
                        commission, charges, greeks, value.positions, value.positions + greeks)


def _charges(order: TicketOrder, quote: PackageQuote, fees: FeeSchedule) -> tuple[float, float]:
    """(commission, fees) in dollars if every leg fills at its mid (NaN when a leg has no quote)."""
    if not all(math.isfinite(line.mid) for line in quote.legs):
        return math.nan, math.nan
    return fees.estimate([(leg.contract, leg.ratio * order.side.sign * order.quantity, line.mid)  # < 0: sold
                          for leg, line in zip(order.legs, quote.legs, strict=True)])


def position_legs(positions: Iterable[Any]) -> tuple[Leg, ...]:
    """Open positions (``Position`` objects with ``contract`` and signed ``quantity``) as legs."""
    return tuple(Leg(p.contract, int(p.quantity)) for p in positions if int(p.quantity) != 0)
