"""Blotter models without a window: orders by filter, row updates, status colours, fills per leg, natural price."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from PySide6.QtCore import Qt

from app.models.blotter_model import (
    ORDER_COLUMNS,
    STATUS_COLOURS,
    BlotterFilter,
    FillsModel,
    OrdersModel,
    natural_price,
)
from spx_core.domain import ET, OptionContract, Right, Root
from spx_core.execution.orders import (
    EventKind,
    Fill,
    OrderEvent,
    OrderRequest,
    OrderState,
    OrderStatus,
    Side,
    apply,
)
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.strategies.market import locate
from spx_core.strategies.structure import Leg

T0 = int(datetime(2024, 3, 13, 11, 0, tzinfo=ET).timestamp()) * 1_000_000_000
DAY = 86_400 * 1_000_000_000
SHORT = OptionContract(Root.SPXW, date(2024, 3, 15), 5100.0, Right.PUT)
LONG = OptionContract(Root.SPXW, date(2024, 3, 15), 5075.0, Right.PUT)
COL = {c.title: i for i, c in enumerate(ORDER_COLUMNS)}


def _order(ref: str, created_ns: int, *, status: OrderStatus = OrderStatus.SUBMITTED, fill_units: int = 0,
           reason: str = "") -> OrderState:
    req = OrderRequest(ref=ref, legs=(Leg(SHORT, 1), Leg(LONG, -1)), side=Side.SELL, quantity=2, limit=1.45,
                       created_ns=created_ns, name="25-wide put credit vertical")
    s = OrderState.new(req)
    first = OrderStatus.REJECTED if status is OrderStatus.REJECTED else OrderStatus.SUBMITTED
    s = apply(s, OrderEvent(ref, EventKind.STATUS, created_ns + 1, status=first, reason=reason,
                            broker_order_id=f"P{ref}"))
    for u in range(fill_units):
        for leg, (contract, side, price) in enumerate(((SHORT, Side.SELL, 2.10), (LONG, Side.BUY, 0.65))):
            s = apply(s, OrderEvent(ref, EventKind.FILL, created_ns + 2 + u, fill=Fill(
                f"{ref}-{u}-{leg}", leg, contract, side, 1, price, created_ns + 2 + u, 0.65, 0.49)))
    if status is OrderStatus.CANCELLED:
        s = apply(s, OrderEvent(ref, EventKind.STATUS, created_ns + 9, status=status, reason=reason))
    return s


@pytest.fixture
def states():
    return [_order("a", T0 - 2 * DAY, status=OrderStatus.CANCELLED, reason="user"),  # yesterday's
            _order("b", T0, fill_units=2),  # filled today
            _order("c", T0 + 10, fill_units=1),  # partially filled, working
            _order("d", T0 + 20, status=OrderStatus.REJECTED, reason="refused by price_band: 1.45 is 3.2 from 4.65"),
            _order("e", T0 + 30)]  # working


def _texts(model: OrdersModel, title: str) -> list[str]:
    return [model.data(model.index(r, COL[title])) for r in range(model.rowCount())]


def test_model_passes_qtmodeltester(qtmodeltester, states):
    model = OrdersModel()
    model.set_filter(BlotterFilter.ALL)
    model.set_orders(states)
    qtmodeltester.check(model)
    fills = FillsModel()
    fills.set_order(states[1])
    qtmodeltester.check(fills)


def test_filters_show_working_today_and_all_newest_first(states):
    model = OrdersModel()
    model.set_orders(states)
    model.set_filter(BlotterFilter.TODAY, day_start_ns=T0 - 3600 * 1_000_000_000)
    assert _texts(model, "Ref") == ["e", "d", "c", "b"]
    model.set_filter(BlotterFilter.WORKING)
    assert _texts(model, "Ref") == ["e", "c"]
    model.set_filter(BlotterFilter.ALL)
    assert _texts(model, "Ref") == ["e", "d", "c", "b", "a"]
    # today's orders by the clock alone, older ones with their date
    assert _texts(model, "Time (ET)")[3:] == ["11:00:00", "11 Mar 11:00:00"]


def test_row_texts_say_fill_prices_status_reason_and_charges(states):
    model = OrdersModel()
    model.set_filter(BlotterFilter.ALL)
    model.set_orders(states)
    b, d = model.row_of("b"), model.row_of("d")
    assert model.data(model.index(b, COL["Filled"])) == "2/2"
    assert model.data(model.index(b, COL["Avg fill"])) == "1.45"  # 2.10 - 0.65 received per unit
    assert model.data(model.index(b, COL["Status"])) == "filled"
    assert model.data(model.index(b, COL["Comm+fees ($)"])) == f"{4 * (0.65 + 0.49):,.2f}"
    assert model.data(model.index(b, COL["Broker id"])) == "Pb"
    assert model.data(model.index(d, COL["Status"])) == "rejected"
    assert model.data(model.index(d, COL["Reason"])).startswith("refused by price_band")
    assert model.data(model.index(d, COL["Time (ET)"])) == "13 Mar 11:00:00"
    assert model.data(model.index(model.row_of("c"), COL["Filled"])) == "1/2"


def test_status_colours_are_distinct_and_painted(states):
    assert len(set(STATUS_COLOURS.values())) == len(OrderStatus)
    model = OrdersModel()
    model.set_filter(BlotterFilter.ALL)
    model.set_orders(states)
    for s in states:
        colour = model.data(model.index(model.row_of(s.ref), COL["Status"]), Qt.ItemDataRole.ForegroundRole)
        assert colour.name() == STATUS_COLOURS[s.status]


def test_upsert_repaints_inserts_and_removes_one_row(qtbot, states):
    model = OrdersModel()
    model.set_filter(BlotterFilter.WORKING)
    model.set_orders(states)
    assert model.rowCount() == 2
    with qtbot.waitSignal(model.rowsInserted) as inserted:
        model.upsert(_order("f", T0 + 40))
    assert inserted.args[1:] == [0, 0] and model.rowCount() == 3
    with qtbot.waitSignal(model.rowsRemoved) as removed:  # c fills completely: no longer working
        model.upsert(_order("c", T0 + 10, fill_units=2))
    assert removed.args[1:] == [2, 2] and _texts(model, "Ref") == ["f", "e"]
    with qtbot.waitSignal(model.dataChanged):
        model.upsert(_order("e", T0 + 30, fill_units=1))
    assert _texts(model, "Filled") == ["0/2", "1/2"]


def test_fills_model_lists_fills_by_leg(states):
    fills = FillsModel()
    fills.set_order(states[1])
    assert fills.rowCount() == 4
    legs = [fills.data(fills.index(r, 0)) for r in range(4)]
    assert legs == ["1", "1", "2", "2"]
    assert fills.data(fills.index(0, 1)) == "SPXW 15 Mar 24 5100 P"
    assert fills.data(fills.index(0, 2)) == "SELL" and fills.data(fills.index(2, 2)) == "BUY"
    assert fills.data(fills.index(0, 4)) == "2.10"


def test_natural_price_against_hand_computed_quotes():
    market = SimulatedMarket(SimulatorConfig(seed=5, start=datetime(2024, 3, 13, 11, 0, tzinfo=ET)))
    snap = market.advance(1.0).snapshot
    expiry = next(e.expiry for e in snap.expiries() if e.root is Root.SPXW and e.expiry > date(2024, 3, 13))
    k = round(snap.underlying_price * 0.98 / 5) * 5
    short, long = (OptionContract(Root.SPXW, expiry, k, Right.PUT), OptionContract(Root.SPXW, expiry, k - 25, Right.PUT))
    rs, rl = locate(snap, [short, long]).tolist()
    assert rs >= 0 and rl >= 0
    credit = float(snap.bid[rs]) - float(snap.ask[rl])  # sell the short at its bid, buy the long at its ask
    legs = (Leg(short, 1), Leg(long, -1))
    assert natural_price(legs, Side.SELL, {"SPX": snap}) == pytest.approx(credit)
    debit = float(snap.ask[rs]) - float(snap.bid[rl])  # buying it back: the short at its ask, the long at its bid
    assert natural_price(legs, Side.BUY, {"SPX": snap}) == pytest.approx(debit)
    assert natural_price(legs, Side.SELL, {}) != natural_price(legs, Side.SELL, {})  # NaN without a chain
