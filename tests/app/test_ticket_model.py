"""The order ticket's logic without widgets: entry points, package quotes, tick-rounded limits, figures.

Package prices are checked against hand-computed sums over a four-quote chain; figures against a put
credit vertical's textbook max profit / max loss at the limit.
"""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import pytest

from app.models.ticket_model import (PriceMode, TicketOrder, held_legs, limit_for, quote_order, snap_limit,
                                     step_limit)
from app.models.ticket_value import Greeks, TicketValue, order_figures, position_legs
from spx_core.domain import ET, ChainSnapshot, OptionContract, QuoteFlag, Right, Root
from spx_core.execution.fees import DEFAULT_FEES
from spx_core.execution.orders import Intent, OrderRequest, OrderType, Side, TimeInForce
from spx_core.strategies.builders import iron_condor, put_credit_vertical
from spx_core.strategies.structure import Leg

EXPIRY = date(2024, 3, 15)
NOW = datetime(2024, 3, 13, 10, 30, tzinfo=ET)


def _put(strike: float) -> OptionContract:
    return OptionContract(Root.SPXW, EXPIRY, strike, Right.PUT)


def _chain(quotes: dict[float, tuple[float, float]], flags: dict[float, int] | None = None) -> ChainSnapshot:
    """SPXW puts at these strikes with these (bid, ask)."""
    strikes = sorted(quotes)
    n = len(strikes)
    cols = {"bid": np.array([quotes[k][0] for k in strikes]), "ask": np.array([quotes[k][1] for k in strikes])}
    if flags is not None:
        cols["flags"] = np.array([flags.get(k, 0) for k in strikes], dtype=np.uint16)
    return ChainSnapshot.from_columns(underlying="SPX", time=NOW, underlying_price=5750.0, root=["SPXW"] * n,
                                      expiry=[EXPIRY] * n, strike=strikes, is_call=[False] * n, **cols)


CHAIN = _chain({5700: (10.10, 10.40), 5675: (7.60, 7.90), 5650: (5.70, 6.00), 5625: (4.20, 4.40)})


# --- entry points ------------------------------------------------------------------------------------------
def test_a_credit_vertical_from_the_scanner_is_sold_short_leg_first():
    vertical = put_credit_vertical(Root.SPXW, EXPIRY, 5700, 25)  # held: -1 5700P, +1 5675P
    order = TicketOrder.from_structure(vertical, source="scanner")
    assert order.side is Side.SELL
    assert order.legs == (Leg(_put(5700), 1), Leg(_put(5675), -1))  # IB's BAG form: short leg +1, SELL
    assert held_legs(order) == vertical.legs
    assert order.name == vertical.name and order.kind == "vertical" and order.combo


def test_one_contract_from_the_chain_and_a_closing_request_keep_their_terms():
    sell = TicketOrder.from_contract(_put(5700), "sell")
    assert sell.legs == (Leg(_put(5700), 1),) and sell.side is Side.SELL and not sell.combo
    request = OrderRequest(ref="spx-close-1", legs=(Leg(_put(5700), -1), Leg(_put(5675), 1)), side=Side.BUY,
                           quantity=3, limit=0.70, tif=TimeInForce.GTC, intent=Intent.CLOSE, trade_id=7,
                           name="25-wide put credit vertical", kind="vertical", source="positions")
    order = TicketOrder.from_request(request)
    # normalized: buying (-a, +b) for up to 0.70 is selling (+a, -b) for at least -0.70 (the same order)
    assert order.legs == (Leg(_put(5700), 1), Leg(_put(5675), -1)) and order.side is Side.SELL
    assert (order.quantity, order.limit, order.tif, order.intent, order.trade_id) == (3, -0.70, TimeInForce.GTC,
                                                                                      Intent.CLOSE, 7)
    built = order.request(limit=order.limit, ref="spx-close-1", snapshot=CHAIN)
    assert built.snapshot_checksum == CHAIN.checksum and built.created_ns == CHAIN.time_ns
    assert built.leg_quantity(0) == request.leg_quantity(0)  # the same contracts change hands


# --- quotes ----------------------------------------------------------------------------------------------
def test_package_quotes_are_the_hand_computed_sums():
    order = TicketOrder.from_structure(put_credit_vertical(Root.SPXW, EXPIRY, 5700, 25), source="scanner")
    q = quote_order(order, {"SPX": CHAIN})
    assert [(x.side, x.bid, x.ask) for x in q.legs] == [(Side.SELL, 10.10, 10.40), (Side.BUY, 7.60, 7.90)]
    assert q.bid == pytest.approx(10.10 - 7.90)  # sell the 5700 at its bid, buy the 5675 at its ask
    assert q.ask == pytest.approx(10.40 - 7.60)
    assert q.mid == pytest.approx(10.25 - 7.75)
    assert q.natural == pytest.approx(q.bid)  # a SELL crosses at the package bid
    assert q.snapshot is CHAIN and q.reason == ""
    buy = order.with_changes(side=Side.BUY)
    assert quote_order(buy, {"SPX": CHAIN}).natural == pytest.approx(q.ask)


