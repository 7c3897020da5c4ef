"""Expiry settlement with hand numbers: SPXW PM at the close, SPX AM at the SOQ, SPY auto-exercise in shares."""

from datetime import date, datetime

import pytest

from spx_core.domain.calendar import ET, to_ns
from spx_core.execution.orders import Side
from spx_core.portfolio.positions import Book, apply_fill
from spx_core.portfolio.settlement import (
    SettlementError,
    expiry_fills,
    settle,
    settlement_instant_ns,
    settlement_price,
    settlement_prices,
)
from tests.portfolio.helpers import T0, fill, opt

CLOSE_0105 = to_ns(datetime(2024, 1, 5, 16, 0, tzinfo=ET))
SPX_MONTHLY = date(2024, 1, 19)  # third Friday: AM-settled SPX
SOQ_0119 = to_ns(datetime(2024, 1, 19, 9, 30, tzinfo=ET))


def _book(*fills):
    book = Book()
    for f in fills:
        book.apply(f)
    return book


def test_spxw_pm_settles_at_the_close_at_intrinsic_with_no_commission(desk):
    ref = desk.order([(opt(4700), 1), (opt(4675), -1)], "sell", 1, limit=1.45)
    trade = desk.fill(ref, [3.00, 1.55], 1)
    book = _book(*desk.fills)
    prices = settlement_prices(spx_close=4690.0)
    assert expiry_fills(book.positions(), underlying_prices=prices, now_ns=CLOSE_0105 - 1) == []  # still trading
    fills = expiry_fills(book.positions(), underlying_prices=prices, now_ns=CLOSE_0105)
    by = {f.contract.strike: f for f in fills}
    assert (by[4700].side, by[4700].quantity, by[4700].price) == (Side.BUY, 1, 10.0)  # 4700 - 4690
    assert (by[4675].side, by[4675].price) == (Side.SELL, 0.0)  # out of the money: expires worthless
    assert all(f.commission == 0 and f.fees == 0 and f.time_ns == CLOSE_0105 for f in fills)
    assert by[4700].exec_id == "expiry:SPXW  240105P04700000"
    for f in fills:
        book.apply(f)
    assert book.positions() == []
    assert book.realized_pnl == pytest.approx((1.45 - 10.0) * 100)  # -855: the credit less the 10-point loss
    (settled,) = desk.ledger.on_settlement(by[4700])
    assert settled.quantity == 0 and settled.status == "open"  # the long leg has not settled yet
    (done,) = desk.ledger.on_settlement(by[4675])
    assert done.status == "closed" and done.realized_pnl == pytest.approx(-855.0) and trade.id == done.id


def test_spx_am_settles_at_the_opening_quotation_of_expiry_day():
    call = opt(4800, "C", root="SPX", expiry=SPX_MONTHLY)
    book = _book(fill(call, "buy", 2, 12.0))
    assert settlement_instant_ns(call) == SOQ_0119
    assert settlement_price("SPX", SPX_MONTHLY, index_close=4790.0, index_open_soq=4815.37) == 4815.37
    assert settlement_price("SPXW", SPX_MONTHLY, index_close=4790.0, index_open_soq=4815.37) == 4790.0
    with pytest.raises(SettlementError, match="AM-settled: pass index_open_soq"):
        settlement_price("SPX", SPX_MONTHLY, index_close=4790.0)
    # the day before (trading stopped at 16:15 ET on the 18th) the position is still open, gap risk and all
    prices = settlement_prices(spx_close=4790.0, spx_soq=4815.37)
    assert expiry_fills(book.positions(), underlying_prices=prices, now_ns=SOQ_0119 - 1) == []
    (f,) = expiry_fills(book.positions(), underlying_prices=prices, now_ns=SOQ_0119)
    assert (f.side, f.quantity, f.price, f.time_ns) == (Side.SELL, 2, pytest.approx(15.37), SOQ_0119)
    book.apply(f)
    assert book.realized_pnl == pytest.approx((15.37 - 12.0) * 2 * 100)


