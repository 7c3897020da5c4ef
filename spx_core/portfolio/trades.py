"""Trades: the legs of one structure grouped from entry to exit, so a trader reads
"25-wide put credit vertical, opened at 1.45, now 0.70, +$75" and not four loose legs.

A trade is opened by an OPEN order (its fills create it or, with ``request.trade_id``, extend it) and reduced
by CLOSE orders naming it (``request.trade_id``); it is closed when every leg is flat. Partial closes lower
``quantity`` and add to ``realized_pnl``.

Conventions:
    legs          per unit *held*: the opening order's legs with its side applied (SELL 1 x (+4700P, -4675P)
                  holds (-4700P, +4675P)), in the opening order's leg order.
    open_price    average package price per unit in the opening order's convention (a SELL at 1.45 opens at
                  1.45): ``side.sign * sum(held ratio_i * average opening price_i)``; ``close_price`` likewise
                  from the closing fills (NaN before a whole unit has closed on every leg).
    P&L           dollars; every leg keeps average-cost accounting (:func:`~spx_core.portfolio.positions.apply_fill`)
                  so the trade's realized P&L is the sum of its legs', net of every commission and fee.
    mark_price    the package mid in the opening order's convention (NaN when any leg has no usable quote).

The per-leg accounting lives in :class:`TradeLeg` (what the store's ``trade_legs`` rows hold), so a trade
restored from the store continues exactly where it stopped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from spx_core.domain.contracts import OptionContract
from spx_core.execution.broker import MarketView
from spx_core.execution.orders import (Fill, Intent, OrderRequest, OrderState, OrderType, Side, new_ref)
from spx_core.portfolio.positions import Position, apply_fill, marks_from_view
from spx_core.strategies.market import Market, MarketError
from spx_core.strategies.recognize import recognize
from spx_core.strategies.structure import Leg, Structure
from spx_core.strategies.valuation import value_structure

__all__ = ["Trade", "TradeLeg", "TradeError", "TradeLedger", "new_trade", "apply_trade_fill", "settle_trade",
           "short_label", "closing_request", "money_text"]

OPEN = "open"
CLOSED = "closed"


class TradeError(ValueError):
    """A fill or a closing order does not fit the trade it names."""


@dataclass(frozen=True, slots=True)
class TradeLeg:
    """One leg's accounting inside a trade (contracts, points per contract, dollars).

    Attributes:
        leg: the contract and its held ratio per unit (signed).
        held: signed contracts the trade holds now.
        avg_cost: average cost of what is held (points; 0 when flat).
        opened / open_price: contracts opened in total and their average price (kept after the close).
        closed / close_price: contracts closed in total and their average price (NaN before any).
        realized_pnl: dollars realized on this leg net of its commissions and fees.
        commission_fees: dollars of commission + fees paid on this leg.
    """

    leg: Leg
    held: int = 0
    avg_cost: float = 0.0
    opened: int = 0
    open_price: float = math.nan
    closed: int = 0
    close_price: float = math.nan
    realized_pnl: float = 0.0
    commission_fees: float = 0.0

    @property
    def contract(self) -> OptionContract:
        return self.leg.contract

    def position(self) -> Position:
        return Position(self.contract, self.held, self.avg_cost, self.realized_pnl, self.commission_fees)


@dataclass(frozen=True, slots=True)
class Trade:
    """One structure from entry to exit (see the module docstring for the conventions)."""

    id: int
    name: str
    kind: str
    legs: tuple[Leg, ...]
    quantity: int
    opened_quantity: int
    side: Side
    open_price: float
    close_price: float = math.nan
    realized_pnl: float = 0.0
    status: str = OPEN
    opened_ns: int = 0
    closed_ns: int | None = None
    order_refs: tuple[str, ...] = ()
    leg_states: tuple[TradeLeg, ...] = ()
    commission_fees: float = 0.0
    closed_quantity: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "legs", tuple(self.legs))
        if not self.leg_states:
            object.__setattr__(self, "leg_states", tuple(TradeLeg(leg) for leg in self.legs))
        if tuple(s.leg for s in self.leg_states) != self.legs:
            raise TradeError(f"trade {self.id}: leg states do not match its legs")
        if self.status not in (OPEN, CLOSED):
            raise TradeError(f"trade {self.id}: status {self.status!r} must be 'open' or 'closed'")

    # --- shape -----------------------------------------------------------------------------------------
    @property
    def structure(self) -> Structure:
        """The structure held per unit (kind and name as recognised)."""
        return recognize(self.legs)

    @property
    def order_legs(self) -> tuple[Leg, ...]:
        """The legs as the opening order wrote them (held ratios with the side taken back out)."""
        return tuple(Leg(leg.contract, leg.ratio * self.side.sign) for leg in self.legs)

    @property
    def contracts(self) -> tuple[OptionContract, ...]:
        return tuple(leg.contract for leg in self.legs)

    @property
    def multiplier(self) -> int:
        return self.legs[0].contract.multiplier

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    @property
    def cost_price(self) -> float:
        """Average-cost package price of what is held (opening convention; equals ``open_price`` unless the
        trade was extended after a partial close)."""
        return self._package([s.avg_cost if s.held else s.open_price for s in self.leg_states])

    # --- marks and P&L ---------------------------------------------------------------------------------
    def _package(self, prices: Iterable[float]) -> float:
        return self.side.sign * math.fsum(leg.ratio * p for leg, p in zip(self.legs, prices, strict=True))

    def leg_marks(self, source: Market | MarketView | Mapping[OptionContract, float]) -> tuple[float, ...]:
        """Per leg mid (points per contract; NaN where unusable)."""
        if isinstance(source, Market):
            try:
                value = value_structure(Structure(self.legs), source)
            except MarketError:
                return tuple(math.nan for _ in self.legs)
            return tuple(float(m) if math.isfinite(value.mid) else math.nan for m in value.leg_mid)
        prices = marks_from_view(source, self.contracts) if isinstance(source, MarketView) else source
        return tuple(float(prices.get(c, math.nan)) for c in self.contracts)

    def mark_price(self, source: Market | MarketView | Mapping[OptionContract, float]) -> float:
        """The package mid in the opening order's convention (points per unit; NaN when any leg is unusable).

        ``source``: a :class:`Market` (priced by :func:`value_structure`), a broker :class:`MarketView`
        (mids of the latest snapshots) or contract -> price.
        """
        return self._package(self.leg_marks(source))

    def unrealized_pnl(self, mark_price: float) -> float:
        """Dollars of the open units at ``mark_price`` against their average cost (0 when flat; NaN without a
        mark while any leg holds contracts). Contracts beyond whole units (a leg filled ahead of the others)
        are not in a package price; :meth:`leg_unrealized_pnl` values them leg by leg."""
        if all(s.held == 0 for s in self.leg_states):
            return 0.0
        if not math.isfinite(mark_price):
            return math.nan
        return (mark_price - self.cost_price) * self.side.sign * self.quantity * self.multiplier

    def leg_unrealized_pnl(self, source: Market | MarketView | Mapping[OptionContract, float]) -> float:
        """Dollars of every contract held at its own leg mark against its average cost (NaN when a held leg has
        no mark): exact for any fill state, including legs filled ahead of the others."""
        total = 0.0
        for s, mark in zip(self.leg_states, self.leg_marks(source), strict=True):
            if s.held:
                total += (mark - s.avg_cost) * s.held * s.contract.multiplier
        return total

    def total_pnl(self, mark_price: float) -> float:
        """Realized (net) + unrealized dollars."""
        return self.realized_pnl + self.unrealized_pnl(mark_price)

    def describe(self, mark_price: float = math.nan) -> str:
        """One line a trader reads: "25-wide put credit vertical, opened at 1.45, now 0.70, +$75".

        The dollar figure is the trade's whole P&L net of commissions and fees (realized + open).
        """
        units = self.quantity if self.is_open else self.opened_quantity
        head = f"{units} x {short_label(self.structure)}" if units > 1 else short_label(self.structure)
        opened = f"opened at {self.open_price:.2f}" if math.isfinite(self.open_price) else "opening (legs filling)"
        parts = [head, opened]
        if not self.is_open:
            parts.append(f"closed at {self.close_price:.2f}" if math.isfinite(self.close_price) else "closed")
            parts.append(money_text(self.realized_pnl))
            return ", ".join(parts)
        parts.append(f"now {mark_price:.2f}" if math.isfinite(mark_price) else "no mark")
        if self.closed_quantity:
            parts.append(f"{self.closed_quantity} of {self.opened_quantity} closed")
        total = self.total_pnl(mark_price)
        parts.append(money_text(total) if math.isfinite(total) else f"realized {money_text(self.realized_pnl)}")
        return ", ".join(parts)


def money_text(dollars: float) -> str:
    """Whole dollars with a sign: "+$75", "-$1,234", "$0" ("n/a" for NaN)."""
    if not math.isfinite(dollars):
        return "n/a"
    whole = round(dollars)
    sign = "+" if whole > 0 else "-" if whole < 0 else ""
    return f"{sign}${abs(whole):,.0f}"


def short_label(structure: Structure) -> str:
    """A trader's short name: "25-wide put credit vertical", "50-wide iron condor", "4700 short put".

    Built from :func:`recognize`'s name: the root and expiry are dropped; a kind with a width puts the width
    in front of the kind instead of its strikes.
    """
    name = re.sub(r"^\d+ x ", "", structure.name)  # "2 x SPXW ...": the multiple is not the shape's name
    tokens = name.split(" ")
    if len(tokens) > 2 and tokens[0].replace("/", "").isalpha() and tokens[1][:1].isdigit():
        tokens = tokens[2:]  # "SPXW 2024-01-05 ..." (or "SPX/SPY 2024-...")
    else:
        return structure.name
    text = " ".join(tokens)
    if text.endswith(" wide)") and "(" in text:
        body, width = text[:-len(" wide)")].rsplit(" (", 1)
        body_tokens = body.split(" ")
        if body_tokens and body_tokens[0][:1].isdigit():
            body_tokens = body_tokens[1:]  # the strikes
        return f"{width}-wide {' '.join(body_tokens)}"
    return text


# --- building trades from fills ---------------------------------------------------------------------------
def new_trade(trade_id: int, request: OrderRequest, time_ns: int = 0) -> Trade:
    """An empty open trade for an OPEN ``request`` (legs held = the order's legs with its side applied)."""
    if request.intent is not Intent.OPEN:
        raise TradeError(f"order {request.ref} closes trade {request.trade_id}; only an opening order starts one")
    held = tuple(Leg(leg.contract, leg.ratio * request.side.sign) for leg in request.legs)
    shape = recognize(held)
    return Trade(id=trade_id, name=shape.name, kind=shape.kind.value, legs=held, quantity=0, opened_quantity=0,
                 side=request.side, open_price=math.nan, opened_ns=time_ns, order_refs=(request.ref,))


def apply_trade_fill(trade: Trade, order: OrderState, fill: Fill) -> Trade:
    """The trade after one leg fill of ``order`` (an OPEN order on this trade, or a CLOSE order naming it).

    A closing fill larger than what the leg holds is still booked (the money moved at the broker): the leg
    flips and the trade stays open until every leg is flat again.

    Raises:
        TradeError: the fill's contract is not a leg of the trade, or it trades the leg the wrong way.
    """
    request = order.request
    closing = request.intent is Intent.CLOSE
    if closing and request.trade_id != trade.id:
        raise TradeError(f"order {request.ref} closes trade {request.trade_id}, not trade {trade.id}")
    return _book(trade, fill, closing=closing, ref=request.ref)


def settle_trade(trade: Trade, contract: OptionContract, price: float, time_ns: int, exec_id: str) -> Trade:
    """The trade after its ``contract`` leg settled at ``price`` (points, intrinsic value): whatever the leg
    holds closes at that price with no commission (see :mod:`spx_core.portfolio.settlement`)."""
    index = next((i for i, leg in enumerate(trade.legs) if leg.contract == contract), None)
    if index is None or trade.leg_states[index].held == 0:
        return trade
    held = trade.leg_states[index].held
    fill = Fill(exec_id=f"{exec_id}:trade{trade.id}", leg=index, contract=contract,
                side=Side.SELL if held > 0 else Side.BUY, quantity=abs(held), price=price, time_ns=time_ns)
    return _book(trade, fill, closing=True, ref=None, check_side=False)


def _book(trade: Trade, fill: Fill, *, closing: bool, ref: str | None, check_side: bool = True) -> Trade:
    index = next((i for i, leg in enumerate(trade.legs) if leg.contract == fill.contract), None)
    if index is None:
        raise TradeError(f"fill {fill.exec_id} ({fill.contract}) is not a leg of trade {trade.id} ({trade.name})")
    state = trade.leg_states[index]
    held_sign = 1 if state.leg.ratio > 0 else -1
    if check_side and (fill.side.sign == held_sign) == closing:
        verb = "close" if closing else "open"
        raise TradeError(f"fill {fill.exec_id} {fill.side}s {fill.contract}, which does not {verb} trade "
                         f"{trade.id}'s {'long' if held_sign > 0 else 'short'} leg")
    pos = apply_fill(state.position(), fill)
    if closing:
        total = state.closed + fill.quantity
        prev = state.close_price if state.closed else 0.0
        state = replace(state, closed=total, close_price=(prev * state.closed + fill.price * fill.quantity) / total)
    else:
        total = state.opened + fill.quantity
        prev = state.open_price if state.opened else 0.0
        state = replace(state, opened=total, open_price=(prev * state.opened + fill.price * fill.quantity) / total)
    state = replace(state, held=pos.quantity, avg_cost=pos.avg_cost, realized_pnl=pos.realized_pnl,
                    commission_fees=pos.commission_fees)
    states = trade.leg_states[:index] + (state,) + trade.leg_states[index + 1:]
    refs = trade.order_refs if ref is None or ref in trade.order_refs else trade.order_refs + (ref,)
    return _summarize(replace(trade, leg_states=states, order_refs=refs), fill.time_ns)


def _summarize(trade: Trade, time_ns: int) -> Trade:
    """Recompute the trade's totals from its legs' accounting."""
    states = trade.leg_states
    units = [abs(s.leg.ratio) for s in states]
    held_units = min(max(0, s.held * (1 if s.leg.ratio > 0 else -1)) // u for s, u in zip(states, units, strict=True))
    opened_units = min(s.opened // u for s, u in zip(states, units, strict=True))
    closed_units = min(s.closed // u for s, u in zip(states, units, strict=True))
    flat = all(s.held == 0 for s in states) and opened_units > 0
    open_price = trade._package([s.open_price for s in states]) if opened_units else math.nan
    close_price = trade._package([s.close_price for s in states]) if closed_units else math.nan
    return replace(trade, quantity=held_units, opened_quantity=opened_units, closed_quantity=closed_units,
                   open_price=open_price, close_price=close_price,
                   realized_pnl=math.fsum(s.realized_pnl for s in states),
                   commission_fees=math.fsum(s.commission_fees for s in states),
                   status=CLOSED if flat else OPEN, closed_ns=time_ns if flat else None)


class TradeLedger:
    """The trades of one account: routes each order fill to the trade it opens, extends or closes.

    Restore it from the store with ``TradeLedger(stored_trades)``: each trade's ``order_refs`` tell which
    orders it belongs to. A repeated ``exec_id`` is applied once.
    """

    def __init__(self, trades: Iterable[Trade] = ()) -> None:
        self._trades: dict[int, Trade] = {}
        self._by_ref: dict[str, int] = {}
        self._seen: set[str] = set()
        for trade in trades:
            self._put(trade)

    def _put(self, trade: Trade) -> None:
        self._trades[trade.id] = trade
        for ref in trade.order_refs:
            self._by_ref.setdefault(ref, trade.id)

    def trade(self, trade_id: int) -> Trade | None:
        return self._trades.get(trade_id)

    def trade_for(self, ref: str) -> Trade | None:
        """The trade an order (by ref) opened or extended, or the first one it closed."""
        tid = self._by_ref.get(ref)
        return None if tid is None else self._trades[tid]

    def trades(self, *, open_only: bool = False) -> list[Trade]:
        return [t for t in sorted(self._trades.values(), key=lambda t: t.id) if t.is_open or not open_only]

    def on_fill(self, order: OrderState, fill: Fill, *,
                trade_id_for_new: Callable[[], int] | None = None) -> Trade:
        """Book one leg fill of ``order``; returns the trade it changed.

        OPEN orders create their trade on the first fill (id from ``trade_id_for_new``, e.g. the store's next
        row id; default: one more than the largest id here) or extend ``request.trade_id``; CLOSE orders
        reduce ``request.trade_id``.

        Raises:
            TradeError: a CLOSE (or extending OPEN) order names a trade the ledger does not hold, or the fill
                does not fit the trade (:func:`apply_trade_fill`).
        """
        request = order.request
        tid = request.trade_id if request.intent is Intent.CLOSE else \
            self._by_ref.get(request.ref, request.trade_id)
        if fill.exec_id in self._seen and tid in self._trades:
            return self._trades[tid]
        if tid is None:
            tid = trade_id_for_new() if trade_id_for_new is not None else max(self._trades, default=0) + 1
            if tid in self._trades:
                raise TradeError(f"trade id {tid} for order {request.ref} is already used by trade "
                                 f"{self._trades[tid].name}")
            trade = new_trade(tid, request, fill.time_ns)
        elif tid in self._trades:
            trade = self._trades[tid]
        else:
            raise TradeError(f"order {request.ref} names trade {tid}, which is not in the ledger; "
                             f"load the stored trades first")
        trade = apply_trade_fill(trade, order, fill)
        self._trades[trade.id] = trade
        self._by_ref.setdefault(request.ref, trade.id)
        self._seen.add(fill.exec_id)
        return trade

    def on_settlement(self, fill: Fill) -> list[Trade]:
        """Settle every open trade holding ``fill.contract`` at the settlement fill's price (each trade closes
        what its own leg holds; the fill itself is the net position's); returns the trades changed."""
        if fill.exec_id in self._seen:
            return []
        changed = []
        for trade in self.trades(open_only=True):
            after = settle_trade(trade, fill.contract, fill.price, fill.time_ns, fill.exec_id)
            if after is not trade:
                self._trades[trade.id] = after
                changed.append(after)
        self._seen.add(fill.exec_id)
        return changed

    def closing_request(self, trade: Trade | int, **kwargs) -> OrderRequest:
        """:func:`closing_request` for a trade of this ledger (by object or id)."""
        if isinstance(trade, int):
            found = self._trades.get(trade)
            if found is None:
                raise TradeError(f"no trade {trade} in the ledger")
            trade = found
        return closing_request(trade, **kwargs)


def closing_request(trade: Trade, *, quantity: int | None = None, limit: float | None = None,
                    ref: str | None = None, now_ns: int = 0, **fields) -> OrderRequest:
    """The order that closes ``quantity`` units (default: all open) of ``trade``: the same legs as opened,
    the opposite side, intent CLOSE naming the trade. A ``limit`` (points per unit, the order's convention)
    makes it a limit order, none a market order. Extra ``fields`` pass to :class:`OrderRequest`
    (``tif``, ``account``, ``broker``, ``source``, ...).

    Raises:
        TradeError: the trade is closed or ``quantity`` is not within 1..open units.
    """
    if not trade.is_open or trade.quantity == 0:
        raise TradeError(f"trade {trade.id} ({trade.name}) has no open units to close")
    quantity = trade.quantity if quantity is None else quantity
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= trade.quantity:
        raise TradeError(f"trade {trade.id}: close quantity {quantity!r} must be between 1 and the "
                         f"{trade.quantity} open units")
    return OrderRequest(ref=ref or new_ref(), legs=trade.order_legs, side=trade.side.opposite, quantity=quantity,
                        order_type=OrderType.MKT if limit is None else OrderType.LMT, limit=limit,
                        created_ns=now_ns, name=trade.name, kind=trade.kind, intent=Intent.CLOSE,
                        trade_id=trade.id, **fields)

