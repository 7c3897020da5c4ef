"""Portfolio: positions per contract, trades (the legs of one structure grouped from entry to exit), P&L,
the account line, expiry settlement and trade decisions. Pure Python: no store, no Qt."""

from spx_core.portfolio.decisions import TradeDecision
from spx_core.portfolio.positions import Book, Position, PositionError, apply_fill, marks_from_view, quote_marks
from spx_core.portfolio.trades import (Trade, TradeError, TradeLedger, TradeLeg, apply_trade_fill, closing_request,
                                       new_trade)

__all__ = [
    "Book", "Position", "PositionError", "apply_fill", "marks_from_view", "quote_marks",
    "Trade", "TradeError", "TradeLedger", "TradeLeg", "apply_trade_fill", "closing_request", "new_trade",
    "TradeDecision",
]
