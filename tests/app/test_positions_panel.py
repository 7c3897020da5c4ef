"""Positions panel on a real session: a filled order shows as a trade with its legs, live greeks from the
worker, the account line, and "Close trade" publishes the closing order for the ticket."""

from __future__ import annotations

import math

import pytest
from PySide6.QtCore import QModelIndex

from app.context import AppContext
from app.models.positions_model import POSITION_HEADERS
from app.panels.positions_panel import PositionsPanel
from app.self_test_trading import sample_vertical
from app.settings import AppSettings
from spx_core.execution.orders import Intent, OrderStatus
from tests.app.trading_factory import session_on, sim_market

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")
COL = {h: i for i, h in enumerate(POSITION_HEADERS)}


@pytest.fixture
def setup(qtbot, tmp_path):
    market = sim_market()
    session, store = session_on(tmp_path / "positions.sqlite")
    context = AppContext(AppSettings(seed=3))
    panel = PositionsPanel(refresh_seconds=0.05)
    panel.bind(context)
    qtbot.addWidget(panel)
    panel.resize(1400, 400)
    panel.show()
    context.set_trading(session)

    def feed(steps: int = 1) -> None:
        for _ in range(steps):
            batch = market.advance(1.0)
            session.on_batch(batch)
            panel.on_batch(batch)

    feed()
    yield panel, session, context, feed
    panel.shutdown()
    session.close()
    store.close()


def _filled_trade(session, feed):
    request = sample_vertical(session.market)
    session.place(request)
    feed(3)
    assert next(s for s in session.orders() if s.ref == request.ref).status is OrderStatus.FILLED
    session.refresh_portfolio()
    return request


def test_filled_order_shows_as_a_trade_with_legs_greeks_and_the_account(setup, qtbot):
    panel, session, _context, feed = setup
    request = _filled_trade(session, feed)
    model = panel.model
    assert model.rowCount() == 1 and model.rowCount(model.index(0, 0)) == 2
    assert model.data(model.index(0, COL["Qty"])) == "-1"
    assert panel.tree.isExpanded(model.index(0, 0))
    legs = [model.data(model.index(r, COL["Qty"], model.index(0, 0))) for r in range(2)]
    assert sorted(legs) == ["+1", "-1"]
    assert float(model.data(model.index(0, COL["Open"]))) >= request.limit
    qtbot.waitUntil(lambda: model.data(model.index(0, COL["Delta ($/pt)"])) != "", timeout=30_000)
    delta = float(model.data(model.index(0, COL["Delta ($/pt)"])).replace(",", ""))
    assert delta > 0  # a short put vertical is long the index
    assert math.isfinite(float(model.data(model.index(0, COL["Theta ($/day)"])).replace(",", "")))
    text = panel.account_label.text()
    assert text.startswith("Net liq $") and "Buying power $" in text and "Day P&L" in text
    assert panel.self_test_status()[0]


def test_close_trade_publishes_the_closing_order(setup, qtbot):
    panel, session, context, feed = setup
    request = _filled_trade(session, feed)
    trade = panel.model.trades[0]
    assert panel.select_trade(trade.id) and panel.close_button.isEnabled()
    with qtbot.waitSignal(context.order_requested) as asked:
        assert panel.close_selected()
    closing = asked.args[0]
    assert closing.intent is Intent.CLOSE and closing.trade_id == trade.id
    assert closing.side is request.side.opposite and closing.legs == request.legs
    # a leg row selects its trade too
    panel.tree.setCurrentIndex(panel.model.index(1, 0, panel.model.index(0, 0)))
    assert panel.selected_trade().id == trade.id


def test_closing_fill_leaves_the_trade_closed_and_flat(setup):
    panel, session, _context, feed = setup
    _filled_trade(session, feed)
    trade = panel.model.trades[0]
    closing = session.close_request(trade.id)
    from app.self_test_trading import closing_at_natural

    closing = closing_at_natural(session, trade.id)
    assert session.place(closing).verdict.ok
    feed(3)
    session.refresh_portfolio()
    assert panel.model.data(panel.model.index(0, COL["Qty"])) == "+0"
    assert not panel.close_button.isEnabled() or panel.selected_trade() is None or \
        panel.selected_trade().status == "closed"
    assert panel.model.index(0, 0, QModelIndex()).isValid()
