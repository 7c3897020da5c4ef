"""Positions per contract: signed quantity, average cost, realized and unrealized P&L, the live mark.

Money rules (what a trader and the issue expect; units on every figure):

- Prices (``avg_cost``, ``mark``, fill prices) are index points per contract; P&L, commissions and fees are
  dollars (points x ``contract.multiplier``).
- Adding to a position (same direction, or from flat) moves the average cost:
  ``avg = (|q| * avg + |dq| * price) / (|q| + |dq|)``.
- Reducing realizes ``(price - avg) * closed * multiplier * sign(q)`` dollars; the average cost of what remains
  does not change. A fill larger than the position flips it: the old side is closed at the fill price and the
  rest opens a new position at the fill price (``opened_ns`` restarts).
- Commission and fees are charged to ``realized_pnl`` when they are paid, on every fill (opening fills too),
  so ``realized_pnl + unrealized_pnl == sum(fill cash) - commissions - fees + quantity * mark * multiplier``.
- Marks: the mid of a usable live quote (both sides present, not crossed, no :class:`QuoteFlag`); NaN
  otherwise. Nothing here makes up a mark: a position without one has NaN unrealized P&L (a flat one has 0).

Day P&L = realized since the day start + (unrealized now - unrealized at the day start). A position carries its
day baseline (``day_start_ns``, ``day_realized_pnl``, ``day_start_unrealized``); :meth:`Position.start_day`
rolls it, and :func:`apply_fill` rolls it first when given a later ``day_start_ns``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from spx_core.domain.contracts import OptionContract
from spx_core.domain.quotes import QuoteFlag
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.execution.broker import MarketView
from spx_core.execution.orders import Fill
from spx_core.strategies.market import Market, locate
from spx_core.strategies.structure import underlying_of

__all__ = ["Position", "PositionError", "apply_fill", "Book", "quote_marks", "marks_from_view", "marks_for",
           "MarkSource"]


class PositionError(ValueError):
    """A fill does not belong to the position it is applied to."""


@dataclass(frozen=True, slots=True)
class Position:
    """One contract held (or held earlier today: a flat position keeps its realized P&L).

    Attributes:
        contract: the option.
        quantity: signed contracts (+ long, - short).
        avg_cost: average opening price of what is held (points per contract, >= 0; 0 when flat).
        realized_pnl: dollars realized by reductions, net of every commission and fee paid on this contract.
        commission_fees: dollars of commission + fees paid on this contract (already in ``realized_pnl``).
        opened_ns: when the current position opened from flat (UTC ns).
        updated_ns: the last fill's time (UTC ns).
        mark: the live mark (points per contract; NaN when there is no usable quote).
        day_start_ns: the start of the day the day figures below count from (UTC ns; the first fill's time
            until a day start is given).
        day_realized_pnl: dollars realized (net) by fills at or after ``day_start_ns``.
        day_start_unrealized: dollars of unrealized P&L at the day start (NaN when there was no mark then).
    """

    contract: OptionContract
    quantity: int = 0
    avg_cost: float = 0.0
    realized_pnl: float = 0.0
    commission_fees: float = 0.0
    opened_ns: int = 0
    updated_ns: int = 0
    mark: float = math.nan
    day_start_ns: int = 0
    day_realized_pnl: float = 0.0
    day_start_unrealized: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, (int, np.integer)):
            raise PositionError(f"position {self.contract}: quantity {self.quantity!r} must be a whole number")
        object.__setattr__(self, "quantity", int(self.quantity))
        if not (math.isfinite(self.avg_cost) and self.avg_cost >= 0):
            raise PositionError(f"position {self.contract}: average cost {self.avg_cost!r} must be >= 0")
        if self.quantity == 0 and self.avg_cost != 0:
            object.__setattr__(self, "avg_cost", 0.0)

    @property
    def is_open(self) -> bool:
        return self.quantity != 0

    @property
    def multiplier(self) -> int:
        return self.contract.multiplier

    @property
    def unrealized_pnl(self) -> float:
        """Dollars: ``(mark - avg_cost) * quantity * multiplier``; 0 when flat, NaN without a mark."""
        if self.quantity == 0:
            return 0.0
        if not math.isfinite(self.mark):
            return math.nan
        return (self.mark - self.avg_cost) * self.quantity * self.multiplier

    @property
    def market_value(self) -> float:
        """Dollars the position is worth at its mark (short: negative); 0 when flat, NaN without a mark."""
        if self.quantity == 0:
            return 0.0
        return self.mark * self.quantity * self.multiplier if math.isfinite(self.mark) else math.nan

    @property
    def cost_basis(self) -> float:
        """Dollars paid for what is held (short: negative, the premium received)."""
        return self.avg_cost * self.quantity * self.multiplier

    @property
    def total_pnl(self) -> float:
        """Realized + unrealized dollars (NaN when an open position has no mark)."""
        return self.realized_pnl + self.unrealized_pnl

    @property
    def day_pnl(self) -> float:
        """Dollars since ``day_start_ns``: realized today + the change in unrealized since the day start."""
        return self.day_realized_pnl + self.unrealized_pnl - self.day_start_unrealized

    def with_mark(self, mark: float | None) -> Position:
        """The same position marked at ``mark`` (points; None or a non-finite value gives NaN)."""
        m = math.nan if mark is None or not math.isfinite(mark) else float(mark)
        return replace(self, mark=m)

    def start_day(self, day_start_ns: int, mark: float | None = None) -> Position:
        """The position with its day baseline at ``day_start_ns``; ``mark`` is the mark then (default: the
        position's current mark, i.e. the last one seen before the day started)."""
        m = self.mark if mark is None else mark
        start = self.with_mark(m).unrealized_pnl
        return replace(self, day_start_ns=int(day_start_ns), day_realized_pnl=0.0, day_start_unrealized=start)


def apply_fill(position: Position | None, fill: Fill, *, day_start_ns: int | None = None) -> Position:
    """The position after ``fill`` (rules in the module docstring). ``None`` starts a flat position.

    ``day_start_ns``: when given and later than the position's day baseline, the day is rolled first (at the
    position's last mark) so the day figures count from it. A new position without one counts its day from
    this first fill.

    Raises:
        PositionError: the fill is for another contract.
    """
    if position is None:  # nothing before the first fill: it is a valid day baseline when none is given
        position = Position(fill.contract, day_start_ns=fill.time_ns if day_start_ns is None else day_start_ns)
    elif position.contract != fill.contract:
        raise PositionError(f"fill {fill.exec_id} is for {fill.contract}, not for the position in {position.contract}")
    if day_start_ns is not None and day_start_ns > position.day_start_ns:
        position = position.start_day(day_start_ns)
    q0, dq, price = position.quantity, fill.signed_quantity, float(fill.price)
    mult = position.multiplier
    charges = float(fill.commission) + float(fill.fees)
    realized = -charges
    if q0 == 0 or (q0 > 0) == (dq > 0):  # opening or adding: average the cost
        q1 = q0 + dq
        avg = (abs(q0) * position.avg_cost + abs(dq) * price) / abs(q1)
        opened = fill.time_ns if q0 == 0 else position.opened_ns
    else:  # reducing, closing or flipping through zero
        closed = min(abs(dq), abs(q0))
        realized += (price - position.avg_cost) * closed * mult * (1 if q0 > 0 else -1)
        q1 = q0 + dq
        if q1 == 0:
            avg, opened = 0.0, position.opened_ns
        elif (q1 > 0) == (q0 > 0):
            avg, opened = position.avg_cost, position.opened_ns
        else:  # flipped: the rest opens a new position at the fill price
            avg, opened = price, fill.time_ns
    in_day = fill.time_ns >= position.day_start_ns
    return replace(position, quantity=q1, avg_cost=avg, realized_pnl=position.realized_pnl + realized,
                   commission_fees=position.commission_fees + charges, opened_ns=opened,
                   updated_ns=max(position.updated_ns, fill.time_ns),
                   day_realized_pnl=position.day_realized_pnl + (realized if in_day else 0.0))


def quote_marks(snapshot: ChainSnapshot, contracts: Sequence[OptionContract], *,
                allow_flags: QuoteFlag | int = QuoteFlag.NONE) -> np.ndarray:
    """Mid of each contract's quote in ``snapshot`` (points; NaN where unusable).

    Usable: listed, bid and ask finite, ``0 <= bid <= ask``, ask > 0, and no quote flag other than
    ``allow_flags`` (a stale, wide, crossed or one-sided quote is no mark: ``docs/market_rules.md`` shows
    real files with whole days of broken quotes that would fake a take-profit).
    """
    out = np.full(len(contracts), np.nan)
    if not contracts:
        return out
    rows = locate(snapshot, contracts)
    found = rows >= 0
    r = rows[found]
    c = snapshot.columns
    bid, ask = c["bid"][r], c["ask"][r]
    flags = c["flags"][r].astype(np.int64) & ~int(allow_flags)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(bid) & np.isfinite(ask) & (bid >= 0) & (ask > 0) & (bid <= ask) & (flags == 0)
    out[np.flatnonzero(found)[ok]] = 0.5 * (bid[ok] + ask[ok])
    return out


def marks_from_view(market: MarketView, contracts: Iterable[OptionContract], *,
                    allow_flags: QuoteFlag | int = QuoteFlag.NONE) -> dict[OptionContract, float]:
    """Contract -> mark from the latest snapshot of each contract's underlying (NaN where none is usable)."""
    return _marks_by_underlying(market.snapshot, contracts, allow_flags)


def _marks_by_underlying(snapshot_of, contracts: Iterable[OptionContract],
                         allow_flags: QuoteFlag | int) -> dict[OptionContract, float]:
    by_underlying: dict[str, list[OptionContract]] = {}
    for contract in contracts:
        by_underlying.setdefault(underlying_of(contract.root), []).append(contract)
    out: dict[OptionContract, float] = {}
    for underlying, group in by_underlying.items():
        snap = snapshot_of(underlying)
        marks = quote_marks(snap, group, allow_flags=allow_flags) if snap is not None else np.full(len(group), np.nan)
        out.update(zip(group, marks.tolist(), strict=True))
    return out


#: Where marks come from: a broker MarketView (latest snapshots), a strategies Market (its snapshots), or prices.
MarkSource = MarketView | Market | Mapping[OptionContract, float]


def marks_for(source: MarkSource | None, contracts: Iterable[OptionContract], *,
              allow_flags: QuoteFlag | int = QuoteFlag.NONE) -> dict[OptionContract, float]:
    """Contract -> mark from any :data:`MarkSource` (NaN where there is none; ``None`` gives all NaN)."""
    if source is None:
        return {c: math.nan for c in contracts}
    if isinstance(source, Market):
        return _marks_by_underlying(lambda u: source[u].snapshot if u in source else None, contracts, allow_flags)
    if isinstance(source, MarketView):
        return marks_from_view(source, contracts, allow_flags=allow_flags)
    return {c: float(source.get(c, math.nan)) for c in contracts}


class Book:
    """The positions of one account, keyed by contract (a mutable holder over :func:`apply_fill`).

    A repeated ``exec_id`` is the same execution reported twice (IB re-sends executions on reconnect) and
    is applied once.
    """

    def __init__(self, positions: Iterable[Position] = (), *, day_start_ns: int | None = None) -> None:
        self._positions: dict[OptionContract, Position] = {p.contract: p for p in positions}
        self._seen: set[str] = set()
        self.day_start_ns = day_start_ns

    def apply(self, fill: Fill) -> Position:
        """Apply one fill; returns the contract's position after it."""
        if fill.exec_id in self._seen:
            return self._positions[fill.contract]
        position = apply_fill(self._positions.get(fill.contract), fill, day_start_ns=self.day_start_ns)
        self._positions[fill.contract] = position
        self._seen.add(fill.exec_id)
        return position

    def get(self, contract: OptionContract) -> Position | None:
        return self._positions.get(contract)

    def positions(self, include_flat: bool = False) -> list[Position]:
        """Positions in contract order (root, expiry, strike, right); flat ones only when asked."""
        out = [p for p in self._positions.values() if include_flat or p.is_open]
        return sorted(out, key=lambda p: (p.contract.root.value, p.contract.expiry, p.contract.strike,
                                          p.contract.right.value))

    def mark(self, prices: Mapping[OptionContract, float]) -> None:
        """Mark the positions named in ``prices`` (points; NaN clears a mark)."""
        for contract, price in prices.items():
            if contract in self._positions:
                self._positions[contract] = self._positions[contract].with_mark(price)

    def marks_from(self, market: MarketView, *, allow_flags: QuoteFlag | int = QuoteFlag.NONE
                   ) -> dict[OptionContract, float]:
        """Mark every open position at the mid of its latest usable quote (NaN when flagged or missing)."""
        marks = marks_from_view(market, [p.contract for p in self._positions.values() if p.is_open],
                                allow_flags=allow_flags)
        self.mark(marks)
        return marks

    def start_day(self, day_start_ns: int, marks: Mapping[OptionContract, float] | None = None) -> None:
        """Roll every position's day baseline to ``day_start_ns`` (marks then: ``marks`` or each position's own)."""
        self.day_start_ns = day_start_ns
        marks = marks or {}
        for c, p in self._positions.items():
            self._positions[c] = p.start_day(day_start_ns, marks.get(c))

    @property
    def realized_pnl(self) -> float:
        return sum(p.realized_pnl for p in self._positions.values())

    @property
    def unrealized_pnl(self) -> float:
        return sum(p.unrealized_pnl for p in self._positions.values())