def test_a_condor_four_legs_and_a_missing_leg_says_which():
    condor = iron_condor(Root.SPXW, EXPIRY, 5650, 5800, 25)
    order = TicketOrder.from_structure(condor, source="builder")
    q = quote_order(order, {"SPX": CHAIN})  # no calls listed
    assert math.isnan(q.mid) and "not listed" in q.reason and "5800" in q.reason
    assert quote_order(order, {}).legs[0].note == "no SPX chain in the feed"


def test_a_flagged_quote_is_priced_and_noted():
    chain = _chain({5700: (10.10, 14.40), 5675: (7.60, 7.90)}, flags={5700: int(QuoteFlag.WIDE)})
    q = quote_order(TicketOrder.from_contract(_put(5700), "buy"), {"SPX": chain})
    assert q.legs[0].note == "flagged: wide" and q.natural == 14.40  # the gate judges the price, not the ticket


# --- limits on the tick grid -------------------------------------------------------------------------------
@pytest.mark.parametrize(("price", "nearest", "up", "down"), [
    (2.93, 2.95, 3.00, 2.90), (2.98, 3.00, 3.10, 2.95), (3.04, 3.00, 3.10, 2.95), (3.10, 3.10, 3.20, 3.00),
    (0.05, 0.05, 0.10, 0.05),  # a single never goes below one tick
])
def test_single_leg_ticks_change_at_three_dollars(price, nearest, up, down):
    order = TicketOrder.from_contract(_put(5700), "buy")
    assert snap_limit(price, order) == pytest.approx(nearest)
    assert step_limit(price, order, 1) == pytest.approx(up)
    assert step_limit(price, order, -1) == pytest.approx(down)


def test_combo_ticks_are_five_cents_at_any_price_and_sign():
    order = TicketOrder.from_structure(put_credit_vertical(Root.SPXW, EXPIRY, 5700, 25), source="scanner")
    assert snap_limit(3.47, order) == pytest.approx(3.45)
    assert step_limit(3.45, order, 1) == pytest.approx(3.50)
    assert step_limit(0.05, order, -2) == pytest.approx(-0.05)  # a combo may go through zero
    assert step_limit(-0.05, order, -1) == pytest.approx(-0.10)


def test_price_modes():
    order = TicketOrder.from_structure(put_credit_vertical(Root.SPXW, EXPIRY, 5700, 25), source="scanner")
    chain = _chain({5700: (10.10, 10.46), 5675: (7.60, 7.90)})  # mid 10.28 - 7.75 = 2.53
    q = quote_order(order, {"SPX": chain})
    assert limit_for(order, q, PriceMode.MID) == pytest.approx(2.55)  # the nearest tick
    assert limit_for(order, q, PriceMode.NATURAL) == pytest.approx(10.10 - 7.90)
    assert limit_for(order, q, PriceMode.CUSTOM, 2.42) == pytest.approx(2.40)
    assert math.isnan(limit_for(order, quote_order(order, {}), PriceMode.MID))


# --- figures -----------------------------------------------------------------------------------------------
class _Value:
    """What value_structure reports for one unit of a 25-wide put credit vertical valued at a 2.50 mid."""

    mid, max_profit, max_loss, margin = 2.50, 250.0, 2250.0, 2250.0
    delta_usd, gamma_usd_1pct, vega_usd_volpt, theta_usd_day = 8.0, -1.0, -12.0, 30.0


def test_figures_at_the_limit_scale_with_price_and_quantity():
    order = TicketOrder.from_structure(put_credit_vertical(Root.SPXW, EXPIRY, 5700, 25), source="scanner")
    order = order.with_changes(quantity=2)
    q = quote_order(order, {"SPX": CHAIN})
    book = Greeks(100.0, 0.0, 50.0, -20.0)
    value = TicketValue(held_legs(order), _Value(), "", book, "")
    f = order_figures(order, q, 2.40, value, DEFAULT_FEES)  # sold 0.10 below the mid
    assert f.premium == pytest.approx(480.0)
    assert f.max_profit == pytest.approx(2 * 240.0) and f.max_loss == pytest.approx(2 * 2260.0)
    assert f.margin == pytest.approx(4500.0)
    assert f.after == Greeks(116.0, -2.0, 26.0, 40.0) and f.before == book
    commission, fees = DEFAULT_FEES.estimate([(_put(5700), -2, 10.25), (_put(5675), 2, 7.75)])  # 5700 sold
    assert fees == pytest.approx(2 * (0.45 + 0.045) + 2 * 0.00279 + 2 * (0.45 + 0.045))  # the TAF on the sale
    assert (f.commission, f.fees) == (commission, fees) and commission >= DEFAULT_FEES.order_minimum
    stale = order_figures(order.with_changes(side=Side.BUY), q, 2.40, value, DEFAULT_FEES)
    assert math.isnan(stale.max_loss)  # a value of other legs (the side flipped) is not used


