"""The run's trades as :class:`~spx_core.backtest.run.TradeRecord` rows, with the reason each one ended."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from spx_core.automation.summary import strategy_of
from spx_core.backtest.run import TradeRecord
from spx_core.portfolio.decisions import TradeDecision

__all__ = ["trade_records"]


def trade_records(trades: Sequence[Any], decisions: Sequence[TradeDecision], repo: Any = None) -> tuple[TradeRecord, ...]:
    """One record per trade, in opening order. The exit reason is the rule of the exit decision whose order closed
    it (``"take_profit"``, ``"stop_loss"``, ...), ``"expiry"`` for a trade closed with no such order (settled),
    ``"open"`` for one still open."""
    owners = strategy_of(trades, decisions)
    exits = {d.order_ref: d.reasons[0].split(":", 1)[0] for d in decisions
             if d.traded and d.order_ref and d.reasons and not d.reasons[0].startswith("entry:")}
    out = []
    for t in sorted(trades, key=lambda t: (t.opened_ns, t.id)):
        if t.is_open:
            reason = "open"
        else:
            reason = next((exits[r] for r in t.order_refs if r in exits), "expiry")
        legs = tuple((str(getattr(leg.contract.root, "value", leg.contract.root)), leg.contract.expiry.isoformat(), float(leg.contract.strike),
                      "C" if leg.contract.is_call else "P", int(leg.ratio)) for leg in t.legs)
        out.append(TradeRecord(trade_id=t.id, strategy=owners.get(t.id, ""), entry_ns=int(t.opened_ns),
                               exit_ns=None if t.closed_ns is None else int(t.closed_ns), exit_reason=reason,
                               legs=legs, side=str(t.side.value), entry_price=float(t.open_price),
                               exit_price=float(t.close_price), quantity=int(t.opened_quantity),
                               pnl=float(t.realized_pnl), fees=float(t.commission_fees)))
    return tuple(out)
