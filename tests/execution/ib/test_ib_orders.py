"""IbBroker against the fake gateway at server versions 157 and 176: BAG orders, fills, modify, cancel, reject."""

from __future__ import annotations

import asyncio
import math

import pytest

from spx_core.domain.contracts import Root
from spx_core.execution.ib.contracts import ContractError, qualify
from spx_core.execution.orders import OrderRequest, OrderStatus, Side
from spx_core.strategies.structure import Leg
from tests.execution.ib.harness import (
    MONTHLY,
    VERSIONS,
    Session,
    credit_vertical,
    put,
    run,
)
from tests.fakes.ib_book import BAG_CON_ID

pytestmark = pytest.mark.parametrize("version", VERSIONS)


def test_qualify_spx_and_spxw_legs_on_a_third_friday(version, ib_client_errors):
    ib_client_errors.allow(200)

    async def body(s: Session) -> None:
        spx, spxw = put(5800, MONTHLY, Root.SPX), put(5800, MONTHLY, Root.SPXW)
        a, b = await qualify(s.conn.ib, [spx, spxw])  # same strike and date in both classes: told apart
        assert a.conId and b.conId and a.conId != b.conId
        assert (a.tradingClass, b.tradingClass) == ("SPX", "SPXW")
        with pytest.raises(ContractError, match="does not list SPXW 2026-12-04 5801P"):
            await qualify(s.conn.ib, [put(5750), put(5801)])

    run(version, body)


def test_marketable_bag_fills_per_leg_with_commissions(version):
    async def body(s: Session) -> None:
        s.submit(credit_vertical("r-fill", 5750, 5725, limit=0.05, quantity=2))
        state = await s.status("r-fill", OrderStatus.FILLED)
        assert s.kinds("r-fill")[0] == ("status", "submitted")
        fills = s.fills("r-fill")
        assert len(fills) == 2  # the two legs; the BAG summary execution is not a fill
        assert {(f.leg, f.side, f.quantity) for f in fills} == {(0, Side.SELL, 2), (1, Side.BUY, 2)}
        assert all(math.isclose(f.commission, 2 * 0.65) for f in fills)
        assert state.avg_fill_price > 0.05  # a credit at the natural price, better than the limit
        assert state.perm_id and state.broker_order_id

    s = run(version, body)
    (placed,) = s.gw.placed_orders()
    assert "r-fill" in placed  # our ref travels as orderRef


def test_partial_fill_then_rest(version):
    async def body(s: Session) -> None:
        s.gw.partial_fill_next(1)
        s.submit(credit_vertical("r-part", 5700, 5675, limit=3.0, quantity=3))
        state = await s.status("r-part", OrderStatus.PARTIALLY_FILLED)
        await s.until(lambda: s.states["r-part"].filled == 1 and len(s.fills("r-part")) == 2)
        order_id = int(state.broker_order_id)
        s.gw.fill_order(order_id)
        state = await s.status("r-part", OrderStatus.FILLED)
        assert state.filled == 3 and math.isclose(state.avg_fill_price, 3.0)

    run(version, body)


def test_modify_resting_combo_resends_the_echoed_contract(version):
    async def body(s: Session) -> None:
        s.submit(credit_vertical("r-mod", 5650, 5625, limit=5.0))  # far more credit than the market: rests
        state = await s.status("r-mod", OrderStatus.SUBMITTED)
        s.broker._modify(state.request.with_terms(limit=4.5, quantity=2))
        await s.until(lambda: s.states["r-mod"].limit == 4.5, what="amend")
        assert s.states["r-mod"].quantity == 2
        (record,) = s.gw.orders()
        assert record.is_live and math.isclose(abs(record.lmt_price), 4.5) and record.quantity == 2
        modify = s.gw.placed_orders()[-1]
        assert str(BAG_CON_ID) in modify  # re-sent as TWS echoed it (conId of the combo)
        assert s.states["r-mod"].status is OrderStatus.SUBMITTED

    run(version, body)


