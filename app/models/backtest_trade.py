"""One trade of a backtest as the Trades tab shows it: its legs, entry and exit in a few lines, and its payoff at
expiry (dollars per unit against the index, the breakevens, the index at the entry)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from app.models.backtest_model import MULTIPLIER, et_time, level, usd
from app.widgets.payoff_plot import PayoffArrays

__all__ = ["trade_detail", "trade_payoff"]


def trade_payoff(trade: Any, spot: float = math.nan, points: int = 241) -> PayoffArrays:
    """The trade's P&L at expiry in dollars per 1 unit (net of its fees per unit) against the index at expiry;
    ``spot``: the index at the entry (NaN: not drawn).

    The legs are the position's (signed ratios); the entry price is a credit (side "sell") or a debit paid."""
    strikes = np.array([leg[2] for leg in trade.legs], float)
    lo, hi = float(strikes.min()), float(strikes.max())
    pad = max(hi - lo, 0.02 * hi, 10.0)
    prices = np.linspace(lo - pad, hi + pad, points)
    value = np.zeros_like(prices)
    for _root, _expiry, strike, right, ratio in trade.legs:
        intrinsic = np.maximum(prices - strike, 0.0) if right == "C" else np.maximum(strike - prices, 0.0)
        value += ratio * intrinsic
    premium = trade.entry_price if trade.side == "sell" else -trade.entry_price
    pnl = (premium + value) * MULTIPLIER - trade.fees / max(trade.quantity, 1)
    crossings = np.nonzero(np.diff(np.sign(pnl)))[0]
    breakevens = tuple(float(prices[i] - pnl[i] * (prices[i + 1] - prices[i]) / (pnl[i + 1] - pnl[i]))
                       for i in crossings if pnl[i + 1] != pnl[i])
    return PayoffArrays(prices, pnl, None, float(spot), breakevens)


def trade_detail(trade: Any) -> str:
    """The trade in a few lines: legs, entry and exit (price, time), why it ended, P&L and fees."""
    credit = "credit" if trade.side == "sell" else "debit"
    legs = "\n".join(f"  {ratio:+d} × {root} {expiry} {strike:g} {'call' if right == 'C' else 'put'}"
                     for root, expiry, strike, right, ratio in trade.legs)
    exit_ = "still open at the end of the run" if trade.exit_ns is None else \
        f"Exit  {trade.exit_price:.2f} pts ({trade.exit_reason})\n  {et_time(trade.exit_ns)}"
    return (f"Trade #{trade.trade_id}: {trade.side} {trade.quantity} for a {credit}\n{trade.strategy}\n{legs}\n"
            f"Entry {trade.entry_price:.2f} pts\n  {et_time(trade.entry_ns)}\n{exit_}\n"
            f"P&L {usd(trade.pnl)} (fees {level(trade.fees)})")
