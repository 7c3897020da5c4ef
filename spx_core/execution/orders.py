"""Orders: what we asked (:class:`OrderRequest`) kept apart from what the broker says (:class:`OrderState`).

An order's state is never edited in place: every change the broker reports is an :class:`OrderEvent`
(a status change, a fill, an amendment of the working terms), and the state is the fold of the events
over the request (:func:`apply`, :func:`replay`). The store keeps the request and the events, so replaying
the stored events rebuilds exactly the state the terminal showed.

Price convention (one for every order, package or single leg):
    The *package price* of legs ``(contract_i, ratio_i)`` is ``sum(ratio_i * price_i)`` in index points: what
    one unit of the legs as written costs to buy. A BUY order pays up to ``limit``; a SELL order receives at
    least ``limit``. A put credit vertical is written as IB writes its BAG orders: short leg +1, long leg -1,
    side SELL, a positive limit (SELL 1 x (+2865P, -2840P) at 1.45 receives at least 1.45 per unit).
    :func:`normalize_side` turns any legs + side into that form (a non-negative package price).

Fills are per leg (one contract, buy or sell, quantity in contracts, price per contract in points,
commission and fees in dollars); the package quantity filled is the smallest ``leg filled / |ratio|``.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import reduce
from math import gcd

from spx_core.domain.contracts import OptionContract
from spx_core.strategies.structure import Leg

__all__ = [
    "Side", "OrderType", "TimeInForce", "OrderStatus", "Intent", "EventKind", "OrderRequest", "Fill",
    "OrderEvent", "OrderState", "OrderError", "IllegalTransition", "apply", "replay", "new_ref", "ref_source",
    "normalize_side", "TRANSITIONS", "package_price",
]


class OrderError(ValueError):
    """An order request is malformed (no legs, zero quantity, a limit order without a price, ...)."""


class IllegalTransition(OrderError):
    """An event does not apply to the order's current state (e.g. a fill on a rejected order)."""


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    LMT = "LMT"
    MKT = "MKT"


class TimeInForce(StrEnum):
    DAY = "DAY"
    GTC = "GTC"


class OrderStatus(StrEnum):
    PENDING = "pending"  # accepted by our gate and stored; not yet acknowledged by the broker
    SUBMITTED = "submitted"  # working at the broker
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_done(self) -> bool:
        return self in _DONE

    @property
    def is_working(self) -> bool:
        return self in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)


_DONE = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED})

#: Legal status changes. A repeated status (a broker re-sending "submitted") is a no-op, not a transition.
#: FILLED and PARTIALLY_FILLED are reached by fills (a fill event moves the status), not by a status event
#: alone; a status event to them is accepted only if the fills already say so.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.SUBMITTED, OrderStatus.REJECTED, OrderStatus.CANCELLED}),
    OrderStatus.SUBMITTED: frozenset({OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELLED,
                                      OrderStatus.REJECTED, OrderStatus.EXPIRED}),
    OrderStatus.PARTIALLY_FILLED: frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED}),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
}


class Intent(StrEnum):
    """Whether an order opens a new trade or closes (part of) an existing one (``OrderRequest.trade_id``)."""

    OPEN = "open"
    CLOSE = "close"


class EventKind(StrEnum):
    STATUS = "status"  # the broker reports a status (with reason and broker ids)
    FILL = "fill"  # one leg execution
    AMEND = "amend"  # the working limit / quantity changed (a modify the broker accepted)


#: the ref source in force (None: random); a backtest sets one so that its exit and hedge refs are reproducible
_REF_SOURCE: ContextVar[Callable[[], str] | None] = ContextVar("spx_order_ref_source", default=None)


def new_ref() -> str:
    """A fresh idempotent order reference (our key at every broker: IB's orderRef)."""
    source = _REF_SOURCE.get()
    return source() if source is not None else "spx-" + uuid.uuid4().hex[:20]


@contextmanager
def ref_source(source: Callable[[], str]) -> Iterator[None]:
    """Within the block, :func:`new_ref` returns ``source()`` (a backtest's deterministic refs)."""
    token = _REF_SOURCE.set(source)
    try:
        yield
    finally:
        _REF_SOURCE.reset(token)


def package_price(ratios: Sequence[int], prices: Sequence[float]) -> float:
    """``sum(ratio_i * price_i)``: what one unit of the legs as written costs to buy (points)."""
    return float(sum(r * p for r, p in zip(ratios, prices, strict=True)))


