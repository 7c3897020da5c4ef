"""Portfolio: positions per contract, trades (the legs of one structure grouped from entry to exit), P&L,
the account line, expiry settlement and trade decisions. Pure Python: no store, no Qt."""

from spx_core.portfolio.account import AccountSummary, account_summary, day_pnl_from_fills, trade_margin
from spx_core.portfolio.decisions import TradeDecision
from spx_core.portfolio.positions import (Book, MarkSource, Position, PositionError, apply_fill, marks_for,
                                          marks_from_view, quote_marks)
from spx_core.portfolio.settlement import (SettlementError, SettlementResult, ShareDelivery, expiry_fills, settle,
                                           settlement_instant_ns, settlement_price, settlement_prices,
                                           share_deliveries)
from spx_core.portfolio.trades import (Trade, TradeError, TradeLedger, TradeLeg, apply_trade_fill, closing_request,
                                       new_trade, settle_trade)

__all__ = [
    "AccountSummary", "account_summary", "day_pnl_from_fills", "trade_margin",
    "TradeDecision",
    "Book", "MarkSource", "Position", "PositionError", "apply_fill", "marks_for", "marks_from_view", "quote_marks",
    "SettlementError", "SettlementResult", "ShareDelivery", "expiry_fills", "settle", "settlement_instant_ns",
    "settlement_price", "settlement_prices", "share_deliveries",
    "Trade", "TradeError", "TradeLedger", "TradeLeg", "apply_trade_fill", "closing_request", "new_trade",
    "settle_trade",
]
