"""The fill model against hand-computed natural / mid / mid-offset prices (tests/execution/paper_market.py)."""

from __future__ import annotations

import pytest

from spx_core.domain.quotes import QuoteFlag
from spx_core.execution.fill_model import (
    FillMode,
    FillModel,
    LegQuotes,
    SizeBook,
    allocate_leg_prices,
    mid_price,
    natural_price,
)
from spx_core.execution.orders import OrderType, Side
from spx_core.strategies.structure import Leg
from tests.execution.paper_market import (
    FakeMarket,
    chain,
    contract,
    iron_condor,
    put_vertical,
    requote,
)

MARKET = FakeMarket(chain())


def quotes(legs, market=MARKET) -> LegQuotes:
    return LegQuotes.from_market(legs, market)


def decide(model, legs, side, limit, *, resting=False, wanted=1, market=MARKET, order_type=OrderType.LMT,
           sizes=None):
    return model.decide(legs, side, quotes(legs, market), order_type=order_type, limit=limit, resting=resting,
                        wanted=wanted, sizes=sizes)


def test_natural_and_mid_by_hand():
    v, ic = put_vertical(), iron_condor()
    # sell the vertical: 4650P at its bid 1.40, buy 4625P at its ask 1.00
    assert natural_price(v, Side.SELL, quotes(v)) == pytest.approx(0.40)
    assert natural_price(v, Side.BUY, quotes(v)) == pytest.approx(1.50 - 0.90)
    assert mid_price(v, quotes(v)) == pytest.approx(1.45 - 0.95)
    # the condor: 1.40 - 1.00 + 1.20 - 0.80 sold; mids 1.45 - 0.95 + 1.25 - 0.75
    assert natural_price(ic, Side.SELL, quotes(ic)) == pytest.approx(0.80)
    assert mid_price(ic, quotes(ic)) == pytest.approx(1.00)


@pytest.mark.parametrize(("mode", "legs", "limit", "price", "leg_prices"), [
    (FillMode.NATURAL, put_vertical(), 0.35, 0.40, (1.40, 1.00)),
    (FillMode.MID, put_vertical(), 0.40, 0.50, (1.45, 0.95)),
    # mid -/+ 0.30 x each leg's 0.10 spread: sold 1.45 - 0.03, bought 0.95 + 0.03 -> 0.44
    (FillMode.MID_OFFSET, put_vertical(), 0.40, 0.44, (1.42, 0.98)),
    (FillMode.NATURAL, iron_condor(), 0.70, 0.80, (1.40, 1.00, 1.20, 0.80)),
    (FillMode.MID, iron_condor(), 0.95, 1.00, (1.45, 0.95, 1.25, 0.75)),
    # 1.00 - 0.30 x (4 x 0.10)
    (FillMode.MID_OFFSET, iron_condor(), 0.85, 0.88, (1.42, 0.98, 1.22, 0.78)),
])
def test_marketable_sell_fills_at_the_better_of_limit_and_model(mode, legs, limit, price, leg_prices):
    d = decide(FillModel(mode=mode), legs, Side.SELL, limit)
    assert d.units == 1
    assert d.price == pytest.approx(price)
    assert d.leg_prices == pytest.approx(leg_prices)
    assert sum(leg.ratio * p for leg, p in zip(legs, d.leg_prices, strict=True)) == pytest.approx(price, abs=1e-12)


def test_buying_the_condor_pays_the_ask_side():
    ic = iron_condor()
    d = decide(FillModel(), ic, Side.BUY, 1.20)  # buy back: 1.50 - 0.90 + 1.30 - 0.70 = 1.20
    assert (d.units, d.price) == (1, pytest.approx(1.20))
    assert d.leg_prices == pytest.approx((1.50, 0.90, 1.30, 0.70))
    assert decide(FillModel(), ic, Side.BUY, 1.15).units == 0


def test_limit_short_of_the_model_does_not_fill():
    d = decide(FillModel(), put_vertical(), Side.SELL, 0.45)
    assert d.units == 0 and d.through is False
    assert "0.40" in d.reason and "0.45" in d.reason


def test_resting_order_fills_at_its_limit_with_legs_summing_to_it():
    # the market moved: natural 1.70 - 1.05 = 0.65 through a resting 0.60
    moved = FakeMarket(requote({(4650, "P"): (1.70, 1.80, 10, 10), (4625, "P"): (0.95, 1.05, 10, 10)}, time_ns=1))
    d = decide(FillModel(), put_vertical(), Side.SELL, 0.60, resting=True, market=moved)
    assert d.price == pytest.approx(0.60)
    # the 0.05 gap moved onto the legs in proportion to their prices: 1.70 - 0.05*1.70/2.75, 1.05 + 0.05*1.05/2.75
    assert d.leg_prices == pytest.approx((1.67, 1.07))