def test_spy_is_auto_exercised_in_the_money_by_a_cent_and_delivers_shares():
    exp = date(2024, 1, 5)
    long_call, short_put = opt(450, "C", root="SPY", expiry=exp), opt(455, "P", root="SPY", expiry=exp)
    cent_call, otm_put = opt(452, "C", root="SPY", expiry=exp), opt(452, "P", root="SPY", expiry=exp)
    book = _book(fill(long_call, "buy", 1, 1.00), fill(short_put, "sell", 2, 3.00), fill(cent_call, "sell", 3, 0.05),
                 fill(otm_put, "buy", 1, 0.10))
    result = settle(book.positions(), underlying_prices={"SPY": 452.01}, now_ns=CLOSE_0105)
    px = {f.contract: f.price for f in result.fills}
    assert px == {long_call: pytest.approx(2.01), short_put: pytest.approx(2.99), cent_call: pytest.approx(0.01),
                  otm_put: 0.0}
    # long call: +100 shares; short put assigned: +100 per contract; short call in the money by exactly $0.01:
    # assigned, -100 per contract; the out-of-the-money put expires with no delivery
    assert {d.contract: d.shares for d in result.deliveries} == {long_call: 100, short_put: 200, cent_call: -300}
    assert all(d.price == 452.01 and d.symbol == "SPY" and d.time_ns == CLOSE_0105 for d in result.deliveries)
    assert all(f.commission == 0 and f.fees == 0 for f in result.fills)
    # the long call: closing at intrinsic + buying the shares at the close = paying the $450 strike
    lc = next(d for d in result.deliveries if d.contract == long_call)
    assert lc.cash + px[long_call] * 100 == pytest.approx(-450 * 100)
    # and its P&L with the shares valued at the close: -$100 premium + $201 intrinsic
    assert (px[long_call] - 1.00) * 100 + lc.cash + lc.shares * 452.01 == pytest.approx(101.0)


@pytest.mark.parametrize("close", [452.005, 452.006, 452.009, 452.0099])
def test_spy_in_the_money_by_less_than_a_cent_is_not_exercised(close):
    call = opt(452, "C", root="SPY")
    result = settle(_book(fill(call, "buy", 1, 0.02)).positions(), underlying_prices={"SPY": close},
                    now_ns=CLOSE_0105)
    assert [f.price for f in result.fills] == [0.0] and result.deliveries == ()


@pytest.mark.parametrize(("close", "value"), [(452.01, 0.01), (452.0100001, 0.01), (452.02, 0.02)])
def test_spy_in_the_money_by_a_cent_or_more_is_exercised_though_floats_say_0_00999(close, value):
    put_ = opt(452.02, "P", root="SPY")  # 452.02 - 452.01 is 0.00999999999998 in binary floats
    call = opt(452, "C", root="SPY")
    for option, px in ((call, close), (put_, round(452.02 - (close - 452.0), 7))):
        result = settle(_book(fill(option, "buy", 1, 0.02)).positions(), underlying_prices={"SPY": px},
                        now_ns=CLOSE_0105)
        assert [f.price for f in result.fills] == [pytest.approx(value, abs=1e-6)]
        assert [d.shares for d in result.deliveries] == [100 if option.is_call else -100]


def test_an_expired_root_without_a_price_is_refused_or_skipped():
    book = _book(fill(opt(4700), "sell", 1, 2.0), fill(opt(450, "C", root="SPY"), "buy", 1, 1.0))
    with pytest.raises(SettlementError, match="SPY have no settlement price"):
        expiry_fills(book.positions(), underlying_prices={"SPXW": 4710.0}, now_ns=CLOSE_0105)
    fills = expiry_fills(book.positions(), underlying_prices={"SPX:PM": 4710.0}, now_ns=CLOSE_0105, missing="skip")
    assert [(f.contract.root.value, f.price) for f in fills] == [("SPXW", 0.0)]


def test_settled_position_keeps_day_and_total_pnl_consistent():
    p = apply_fill(None, fill(opt(4700), "sell", 1, 2.0, t=T0))
    (f,) = expiry_fills([p], underlying_prices={"SPXW": 4698.5}, now_ns=CLOSE_0105)
    p = apply_fill(p, f)
    assert not p.is_open and p.realized_pnl == pytest.approx(50.0)  # (2.00 - 1.50) x 100
