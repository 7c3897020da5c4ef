"""The account line: net liquidation, cash, buying power, margin and P&L from positions, trades and marks.

    cash            = starting cash + sum(fill cash) - commissions - fees
                    = starting cash + realized - cost basis of what is held
    net liquidation = cash + positions at their marks = starting cash + realized + unrealized
    margin          = sum over open trades of the Reg-T / Cboe requirement of the structure held
                      (:func:`spx_core.strategies.margin.margin_requirement`) x open units
    buying power    = net liquidation - margin
    day P&L         = realized since the day start + (unrealized now - unrealized at the day start)

Marks are quote mids (NaN when a quote is unusable: see :mod:`spx_core.portfolio.positions`); an open position
without a mark makes unrealized P&L, net liquidation and buying power NaN and is listed in ``unmarked``, so the
account line says what it cannot value instead of showing a made-up number.

Shares delivered by an exercised or assigned SPY option (``deliveries``) are cash paid/received at the
delivery price and a holding valued at the market's latest underlying price (at the delivery price when the
market has none); their day P&L is not tracked here (options only).

Margin prices: the legs' marks when every leg has one; otherwise the legs' average opening prices (the credit
actually received, which is what "credit applied" refers to). The underlying level (naked legs only) comes from
the market's latest snapshot of the structure's primary underlying.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from spx_core.domain.contracts import OptionContract
from spx_core.domain.quotes import QuoteFlag
from spx_core.execution.broker import MarketView
from spx_core.execution.orders import Fill
from spx_core.portfolio.positions import MarkSource, Position, marks_for
from spx_core.portfolio.settlement import ShareDelivery
from spx_core.portfolio.trades import Trade
from spx_core.strategies.margin import margin_requirement
from spx_core.strategies.market import Market
from spx_core.strategies.structure import Structure

__all__ = ["AccountSummary", "account_summary", "trade_margin", "day_pnl_from_fills"]


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """The account at one instant (dollars).

    Attributes:
        net_liquidation: cash + positions at their marks (NaN when an open position has no mark).
        cash: starting cash + fill cash - commissions - fees.
        buying_power: net liquidation - maintenance margin.
        maintenance_margin: Reg-T / Cboe requirement of the open trades.
        day_pnl: realized since the day start + change in unrealized since then (NaN when a mark is missing).
        unrealized_pnl / realized_pnl: over every position (realized net of commissions and fees).
        commissions: commissions + fees paid (already in realized).
        unmarked: open contracts without a usable mark.
    """

    net_liquidation: float
    cash: float
    buying_power: float
    maintenance_margin: float
    day_pnl: float
    unrealized_pnl: float
    realized_pnl: float
    commissions: float
    unmarked: tuple[OptionContract, ...] = ()


def _underlying_price(market: MarkSource | None, underlying: str) -> float:
    snap = None
    if isinstance(market, Market):
        snap = market[underlying].snapshot if underlying in market else None
    elif isinstance(market, MarketView):
        snap = market.snapshot(underlying)
    return float(snap.underlying_price) if snap is not None else math.nan


def trade_margin(trade: Trade, marks: Mapping[OptionContract, float], underlying_price: float) -> float:
    """Dollars of maintenance margin for ``trade``'s open units (0 when closed)."""
    if trade.quantity == 0:
        return 0.0
    prices = [marks.get(leg.contract, math.nan) for leg in trade.legs]
    if not all(math.isfinite(p) for p in prices):
        prices = [s.avg_cost if s.held else s.open_price for s in trade.leg_states]
    return margin_requirement(Structure(trade.legs), prices, underlying_price) * trade.quantity


def day_pnl_from_fills(positions: Iterable[Position], fills: Iterable[Fill], day_start_ns: int,
                       start_marks: Mapping[OptionContract, float]) -> float:
    """Day P&L from the fills themselves: today's fill cash - charges + held now at the mark - held at the day
    start at its start mark (``positions`` carry the current marks). Equal to realized today + the change in
    unrealized; exact whatever the positions' day baselines say."""
    now = {p.contract: p for p in positions}
    flow = 0.0
    traded: dict[OptionContract, int] = {}
    for f in fills:
        if f.time_ns >= day_start_ns:
            flow += f.cash - f.commission - f.fees
            traded[f.contract] = traded.get(f.contract, 0) + f.signed_quantity
    total = flow
    for c in set(now) | set(traded):
        p = now.get(c)
        q_now = p.quantity if p is not None else 0
        q_start = q_now - traded.get(c, 0)
        value_now = p.market_value if p is not None else 0.0
        value_start = 0.0 if q_start == 0 else q_start * start_marks.get(c, math.nan) * c.multiplier
        total += value_now - value_start
    return total


