"""The order state machine: every legal transition, every illegal one refused, replay, fills and P&L."""

from __future__ import annotations

import itertools
import math
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spx_core.domain import OptionContract
from spx_core.execution.orders import (
    TRANSITIONS,
    EventKind,
    Fill,
    IllegalTransition,
    OrderError,
    OrderEvent,
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    Side,
    apply,
    new_ref,
    normalize_side,
    package_price,
    replay,
)
from spx_core.strategies.structure import Leg

EXP = date(2026, 12, 18)
P5800 = OptionContract("SPXW", EXP, 5800, "P")
P5775 = OptionContract("SPXW", EXP, 5775, "P")
C6000 = OptionContract("SPXW", EXP, 6000, "C")
C6025 = OptionContract("SPXW", EXP, 6025, "C")


def vertical(quantity: int = 2, limit: float = 1.45) -> OrderRequest:
    """SELL a 25-wide put credit vertical: short 5800P (+1 sold), long 5775P."""
    return OrderRequest(ref=new_ref(), legs=(Leg(P5800, 1), Leg(P5775, -1)), side=Side.SELL, quantity=quantity,
                        limit=limit, created_ns=1)


def status(state: OrderState, s: OrderStatus, t: int = 2, reason: str = "") -> OrderState:
    return apply(state, OrderEvent(state.ref, EventKind.STATUS, t, status=s, reason=reason))


def fill(state: OrderState, leg: int, qty: int, price: float, exec_id: str | None = None, t: int = 3) -> OrderState:
    req = state.request
    f = Fill(exec_id or f"e{len(state.fills)}", leg, req.legs[leg].contract, req.leg_side(leg), qty, price, t,
             commission=0.65 * qty, fees=0.47 * qty)
    return apply(state, OrderEvent(state.ref, EventKind.FILL, t, fill=f))


def reach(target: OrderStatus) -> OrderState:
    """A state in ``target`` reached by legal events only."""
    s = OrderState.new(vertical())
    if target is OrderStatus.PENDING:
        return s
    if target in (OrderStatus.REJECTED, OrderStatus.CANCELLED) and target in TRANSITIONS[OrderStatus.PENDING]:
        pass
    s = status(s, OrderStatus.SUBMITTED)
    if target is OrderStatus.SUBMITTED:
        return s
    if target is OrderStatus.PARTIALLY_FILLED:
        return fill(fill(s, 0, 1, 3.0), 1, 1, 1.55)
    if target is OrderStatus.FILLED:
        return fill(fill(s, 0, 2, 3.0), 1, 2, 1.55)
    return status(s, target)


def test_request_validation_names_the_problem():
    with pytest.raises(OrderError, match="quantity"):
        OrderRequest(ref="r", legs=(Leg(P5800, 1),), side="buy", quantity=0, limit=1.0)
    with pytest.raises(OrderError, match="limit"):
        OrderRequest(ref="r", legs=(Leg(P5800, 1),), side="buy", quantity=1, limit=math.nan)
    with pytest.raises(OrderError, match="market order"):
        OrderRequest(ref="r", legs=(Leg(P5800, 1),), side="buy", quantity=1, order_type=OrderType.MKT, limit=1.0)
    with pytest.raises(OrderError, match="twice"):
        OrderRequest(ref="r", legs=(Leg(P5800, 1), Leg(P5800, -1)), side="buy", quantity=1, limit=1.0)
    with pytest.raises(OrderError, match="trade_id"):
        OrderRequest(ref="r", legs=(Leg(P5800, 1),), side="buy", quantity=1, limit=1.0, intent="close")
    with pytest.raises(OrderError, match="no legs"):
        OrderRequest(ref="r", legs=(), side="buy", quantity=1, limit=1.0)


