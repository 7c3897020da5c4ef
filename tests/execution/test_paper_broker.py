"""The paper broker: events, fills against hand-computed prices, partial fills, latency, rejects, fees, adopt.

Orders reach ``_submit`` / ``_modify`` directly here: the public ``submit`` takes an approval that only the
pre-trade gate mints (its own tests send through it); what is under test is the broker behind that door.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from spx_core.domain.calendar import ET, to_ns
from spx_core.domain.contracts import Root
from spx_core.execution.broker import BrokerError
from spx_core.execution.fill_model import FillModel
from spx_core.execution.orders import EventKind, OrderState, OrderStatus, Side, apply
from spx_core.execution.paper import PaperBroker
from spx_core.strategies.structure import Leg
from tests.execution.paper_market import (
    SECOND,
    T0,
    FakeMarket,
    chain,
    contract,
    iron_condor,
    put_vertical,
    request,
    requote,
)

THIRD_PARTY = 0.045  # OCC + ORF + CAT per contract
TAF = 0.00279  # FINRA Trading Activity Fee per contract sold


class Recorder:
    """The order service's part: fold every event into the order's state (illegal ones raise)."""

    def __init__(self) -> None:
        self.events = []
        self.states: dict[str, OrderState] = {}

    def add(self, req) -> None:
        self.states[req.ref] = OrderState.new(req)

    def __call__(self, event) -> None:
        self.events.append(event)
        self.states[event.ref] = apply(self.states[event.ref], event)

    def kinds(self, ref="r1"):
        return [e.status.value if e.kind is EventKind.STATUS else e.kind.value for e in self.events if e.ref == ref]

    def fills(self, ref="r1"):
        return [e.fill for e in self.events if e.ref == ref and e.kind is EventKind.FILL]


def make(market=None, **kwargs):
    market = market or FakeMarket(chain())
    broker = PaperBroker(market, **kwargs)
    rec = Recorder()
    broker.bind(rec)
    return broker, rec, market


def send(broker, rec, req):
    rec.add(req)
    broker._submit(req)
    return rec.states[req.ref]


# --- fills ---------------------------------------------------------------------------------------------------
def test_marketable_credit_vertical_fills_at_natural():
    broker, rec, _ = make()
    state = send(broker, rec, request(put_vertical(), Side.SELL, 5, 0.35))
    state = rec.states["r1"]
    assert rec.kinds() == ["submitted", "fill", "fill"]
    assert rec.events[0].broker_order_id == "P1"
    f0, f1 = rec.fills()
    assert (f0.side, f0.quantity, f0.price) == (Side.SELL, 5, 1.40)
    assert (f1.side, f1.quantity, f1.price) == (Side.BUY, 5, 1.00)
    assert state.status is OrderStatus.FILLED
    assert state.avg_fill_price == pytest.approx(0.40)
    assert broker.working_refs() == ()


def test_iron_condor_partial_by_size_then_the_rest():
    broker, rec, market = make()
    send(broker, rec, request(iron_condor(), Side.SELL, 10, 0.70))
    assert [f.price for f in rec.fills()] == [1.40, 1.00, 1.20, 0.80]
    assert [f.quantity for f in rec.fills()] == [8] * 4  # 4750C shows 8 on the bid
    assert rec.states["r1"].status is OrderStatus.PARTIALLY_FILLED
    broker.on_market()  # the same quotes: their size is used up
    assert len(rec.fills()) == 4
    market.update(chain(time_ns=T0 + SECOND))  # fresh size; still through the limit: the better price again
    broker.on_market()
    last = rec.fills()[4:]
    assert [(f.quantity, f.price) for f in last] == [(2, 1.40), (2, 1.00), (2, 1.20), (2, 0.80)]
    state = rec.states["r1"]
    assert state.status is OrderStatus.FILLED and state.filled == 10
    assert state.avg_fill_price == pytest.approx(0.80)
    assert len({f.exec_id for f in rec.fills()}) == 8


def test_vertical_at_mid_minus_k_spread_partial_by_size_then_the_rest_with_its_money_to_the_cent():
    # 4650P 1.40/1.50 (bid size 10), 4625P 0.90/1.00 (ask size 15); k = 0.30 of each leg's 0.10 spread:
    # the sold 4650P at 1.45 - 0.03 = 1.42, the bought 4625P at 0.95 + 0.03 = 0.98: 0.44, through the 0.40 limit
    broker, rec, market = make(fill_model=FillModel(mode="mid_offset", offset=0.30))
    send(broker, rec, request(put_vertical(), Side.SELL, 20, 0.40))
    assert [(f.side, f.quantity, f.price) for f in rec.fills()] == [(Side.SELL, 10, 1.42), (Side.BUY, 10, 0.98)]
    assert rec.states["r1"].status is OrderStatus.PARTIALLY_FILLED and rec.states["r1"].filled == 10
    market.update(chain(time_ns=T0 + SECOND))  # fresh displayed size: the other 10 at the same price
    broker.on_market()
    state = rec.states["r1"]
    assert (state.status, state.filled, state.avg_fill_price) == (OrderStatus.FILLED, 20, pytest.approx(0.44))
    # commission 20 x 0.65 per leg; fees per contract: Cboe 0.45 at 1.42, 0.36 at 0.98 (below $1), + 0.045, and
    # the TAF on the 20 contracts sold
    assert state.commission == pytest.approx(2 * 20 * 0.65)
    assert state.fees == pytest.approx(20 * (0.45 + THIRD_PARTY + TAF) + 20 * (0.36 + THIRD_PARTY))
    credit = sum(f.cash for f in state.fills)
    assert round(credit - state.commission - state.fees, 2) == round(20 * 44.0 - 26.0 - 18.0 - 20 * TAF, 2) == 835.94


@pytest.mark.parametrize(("mode", "price"), [("mid", 1.00), ("mid_offset", 0.88)])
def test_condor_in_mid_modes(mode, price):
    broker, rec, _ = make(fill_model=FillModel(mode=mode))
    send(broker, rec, request(iron_condor(), Side.SELL, 2, 0.80))
    assert rec.states["r1"].avg_fill_price == pytest.approx(price)


def test_resting_limit_fills_at_the_limit_when_crossed():
    broker, rec, market = make()
    send(broker, rec, request(put_vertical(), Side.SELL, 3, 0.60))  # natural 0.40: rests
    assert rec.kinds() == ["submitted"] and broker.working_refs() == ("r1",)
    market.update(requote({(4650, "P"): (1.50, 1.60, 10, 10)}, time_ns=T0 + SECOND))  # natural 0.50
    broker.on_market()
    assert rec.kinds() == ["submitted"]
    market.update(requote({(4650, "P"): (1.70, 1.80, 10, 10), (4625, "P"): (0.95, 1.05, 10, 10)},
                          time_ns=T0 + 2 * SECOND))  # natural 0.65 crosses 0.60
    broker.on_market()
    assert [f.price for f in rec.fills()] == [1.67, 1.07]  # legs sum to the limit (hand-split in the fill tests)
    assert rec.states["r1"].avg_fill_price == pytest.approx(0.60)


def test_latency_delays_the_first_look():
    broker, rec, market = make(latency_ns=SECOND // 2)
    send(broker, rec, request(put_vertical(), Side.SELL, 1, 0.35))
    assert rec.kinds() == ["submitted"]
    market.now = T0 + SECOND // 4
    broker.on_market()
    assert rec.kinds() == ["submitted"]
    market.update(requote({(4650, "P"): (1.45, 1.55, 10, 10)}, time_ns=T0 + SECOND // 2))
    broker.on_market()  # visible now, against the market of that instant: 1.45 - 1.00
    assert rec.states["r1"].avg_fill_price == pytest.approx(0.45)
    assert rec.fills()[0].time_ns == T0 + SECOND // 2


def test_market_order_fills_at_natural():
    broker, rec, _ = make(fill_model=FillModel(mode="mid"))
    send(broker, rec, request(iron_condor(), Side.BUY, 1, None))
    assert rec.states["r1"].avg_fill_price == pytest.approx(1.20)


# --- rejects -------------------------------------------------------------------------------------------------
def _reject_reason(req, market=None, *, kinds=("rejected",)) -> str:
    broker, rec, _ = make(market)
    send(broker, rec, req)
    assert rec.kinds(req.ref) == list(kinds)
    assert broker.working_refs() == ()
    reason = rec.states[req.ref].reason
    assert reason and "\n" not in reason
    return reason


def test_rejects_bad_ticks():
    single = (Leg(contract(4650, "P"), 1),)
    assert "0.10 steps; use 3.00 or 3.10" in _reject_reason(request(single, Side.BUY, 1, 3.05))
    assert "0.05 steps; use 1.45 or 1.50" in _reject_reason(request(single, Side.BUY, 1, 1.47))
    assert "combo" in _reject_reason(request(put_vertical(), Side.SELL, 1, 0.42))
    assert "a single option trades above 0" in _reject_reason(request(single, Side.BUY, 1, 0.0))
    assert "limit -0.05 is not a price" in _reject_reason(request(single, Side.BUY, 1, -0.05))


def test_spy_trades_in_pennies():
    spy = chain({(470, "P"): (1.41, 1.43, 10, 10)}, spot=470.0, root=Root.SPY)
    spy = type(spy).from_columns(underlying="SPY", time=T0, underlying_price=470.0, root=["SPY"],
                                 expiry=[spy.expiry[0]], strike=[470.0], is_call=[False], bid=[1.41], ask=[1.43],
                                 bid_size=[10], ask_size=[10])
    broker, rec, _ = make(FakeMarket(chain(), spy))
    send(broker, rec, request((Leg(contract(470, "P", root=Root.SPY), 1),), Side.BUY, 1, 1.43))
    assert rec.states["r1"].status is OrderStatus.FILLED
    fill = rec.fills()[0]
    assert fill.fees == pytest.approx(THIRD_PARTY)  # no Cboe SPX fee on SPY


def test_rejects_when_the_market_is_closed():
    evening = FakeMarket(chain(), now_ns=to_ns(datetime(2024, 1, 5, 16, 20, tzinfo=ET)))
    assert "closed at 16:15" in _reject_reason(request(put_vertical(), Side.SELL, 1, 0.40), evening)
    holiday = FakeMarket(chain(), now_ns=to_ns(datetime(2024, 1, 1, 11, 0, tzinfo=ET)))  # New Year
    assert "holiday" in _reject_reason(request(put_vertical(), Side.SELL, 1, 0.40), holiday)


def test_rejects_unknown_and_expired_contracts():
    odd = (Leg(contract(4651, "P"), 1), Leg(contract(4625, "P"), -1))
    assert "unknown contract: leg 1" in _reject_reason(request(odd, Side.SELL, 1, 0.40))
    assert "no SPX market data" in _reject_reason(request(put_vertical(), Side.SELL, 1, 0.40), FakeMarket())
    old = (Leg(contract(4650, "P", expiry=datetime(2024, 1, 4).date()), 1),)
    assert "expired" in _reject_reason(request(old, Side.BUY, 1, 1.50))


def test_rejects_another_account():
    assert "account 'U123'" in _reject_reason(request(put_vertical(), Side.SELL, 1, 0.40, account="U123"))


def test_market_order_with_a_bad_leg_is_rejected_naming_it():
    m = FakeMarket(requote({(4625, "P"): (0.90, float("nan"), 20, 0)}, time_ns=T0))
    # the exchange took it; its first look at the market (inside submit, no latency) finds no ask to buy
    reason = _reject_reason(request(put_vertical(), Side.SELL, 1, None), m, kinds=("submitted", "rejected"))
    assert "leg 2" in reason and "4625" in reason and "no ask" in reason


def test_limit_order_with_a_bad_leg_keeps_working():
    m = FakeMarket(requote({(4650, "P"): (1.60, 1.50, 10, 10)}, time_ns=T0))  # crossed
    broker, rec, market = make(m)
    send(broker, rec, request(put_vertical(), Side.SELL, 1, 0.40))
    assert rec.kinds() == ["submitted"]
    market.update(chain(time_ns=T0 + SECOND))
    broker.on_market()
    assert rec.states["r1"].status is OrderStatus.FILLED


# --- fees ----------------------------------------------------------------------------------------------------
def test_fees_of_a_condor_by_hand():
    broker, rec, _ = make()
    send(broker, rec, request(iron_condor(), Side.SELL, 8, 0.70))
    fills = rec.fills()
    assert [f.commission for f in fills] == pytest.approx([8 * 0.65] * 4)
    # premium >= $1: Cboe 0.45; the 0.80 leg: 0.36; the two short legs (1st, 3rd) pay the TAF
    assert [f.fees for f in fills] == pytest.approx([8 * (0.45 + THIRD_PARTY + TAF), 8 * (0.45 + THIRD_PARTY),
                                                     8 * (0.45 + THIRD_PARTY + TAF), 8 * (0.36 + THIRD_PARTY)])


def test_order_minimum_across_fills():
    broker, rec, _ = make()
    single = (Leg(contract(4775, "C"), 1),)
    send(broker, rec, request(single, Side.BUY, 1, 0.80))
    (fill,) = rec.fills()
    assert (fill.commission, fill.fees) == (pytest.approx(1.00), pytest.approx(0.36 + THIRD_PARTY))
    # a 1-lot vertical: the first leg pays the $1 minimum, the second only what passes it (0.30)
    send(broker, rec, request(put_vertical(), Side.SELL, 1, 0.40, ref="r2"))
    assert [f.commission for f in rec.fills("r2")] == pytest.approx([1.00, 0.30])
    assert rec.states["r2"].commission == pytest.approx(1.30)


# --- expiry, cancel, modify ----------------------------------------------------------------------------------
def test_day_order_expires_at_the_session_close():
    broker, rec, market = make()
    send(broker, rec, request(put_vertical(), Side.SELL, 1, 0.60))
    send(broker, rec, request(put_vertical(), Side.SELL, 1, 0.60, ref="gtc", tif="GTC"))
    market.now = to_ns(datetime(2024, 1, 5, 16, 14, tzinfo=ET))
    broker.on_market()
    assert rec.kinds() == ["submitted"]
    market.now = to_ns(datetime(2024, 1, 5, 16, 15, tzinfo=ET))
    broker.on_market()
    assert rec.kinds() == ["submitted", "expired"]
    assert broker.working_refs() == ("gtc",)
    # the GTC order waits through the night and expires with its contract
    market.now = to_ns(datetime(2024, 1, 12, 16, 0, tzinfo=ET))
    broker.on_market()
    assert rec.kinds("gtc")[-1] == "expired" and "stopped trading" in rec.states["gtc"].reason


def test_expire_is_callable_by_the_service():
    broker, rec, _ = make()
    send(broker, rec, request(put_vertical(), Side.SELL, 1, 0.60))
    assert broker.expire(to_ns(datetime(2024, 1, 5, 16, 15, tzinfo=ET))) == ["r1"]
    assert rec.states["r1"].status is OrderStatus.EXPIRED


def test_cancel():
    broker, rec, _ = make()
    send(broker, rec, request(put_vertical(), Side.SELL, 1, 0.60))
    broker.cancel("r1")
    assert rec.kinds() == ["submitted", "cancelled"]
    with pytest.raises(BrokerError, match="not working"):
        broker.cancel("r1")


def test_modify_to_a_marketable_price_fills():
    broker, rec, _ = make()
    req = request(put_vertical(), Side.SELL, 2, 0.60)
    send(broker, rec, req)
    broker._modify(req.with_terms(limit=0.35))
    assert rec.kinds() == ["submitted", "amend", "fill", "fill"]
    assert rec.states["r1"].avg_fill_price == pytest.approx(0.40)  # took the market's better price
    with pytest.raises(BrokerError, match="not working"):
        broker._modify(req.with_terms(limit=0.30))


def test_modify_refusals():
    broker, rec, _ = make()
    req = request(iron_condor(), Side.SELL, 10, 0.70)
    send(broker, rec, req)  # 8 filled
    with pytest.raises(BrokerError, match="off the tick"):
        broker._modify(req.with_terms(limit=0.72))
    with pytest.raises(BrokerError, match="below the 8 already filled"):
        broker._modify(req.with_terms(quantity=5))
    broker._modify(req.with_terms(quantity=8))  # cut to what filled: done
    assert rec.states["r1"].status is OrderStatus.FILLED and broker.working_refs() == ()


def test_a_ref_is_sent_once():
    broker, rec, _ = make()
    req = request(put_vertical(), Side.SELL, 1, 0.60)
    send(broker, rec, req)
    with pytest.raises(BrokerError, match="already sent"):
        broker._submit(req)


# --- determinism and restart ---------------------------------------------------------------------------------
def _scenario():
    broker, rec, market = make(latency_ns=SECOND // 10, fill_model=FillModel(mode="mid_offset"))
    send(broker, rec, request(iron_condor(), Side.SELL, 12, 0.80, ref="a"))
    send(broker, rec, request(put_vertical(), Side.SELL, 30, 0.45, ref="b"))
    for k in range(1, 5):
        market.update(requote({(4650, "P"): (1.40 + 0.05 * k, 1.50 + 0.05 * k, 10, 12)}, time_ns=T0 + k * SECOND))
        broker.on_market()
    return rec.events


def test_same_inputs_same_events():
    first, second = _scenario(), _scenario()
    assert first == second
    assert sum(e.kind is EventKind.FILL for e in first) > 4


def test_adopt_keeps_working_restored_orders():
    broker, rec, market = make()
    send(broker, rec, request(iron_condor(), Side.SELL, 10, 0.70))  # 8 of 10 filled, as P1
    restored = rec.states["r1"]
    pending = request(put_vertical(), Side.SELL, 1, 0.40, ref="p")
    rec.add(pending)
    after, rec2, _ = make(market)  # a restart: a new broker on the same market
    rec2.states = dict(rec.states)
    after.adopt([restored, rec.states["p"]])
    assert rec2.kinds("p") == ["rejected"] and "restart" in rec2.states["p"].reason
    assert after.working_refs() == ("r1",)
    market.update(chain(time_ns=T0 + SECOND))
    after.on_market()
    new = [e.fill for e in rec2.events if e.kind is EventKind.FILL]
    assert [f.quantity for f in new] == [2] * 4
    assert not {f.exec_id for f in new} & {f.exec_id for f in rec.fills()}
    assert rec2.states["r1"].status is OrderStatus.FILLED
    assert rec2.states["r1"].commission == pytest.approx(40 * 0.65)  # no second minimum
    send(after, rec2, request(put_vertical(), Side.SELL, 1, 0.40, ref="n"))
    assert rec2.events[-3].broker_order_id == "P3"  # ids continue past the adopted P1 (P2: the refused pending)


# --- what-if -------------------------------------------------------------------------------------------------
def test_what_if_margin_and_commission():
    broker, _, _ = make()
    w = broker.what_if(request(put_vertical(), Side.SELL, 2, 0.45))
    # 25 wide x $100 less the mid credit (1.45 - 0.95) x $100, per unit, x 2
    assert w.init_margin_change == pytest.approx((2500 - 50) * 2)
    assert w.commission == pytest.approx(4 * 0.65 + 4 * (0.45 + THIRD_PARTY) + 2 * TAF)  # 2 contracts sold
    close = broker.what_if(request(put_vertical(), Side.BUY, 2, 0.60, intent="close", trade_id=1))
    assert close.init_margin_change == pytest.approx(-(2500 - 50) * 2)
    assert broker.what_if(request((Leg(contract(4651, "P"), 1),), Side.BUY, 1, 1.0)).warning


def test_demo_clock_can_trade_outside_hours():
    evening = FakeMarket(chain(), now_ns=to_ns(datetime(2024, 1, 6, 22, 0, tzinfo=ET)))  # a Saturday night
    broker, rec, _ = make(evening, enforce_hours=False)
    send(broker, rec, request(put_vertical(), Side.SELL, 1, 0.40))
    assert rec.states["r1"].status is OrderStatus.FILLED


def test_quantity_only_modify_keeps_the_order_resting():
    broker, rec, market = make(latency_ns=SECOND // 10)
    req = request(put_vertical(), Side.SELL, 1, 0.60)
    send(broker, rec, req)
    market.now = T0 + SECOND // 10
    broker.on_market()  # seen by the market: rests, natural 0.40
    broker._modify(req.with_terms(quantity=2))  # next seen after the latency, the market having moved
    market.update(requote({(4650, "P"): (1.70, 1.80, 10, 10), (4625, "P"): (0.95, 1.05, 10, 10)},
                          time_ns=T0 + SECOND))  # natural 0.65 crosses 0.60: a resting order fills at its limit
    broker.on_market()
    assert rec.states["r1"].avg_fill_price == pytest.approx(0.60)
    assert rec.states["r1"].filled == 2


# --- the real Cboe DataShop chain of 2019-06-26 15:45 ET (figures read off the CSV rows by hand) ----------------
@pytest.fixture
def datashop(shared_data, tmp_path):
    from tests.surface.realdata import load_datashop

    snap = load_datashop(shared_data / "cboe_datashop" / "spxw20190626.csv", tmp_path)
    return FakeMarket(snap, now_ns=snap.time_ns)


def _legs(expiry, *strikes_rights_ratios):
    from datetime import date

    return tuple(Leg(contract(k, r, expiry=date.fromisoformat(expiry)), q) for k, r, q in strikes_rights_ratios)


@pytest.mark.shared_data
def test_real_0dte_vertical_buys_a_zero_bid_wing_at_its_ask(datashop):
    # 2915P bid 0.35 x 38, 2900P bid 0 / ask 0.05 x 723 (flagged zero bid: still bought at the ask)
    legs = _legs("2019-06-26", (2915, "P", 1), (2900, "P", -1))
    broker, rec, _ = make(datashop)
    send(broker, rec, request(legs, Side.SELL, 50, 0.30))
    fills = rec.fills()
    assert [(f.quantity, f.price) for f in fills] == [(38, 0.35), (38, 0.05)]
    assert [f.commission for f in fills] == pytest.approx([38 * 0.65, 38 * 0.50])  # 0.05 premium: $0.50 tier
    assert [f.fees for f in fills] == pytest.approx([38 * (0.36 + THIRD_PARTY + TAF), 38 * (0.36 + THIRD_PARTY)])
    assert rec.states["r1"].status is OrderStatus.PARTIALLY_FILLED


@pytest.mark.shared_data
@pytest.mark.parametrize(("mode", "price", "leg_prices"), [
    ("natural", 4.95, [5.50, 1.90, 1.55, 0.20]),
    ("mid", 5.17, [5.60, 1.85, 1.60, 0.18]),  # mid 5.175 received on the cent below; 2975C mid 0.175 -> 0.18
    ("mid_offset", 5.04, [5.54, 1.88, 1.57, 0.19]),  # 5.175 - 0.30 x (0.20 + 0.10 + 0.10 + 0.05)
])
def test_real_iron_condor(datashop, mode, price, leg_prices):
    # 2019-06-28: 2900P 5.50/5.70 (40), 2875P 1.80/1.90 (95), 2950C 1.55/1.65 (36), 2975C 0.15/0.20 (583)
    legs = _legs("2019-06-28", (2900, "P", 1), (2875, "P", -1), (2950, "C", 1), (2975, "C", -1))
    broker, rec, _ = make(datashop, fill_model=FillModel(mode=mode))
    send(broker, rec, request(legs, Side.SELL, 100, 4.50))
    fills = rec.fills()
    assert {f.quantity for f in fills} == {36}  # 2950C shows 36 on the bid
    assert [f.price for f in fills] == pytest.approx(leg_prices)
    assert rec.states["r1"].avg_fill_price == pytest.approx(price)


@pytest.mark.shared_data
def test_real_what_if_values_a_zero_bid_wing(datashop):
    legs = _legs("2019-06-26", (2915, "P", 1), (2900, "P", -1))
    broker, _, _ = make(datashop)
    w = broker.what_if(request(legs, Side.SELL, 2, 0.30))
    # 15 wide x $100 less the mid credit (0.425 - 0.025) x $100, x 2
    assert w.init_margin_change == pytest.approx((1500 - 40) * 2)
    assert w.warning == ""


def test_spx_vs_spy_pair_reads_each_leg_from_its_own_chain():
    spy = chain({(470, "P"): (1.41, 1.43, 10, 10)}, spot=470.0)
    spy = type(spy).from_columns(underlying="SPY", time=T0, underlying_price=470.0, root=["SPY"],
                                 expiry=[spy.expiry[0]], strike=[470.0], is_call=[False], bid=[1.41], ask=[1.43],
                                 bid_size=[25], ask_size=[10])
    legs = (Leg(contract(4650, "P"), 1), Leg(contract(470, "P", root=Root.SPY), -10))
    broker, rec, _ = make(FakeMarket(chain(), spy))
    # buy 4650P at its ask 1.50, sell 10 SPY 470P at their bid 1.41: 1.50 - 14.10 = -12.60 per unit;
    # sizes: SPX 12 on the ask, SPY 25 on the bid / 10 = 2 units
    send(broker, rec, request(legs, Side.BUY, 5, -12.60))
    fills = rec.fills()
    assert [(f.side, f.quantity, f.price) for f in fills] == [(Side.BUY, 2, 1.50), (Side.SELL, 20, 1.41)]
    assert rec.states["r1"].avg_fill_price == pytest.approx(-12.60)
