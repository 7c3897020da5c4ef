"""The order ticket's logic without widgets: what the ticket would send, at which price, and what it would do.

:class:`TicketOrder` is the order being set up, minus its price: legs in the request convention of
:mod:`spx_core.execution.orders` (normalized by ``normalize_side``: the first leg is bought by a BUY), side,
quantity, type, TIF and where it came from. The four entry points build one:

* :meth:`TicketOrder.from_contract` (chain double-click): one leg, buy or sell;
* :meth:`TicketOrder.from_structure` (scanner "Trade", builder "Trade"): a structure as held (short legs
  negative) is *bought as written*, then normalized (a put credit vertical becomes SELL +short -long);
* :meth:`TicketOrder.from_request` (e.g. a trade's closing order): the request's own terms and limit.

:func:`quote_order` reads each leg's bid/ask in the latest snapshots and the package's bid/ask/mid and
natural in the request convention (points per unit: what one unit of the legs as written costs to buy;
``natural`` = the ask for a BUY, the bid for a SELL: what crossing every leg's spread pays or receives).
A leg's quote is used as quoted (a WIDE or STALE flag is shown on the leg, not hidden: the pre-trade gate
judges the price); a missing side makes the package NaN with the reason.

:func:`limit_for` turns a price mode into a limit on the exchange's tick grid (``spx_core.execution.ticks``:
combos 0.05; SPX singles 0.05 below 3.00 and 0.10 from 3.00), :func:`step_limit` moves it by one tick.
:func:`order_figures` gives max profit / max loss at the limit, margin, commission and post-trade greeks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from spx_core.domain import ChainSnapshot, OptionContract, Root, describe_flags
from spx_core.execution.orders import (Intent, OrderRequest, OrderType, Side, TimeInForce, new_ref,
                                       normalize_side)
from spx_core.execution.ticks import round_to_tick, tick_size
from spx_core.strategies.market import locate
from spx_core.strategies.structure import Leg, Structure

__all__ = [
    "MAX_QUANTITY",
    "LegLine",
    "PackageQuote",
    "PriceMode",
    "TicketOrder",
    "held_legs",
    "limit_for",
    "quote_order",
    "snap_limit",
    "step_limit",
]

#: The quantity spin box's ceiling (units); the gate's own limit (``GateSettings.max_quantity``) refuses more.
MAX_QUANTITY = 10_000


class PriceMode(StrEnum):
    """Where the ticket's limit comes from: the package mid, its natural price, or the trader's number."""

    MID = "mid"
    NATURAL = "natural"
    CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class TicketOrder:
    """An order as the ticket sets it up, before its price (see the module docstring for the convention).

    Attributes:
        legs: signed ratios per unit, normalized (first leg positive, no common factor).
        side: BUY pays the limit per unit, SELL receives it.
        quantity: units (> 0).
        order_type / tif: LMT or MKT; DAY or GTC.
        name / kind: the structure's trader name and kind (carried into the request).
        intent / trade_id: OPEN, or CLOSE the trade with this id.
        source: who opened the ticket ("chain", "scanner", "builder", "positions", ...).
        limit: the limit the ticket was opened with (a request's), else None (then the mid).
    """

    legs: tuple[Leg, ...]
    side: Side
    quantity: int = 1
    order_type: OrderType = OrderType.LMT
    tif: TimeInForce = TimeInForce.DAY
    name: str = ""
    kind: str = "custom"
    intent: Intent = Intent.OPEN
    trade_id: int | None = None
    source: str = "ticket"
    limit: float | None = None
    #: leg mids when opened (orientation only: with them a credit package is written SOLD at a positive price)
    prices: tuple[float, ...] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        legs, side = normalize_side(self.legs, Side(self.side), self.prices)
        if side is not Side(self.side) and self.limit is not None:
            # buying (-a, +b) for up to X is selling (+a, -b) for at least -X: the same order, written flipped
            object.__setattr__(self, "limit", -self.limit)
        object.__setattr__(self, "legs", legs)
        object.__setattr__(self, "side", side)
        object.__setattr__(self, "order_type", OrderType(self.order_type))
        object.__setattr__(self, "tif", TimeInForce(self.tif))
        object.__setattr__(self, "intent", Intent(self.intent))

    # --- entry points -----------------------------------------------------------------------------------
    @classmethod
    def from_contract(cls, contract: OptionContract, side: Side | str, *, source: str = "chain") -> TicketOrder:
        """One contract, bought or sold (the chain: a double-click on the ask buys, on the bid sells)."""
        return cls((Leg(contract, 1),), Side(side), name=str(contract), kind="single", source=source)

    @classmethod
    def from_structure(cls, structure: Structure, *, source: str,
                       snapshots: Mapping[str, ChainSnapshot] | None = None) -> TicketOrder:
        """Open ``structure`` as held (its short legs negative): buy it as written, then normalize; with the
        latest ``snapshots`` a package bought for a credit (an iron condor, a credit vertical) becomes a SELL
        at a positive price, as traders and IB write it."""
        order = cls(structure.legs, Side.BUY, name=structure.name, kind=structure.kind.value, source=source)
        if not snapshots:
            return order
        mids = tuple(line.mid for line in quote_order(order, snapshots).legs)  # normalizing keeps the leg order
        return cls(structure.legs, Side.BUY, name=structure.name, kind=structure.kind.value, source=source,
                   prices=mids)

    @classmethod
    def from_request(cls, request: OrderRequest) -> TicketOrder:
        """The request's terms (intent, trade, limit included); the ticket sends it under its own ref."""
        return cls(request.legs, request.side, quantity=request.quantity, order_type=request.order_type,
                   tif=request.tif, name=request.name, kind=request.kind, intent=request.intent,
                   trade_id=request.trade_id, source=request.source, limit=request.limit)

    # --- shape ------------------------------------------------------------------------------------------
    @property
    def combo(self) -> bool:
        return len(self.legs) > 1

    @property
    def tick_root(self) -> Root:
        """The root whose tick the order's price must sit on: the coarsest among its legs' (an SPX vs SPY
        pair prices on SPX's 0.05)."""
        roots = dict.fromkeys(leg.contract.root for leg in self.legs)
        return max(roots, key=lambda r: tick_size(1.0, combo=self.combo, root=r))

    def with_changes(self, **changes: object) -> TicketOrder:
        return replace(self, **changes)

    def request(self, *, limit: float | None, ref: str | None = None, snapshot: ChainSnapshot | None = None,
                snapshot_id: int | None = None, account: str = "", broker: str = "paper") -> OrderRequest:
        """The order request at ``limit`` (ignored for MKT), decided on ``snapshot`` (its checksum and time)."""
        market = self.order_type is OrderType.MKT
        return OrderRequest(
            ref=ref or new_ref(), legs=self.legs, side=self.side, quantity=self.quantity,
            order_type=self.order_type, limit=None if market else limit, tif=self.tif, account=account,
            snapshot_id=snapshot_id, snapshot_checksum=snapshot.checksum if snapshot is not None else None,
            created_ns=snapshot.time_ns if snapshot is not None else 0, name=self.name, kind=self.kind,
            intent=self.intent, trade_id=self.trade_id, broker=broker, source=self.source)


def held_legs(order: TicketOrder) -> tuple[Leg, ...]:
    """The legs as held after the order fills, per unit (a SELL holds the negated ratios)."""
    return tuple(Leg(leg.contract, leg.ratio * order.side.sign) for leg in order.legs)


# --- quotes ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LegLine:
    """One leg of the ticket with its live quote (points per contract; NaN where absent).

    Attributes:
        contract, ratio: the leg as written in the order (ratio signed per unit).
        side: what the order does with this leg (a SELL of a +1 leg sells it).
        bid, ask, mid: the option's quote in the latest snapshot.
        note: "" or what is wrong with the quote ("not listed", "flagged: wide", "no bid").
    """

    contract: OptionContract
    ratio: int
    side: Side
    bid: float = math.nan
    ask: float = math.nan
    mid: float = math.nan
    note: str = ""


@dataclass(frozen=True, slots=True)
class PackageQuote:
    """The package's market in the request convention (points per unit; see the module docstring).

    ``reason`` is "" or why the package prices are NaN (naming the leg); ``snapshot`` is the primary
    underlying's snapshot the prices were read from (its checksum goes into the request).
    """

    legs: tuple[LegLine, ...]
    bid: float
    ask: float
    mid: float
    natural: float
    reason: str = ""
    snapshot: ChainSnapshot | None = None


def _leg_line(leg: Leg, side: Side, snapshot: ChainSnapshot | None, row: int) -> LegLine:
    leg_side = Side.BUY if leg.ratio * side.sign > 0 else Side.SELL
    if snapshot is None:
        return LegLine(leg.contract, leg.ratio, leg_side, note=f"no {leg.underlying} chain in the feed")
    if row < 0:
        return LegLine(leg.contract, leg.ratio, leg_side, note="not listed")
    bid, ask = float(snapshot.columns["bid"][row]), float(snapshot.columns["ask"][row])
    missing = [name for name, x in (("bid", bid), ("ask", ask)) if not math.isfinite(x)]
    flags = describe_flags(int(snapshot.columns["flags"][row]))
    note = f"no {' or '.join(missing)}" if missing else (f"flagged: {flags}" if flags else "")
    return LegLine(leg.contract, leg.ratio, leg_side, bid, ask, 0.5 * (bid + ask), note)


def quote_order(order: TicketOrder, snapshots: Mapping[str, ChainSnapshot]) -> PackageQuote:
    """Each leg's quote and the package's bid/ask/mid/natural in ``snapshots`` (latest per underlying)."""
    lines: list[LegLine] = []
    for underlying in dict.fromkeys(leg.underlying for leg in order.legs):
        idx = [i for i, leg in enumerate(order.legs) if leg.underlying == underlying]
        snapshot = snapshots.get(underlying)
        rows = locate(snapshot, [order.legs[i].contract for i in idx]).tolist() if snapshot is not None \
            else [-1] * len(idx)
        lines += [(i, _leg_line(order.legs[i], order.side, snapshot, r)) for i, r in zip(idx, rows, strict=True)]
    legs = tuple(line for _, line in sorted(lines, key=lambda p: p[0]))
    ratio = np.array([line.ratio for line in legs], dtype=np.float64)
    bid = np.array([line.bid for line in legs])
    ask = np.array([line.ask for line in legs])
    bad = [f"{line.contract}: {line.note}" for line in legs if not (math.isfinite(line.bid)
                                                                     and math.isfinite(line.ask))]
    primary = snapshots.get(order.legs[0].underlying)
    if bad:
        nan = math.nan
        return PackageQuote(legs, nan, nan, nan, nan, "no package price: " + "; ".join(bad), primary)
    long = ratio > 0
    pkg_bid = float(np.sum(ratio * np.where(long, bid, ask)))  # what the market pays for one unit
    pkg_ask = float(np.sum(ratio * np.where(long, ask, bid)))  # what one unit costs from the market
    mid = float(np.sum(ratio * 0.5 * (bid + ask)))
    natural = pkg_ask if order.side is Side.BUY else pkg_bid
    return PackageQuote(legs, pkg_bid, pkg_ask, mid, natural, "", primary)


# --- limit prices ------------------------------------------------------------------------------------------
def snap_limit(price: float, order: TicketOrder, direction: str = "nearest") -> float:
    """``price`` on the tick grid of ``order`` (NaN stays NaN)."""
    if not math.isfinite(price):
        return math.nan
    return round_to_tick(price, combo=order.combo, root=order.tick_root, direction=direction) + 0.0  # -0.0 -> 0.0


def limit_for(order: TicketOrder, quote: PackageQuote, mode: PriceMode, custom: float = math.nan) -> float:
    """The limit of ``mode``, on tick (NaN when the package has no price). The mid rounds to the nearest
    tick; the natural price rounds toward the market (up for a BUY, down for a SELL) so it stays marketable."""
    if mode is PriceMode.CUSTOM:
        return snap_limit(custom, order)
    if mode is PriceMode.MID:
        return snap_limit(quote.mid, order)
    return snap_limit(quote.natural, order, "up" if order.side is Side.BUY else "down")


def step_limit(limit: float, order: TicketOrder, ticks: int) -> float:
    """``limit`` moved ``ticks`` ticks (one at a time: the tick changes at 3.00 for a single); a single
    leg's limit never goes below one tick (an option cannot be bought or sold for nothing)."""
    if not math.isfinite(limit):
        return math.nan
    price = snap_limit(limit, order)
    for _ in range(abs(ticks)):
        # the tick above a price is its own size; the one below is the size just under it (3.00 -> 2.95)
        at = max(price, 0.0) if ticks > 0 else max(price - 0.001, 0.0)  # (a tenth of a cent below)
        step = tick_size(at, combo=order.combo, root=order.tick_root)
        price = snap_limit(price + step if ticks > 0 else price - step, order)
    if not order.combo:
        price = max(price, tick_size(0.0, combo=False, root=order.tick_root))
    return price

