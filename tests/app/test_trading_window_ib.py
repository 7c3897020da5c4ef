"""The trading panels in the main window with Settings > Broker "ib", against the fake IB Gateway (the real
ib_insync / ib_async client over loopback), market data from the simulator: the status bar names the IB account,
a scanned spread sent from the ticket with one click reaches TWS as a BAG and fills, the blotter and positions show
it; an order resting at TWS is modified and cancelled from its blotter row, and TWS holds what the row says."""

from __future__ import annotations

import math
from datetime import datetime

import pytest
from PySide6.QtCore import Qt

from app.models.blotter_model import ORDER_COLUMNS
from app.models.positions_model import POSITION_HEADERS
from app.models.ticket_model import PriceMode
from app.settings import AppSettings
from spx_core.domain.calendar import ET
from spx_core.execution.orders import OrderStatus
from tests.fakes.fixtures import fail_on_client_errors, free_port  # noqa: F401 (pytest fixture; tests/fakes' README)
from tests.fakes.ib_gateway import FakeGateway

pytestmark = [pytest.mark.usefixtures("fail_on_client_errors"), pytest.mark.qt_log_ignore("propagateSizeHints")]

COL = {c.title: i for i, c in enumerate(ORDER_COLUMNS)}
PNL_OPEN = POSITION_HEADERS.index("P&L open ($)")


@pytest.fixture
def tws():
    """Start the fake TWS on a chosen port once the simulated market's day and level are known (the app keeps
    trying to connect meanwhile, as it does while TWS starts up)."""
    started: list[FakeGateway] = []

    def start(port: int, batch) -> FakeGateway:
        snap = batch.snapshot
        today = datetime.fromtimestamp(snap.time_ns / 1e9, ET).date()
        gw = FakeGateway(account="DU1234567", today=today, spot=round(snap.underlying_price / 5) * 5,
                         auto_fill=False, port=port, daily_expiries=30)  # orders rest at TWS unless told to fill
        gw.start_in_thread()
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


def _cell(blotter, ref: str, title: str) -> str:
    return blotter.model.data(blotter.model.index(blotter.model.row_of(ref), COL[title]))


def _status(session, ref: str) -> OrderStatus | None:
    return next((s.status for s in session.orders() if s.ref == ref), None)


