"""Order ticket panel on a real trading session (store, order service, pre-trade gate) over the hand-priced chain.

The broker is the gate tests' ``RecordingBroker``: it records what reaches it and acknowledges nothing by
itself, so a test decides when the order leaves "pending" (as IB does, some time after the send) and can
count exactly what was sent. Every number below is in ``tests/execution/gate_market.py``'s table: the
4700/4675 put credit vertical is bid 10.00 - 6.00 = 4.00, asked 10.20 - 5.80 = 4.40, mid 4.20.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app.context import AppContext
from app.main_window import PANELS
from app.models.chain_data import PUT, ChainField
from app.models.ticket_legs import TicketColumn
from app.models.ticket_model import PriceMode
from app.panels.ticket_panel import TicketPanel
from app.settings import AppSettings
from app.trading import FeedMarket, TradingSession
from spx_core.domain import ET, Root
from spx_core.execution.gate import GateSettings, PreTradeGate
from spx_core.execution.orders import (EventKind, Fill, Intent, OrderEvent, OrderRequest, OrderStatus, Side,
                                       TimeInForce, new_ref)
from spx_core.execution.service import OrderService
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.marketdata.source import QuoteBatch
from spx_core.storage import Store
from spx_core.storage.orders_repo import OrderRepository
from spx_core.strategies.builders import iron_condor, put_credit_vertical
from spx_core.strategies.structure import Leg
from tests.execution.gate_market import DAY, QUOTES, T0, RecordingBroker, chain, contract

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")

VERTICAL = put_credit_vertical("SPXW", DAY, 4700, 25)  # held: -1 4700P, +1 4675P


def _batch(snapshot) -> QuoteBatch:
    return QuoteBatch(snapshot, np.arange(len(snapshot), dtype=np.int64), True, 1)


@pytest.fixture
def make_trading(tmp_path, qapp):
    made = []

    def make(*, live: bool = False) -> SimpleNamespace:
        store = Store.open(tmp_path / f"orders{len(made)}.sqlite")
        repo = OrderRepository(store)
        broker = RecordingBroker(live=live)
        gate = PreTradeGate(GateSettings(live_trading=live))
        market = FeedMarket()
        market.update(_batch(chain()))
        service = OrderService(repo, broker, gate, market)
        session = TradingSession(service, repo, market, starting_cash=100_000.0, gate=gate, refresh_ms=0)
        made.append(SimpleNamespace(store=store, repo=repo, broker=broker, session=session, market=market))
        return made[-1]

    yield make
    for t in made:
        t.session.close()
        t.store.close()


@pytest.fixture
def make_ticket(qtbot, make_trading):
    def make(*, live: bool = False) -> tuple[TicketPanel, AppContext, SimpleNamespace]:
        trading = make_trading(live=live)
        context = AppContext(AppSettings(seed=3))
        panel = TicketPanel()
        qtbot.addWidget(panel)
        panel.bind(context)
        panel.on_batch(_batch(chain()))
        context.set_trading(trading.session)
        panel.resize(560, 640)
        panel.show()
        qtbot.waitExposed(panel)
        return panel, context, trading

    return make


def _ack(trading: SimpleNamespace, state, status: OrderStatus = OrderStatus.SUBMITTED) -> None:
    trading.broker._emit(OrderEvent(state.ref, EventKind.STATUS, trading.market.now_ns(), status=status,
                                    broker_order_id="7"))


def _ctrl_enter(panel: TicketPanel, qtbot) -> None:
    """Ctrl+Enter typed in the quantity box of the active window (as a trader sends)."""
    panel.window().windowHandle().requestActivate()
    qtbot.waitUntil(panel.isActiveWindow, timeout=2000)
    panel.form.quantity_spin.setFocus()
    qtbot.keyClick(panel.form.quantity_spin, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)


# --- opening ------------------------------------------------------------------------------------------------
def test_binding_makes_the_ticket_available_and_a_structure_opens_as_a_credit_sale(make_ticket):
    panel, context, _ = make_ticket()
    assert context.ticket_available
    context.request_trade(VERTICAL)  # what the scanner's and the builder's Trade buttons send
    order = panel.order
    assert order.side is Side.SELL and order.legs == (Leg(contract(4700), 1), Leg(contract(4675), -1))
    assert [panel.form.legs_model.index(r, 0).data() for r in range(2)] == ["Sell", "Buy"]
    assert {k: label.text() for k, label in panel.form.package.items()} == {"bid": "4.00", "ask": "4.40", "mid": "4.20",
                                                                      "natural": "4.00"}
    assert panel.mode is PriceMode.MID and panel.limit == pytest.approx(4.20)
    assert panel.form.premium_label.text() == "credit $420"
    assert panel.form.verdict_label.text().startswith("ready") and panel.form.send_button.isEnabled()
    panel.shutdown()
    assert not context.ticket_available


def test_a_chain_contract_and_a_closing_request_open_with_their_side_and_terms(make_ticket):
    panel, context, _ = make_ticket()
    context.trade_contract(contract(4700), "sell")  # a double-click on the bid
    assert panel.order.legs == (Leg(contract(4700), 1),) and panel.order.side is Side.SELL
    assert panel.quote.natural == pytest.approx(10.00)
    # selling the held legs (-4700, +4675) for at least -1.45 = buying them back for at most 1.45
    request = OrderRequest(ref=new_ref(), legs=VERTICAL.legs, side=Side.SELL, quantity=2, limit=-1.45,
                           intent=Intent.CLOSE, trade_id=12, name=VERTICAL.name, kind="vertical", source="positions")
    context.request_order(request)  # a trade's closing order: the ticket shows it, nothing is sent
    assert panel.order.intent is Intent.CLOSE and panel.order.trade_id == 12 and panel.order.quantity == 2
    assert panel.order.side is Side.BUY  # selling (-4700, +4675) is buying (+4700, -4675)
    assert panel.mode is PriceMode.CUSTOM and panel.limit == pytest.approx(1.45)
    assert panel.form.title_label.text().startswith("Close trade #12")
    assert panel.form.quantity_spin.value() == 2 and panel.form.side_combo.currentText() == "Buy"


def test_leg_quotes_and_a_mid_limit_follow_the_market(make_ticket, qtbot):
    panel, context, trading = make_ticket()
    context.request_trade(VERTICAL)
    moved = dict(QUOTES)
    moved[(Root.SPXW, DAY, 4700, "P")] = (10.50, 10.70)
    batch = _batch(chain(T0 + timedelta(seconds=1), moved))
    trading.session.on_batch(batch)
    panel.on_batch(batch)
    bid = panel.form.legs_model.index(0, TicketColumn.BID)
    qtbot.waitUntil(lambda: bid.data() == "10.50", timeout=5000)  # at the panel's refresh rate
    assert panel.limit == pytest.approx(4.70) and panel.form.package["mid"].text() == "4.70"  # 10.60 - 5.90
    assert panel.form.verdict_label.text().startswith("ready")


# --- price modes and ticks ------------------------------------------------------------------------------------
def test_price_modes_ticks_and_the_plus_minus_buttons(make_ticket, qtbot):
    panel, context, _ = make_ticket()
    context.request_trade(VERTICAL)
    qtbot.mouseClick(panel.form.mode_buttons[PriceMode.NATURAL], Qt.MouseButton.LeftButton)
    assert panel.limit == pytest.approx(4.00) and panel.form.limit_edit.text() == "4.00"
    qtbot.mouseClick(panel.form.up_button, Qt.MouseButton.LeftButton)
    assert panel.mode is PriceMode.CUSTOM and panel.limit == pytest.approx(4.05)  # combos tick 0.05
    for _ in range(2):
        qtbot.mouseClick(panel.form.down_button, Qt.MouseButton.LeftButton)
    assert panel.limit == pytest.approx(3.95)
    edit = panel.form.limit_edit
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClicks(edit, "4.12")  # typed: rounded onto the grid
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert panel.limit == pytest.approx(4.10) and edit.text() == "4.10"
    context.trade_contract(contract(4650), "buy")  # a single leg at 3.00 x 3.20
    assert panel.mode is PriceMode.MID and panel.limit == pytest.approx(3.10)
    qtbot.mouseClick(panel.form.up_button, Qt.MouseButton.LeftButton)
    assert panel.limit == pytest.approx(3.20)  # 0.10 from 3.00 up
    panel.set_custom_limit(3.00)
    qtbot.mouseClick(panel.form.down_button, Qt.MouseButton.LeftButton)
    assert panel.limit == pytest.approx(2.95)  # 0.05 below 3.00
    panel.form.type_combo.setCurrentText("MKT")
    assert not panel.form.limit_edit.isEnabled() and panel.form.premium_label.text() == "at the market"
    assert panel._request()[0].limit is None and panel.form.verdict_label.text() != ""


# --- the gate's verdict -------------------------------------------------------------------------------------
def test_a_refused_order_shows_the_check_and_sends_nothing(make_ticket, qtbot):
    panel, context, trading = make_ticket()
    context.request_trade(VERTICAL)
    panel.form.quantity_spin.setValue(51)  # GateSettings.max_quantity = 50
    assert panel.form.verdict_label.text().startswith("refused by quantity") and not panel.form.send_button.isEnabled()
    _ctrl_enter(panel, qtbot)
    assert panel.form.status_label.text().startswith("not sent: refused by quantity")
    assert trading.broker.submitted == [] and trading.repo.orders() == []
    panel.form.quantity_spin.setValue(1)
    panel.set_custom_limit(9.00)  # a typo far from the market
    assert "price" in panel.form.verdict_label.text() and not panel.form.send_button.isEnabled()


# --- sending --------------------------------------------------------------------------------------------------
def test_ctrl_enter_sends_one_order_and_a_second_while_pending_does_not(make_ticket, qtbot):
    panel, context, trading = make_ticket()
    context.request_trade(VERTICAL)
    _ctrl_enter(panel, qtbot)
    assert len(trading.broker.submitted) == 1
    sent = trading.broker.submitted[0]
    assert (sent.side, sent.quantity, sent.limit, sent.snapshot_checksum) == (Side.SELL, 1, 4.20, chain().checksum)
    stored = trading.repo.orders()
    assert [o.ref for o in stored] == [sent.ref] and stored[0].status is OrderStatus.PENDING
    assert "pending" in panel.form.status_label.text() and not panel.form.send_button.isEnabled()
    _ctrl_enter(panel, qtbot)  # pressed again before the broker answered
    qtbot.mouseClick(panel.form.send_button, Qt.MouseButton.LeftButton)
    assert len(trading.broker.submitted) == 1 and len(trading.repo.orders()) == 1
    assert panel.form.status_label.text().startswith("not sent: the last order is still pending")
    _ack(trading, stored[0])
    assert "submitted" in panel.form.status_label.text() and panel.form.send_button.isEnabled()
    _ctrl_enter(panel, qtbot)  # acknowledged: the next press is a new order under a new reference
    assert len(trading.broker.submitted) == 2 and trading.broker.submitted[1].ref != sent.ref


def test_the_time_in_force_chosen_on_the_ticket_is_the_one_sent(make_ticket, qtbot):
    panel, context, trading = make_ticket()
    context.request_trade(VERTICAL)
    assert panel.form.tif_combo.currentText() == "DAY"  # the default
    panel.form.tif_combo.setCurrentText("GTC")
    assert panel.order.tif is TimeInForce.GTC
    qtbot.mouseClick(panel.form.send_button, Qt.MouseButton.LeftButton)
    (sent,) = trading.broker.submitted
    assert sent.tif is TimeInForce.GTC and trading.repo.order(sent.ref).request.tif is TimeInForce.GTC


def test_the_status_line_follows_the_order_to_its_fill(make_ticket):
    panel, context, trading = make_ticket()
    context.request_trade(VERTICAL)
    state = panel.send()
    _ack(trading, state)
    for i, (leg, price) in enumerate(zip(state.request.legs, (10.10, 5.90), strict=True)):
        fill = Fill(f"x{i}", i, leg.contract, state.request.leg_side(i), 1, price, trading.market.now_ns(),
                    commission=0.65, fees=0.5)
        trading.broker._emit(OrderEvent(state.ref, EventKind.FILL, trading.market.now_ns(), fill=fill))
    assert panel.form.status_label.text() == "order 7: filled 1 of 1 @ 4.20, commission and fees $2.30"


def test_a_rejection_by_the_broker_shows_its_reason(make_ticket):
    panel, context, trading = make_ticket()
    context.request_trade(VERTICAL)
    state = panel.send()
    trading.broker._emit(OrderEvent(state.ref, EventKind.STATUS, trading.market.now_ns(),
                                    status=OrderStatus.REJECTED, reason="201: order rejected, margin"))
    assert panel.form.status_label.text().endswith("rejected: 201: order rejected, margin")


def _answer_live_dialog(qtbot, *, accept: bool) -> list[str]:
    seen = []

    def answer():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, answer)
            return
        seen.append(box.text())
        wanted = next(b for b in box.buttons() if (box.buttonRole(b) == QMessageBox.ButtonRole.AcceptRole) == accept)
        wanted.click()

    QTimer.singleShot(0, answer)
    return seen


def test_a_live_order_needs_a_confirmation(make_ticket, qtbot):
    panel, context, trading = make_ticket(live=True)
    context.request_trade(VERTICAL)
    assert panel.form.verdict_label.text().startswith("ready")
    seen = _answer_live_dialog(qtbot, accept=False)
    assert panel.send() is None
    assert "LIVE account DU123" in seen[0] and "SELL 1 x" in seen[0]
    assert trading.broker.submitted == [] and panel.form.status_label.text() == "not sent: the live order was not confirmed"
    _answer_live_dialog(qtbot, accept=True)
    assert panel.send() is not None and len(trading.broker.submitted) == 1


# --- in the main window: the chain and the builder open the ticket -------------------------------------------
START = datetime(2024, 3, 13, 10, 30, tzinfo=ET)


@pytest.fixture(scope="module")
def sim_batch():
    return SimulatedMarket(SimulatorConfig(seed=11, start=START)).advance(1.0)


@pytest.fixture
def window(make_trading, make_window, qtbot, sim_batch):
    # The chain and surface workers import spx_core.surface at the same moment on a fresh process, and one
    # of them can see the other's half-initialised spx_core.surface.surface (a race of those two panels,
    # without the ticket); import it here first so this file tests the ticket, not that race.
    import spx_core.surface  # noqa: F401

    specs = tuple(s for s in PANELS if s.key in ("chain", "surface", "builder", "ticket"))
    w = make_window(panels=specs)
    w.resize(1600, 900)
    trading = make_trading()
    trading.session.on_batch(sim_batch)
    w.feed.batch.connect(trading.session.on_batch)  # as MainWindow.start_trading wires its own session
    w.context.set_trading(trading.session)
    chain = w.panels["chain"]
    for panel in w.panels.values():
        panel.on_batch(sim_batch)
    qtbot.waitUntil(lambda: chain.model.snapshot is not None, timeout=15_000)
    w.trading = trading
    return w


def test_a_double_click_on_a_bid_in_the_chain_brings_the_ticket_forward_to_sell_it(window, qtbot):
    chain, ticket = window.panels["chain"], window.panels["ticket"]
    assert not ticket.on_screen()  # a tab behind the surface
    row = chain.model.atm_row - 2
    for field, side in ((ChainField.BID, Side.SELL), (ChainField.ASK, Side.BUY)):
        index = chain.model.index(row, chain.model.columns.index((PUT, field)))
        chain.table.scrollTo(index)
        at = chain.table.visualRect(index).center()
        qtbot.mouseClick(chain.table.viewport(), Qt.MouseButton.LeftButton, pos=at)  # a double-click's first press
        qtbot.mouseDClick(chain.table.viewport(), Qt.MouseButton.LeftButton, pos=at)
        contract = chain.model.contract_at(index)
        assert ticket.order.legs == (Leg(contract, 1),) and ticket.order.side is side
        assert ticket.on_screen() and ticket.form.quantity_spin.hasFocus()
    assert ticket.form.verdict_label.text().startswith("ready"), ticket.form.verdict_label.text()
    window.docks["ticket"].close()  # the trader closed the ticket's dock: the next trade shows it again
    window.context.trade_contract(contract, "sell")
    assert window.docks["ticket"].isVisible() and ticket.on_screen()


def test_the_builders_trade_button_sends_its_structure_and_the_ticket_values_it(window, qtbot):
    chain, builder, ticket = window.panels["chain"], window.panels["builder"], window.panels["ticket"]
    assert not builder.trade_button.isEnabled()  # no legs
    lo = chain.model.window()[0]
    atm = chain.model.atm_row
    strikes = chain.model.block.strikes
    short, long = (chain.model.contract_at(chain.model.index(r, chain.model.columns.index((PUT, ChainField.BID))))
                   for r in (atm - 2, atm - 4))
    assert short.strike == strikes[lo + atm - 2]
    window.context.set_legs((Leg(short, -1), Leg(long, 1)))
    assert builder.trade_button.isEnabled()
    qtbot.mouseClick(builder.trade_button, Qt.MouseButton.LeftButton)
    assert ticket.order.side is Side.SELL and ticket.order.legs == (Leg(short, 1), Leg(long, -1))
    assert "put credit vertical" in ticket.form.title_label.text() and ticket.on_screen()
    qtbot.waitUntil(lambda: ticket.value is not None and ticket.value.value is not None, timeout=30_000)
    figures = {k: label.text() for k, label in ticket.form.figures.items()}
    width = short.strike - long.strike
    credit = ticket.limit * 100
    assert figures["max_profit"] == f"+${credit:,.0f}", figures
    assert figures["max_loss"] == f"-${width * 100 - credit:,.0f}", figures
    assert figures["delta"].startswith("$0 → +$"), figures  # flat book; a short put vertical is long delta
    assert figures["commission"].startswith("$"), figures


# --- the paper broker -----------------------------------------------------------------------------------------
def put_vertical(snapshot, below: float = 0.985, width: float = 25.0):
    """A put credit vertical on the SPXW expiry after today, short strike ~1.5% below the index, both legs bid."""
    today = snapshot.time.astimezone(ET).date()
    sl = min((s for s in snapshot.expiries() if s.root.value == "SPXW" and s.expiry > today), key=lambda s: s.expiry)
    c = snapshot.columns
    rows = [r for r in range(sl.start, sl.stop) if not c["is_call"][r] and c["bid"][r] > 0]
    strikes = {float(c["strike"][r]) for r in rows}
    short = min(strikes, key=lambda k: abs(k - below * snapshot.underlying_price))
    assert short - width in strikes
    return put_credit_vertical("SPXW", sl.expiry, short, width)


def test_one_click_on_the_paper_broker_fills_once_and_the_position_enters_the_greeks(qtbot, tmp_path):
    from tests.app.trading_factory import session_on, sim_market

    market = sim_market()
    batch = market.advance(1.0)
    session, store = session_on(tmp_path / "paper.sqlite")
    context = AppContext(AppSettings(seed=3))
    panel = TicketPanel()
    qtbot.addWidget(panel)
    try:
        session.on_batch(batch)
        panel.bind(context)
        panel.on_batch(batch)
        context.set_trading(session)
        panel.show()
        qtbot.waitExposed(panel)
        context.request_trade(put_vertical(batch.snapshot))
        qtbot.mouseClick(panel.form.mode_buttons[PriceMode.NATURAL], Qt.MouseButton.LeftButton)
        _ctrl_enter(panel, qtbot)
        orders = session.orders()
        assert len(orders) == 1 and orders[0].status is OrderStatus.FILLED
        assert orders[0].avg_fill_price == pytest.approx(panel.quote.natural)
        assert panel.form.status_label.text().startswith(f"order {orders[0].broker_order_id}: filled 1 of 1 @ ")
        qtbot.waitUntil(lambda: panel._positions != (), timeout=5000)  # the portfolio came back with two legs
        assert sorted(leg.ratio for leg in panel._positions) == [-1, 1]
        qtbot.waitUntil(lambda: panel.value is not None and panel.value.positions.delta > 0, timeout=30_000)
        assert not panel.form.figures["delta"].text().startswith("$0 →")  # the book is no longer flat
        trade = session.portfolio.open_trades[0]
        context.request_order(session.close_request(trade.id))  # the positions panel's "Close trade"
        assert panel.order.intent is Intent.CLOSE and panel.order.side is Side.BUY
        qtbot.mouseClick(panel.form.mode_buttons[PriceMode.NATURAL], Qt.MouseButton.LeftButton)
        assert panel.form.verdict_label.text().startswith("ready"), panel.form.verdict_label.text()
        closing = panel.send()
        assert closing is not None and closing.status is OrderStatus.FILLED and len(session.orders()) == 2
        qtbot.waitUntil(lambda: panel._positions == (), timeout=5000)  # flat again
    finally:
        panel.shutdown()
        session.close()
        store.close()


def test_an_iron_condor_opens_as_a_credit_sale_even_before_the_ticket_saw_a_batch(make_ticket):
    """The scanner's Trade reaches a hidden ticket (no batch buffered): the session's market orients it."""
    panel, context, trading = make_ticket()
    panel._snapshots.clear()
    trading.session.on_batch(_batch(chain()))
    condor = iron_condor("SPXW", DAY, 4675, 4725, 25)  # long wings 4650P / 4750C
    context.request_trade(condor)
    assert panel.order.side is Side.SELL  # not BUY at a negative price
    assert panel.quote.mid > 0 and panel.limit > 0
