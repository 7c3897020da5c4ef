"""Issue 9's "done when", as a new user does it in the main window on the simulated market with nothing else
running: pick a spread in the scanner, Trade, one click on Send, see it fill, see the position and its P&L,
restart the app (a new window on the same database) and find the order, the trade and the P&L again."""

from __future__ import annotations

import math

import pytest
from PySide6.QtCore import Qt

from app.models.positions_model import POSITION_HEADERS
from app.models.ticket_model import PriceMode
from spx_core.execution.orders import OrderStatus

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")

PNL_OPEN = POSITION_HEADERS.index("P&L open ($)")


def _ready_window(make_window, qtbot, run_async):
    window = make_window()
    run_async(window.start_feed(), timeout=30)
    qtbot.waitUntil(lambda: window.context.trading is not None and window.context.trading.portfolio is not None,
                    timeout=15_000)
    return window


def test_a_scanned_spread_sent_with_one_click_fills_and_is_all_there_after_a_restart(make_window, qtbot, run_async):
    window = _ready_window(make_window, qtbot, run_async)
    scanner, ticket = window.panels["scanner"], window.panels["ticket"]
    window.docks["scanner"].raise_()
    qtbot.waitUntil(lambda: scanner.model.rowCount() > 0, timeout=60_000)
    scanner.table.selectRow(0)
    qtbot.mouseClick(scanner.trade_button, Qt.MouseButton.LeftButton)
    assert ticket.on_screen() and ticket.order is not None and len(ticket.order.legs) >= 2
    qtbot.mouseClick(ticket.form.mode_buttons[PriceMode.NATURAL], Qt.MouseButton.LeftButton)  # to fill now
    assert ticket.send_button.isEnabled(), ticket.verdict_label.text()
    qtbot.mouseClick(ticket.send_button, Qt.MouseButton.LeftButton)  # the one click
    session = window.context.trading
    (order,) = session.orders()
    qtbot.waitUntil(lambda: session.orders()[0].status is OrderStatus.FILLED, timeout=10_000)
    assert ticket.status_label.text().startswith(f"order {order.broker_order_id}: filled")
    blotter, positions = window.panels["blotter"], window.panels["positions"]
    assert blotter.model.row_of(order.ref) >= 0
    qtbot.waitUntil(lambda: bool(session.portfolio.open_trades), timeout=5_000)
    (trade,) = session.portfolio.open_trades
    qtbot.waitUntil(lambda: positions.model.trade_row(trade.id) >= 0, timeout=5_000)
    pnl = positions.model.index(positions.model.trade_row(trade.id), PNL_OPEN).data()
    assert pnl and pnl not in ("–", "nan"), pnl
    assert positions.account_label.text().startswith("Net liq $")
    realized = session.portfolio.account.realized_pnl
    assert realized < 0  # the commission and fees of the fill, already paid

    run_async(window.shutdown())  # quit: the feed, the panels, the order service and the database close
    window.close()
    again = _ready_window(make_window, qtbot, run_async)
    restored = again.context.trading
    assert restored is not session
    (stored,) = restored.orders()
    assert (stored.ref, stored.status, stored.filled) == (order.ref, OrderStatus.FILLED, order.quantity)
    blotter, positions = again.panels["blotter"], again.panels["positions"]
    assert blotter.model.row_of(order.ref) >= 0
    (back,) = restored.portfolio.open_trades
    assert back.id == trade.id and back.order_refs == trade.order_refs
    qtbot.waitUntil(lambda: positions.model.trade_row(trade.id) >= 0, timeout=5_000)
    assert restored.portfolio.account.realized_pnl == pytest.approx(realized)
    # marked again once the restarted market's first batch is in: the P&L shows
    qtbot.waitUntil(lambda: math.isfinite(restored.portfolio.account.net_liquidation), timeout=10_000)
    pnl = positions.model.index(positions.model.trade_row(trade.id), PNL_OPEN).data()
    assert pnl and pnl not in ("–", "nan"), pnl
    assert again.status.account_label.text() == "Paper · PAPER"