def test_modify_refused_105_falls_back_to_cancel_and_replace(version, ib_client_errors):
    ib_client_errors.allow(105, 202)

    async def body(s: Session) -> None:
        s.submit(credit_vertical("r-105", 5650, 5625, limit=5.0, quantity=2))
        state = await s.status("r-105", OrderStatus.SUBMITTED)
        t = s.broker.tracker.orders["r-105"]
        t.echoed = None  # as if TWS's echo was never seen: the modify goes with our own BAG and gets 105
        s.broker._modify(state.request.with_terms(limit=4.0))
        await s.until(lambda: s.states["r-105"].limit == 4.0, what="amend after replace")
        orders = sorted(s.gw.orders(), key=lambda o: o.order_id)
        assert [o.status for o in orders] == ["Cancelled", "Submitted"]
        assert math.isclose(abs(orders[1].lmt_price), 4.0) and orders[1].quantity == 2 and orders[1].order_ref == "r-105"
        # the old order's cancel is the replace's confirmation, not our order's end
        assert s.states["r-105"].status is OrderStatus.SUBMITTED
        assert ("status", "cancelled") not in s.kinds("r-105")
        s.broker._cancel("r-105")
        await s.status("r-105", OrderStatus.CANCELLED)

    run(version, body)


def test_cancel_is_confirmed_by_tws(version, ib_client_errors):
    ib_client_errors.allow(202)

    async def body(s: Session) -> None:
        s.submit(credit_vertical("r-cxl", 5650, 5625, limit=5.0))
        await s.status("r-cxl", OrderStatus.SUBMITTED)
        s.broker._cancel("r-cxl")
        state = await s.status("r-cxl", OrderStatus.CANCELLED)
        assert state.reason
        assert s.kinds("r-cxl").count(("status", "cancelled")) == 1

    run(version, body)


def test_cancel_by_tws_says_why(version, ib_client_errors):
    ib_client_errors.allow(202)

    async def body(s: Session) -> None:
        s.submit(credit_vertical("r-tws", 5650, 5625, limit=5.0))
        state = await s.status("r-tws", OrderStatus.SUBMITTED)
        s.gw.cancel_order(int(state.broker_order_id), reason="Margin check failed")
        state = await s.status("r-tws", OrderStatus.CANCELLED)
        assert "Margin check failed" in state.reason  # the 202 after the Cancelled status carries the why

    run(version, body)


def test_reject_201_with_the_text(version, ib_client_errors):
    ib_client_errors.allow(201)

    async def body(s: Session) -> None:
        s.gw.reject_next(text="Order rejected - reason:Outside the price band")
        s.submit(credit_vertical("r-rej", 5750, 5725, limit=0.05))
        state = await s.status("r-rej", OrderStatus.REJECTED)
        assert "201" in state.reason and "Outside the price band" in state.reason

    run(version, body)


def test_unknown_leg_is_rejected_without_sending(version, ib_client_errors):
    ib_client_errors.allow(200)

    async def body(s: Session) -> None:
        s.submit(credit_vertical("r-unk", 5750, 5726, limit=0.05))
        state = await s.status("r-unk", OrderStatus.REJECTED)
        assert "does not list" in state.reason

    s = run(version, body)
    assert s.gw.placed_orders() == []


def test_what_if_margin_and_commission(version):
    async def body(s: Session) -> None:
        s.gw.set_what_if(init_margin_change=2500.0, maint_margin_change=2400.0, commission=2.6)
        request = credit_vertical("r-wi", 5750, 5725, limit=1.0, quantity=1)
        assert s.broker.what_if(request) is None  # not asked yet: asked in the background
        wi = await s.broker.what_if_async(request)
        assert (wi.init_margin_change, wi.maint_margin_change, wi.commission) == (2500.0, 2400.0, 2.6)
        assert s.broker.what_if(request) == wi
        await asyncio.sleep(0.05)
        assert s.events == [] and s.gw.orders() == []  # nothing was placed

    run(version, body)


def test_order_rate_limit_rejects_the_excess(version):
    async def body(s: Session) -> None:
        s.submit(credit_vertical("r-a", 5650, 5625, limit=5.0))
        s.submit(credit_vertical("r-b", 5650, 5625, limit=5.0))
        state = await s.status("r-b", OrderStatus.REJECTED)
        assert "1 orders/minute" in state.reason
        await s.status("r-a", OrderStatus.SUBMITTED)

    s = run(version, body, settings={"orders_per_minute": 1})
    assert len(s.gw.placed_orders()) == 1