@pytest.mark.parametrize("old,new", [(a, b) for a in OrderStatus for b in OrderStatus if a is not b])
def test_every_status_transition_is_legal_or_refused(old, new):
    state = reach(old)
    legal = new in TRANSITIONS[old]
    fills_agree = new not in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED)
    if legal and fills_agree:
        assert status(state, new, reason="why").status is new
    else:
        with pytest.raises(IllegalTransition, match=state.ref):
            status(state, new)


def test_fill_driven_transitions_and_package_quantities():
    s = reach(OrderStatus.SUBMITTED)
    s = fill(s, 0, 1, 3.00)
    assert (s.status, s.filled, s.leg_filled) == (OrderStatus.PARTIALLY_FILLED, 0, (1, 0))
    s = fill(s, 1, 1, 1.55)
    assert (s.status, s.filled, s.remaining) == (OrderStatus.PARTIALLY_FILLED, 1, 1)
    assert s.avg_fill_price == pytest.approx(1.45)  # SELL: credit received per unit
    s = fill(fill(s, 0, 1, 3.10), 1, 1, 1.60)
    assert (s.status, s.filled, s.remaining) == (OrderStatus.FILLED, 2, 0)
    assert s.avg_fill_price == pytest.approx((1.45 + 1.50) / 2)
    assert s.commission == pytest.approx(0.65 * 4) and s.fees == pytest.approx(0.47 * 4)


def test_a_leg_filled_ahead_of_the_others_moves_its_own_average_not_the_package_price():
    s = fill(fill(reach(OrderStatus.SUBMITTED), 0, 1, 3.00), 1, 1, 1.55)  # one unit: 1.45
    s = fill(s, 0, 1, 3.10)  # the short leg of the second unit, its long leg not yet filled
    assert (s.filled, s.leg_filled) == (1, (2, 1))
    # the short leg averages 3.05, the long leg 1.55: dividing all the money by one unit said 4.55
    assert s.avg_fill_price == pytest.approx(3.05 - 1.55)


def test_illegal_fills_are_refused():
    with pytest.raises(IllegalTransition, match="pending"):
        fill(reach(OrderStatus.PENDING), 0, 1, 3.0)
    with pytest.raises(IllegalTransition, match="rejected"):
        fill(reach(OrderStatus.REJECTED), 0, 1, 3.0)
    with pytest.raises(IllegalTransition, match="overfills"):
        fill(reach(OrderStatus.SUBMITTED), 0, 3, 3.0)
    s = reach(OrderStatus.SUBMITTED)
    wrong_side = Fill("x", 0, P5800, Side.BUY, 1, 3.0, 3)
    with pytest.raises(IllegalTransition, match="sell"):
        apply(s, OrderEvent(s.ref, EventKind.FILL, 3, fill=wrong_side))
    wrong_leg = Fill("y", 0, C6000, Side.SELL, 1, 3.0, 3)
    with pytest.raises(IllegalTransition, match="not a leg"):
        apply(s, OrderEvent(s.ref, EventKind.FILL, 3, fill=wrong_leg))
    with pytest.raises(IllegalTransition, match="applied to order"):
        apply(s, OrderEvent("other", EventKind.STATUS, 3, status=OrderStatus.CANCELLED))


def test_repeated_exec_id_is_one_fill_and_repeated_status_is_a_no_op():
    s = fill(reach(OrderStatus.SUBMITTED), 0, 1, 3.0, exec_id="dup")
    assert fill(s, 0, 1, 3.0, exec_id="dup") == s
    again = status(reach(OrderStatus.SUBMITTED), OrderStatus.SUBMITTED, t=9)
    assert again.status is OrderStatus.SUBMITTED and again.updated_ns == 9


def test_late_fill_after_cancel_is_booked_and_status_stays():
    s = fill(reach(OrderStatus.CANCELLED), 0, 1, 3.0)
    assert s.status is OrderStatus.CANCELLED and s.leg_filled == (1, 0) and s.remaining == 0


