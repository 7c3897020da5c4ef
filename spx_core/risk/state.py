"""The :class:`~spx_core.risk.limits.PortfolioState` the limits and the breaker read, built from the store.

    state = portfolio_state(repo, account=portfolio.account, day_start_ns=portfolio.day_start_ns,
                            day_pnl_high=guard_high)

Where each figure comes from (``day_start_ns``: midnight US/Eastern of the market day, UTC ns):

- trades: the open trades (``repo.trades(since_ns=day_start)`` unless given; closed ones are dropped by the state),
  plus the trades ``pending`` working opening orders will open (the gate's view: see :func:`pending_trades`);
- trades_opened_today: trades whose ``opened_ns`` is at or after the day start (open or closed since);
- stops_today: exit decisions of today whose first reason starts with ``"stop_loss:"`` (the monitor's convention);
- realized_pnl_today: the positions' ``day_realized_pnl`` (net of charges) for positions whose day baseline is today;
- unrealized_pnl_today: the account's day P&L minus the realized part (NaN without an account line);
- margin, net_liq: the account line's maintenance margin and net liquidation (NaN without one: the %-of-net-liq
  limits then refuse openings, as they should when the account cannot be valued);
- day_pnl_high: the larger of the caller's running high and the day P&L now (the drawdown's reference).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from spx_core.execution.orders import Intent
from spx_core.portfolio.decisions import TradeDecision
from spx_core.portfolio.trades import Trade, new_trade
from spx_core.risk.limits import PortfolioState

__all__ = ["STOP_LOSS_PREFIX", "pending_trades", "portfolio_state", "stops_today"]

STOP_LOSS_PREFIX = "stop_loss:"


def stops_today(decisions: Iterable[TradeDecision], day_start_ns: int) -> int:
    """Exit decisions at or after the day start whose first reason is a stop loss."""
    return sum(1 for d in decisions
               if d.time_ns >= day_start_ns and d.traded and d.reasons and d.reasons[0].startswith(STOP_LOSS_PREFIX))


def pending_trades(orders: Iterable[Any]) -> list[Trade]:
    """The trades working opening orders will open: one per working OPEN order that starts a trade and has not
    filled yet (held legs x the order's quantity, opened at its creation; negative ids, never stored)."""
    out = []
    for state in orders:
        request = state.request
        if request.intent is Intent.OPEN and request.trade_id is None and state.is_working and state.filled == 0:
            trade = new_trade(-(len(out) + 1), request, request.created_ns)
            out.append(replace(trade, quantity=request.quantity, opened_quantity=request.quantity))
    return out


def portfolio_state(repo: Any, *, account: Any | None, day_start_ns: int, trades: Sequence[Any] | None = None,
                    day_pnl_high: float = 0.0, decisions: Sequence[TradeDecision] | None = None,
                    positions: Sequence[Any] | None = None, pending: Sequence[Any] = ()) -> PortfolioState:
    """The book now (see the module docstring). ``repo`` (an ``OrderRepository``) is read for whatever of
    ``trades`` / ``decisions`` / ``positions`` is not given; ``account`` is an ``AccountSummary`` or None.
    ``pending``: working orders whose trades-to-be count as open and opened today (:func:`pending_trades`), so
    two entries sent before the first fills cannot both pass a one-trade limit."""
    if trades is None:
        trades = repo.trades(since_ns=day_start_ns)
    trades = (*trades, *pending_trades(pending))
    if decisions is None:
        decisions = repo.decisions(since_ns=day_start_ns)
    if positions is None:
        positions = repo.positions(closed_since_ns=day_start_ns)
    realized = math.fsum(p.day_realized_pnl for p in positions if p.day_start_ns >= day_start_ns)
    if account is None:
        net_liq = margin = unrealized = math.nan
    else:
        net_liq, margin = float(account.net_liquidation), float(account.maintenance_margin)
        unrealized = float(account.day_pnl) - realized
    day_pnl = realized + unrealized
    high = max(float(day_pnl_high), day_pnl) if math.isfinite(day_pnl) else float(day_pnl_high)
    return PortfolioState(
        trades=tuple(trades), net_liq=net_liq, margin=margin, realized_pnl_today=realized,
        unrealized_pnl_today=unrealized, day_pnl_high=high,
        stops_today=stops_today(decisions, day_start_ns),
        trades_opened_today=sum(1 for t in trades if t.opened_ns >= day_start_ns))
