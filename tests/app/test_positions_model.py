"""Positions tree model without a window: trades from real fills (spx_core.portfolio's ledger), legs underneath,
marks, P&L, greeks scaled by what is held, in-place repaint vs rebuild."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from PySide6.QtCore import QModelIndex, Qt

from app.models.positions_model import (
    LOSS,
    POSITION_HEADERS,
    PROFIT,
    PositionsModel,
    account_text,
)
from app.trading import Portfolio
from spx_core.domain import ET, OptionContract, Right, Root
from spx_core.execution.orders import (
    EventKind,
    Fill,
    Intent,
    OrderEvent,
    OrderRequest,
    OrderState,
    OrderStatus,
    Side,
    apply,
)
from spx_core.portfolio.account import AccountSummary
from spx_core.portfolio.trades import TradeLedger
from spx_core.strategies.structure import Leg

T0 = int(datetime(2024, 3, 13, 11, 0, tzinfo=ET).timestamp()) * 1_000_000_000
DAY_START = int(datetime(2024, 3, 13, 0, 0, tzinfo=ET).timestamp()) * 1_000_000_000
SHORT = OptionContract(Root.SPXW, date(2024, 3, 15), 5100.0, Right.PUT)
LONG = OptionContract(Root.SPXW, date(2024, 3, 15), 5075.0, Right.PUT)
COL = {h: i for i, h in enumerate(POSITION_HEADERS)}


def _filled(ref: str, side: Side, prices: tuple[float, float], *, intent: Intent = Intent.OPEN,
            trade_id: int | None = None, t: int = T0) -> OrderState:
    req = OrderRequest(ref=ref, legs=(Leg(SHORT, 1), Leg(LONG, -1)), side=side, quantity=2, limit=1.45,
                       created_ns=t, name="25-wide put credit vertical", kind="vertical", intent=intent,
                       trade_id=trade_id)
    s = apply(OrderState.new(req), OrderEvent(ref, EventKind.STATUS, t, status=OrderStatus.SUBMITTED))
    for leg, contract in enumerate((SHORT, LONG)):
        s = apply(s, OrderEvent(ref, EventKind.FILL, t + 1, fill=Fill(f"{ref}-{leg}", leg, contract, req.leg_side(leg),
                                                                      2, prices[leg], t + 1, 1.30, 0.98)))
    return s


def _ledger_trades(*orders: OrderState) -> list:
    ledger = TradeLedger()
    for order in orders:
        for fill in order.fills:
            ledger.on_fill(order, fill)
    return ledger.trades()


def _portfolio(trades, marks) -> Portfolio:
    account = AccountSummary(100_150.0, 100_290.0, 95_150.0, 5_000.0, 150.0, 150.0, -9.12, 9.12)
    return Portfolio((), tuple(trades), marks, account, T0 + 10, DAY_START)


@pytest.fixture
def opened():
    return _ledger_trades(_filled("open", Side.SELL, (2.10, 0.65)))  # sold 2 at 1.45 credit


def _cell(model, row, title, parent=None):
    return model.data(model.index(row, COL[title], parent or QModelIndex()))


def test_model_passes_qtmodeltester(qtmodeltester, opened):
    model = PositionsModel()
    model.set_portfolio(_portfolio(opened, {SHORT: 1.00, LONG: 0.30}))
    qtmodeltester.check(model)


def test_trade_row_with_legs_marks_and_pnl(opened):
    model = PositionsModel()
    model.set_portfolio(_portfolio(opened, {SHORT: 1.00, LONG: 0.30}))
    assert model.rowCount() == 1
    parent = model.index(0, 0)
    assert model.rowCount(parent) == 2
    assert _cell(model, 0, "Trade / leg") == "25-wide put credit vertical · 15 Mar"
    assert model.data(model.index(0, 0), Qt.ItemDataRole.ToolTipRole).startswith(opened[0].name)
    assert _cell(model, 0, "Qty") == "-2"  # two sold
    assert _cell(model, 0, "Open") == "1.45" and _cell(model, 0, "Mark") == "0.70"
    # (1.45 - 0.70) x 2 units x 100: the open P&L at the mark, before charges (those are realized)
    assert _cell(model, 0, "P&L open ($)") == "+150.00"
    charges = 2 * (1.30 + 0.98)  # one fill per leg
    assert _cell(model, 0, "Realized ($)") == f"{-charges:+,.2f}"
    assert _cell(model, 0, "P&L today ($)") == f"{150 - charges:+,.2f}"  # opened today: all of it
    assert _cell(model, 0, "DTE") == "2"
    assert [_cell(model, r, "Trade / leg", parent) for r in range(2)] == ["SPXW 15 Mar 24 5100 P",
                                                                          "SPXW 15 Mar 24 5075 P"]
    assert [_cell(model, r, "Qty", parent) for r in range(2)] == ["-2", "+2"]
    assert [_cell(model, r, "Open", parent) for r in range(2)] == ["2.10", "0.65"]
    assert _cell(model, 0, "P&L open ($)", parent) == "+220.00"  # short 2 x (2.10 - 1.00) x 100
    assert model.data(model.index(0, COL["P&L open ($)"]), Qt.ItemDataRole.ForegroundRole) == PROFIT
    assert model.data(model.index(0, COL["Realized ($)"]), Qt.ItemDataRole.ForegroundRole) == LOSS


def test_greeks_scale_by_contracts_held_and_sum_to_the_trade(opened):
    model = PositionsModel()
    model.set_portfolio(_portfolio(opened, {SHORT: 1.00, LONG: 0.30}))
    model.set_greeks({SHORT: (-20.0, 1.5, 8.0, -6.0), LONG: (-12.0, 1.0, 5.0, -4.0)})
    parent = model.index(0, 0)
    assert _cell(model, 0, "Delta ($/pt)", parent) == "+40.00"  # short 2 puts: -2 x -20
    assert _cell(model, 1, "Delta ($/pt)", parent) == "-24.00"
    assert _cell(model, 0, "Delta ($/pt)") == "+16.00"
    assert _cell(model, 0, "Theta ($/day)") == f"{-2 * -6.0 + 2 * -4.0:+,.2f}"


def test_new_marks_repaint_in_place_and_a_close_rebuilds(qtbot, opened):
    model = PositionsModel()
    model.set_portfolio(_portfolio(opened, {SHORT: 1.00, LONG: 0.30}))
    with qtbot.assertNotEmitted(model.modelReset), qtbot.waitSignal(model.dataChanged):
        model.set_portfolio(_portfolio(opened, {SHORT: 0.80, LONG: 0.30}))
    assert _cell(model, 0, "Mark") == "0.50"
    closed = _ledger_trades(_filled("open", Side.SELL, (2.10, 0.65)),
                            _filled("close", Side.BUY, (0.80, 0.30), intent=Intent.CLOSE, trade_id=1, t=T0 + 50))
    assert closed[0].status == "closed"
    model.set_portfolio(_portfolio(closed, {SHORT: 0.80, LONG: 0.30}))
    assert _cell(model, 0, "Qty") == "+0" and _cell(model, 0, "Mark") == ""
    assert _cell(model, 0, "Delta ($/pt)") == ""  # nothing held: no risk shown
    assert model.data(model.index(0, 0), Qt.ItemDataRole.ForegroundRole).name() == "#8c8c8c"
    realized = (1.45 - 0.50) * 2 * 100 - 4 * (1.30 + 0.98)
    assert float(_cell(model, 0, "Realized ($)").replace(",", "")) == pytest.approx(realized)


def test_account_text_says_every_figure():
    text = account_text(AccountSummary(100_150.0, 100_290.0, 95_150.0, 5_000.0, 150.0, 150.0, -9.12, 9.12))
    for part in ("Net liq $100,150.00", "Buying power $95,150.00", "Day P&L +150.00", "Realized -9.12",
                 "Margin $5,000.00"):
        assert part in text
    assert account_text(None, "account line unavailable: x") == "account line unavailable: x"