def test_amend_rules():
    s = reach(OrderStatus.PARTIALLY_FILLED)  # 1 of 2 filled
    amended = apply(s, OrderEvent(s.ref, EventKind.AMEND, 5, limit=1.40))
    assert amended.limit == 1.40 and amended.request.limit == 1.45  # the request never changes
    with pytest.raises(IllegalTransition, match="below"):
        apply(s, OrderEvent(s.ref, EventKind.AMEND, 5, quantity=0))
    cut = apply(s, OrderEvent(s.ref, EventKind.AMEND, 5, quantity=1))
    assert cut.status is OrderStatus.FILLED  # cut to what is already filled
    for done in (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED):
        with pytest.raises(IllegalTransition, match="modify"):
            state = reach(done)
            apply(state, OrderEvent(state.ref, EventKind.AMEND, 5, limit=1.0))


def test_replay_rebuilds_the_same_state():
    req = vertical(quantity=3)
    events = [OrderEvent(req.ref, EventKind.STATUS, 2, status=OrderStatus.SUBMITTED, broker_order_id="P1"),
              OrderEvent(req.ref, EventKind.AMEND, 3, limit=1.40)]
    for i, (leg, price) in enumerate([(0, 3.0), (1, 1.6), (0, 3.1), (1, 1.7)]):
        c = req.legs[leg].contract
        events.append(OrderEvent(req.ref, EventKind.FILL, 4 + i, fill=Fill(f"x{i}", leg, c, req.leg_side(leg),
                                                                           1, price, 4 + i, 0.65, 0.47)))
    events.append(OrderEvent(req.ref, EventKind.STATUS, 9, status=OrderStatus.CANCELLED, reason="user"))
    state = OrderState.new(req)
    for e in events:
        state = apply(state, e)
    assert replay(req, events) == state
    assert (state.status, state.filled, state.broker_order_id, state.limit) == (OrderStatus.CANCELLED, 2, "P1", 1.40)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(1, 3), st.integers(5, 500)), min_size=1, max_size=12))
def test_cash_of_fills_net_of_costs_to_the_cent(raw):
    """Cash moved = sum of fill cash - commissions - fees, whatever the fill sequence."""
    req = vertical(quantity=10)
    s = OrderState.new(req)
    s = status(s, OrderStatus.SUBMITTED)
    expected_cents = 0
    for n, (leg, qty, cents) in enumerate(raw):
        room = 10 - s.leg_filled[leg]
        if room == 0:
            continue
        qty = min(qty, room)
        s = fill(s, leg, qty, cents / 100, exec_id=f"h{n}")
        sign = -1 if req.leg_side(leg) is Side.BUY else 1
        expected_cents += sign * qty * cents * 100 - round(qty * (0.65 + 0.47) * 100)
    total = sum(f.cash for f in s.fills) - s.commission - s.fees
    assert round(total * 100) == expected_cents


def test_normalize_side_and_package_price():
    legs, side = normalize_side((Leg(P5775, -2), Leg(P5800, 2)), Side.BUY)
    assert side is Side.SELL and legs == (Leg(P5775, 1), Leg(P5800, -1))
    condor = (Leg(P5775, 1), Leg(P5800, -1), Leg(C6000, -1), Leg(C6025, 1))
    assert normalize_side(condor, Side.BUY) == (condor, Side.BUY)  # no prices: first leg bought
    legs, side = normalize_side(condor, Side.BUY, prices=[1.0, 1.6, 1.5, 0.7])  # a credit: sell it
    assert side is Side.SELL and [leg.ratio for leg in legs] == [-1, 1, 1, -1]
    legs, side = normalize_side(condor, Side.SELL, prices=[1.0, 1.6, 1.5, math.nan])  # unpriced: first leg
    assert (legs, side) == (condor, Side.SELL)
    assert package_price([1, -1], [3.0, 1.55]) == pytest.approx(1.45)
    assert all(a is not b for a, b in itertools.pairwise([Side.BUY.opposite, Side.SELL.opposite]))
