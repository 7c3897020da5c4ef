"""Blotter panel on a real session (paper broker, SQLite, simulated market): an order placed shows as a row,
fills per leg in the detail pane, cancel (button, Del) and modify from the row, a rejection's reason."""

from __future__ import annotations

import dataclasses

import pytest
from PySide6.QtCore import Qt

from app.context import AppContext
from app.models.blotter_model import ORDER_COLUMNS, BlotterFilter
from app.panels.blotter_panel import BlotterPanel
from app.self_test_trading import sample_vertical
from app.settings import AppSettings
from spx_core.execution.orders import EventKind, OrderEvent, OrderStatus
from tests.app.trading_factory import drive, running_session, show_panel, sim_market

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")
COL = {c.title: i for i, c in enumerate(ORDER_COLUMNS)}


@pytest.fixture
def market():
    return sim_market()


@pytest.fixture
def setup(qtbot, tmp_path, market):
    with running_session(tmp_path / "blotter.sqlite", market) as session:
        panel = BlotterPanel(refresh_seconds=0.05)
        show_panel(qtbot, panel, session, (1200, 500))
        yield panel, session
        panel.shutdown()


def _cell(panel: BlotterPanel, ref: str, title: str) -> str:
    return panel.model.data(panel.model.index(panel.model.row_of(ref), COL[title]))


def _resting(session):
    request = sample_vertical(session.market)
    return dataclasses.replace(request, limit=request.limit + 0.50)  # asks more than the bid: rests


def test_placed_order_shows_then_fills_with_fills_per_leg(setup, market, qtbot):
    panel, session = setup
    request = sample_vertical(session.market)
    session.place(request)
    assert panel.model.row_of(request.ref) == 0
    drive(session, market, steps=3)
    assert _cell(panel, request.ref, "Status") == "filled"
    assert _cell(panel, request.ref, "Filled") == "1/1"
    assert float(_cell(panel, request.ref, "Avg fill")) >= request.limit  # a SELL gets its limit or better
    assert float(_cell(panel, request.ref, "Comm+fees ($)").replace(",", "")) > 0
    assert panel.select_ref(request.ref)
    assert panel.fills_model.rowCount() == 2  # one fill per leg (1 lot)
    assert {panel.fills_model.data(panel.fills_model.index(r, 0)) for r in range(2)} == {"1", "2"}
    assert not panel.cancel_button.isEnabled()  # a filled order cannot be cancelled


def test_cancel_from_the_row_with_the_button_and_the_del_key(setup, market, qtbot):
    panel, session = setup
    first, second = _resting(session), _resting(session)
    for r in (first, second):
        assert session.place(r).verdict.ok
    drive(session, market)
    assert panel.select_ref(first.ref) and panel.cancel_button.isEnabled()
    panel.cancel_button.click()
    assert _cell(panel, first.ref, "Status") == "cancelled"
    panel.select_ref(second.ref)
    panel.table.setFocus()
    qtbot.keyClick(panel.table, Qt.Key.Key_Delete)
    assert _cell(panel, second.ref, "Status") == "cancelled"
    panel.set_filter(BlotterFilter.WORKING)
    assert panel.model.row_of(first.ref) == panel.model.row_of(second.ref) == -1


def test_modify_price_and_quantity_from_the_row(setup, market, qtbot):
    panel, session = setup
    request = _resting(session)
    session.place(request)
    drive(session, market)
    panel.on_batch(market.advance(1.0))  # the worker prices the working order's package (Market column)
    qtbot.waitUntil(lambda: _cell(panel, request.ref, "Market") != "", timeout=5000)
    assert float(_cell(panel, request.ref, "Market")) < request.limit  # the bid is below what it asks
    panel.select_ref(request.ref)
    new_limit = round(request.limit + 0.10, 2)
    panel.ask_changes = lambda state: {"limit": new_limit, "quantity": 2}
    assert panel.modify_selected()
    assert _cell(panel, request.ref, "Limit") == f"{new_limit:.2f}"
    assert _cell(panel, request.ref, "Filled") == "0/2"
    panel.ask_changes = lambda state: {"limit": round(request.limit + 40.0, 2)}  # a typo far off the market
    assert not panel.modify_selected()
    assert panel.status_label.text().startswith("modify refused: refused by")
    assert _cell(panel, request.ref, "Limit") == f"{new_limit:.2f}"  # unchanged


def test_a_modify_the_broker_refused_later_says_why_on_the_status_line(setup, market):
    """IB answers a modify some time after the blotter sent it: a refusal comes back as the working order's new
    reason (``IbBroker``'s tracker), which the status line shows as it arrives, not only the Reason column."""
    panel, session = setup
    request = _resting(session)
    session.place(request)
    drive(session, market)
    state = next(s for s in session.orders() if s.ref == request.ref)
    assert state.status is OrderStatus.SUBMITTED
    why = f"modify to 9.95 x 1 refused by TWS (error 110: price does not conform); works on at {request.limit:g} x 1"
    session.broker._emit(OrderEvent(request.ref, EventKind.STATUS, market_ns(session), status=OrderStatus.SUBMITTED,
                                    reason=why))
    assert _cell(panel, request.ref, "Status") == "submitted" and _cell(panel, request.ref, "Reason") == why
    assert why in panel.status_label.text()


def market_ns(session) -> int:
    return int(session.market.now_ns())


def test_a_rejection_shows_its_reason(setup):
    panel, session = setup
    request = dataclasses.replace(sample_vertical(session.market), quantity=500)  # over the gate's 50 lots
    result = session.place(request)
    assert not result.verdict.ok
    assert _cell(panel, request.ref, "Status") == "rejected"
    assert _cell(panel, request.ref, "Reason") == result.verdict.message
    assert "500" in panel.status_label.text() or "rejected" in panel.status_label.text()


def test_without_a_session_the_panel_says_so(qtbot):
    panel = BlotterPanel()
    panel.bind(AppContext(AppSettings(seed=3)))
    qtbot.addWidget(panel)
    ok, message = panel.self_test_status()
    assert not ok and "database is not open" in message
    panel.shutdown()


def test_modify_dialog_asks_only_for_what_changed(qtbot, setup, market):
    from app.panels.blotter_panel import ModifyDialog

    _panel, session = setup
    request = _resting(session)
    session.place(request)
    state = next(s for s in session.orders() if s.ref == request.ref)
    dialog = ModifyDialog(state)
    qtbot.addWidget(dialog)
    assert dialog.changes() == {}
    assert dialog.quantity.minimum() == 1  # never below what is filled (nothing yet)
    dialog.limit.setValue(request.limit + 0.05)
    assert dialog.changes() == {"limit": round(request.limit + 0.05, 2)}
    dialog.quantity.setValue(3)
    assert dialog.changes()["quantity"] == 3