def _ticket_from_scanner(window, qtbot, gw: FakeGateway):
    """The ticket of the scanner's first candidate whose legs the fake TWS lists (chosen before the ticket opens:
    the ticket asks TWS for a what-if, and TWS answers an unknown contract with error 200)."""
    scanner, ticket = window.panels["scanner"], window.panels["ticket"]
    window.docks["scanner"].raise_()
    qtbot.waitUntil(lambda: scanner.model.rowCount() > 0, timeout=60_000)
    listed, strikes = set(gw.book.expiries["SPXW"]), set(gw.book.strikes)

    def at_tws(row: int) -> bool:
        legs = scanner.model.candidate(row).structure.legs
        return all(leg.contract.expiry in listed and leg.contract.strike in strikes for leg in legs)

    row = next((r for r in range(scanner.model.rowCount()) if at_tws(r)), None)
    assert row is not None, f"no scanned candidate the fake TWS lists ({sorted(listed)})"
    scanner.table.selectRow(row)
    qtbot.mouseClick(scanner.trade_button, Qt.MouseButton.LeftButton)
    assert ticket.on_screen() and ticket.order is not None and len(ticket.order.legs) >= 2
    qtbot.mouseClick(ticket.form.mode_buttons[PriceMode.NATURAL], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(ticket.send_button.isEnabled, timeout=10_000)
    return ticket


def test_ticket_blotter_and_positions_trade_at_ib(tws, make_window, qtbot, run_async, fail_on_client_errors):
    fail_on_client_errors.allow("API connection failed", "Make sure API port")  # tries before TWS listens
    fail_on_client_errors.allow(202)  # the cancel's confirmation (ib_async logs it as an error)
    port = free_port()
    window = make_window(AppSettings(seed=3, broker="ib", ib_host="127.0.0.1", ib_port=port, ib_client_id=41))
    run_async(window.start_feed(), timeout=30)
    qtbot.waitUntil(lambda: window.feed.last_batch is not None, timeout=15_000)
    gw = tws(port, window.feed.last_batch)
    qtbot.waitUntil(lambda: window.context.trading is not None and window.context.trading.broker.connected,
                    timeout=15_000)
    session = window.context.trading
    assert session.broker_name == "ib"
    qtbot.waitUntil(lambda: window.status.account_label.text() == "IB paper · DU1234567", timeout=5_000)

    # one click: a scanned spread goes to TWS as one BAG order and fills there
    ticket = _ticket_from_scanner(window, qtbot, gw)
    gw.fill_next()
    qtbot.mouseClick(ticket.send_button, Qt.MouseButton.LeftButton)
    (order,) = session.orders()
    qtbot.waitUntil(lambda: _status(session, order.ref) is OrderStatus.FILLED, timeout=15_000)
    (record,) = gw.orders()
    assert record.order_ref == order.ref and record.echo.sec_type == "BAG" and len(record.legs) == len(
        order.request.legs)
    blotter, positions = window.panels["blotter"], window.panels["positions"]
    qtbot.waitUntil(lambda: blotter.model.row_of(order.ref) >= 0 and _cell(blotter, order.ref, "Status") == "filled",
                    timeout=5_000)
    assert float(_cell(blotter, order.ref, "Comm+fees ($)").replace(",", "")) > 0  # IB's commission reports
    qtbot.waitUntil(lambda: bool(session.portfolio.open_trades), timeout=5_000)
    (trade,) = session.portfolio.open_trades
    qtbot.waitUntil(lambda: positions.model.trade_row(trade.id) >= 0, timeout=5_000)
    pnl = positions.model.index(positions.model.trade_row(trade.id), PNL_OPEN).data()
    assert pnl and pnl not in ("–", "nan"), pnl

    # an order resting at TWS: modified, then cancelled, from its blotter row
    ticket = _ticket_from_scanner(window, qtbot, gw)
    qtbot.mouseClick(ticket.send_button, Qt.MouseButton.LeftButton)
    resting = next(s for s in session.orders() if s.ref != order.ref)
    qtbot.waitUntil(lambda: _status(session, resting.ref) is OrderStatus.SUBMITTED, timeout=15_000)
    window.docks["blotter"].raise_()
    qtbot.waitUntil(lambda: blotter.select_ref(resting.ref), timeout=5_000)
    new_limit = round(resting.request.limit - 0.05, 2)  # a step closer to the market, on the combo tick
    blotter.ask_changes = lambda state: {"limit": new_limit}
    assert blotter.modify_selected(), blotter.status_label.text()

    def at_tws() -> float | None:
        live = [o for o in gw.orders() if o.order_ref == resting.ref and o.is_live]
        return abs(live[0].lmt_price) if len(live) == 1 and live[0].lmt_price is not None else None

    qtbot.waitUntil(lambda: at_tws() is not None and math.isclose(at_tws(), abs(new_limit)), timeout=15_000)
    qtbot.waitUntil(lambda: _cell(blotter, resting.ref, "Limit") == f"{new_limit:.2f}", timeout=5_000)
    assert blotter.select_ref(resting.ref) and blotter.cancel_button.isEnabled()
    blotter.cancel_button.click()
    qtbot.waitUntil(lambda: _status(session, resting.ref) is OrderStatus.CANCELLED, timeout=15_000)
    qtbot.waitUntil(lambda: _cell(blotter, resting.ref, "Status") == "cancelled", timeout=5_000)
    assert not any(o.is_live for o in gw.orders())  # nothing left working at TWS
    assert len({o.order_ref for o in gw.orders()}) == 2  # each of our refs reached TWS once