def normalize_side(legs: Sequence[Leg], side: Side,
                   prices: Sequence[float] | None = None) -> tuple[tuple[Leg, ...], Side]:
    """The same order written the way traders and IB read it, with the ratios divided by their common factor.

    Selling (+a, -b) is buying (-a, +b). With leg ``prices`` (e.g. mids) whose package price is known, the
    form with a non-negative package price is chosen (a credit vertical or iron condor is SOLD at a
    positive price); without them, or when they are not all finite, the first leg's ratio is made positive.
    """
    legs = tuple(legs)
    if not legs:
        raise OrderError("an order needs at least one leg")
    common = reduce(gcd, (abs(leg.ratio) for leg in legs))
    if common > 1:
        legs = tuple(Leg(leg.contract, leg.ratio // common) for leg in legs)
    ratios = [leg.ratio for leg in legs]
    priced = prices is not None and len(prices) == len(legs) and all(math.isfinite(p) for p in prices)
    flip = package_price(ratios, prices) < 0 if priced else ratios[0] < 0
    if flip:
        legs = tuple(Leg(leg.contract, -leg.ratio) for leg in legs)
        side = side.opposite
    return legs, side


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What we asked for. Never changes once stored (a modify is an AMEND event on the state).

    Attributes:
        ref: our idempotent order reference (:func:`new_ref`); a broker never sees one ref twice.
        legs: the structure's legs with signed ratios per unit (see the module's price convention).
        side: BUY pays ``limit`` per unit; SELL receives it.
        quantity: units of the structure (> 0).
        order_type / limit: LMT needs a finite ``limit`` (points per unit, any sign); MKT has none.
        tif: DAY (expires at the session close) or GTC.
        account: the broker account ("" = the broker's default).
        snapshot_id / snapshot_checksum: the chain snapshot the order was decided on.
        created_ns: when it was asked (market clock, UTC ns).
        name / kind: the structure's trader name and kind (``Structure.name``, ``StructureKind`` value).
        intent / trade_id: OPEN a new trade, or CLOSE (part of) the trade with this id.
        broker: which broker it goes to ("paper", "ib").
        source: who asked ("ticket", "scanner", "automation", "backtest", ...).
    """

    ref: str
    legs: tuple[Leg, ...]
    side: Side
    quantity: int
    order_type: OrderType = OrderType.LMT
    limit: float | None = None
    tif: TimeInForce = TimeInForce.DAY
    account: str = ""
    snapshot_id: int | None = None
    snapshot_checksum: str | None = None
    created_ns: int = 0
    name: str = ""
    kind: str = "custom"
    intent: Intent = Intent.OPEN
    trade_id: int | None = None
    broker: str = "paper"
    source: str = "ticket"

    def __post_init__(self) -> None:
        object.__setattr__(self, "legs", tuple(self.legs))
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "order_type", OrderType(self.order_type))
        object.__setattr__(self, "tif", TimeInForce(self.tif))
        object.__setattr__(self, "intent", Intent(self.intent))
        if not self.ref or not isinstance(self.ref, str):
            raise OrderError("an order needs a non-empty reference (use new_ref())")
        if not self.legs:
            raise OrderError(f"order {self.ref}: no legs; add at least one option leg")
        if len({leg.contract for leg in self.legs}) != len(self.legs):
            raise OrderError(f"order {self.ref}: a contract is listed twice; merge its ratios into one leg")
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int) or self.quantity <= 0:
            raise OrderError(f"order {self.ref}: quantity {self.quantity!r} must be a whole number above 0")
        if self.order_type is OrderType.LMT:
            if self.limit is None or not math.isfinite(self.limit):
                raise OrderError(f"order {self.ref}: a limit order needs a finite limit price, got {self.limit!r}")
            object.__setattr__(self, "limit", float(self.limit))
        elif self.limit is not None:
            raise OrderError(f"order {self.ref}: a market order has no limit price (got {self.limit!r})")
        if self.intent is Intent.CLOSE and self.trade_id is None:
            raise OrderError(f"order {self.ref}: a closing order must name the trade it closes (trade_id)")

    @property
    def contracts(self) -> tuple[OptionContract, ...]:
        return tuple(leg.contract for leg in self.legs)

    @property
    def ratios(self) -> tuple[int, ...]:
        return tuple(leg.ratio for leg in self.legs)

    def leg_quantity(self, i: int, units: int | None = None) -> int:
        """Signed contracts of leg ``i`` for ``units`` (default: the whole order); + = bought."""
        return self.legs[i].ratio * (self.quantity if units is None else units) * self.side.sign

    def leg_side(self, i: int) -> Side:
        return Side.BUY if self.legs[i].ratio * self.side.sign > 0 else Side.SELL

    def with_terms(self, *, limit: float | None = None, quantity: int | None = None) -> OrderRequest:
        """The same request with new working terms (what a modify asks for; the ref stays)."""
        return replace(self, limit=self.limit if limit is None else limit,
                       quantity=self.quantity if quantity is None else quantity)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of one leg. ``exec_id`` is unique per broker; a repeated exec_id is the same fill."""

    exec_id: str
    leg: int
    contract: OptionContract
    side: Side
    quantity: int
    price: float
    time_ns: int
    commission: float = 0.0  # dollars
    fees: float = 0.0  # dollars (exchange, clearing, regulatory)

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", Side(self.side))
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int) or self.quantity <= 0:
            raise OrderError(f"fill {self.exec_id}: quantity {self.quantity!r} must be a whole number above 0")
        if not math.isfinite(self.price) or self.price < 0:
            raise OrderError(f"fill {self.exec_id}: price {self.price!r} must be a finite non-negative number")

    @property
    def signed_quantity(self) -> int:
        return self.quantity * self.side.sign

    @property
    def cash(self) -> float:
        """Dollars this fill moved (bought: negative), before commission and fees."""
        return -self.signed_quantity * self.price * self.contract.multiplier


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One change the broker reported (or our gate decided), in the order it happened.

    STATUS: ``status`` (+ ``reason``, broker ids). FILL: ``fill``. AMEND: new ``limit`` and/or ``quantity``.
    """

    ref: str
    kind: EventKind
    time_ns: int
    status: OrderStatus | None = None
    reason: str = ""
    broker_order_id: str | None = None
    perm_id: str | None = None
    fill: Fill | None = None
    limit: float | None = None
    quantity: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", EventKind(self.kind))
        if self.status is not None:
            object.__setattr__(self, "status", OrderStatus(self.status))
        if self.kind is EventKind.STATUS and self.status is None:
            raise OrderError(f"order {self.ref}: a status event needs a status")
        if self.kind is EventKind.FILL and self.fill is None:
            raise OrderError(f"order {self.ref}: a fill event needs a fill")
        if self.kind is EventKind.AMEND and self.limit is None and self.quantity is None:
            raise OrderError(f"order {self.ref}: an amend event needs a new limit or quantity")


@dataclass(frozen=True, slots=True)
class OrderState:
    """The order as the broker last described it: the fold of its events over the request."""

    request: OrderRequest
    status: OrderStatus = OrderStatus.PENDING
    reason: str = ""
    limit: float | None = None
    quantity: int = 0
    broker_order_id: str | None = None
    perm_id: str | None = None
    fills: tuple[Fill, ...] = ()
    updated_ns: int = 0
    id: int | None = None  # the store's row id, once stored
    _leg_filled: tuple[int, ...] = field(default=(), repr=False)

    @classmethod
    def new(cls, request: OrderRequest, *, id: int | None = None) -> OrderState:
        return cls(request=request, limit=request.limit, quantity=request.quantity, updated_ns=request.created_ns,
                   id=id, _leg_filled=(0,) * len(request.legs))

    @property
    def ref(self) -> str:
        return self.request.ref

    @property
    def leg_filled(self) -> tuple[int, ...]:
        """Contracts filled per leg (unsigned)."""
        return self._leg_filled

    @property
    def filled(self) -> int:
        """Units of the structure filled: the smallest ``leg filled / |ratio|``."""
        return min(f // abs(leg.ratio) for f, leg in zip(self._leg_filled, self.request.legs))

    @property
    def remaining(self) -> int:
        return 0 if self.status.is_done else self.quantity - self.filled

    @property
    def avg_fill_price(self) -> float:
        """Average package price per unit in the request's convention (NaN before any complete unit).

        ``sum(ratio_i * average fill price of leg i)``: a leg filled ahead of the others (IB reports a combo's
        executions leg by leg) moves its own average, not the package's count of units. Dividing all the fill
        money by the complete units instead priced a vertical with one extra short leg at 1.125, not 0.40.
        """
        if self.filled == 0:
            return math.nan
        money = [0.0] * len(self.request.legs)
        for f in self.fills:
            money[f.leg] += f.quantity * f.price
        return package_price(self.request.ratios, [m / q for m, q in zip(money, self._leg_filled, strict=True)])

    @property
    def commission(self) -> float:
        return sum(f.commission for f in self.fills)

    @property
    def fees(self) -> float:
        return sum(f.fees for f in self.fills)

    @property
    def is_working(self) -> bool:
        return self.status is OrderStatus.PENDING or self.status.is_working


def apply(state: OrderState, event: OrderEvent) -> OrderState:
    """The state after ``event``. Raises :class:`IllegalTransition` naming the order, its state and the event."""
    if event.ref != state.ref:
        raise IllegalTransition(f"event for order {event.ref} applied to order {state.ref}")
    ids = {k: v for k, v in (("broker_order_id", event.broker_order_id), ("perm_id", event.perm_id)) if v}
    if event.kind is EventKind.STATUS:
        return _apply_status(state, event, ids)
    if event.kind is EventKind.FILL:
        return _apply_fill(state, event, ids)
    return _apply_amend(state, event, ids)


def _apply_status(state: OrderState, event: OrderEvent, ids: dict) -> OrderState:
    new = event.status
    assert new is not None
    if new is state.status:  # brokers repeat statuses: keep the ids and reason, change nothing else
        return replace(state, reason=event.reason or state.reason, updated_ns=event.time_ns, **ids)
    if new not in TRANSITIONS[state.status]:
        raise IllegalTransition(f"order {state.ref}: cannot go from {state.status} to {new}")
    if new in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED) and _fill_status(state) is not new:
        raise IllegalTransition(f"order {state.ref}: status {new} but its fills say {_fill_status(state)} "
                                f"({state.filled} of {state.quantity} filled)")
    return replace(state, status=new, reason=event.reason, updated_ns=event.time_ns, **ids)


def _fill_status(state: OrderState) -> OrderStatus:
    if state.filled >= state.quantity:
        return OrderStatus.FILLED
    return OrderStatus.PARTIALLY_FILLED if any(state._leg_filled) else OrderStatus.SUBMITTED


def _apply_fill(state: OrderState, event: OrderEvent, ids: dict) -> OrderState:
    fill = event.fill
    assert fill is not None
    if any(f.exec_id == fill.exec_id for f in state.fills):
        return state  # the same execution reported twice (IB re-sends executions on reconnect)
    if state.status in (OrderStatus.PENDING, OrderStatus.REJECTED):
        raise IllegalTransition(f"order {state.ref}: a fill cannot arrive while the order is {state.status}")
    req = state.request
    if not 0 <= fill.leg < len(req.legs) or req.legs[fill.leg].contract != fill.contract:
        raise IllegalTransition(f"order {state.ref}: fill {fill.exec_id} names leg {fill.leg} ({fill.contract}), "
                                f"which is not a leg of this order")
    if fill.side is not req.leg_side(fill.leg):
        raise IllegalTransition(f"order {state.ref}: fill {fill.exec_id} is a {fill.side} of leg {fill.leg}, "
                                f"the order {req.leg_side(fill.leg)}s it")
    leg_filled = list(state._leg_filled)
    leg_filled[fill.leg] += fill.quantity
    if leg_filled[fill.leg] > abs(req.legs[fill.leg].ratio) * state.quantity:
        raise IllegalTransition(f"order {state.ref}: fill {fill.exec_id} overfills leg {fill.leg} "
                                f"({leg_filled[fill.leg]} > {abs(req.legs[fill.leg].ratio) * state.quantity})")
    out = replace(state, fills=state.fills + (fill,), _leg_filled=tuple(leg_filled), updated_ns=event.time_ns,
                  **ids)
    if state.status.is_done:  # a late fill after a cancel/expiry raced it: the money moved, the status stays
        return out
    return replace(out, status=_fill_status(out))


def _apply_amend(state: OrderState, event: OrderEvent, ids: dict) -> OrderState:
    if not state.is_working:
        raise IllegalTransition(f"order {state.ref}: cannot modify an order that is {state.status}")
    quantity = state.quantity if event.quantity is None else event.quantity
    if quantity < max(state.filled, 1):
        raise IllegalTransition(f"order {state.ref}: new quantity {quantity} is below the {state.filled} "
                                f"already filled")
    if state.request.order_type is OrderType.MKT and event.limit is not None:
        raise IllegalTransition(f"order {state.ref}: a market order has no limit to modify")
    limit = state.limit if event.limit is None else float(event.limit)
    out = replace(state, limit=limit, quantity=quantity, updated_ns=event.time_ns, **ids)
    if out.status.is_working and out.filled >= quantity:  # cut to what is already filled
        return replace(out, status=OrderStatus.FILLED)
    return out


def replay(request: OrderRequest, events: Iterable[OrderEvent], *, id: int | None = None) -> OrderState:
    """Rebuild an order's state from its stored events (in stored order)."""
    state = OrderState.new(request, id=id)
    for event in events:
        state = apply(state, event)
    return state