def account_summary(starting_cash: float, positions: Iterable[Position], trades: Iterable[Trade],
                    market: MarkSource | None, day_start_ns: int, *,
                    start_marks: Mapping[OptionContract, float] | None = None,
                    fills: Iterable[Fill] | None = None, deliveries: Iterable[ShareDelivery] = (),
                    allow_flags: QuoteFlag | int = QuoteFlag.NONE) -> AccountSummary:
    """The account line (formulas in the module docstring).

    ``positions``: every position of the account, flat ones included (their realized P&L counts).
    ``market``: where marks come from (a broker MarketView, a Market, or contract -> price); None keeps the
    positions' own marks.
    ``day_start_ns`` / ``start_marks`` / ``fills``: day P&L. With ``fills`` (the account's fills, any range) it is
    computed from today's fills and the marks at the day start (``start_marks``). Without, each position's day
    baseline is used when it is at ``day_start_ns`` or later (:func:`apply_fill` with ``day_start_ns``); a
    position last traded before the day start is valued against ``start_marks`` (NaN when absent).
    """
    positions = list(positions)
    if market is not None:
        marks = marks_for(market, [p.contract for p in positions if p.is_open], allow_flags=allow_flags)
        positions = [p.with_mark(marks[p.contract]) if p.is_open else p for p in positions]
    marks = {p.contract: p.mark for p in positions}
    realized = math.fsum(p.realized_pnl for p in positions)
    unrealized = math.fsum(p.unrealized_pnl for p in positions)
    share_cash, share_value = _shares(deliveries, market)
    cash = starting_cash + realized - math.fsum(p.cost_basis for p in positions) + share_cash
    net_liq = starting_cash + realized + unrealized + share_cash + share_value
    margin = 0.0
    for trade in trades:
        if trade.is_open:
            underlying = Structure(trade.legs).underlying
            margin += trade_margin(trade, marks, _underlying_price(market, underlying))
    start_marks = start_marks or {}
    if fills is not None:
        day = day_pnl_from_fills(positions, fills, day_start_ns, start_marks)
    else:
        day = math.fsum(_day_pnl(p, day_start_ns, start_marks) for p in positions)
    return AccountSummary(
        net_liquidation=net_liq, cash=cash, buying_power=net_liq - margin, maintenance_margin=margin, day_pnl=day,
        unrealized_pnl=unrealized, realized_pnl=realized,
        commissions=math.fsum(p.commission_fees for p in positions),
        unmarked=tuple(p.contract for p in positions if p.is_open and not math.isfinite(p.mark)))


def _shares(deliveries: Iterable[ShareDelivery], market: MarkSource | None) -> tuple[float, float]:
    """(cash the deliveries moved, value of the shares held) in dollars."""
    cash = 0.0
    held: dict[str, int] = {}
    last: dict[str, float] = {}
    for d in sorted(deliveries, key=lambda d: d.time_ns):
        cash += d.cash
        held[d.symbol] = held.get(d.symbol, 0) + d.shares
        last[d.symbol] = d.price
    value = 0.0
    for symbol, shares in held.items():
        price = _underlying_price(market, symbol)
        value += shares * (price if math.isfinite(price) else last[symbol])
    return cash, value


def _day_pnl(p: Position, day_start_ns: int, start_marks: Mapping[OptionContract, float]) -> float:
    if p.day_start_ns >= day_start_ns:
        return p.day_pnl
    if p.updated_ns < day_start_ns:  # untouched today: only its value moved
        return p.start_day(day_start_ns, start_marks.get(p.contract, math.nan)).day_pnl
    return math.nan  # traded today but its baseline is older: today's realized share is unknown