def test_positions_become_legs_without_the_flat_ones():
    class P:
        def __init__(self, contract, quantity):
            self.contract, self.quantity = contract, quantity

    assert position_legs([P(_put(5700), -2), P(_put(5675), 0)]) == (Leg(_put(5700), -2),)


def test_a_market_order_has_no_limit():
    order = TicketOrder.from_contract(_put(5700), "buy").with_changes(order_type=OrderType.MKT)
    assert order.request(limit=1.0, snapshot=CHAIN).limit is None


def test_figure_texts_in_dollars_with_cents_for_charges_and_the_brokers_what_if():
    from app.models.ticket_text import figure_texts
    from app.models.ticket_value import OrderFigures
    from spx_core.execution.broker import WhatIf

    f = OrderFigures(480.0, 480.0, 4520.0, 4500.0, 2.6, 1.84, Greeks(16.0, -2.0, -24.0, 60.0),
                     Greeks(), Greeks(16.0, -2.0, -24.0, 60.0))
    texts = figure_texts(f, WhatIf(4500.0, 4500.0, 2.6, "paper (local rules)"))
    assert texts["max_profit"] == "+$480" and texts["max_loss"] == "-$4,520" and texts["margin"] == "$4,500"
    assert texts["commission"] == "$4.44 ($2.60 + $1.84 fees)"
    assert texts["what_if"] == "margin $4,500, commission $2.60 (paper (local rules))"
    assert texts["delta"] == "$0 → +$16" and texts["theta"] == "$0 → +$60"
    assert figure_texts(OrderFigures(0, 0, math.inf, 0, 0, 0, Greeks(), Greeks(), Greeks()))["max_loss"] == "unlimited"


def test_the_legs_model_passes_the_model_tester_and_shows_sides_and_notes(qtmodeltester):
    from app.models.ticket_legs import TicketColumn, TicketLegsModel

    model = TicketLegsModel()
    order = TicketOrder.from_structure(put_credit_vertical(Root.SPXW, EXPIRY, 5700, 25), source="scanner")
    model.set_lines(quote_order(order, {"SPX": CHAIN}).legs)
    qtmodeltester.check(model)
    row = [model.index(0, c).data() for c in range(model.columnCount())]
    assert row == ["Sell", "1", "SPXW 15Mar24 5700 P", "10.10", "10.40", "10.25", "ok"] and not model.has_notes()
    model.set_lines(quote_order(order, {"SPX": _chain({5700: (10.10, 10.40)})}).legs)  # the 5675 unlisted
    assert model.index(1, TicketColumn.NOTE).data() == "not listed" and model.index(1, TicketColumn.BID).data() == "–"
    assert model.has_notes()


def test_a_structure_bought_for_a_credit_opens_as_a_sell_at_a_positive_price():
    """An iron condor written long wings first would be a BUY at a negative price; with quotes it is SOLD."""
    strikes = {5600: (1.00, 1.10), 5625: (1.60, 1.70), 5900: (1.40, 1.50), 5925: (0.80, 0.90)}
    puts, calls = (5600, 5625), (5900, 5925)
    n = len(strikes)
    snap = ChainSnapshot.from_columns(
        underlying="SPX", time=NOW, underlying_price=5750.0, root=["SPXW"] * n, expiry=[EXPIRY] * n,
        strike=list(strikes), is_call=[k in calls for k in strikes], bid=[b for b, _ in strikes.values()],
        ask=[a for _, a in strikes.values()])
    condor = iron_condor(Root.SPXW, EXPIRY, puts[1], calls[0], 25)
    plain = TicketOrder.from_structure(condor, source="scanner")
    priced = TicketOrder.from_structure(condor, source="scanner", snapshots={"SPX": snap})
    assert plain.side is Side.BUY and priced.side is Side.SELL
    quote = quote_order(priced, {"SPX": snap})
    assert quote.mid > 0 and quote.natural > 0
    assert held_legs(priced) == held_legs(plain)  # the same position either way