def test_mid_on_the_cent_adverse_to_the_order():
    # mid 1.475 - 0.95 = 0.525: a SELL receives 0.52, a BUY pays 0.53
    m = FakeMarket(requote({(4650, "P"): (1.40, 1.55, 10, 10)}, time_ns=1))
    v = put_vertical()
    sell = decide(FillModel(mode="mid"), v, Side.SELL, 0.50, market=m)
    buy = decide(FillModel(mode="mid"), v, Side.BUY, 0.60, market=m)
    assert sell.price == pytest.approx(0.52) and buy.price == pytest.approx(0.53)
    for d in (sell, buy):
        assert round((d.leg_prices[0] - d.leg_prices[1]) * 100) == round(d.price * 100)
        assert all(round(p * 100, 9) == round(p * 100) for p in d.leg_prices)


def test_single_leg_mid_lands_on_the_exchange_tick():
    m = FakeMarket(requote({(4650, "P"): (1.40, 1.55, 10, 10)}, time_ns=1))
    leg = (Leg(contract(4650, "P"), 1),)
    assert decide(FillModel(mode="mid"), leg, Side.BUY, 1.60, market=m).price == pytest.approx(1.50)
    assert decide(FillModel(mode="mid"), leg, Side.SELL, 1.40, market=m).price == pytest.approx(1.45)


def test_market_order_uses_the_natural_price_in_every_mode():
    d = decide(FillModel(mode="mid"), put_vertical(), Side.SELL, None, order_type=OrderType.MKT)
    assert d.price == pytest.approx(0.40)


def test_size_caps_the_fill_and_is_used_up_per_snapshot():
    ic, sizes = iron_condor(), SizeBook()
    d = decide(FillModel(), ic, Side.SELL, 0.70, wanted=10, sizes=sizes)
    assert d.units == 8  # 4750C bid size 8 is the smallest of 10 / 15 / 8 / 30
    q = quotes(ic)
    for i in range(4):
        sizes.take(q.books[i], int(q.rows[i]), i % 2 == 1, 8)
    assert decide(FillModel(), ic, Side.SELL, 0.70, wanted=2, sizes=sizes).units == 0
    # a new snapshot shows fresh size
    fresh = FakeMarket(chain(time_ns=MARKET.now + 1))
    assert decide(FillModel(), ic, Side.SELL, 0.70, wanted=2, sizes=sizes, market=fresh).units == 2
    assert decide(FillModel(limit_by_size=False), ic, Side.SELL, 0.70, wanted=500).units == 500


def test_ratio_legs_size_in_units():
    fly = (Leg(contract(4600, "P"), 1), Leg(contract(4625, "P"), -2), Leg(contract(4650, "P"), 1))
    # buy: 4600P ask size 50, 4625P bid size 20 / 2 = 10, 4650P ask size 12
    assert FillModel().available_units(fly, Side.BUY, quotes(fly)) == 10


@pytest.mark.parametrize(("change", "words"), [
    ({(4625, "P"): (0.90, float("nan"), 20, 0)}, "leg 2"),  # no ask on the leg we buy
    ({(4650, "P"): (0.0, 1.50, 0, 12)}, "no bid"),  # zero bid on the leg we sell
    ({(4650, "P"): (1.60, 1.50, 10, 12)}, "crossed"),
])
def test_bad_quotes_do_not_fill(change, words):
    m = FakeMarket(requote(change, time_ns=1))
    d = decide(FillModel(), put_vertical(), Side.SELL, 0.05, market=m)
    assert d.units == 0 and d.through is None
    assert words in d.reason


def test_flagged_and_unlisted_legs_do_not_fill():
    stale = FakeMarket(chain(quote_time=[0] * len(chain())))
    d = decide(FillModel(), put_vertical(), Side.SELL, 0.05, market=stale)
    assert d.units == 0 and "stale" in d.reason
    assert decide(FillModel(blocking_flags=QuoteFlag.NONE), put_vertical(), Side.SELL, 0.05, market=stale).units == 1
    odd = (Leg(contract(4651, "P"), 1), Leg(contract(4625, "P"), -1))
    assert "not listed" in decide(FillModel(), odd, Side.SELL, 0.05).reason
    assert "no SPX market data" in decide(FillModel(), odd, Side.SELL, 0.05, market=FakeMarket()).reason


def test_allocation_handles_ratios_without_a_unit_leg():
    legs = allocate_leg_prices([2, -3], [1.003, 0.501], 0.51)
    assert 2 * round(legs[0] * 100) - 3 * round(legs[1] * 100) == 51


@pytest.mark.parametrize("bad", [{"mode": "vwap"}, {"offset": 0.7}, {"offset": -0.1}, {"missing_size": 0}])
def test_model_is_validated(bad):
    with pytest.raises(ValueError):
        FillModel(**bad)
