"""Settlement from the watched market: the close for PM roots, the opening print for AM SPX, never a guess."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from spx_core.domain import ET, OptionContract
from spx_core.domain.calendar import to_ns
from spx_core.portfolio.positions import Position
from spx_core.portfolio.settlement_watch import SettlementWatch

FRIDAY = date(2026, 12, 18)  # third Friday: SPX AM monthly and SPXW PM on the same date
SPXW_PUT = OptionContract("SPXW", FRIDAY, 5800, "P")
SPX_CALL = OptionContract("SPX", FRIDAY, 5800, "C")
SPY_CALL = OptionContract("SPY", FRIDAY, 580, "C")


def at(d: date, hh: int, mm: int, ss: int = 0) -> int:
    return to_ns(datetime(d.year, d.month, d.day, hh, mm, ss, tzinfo=ET))


def watch_day(watch: SettlementWatch, symbol: str, d: date, path: dict[tuple[int, int], float]) -> None:
    for (hh, mm), price in sorted(path.items()):
        watch.observe(symbol, at(d, hh, mm), price)


def test_spxw_settles_to_the_last_price_at_the_close():
    watch = SettlementWatch()
    watch_day(watch, "SPX", FRIDAY, {(15, 0): 5810.0, (15, 59): 5790.0, (16, 0): 5785.5})
    short_put = Position(SPXW_PUT, quantity=-2, avg_cost=12.0)
    due = watch.settle_due([short_put], at(FRIDAY, 16, 0))
    (fill,) = due.fills
    assert (fill.price, fill.quantity, fill.side.value) == (pytest.approx(14.5), 2, "buy")  # 5800 - 5785.5
    assert due.unresolved == () and due.deliveries == ()
    assert watch.settle_due([short_put], at(FRIDAY, 15, 59)).fills == ()  # not before the close


def test_spx_am_settles_to_the_opening_print_not_the_previous_close():
    watch = SettlementWatch()
    thursday = FRIDAY - timedelta(days=1)
    watch_day(watch, "SPX", thursday, {(16, 0): 5790.0, (16, 15): 5791.0})
    long_call = Position(SPX_CALL, quantity=1, avg_cost=20.0)
    assert watch.settle_due([long_call], at(FRIDAY, 9, 30)).unresolved == ()  # the opening print may still come
    watch_day(watch, "SPX", FRIDAY, {(9, 30): 5842.25, (9, 31): 5850.0})
    (fill,) = watch.settle_due([long_call], at(FRIDAY, 9, 31)).fills
    assert fill.price == pytest.approx(42.25) and fill.side.value == "sell"


def test_a_close_that_was_not_watched_leaves_the_position_open_and_says_so():
    watch = SettlementWatch()
    watch_day(watch, "SPX", FRIDAY, {(14, 0): 5790.0})
    monday = FRIDAY + timedelta(days=3)
    watch_day(watch, "SPX", monday, {(9, 30): 5700.0})
    due = watch.settle_due([Position(SPXW_PUT, quantity=-1, avg_cost=5.0)], at(monday, 9, 30))
    assert due.fills == () and due.unresolved == (SPXW_PUT,)


def test_spy_in_the_money_is_exercised_into_shares():
    watch = SettlementWatch()
    watch_day(watch, "SPY", FRIDAY, {(15, 58): 583.0, (15, 59, ): 582.40})
    due = watch.settle_due([Position(SPY_CALL, quantity=3, avg_cost=1.0)], at(FRIDAY, 16, 5))
    (fill,), (delivery,) = due.fills, due.deliveries
    assert fill.price == pytest.approx(2.40) and delivery.shares == 300 and delivery.price == pytest.approx(582.40)


def test_bad_and_out_of_order_prices_are_ignored():
    watch = SettlementWatch()
    watch.observe("SPX", at(FRIDAY, 15, 59), 5790.0)
    watch.observe("SPX", at(FRIDAY, 15, 58), 1.0)  # out of order
    watch.observe("SPX", at(FRIDAY, 16, 0), float("nan"))
    assert watch.price_for(SPXW_PUT) == 5790.0
    assert watch.next_instant([Position(SPXW_PUT, quantity=1, avg_cost=1.0)]) == at(FRIDAY, 16, 0)
    assert watch.next_instant([Position(SPXW_PUT)]) is None