def test_messages_are_paced(version):
    async def body(s: Session) -> None:
        for i in range(12):  # 12 single-put orders: a contract lookup and a placeOrder each
            s.submit(OrderRequest(ref=f"r-p{i}", legs=(Leg(put(5500 + 5 * i), 1),), side=Side.BUY, quantity=1,
                                  limit=0.05, broker="ib"))
        await s.until(lambda: all(s.states[f"r-p{i}"].status is not OrderStatus.PENDING for i in range(12)),
                      timeout=5, what="all acknowledged")

    s = run(version, body, settings={"messages_per_second": 20.0, "orders_per_minute": 100})
    assert s.gw.count(3) == 12
    assert s.gw.max_rate(1.0, {3, 9}) <= 22


def test_what_if_is_asked_once_per_terms_while_tws_has_not_answered(version):
    """The ticket asks for the what-if on every refresh (twice a second) until TWS answers: one request goes out
    per set of terms, and a what-if TWS refused is an answer too (it is not asked again and again)."""
    async def body(s: Session) -> None:
        s.gw.set_what_if(init_margin_change=2500.0, maint_margin_change=2400.0, commission=2.6)
        request = credit_vertical("r-wi1", 5750, 5725, limit=1.0)
        for _ in range(5):
            assert s.broker.what_if(request) is None
            await asyncio.sleep(0)
        await s.until(lambda: s.broker.what_if(request) is not None, what="what-if answer")
        assert len(s.gw.placed_orders()) == 1
        refused = credit_vertical("r-wi2", 5700, 5675, limit=1.0)
        s.broker.ib.whatIfOrderAsync = _refusing_what_if
        for _ in range(3):
            s.broker.what_if(refused)
            await asyncio.sleep(0.02)
        answer = s.broker.what_if(refused)
        assert answer is not None and math.isnan(answer.init_margin_change) and "refused" in answer.warning
        assert _refusing_what_if.calls == 1

    _refusing_what_if.calls = 0
    run(version, body)


async def _refusing_what_if(contract, order):
    """ib_insync/ib_async answer a what-if TWS refused with an empty list (the refusal is an error message)."""
    _refusing_what_if.calls += 1
    return []


def test_a_refused_modify_or_cancel_leaves_the_order_working_whatever_the_library_says(version, ib_client_errors):
    """TWS refuses a modify (110: off the tick grid) and then a cancel (161: not cancellable now) and keeps the
    order working. ib_insync marks its local trade Cancelled on the 161 (an error, not a warning, to it). Our
    state comes from TWS's reports only: still working at its old terms, and it fills at them."""
    ib_client_errors.allow(110, 161, "Canceled order")

    async def body(s: Session) -> None:
        s.submit(credit_vertical("r-110", 5650, 5625, limit=5.0))
        state = await s.status("r-110", OrderStatus.SUBMITTED)
        order_id = int(state.broker_order_id)
        s.broker._modify(state.request.with_terms(limit=4.97))  # the gate would refuse it; TWS does here
        await s.until(lambda: s.broker.tracker.orders["r-110"].modify is None, what="modify refused")
        assert s.states["r-110"].reason.startswith("modify to 4.97 x 1 refused by TWS (error 110: ")
        assert s.states["r-110"].reason.endswith("works on at 5 x 1")
        s.gw.session_for(17).error(order_id, 161, "Cancel attempted when order is not in a cancellable state.")
        local = next(t for t in s.conn.ib.trades() if t.order.orderId == order_id)
        await s.until(lambda: local.orderStatus.status == "Cancelled", what="the library's belief")
        await asyncio.sleep(0.05)
        assert s.states["r-110"].status is OrderStatus.SUBMITTED and s.states["r-110"].limit == 5.0
        assert [o.status for o in s.gw.orders()] == ["Submitted"]
        s.gw.fill_order(order_id)
        filled = await s.status("r-110", OrderStatus.FILLED)
        assert filled.filled == 1 and len(s.fills("r-110")) == 2

    run(version, body)
