"""Trading hours per contract: 16:15 vs 16:00 ET, AM series' last day, holidays, early closes."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from spx_core.domain.calendar import ET, to_ns
from spx_core.domain.contracts import OptionContract, Root
from spx_core.execution.hours import last_trade_instant, market_open, session_close_ns

SPXW_0105 = OptionContract(Root.SPXW, date(2024, 1, 5), 4700, "P")  # a Friday
SPXW_0112 = OptionContract(Root.SPXW, date(2024, 1, 12), 4700, "P")
SPX_0119 = OptionContract(Root.SPX, date(2024, 1, 19), 4700, "C")  # AM monthly, third Friday
SPY_0105 = OptionContract(Root.SPY, date(2024, 1, 5), 470, "C")
SPX_2504 = OptionContract(Root.SPX, date(2025, 4, 17), 5000, "P")  # Good Friday 2025-04-18: Thursday expiry
SPXW_1129 = OptionContract(Root.SPXW, date(2024, 11, 29), 5900, "C")  # day after Thanksgiving: early close
SPXW_1206 = OptionContract(Root.SPXW, date(2024, 12, 6), 5900, "C")


def ns(*args) -> int:
    return to_ns(datetime(*args, tzinfo=ET))


@pytest.mark.parametrize(("contract", "when", "is_open", "words"), [
    (SPXW_0105, (2024, 1, 5, 15, 59), True, ""),
    (SPXW_0105, (2024, 1, 5, 16, 0), False, "expired"),  # 0DTE SPXW stops at 16:00
    (SPXW_0105, (2024, 1, 5, 16, 5), False, "expired"),
    (SPY_0105, (2024, 1, 5, 16, 1), False, "expired"),
    (SPXW_0112, (2024, 1, 5, 16, 10), True, ""),  # other series trade until 16:15
    (SPXW_0112, (2024, 1, 5, 16, 15), False, "closed at 16:15"),
    (SPXW_0112, (2024, 1, 5, 9, 29), False, "opens at 09:30"),
    (SPXW_0112, (2024, 1, 5, 9, 30), True, ""),
    (SPXW_0112, (2024, 1, 6, 11, 0), False, "weekend"),
    (SPXW_0112, (2024, 1, 8, 11, 0), True, ""),
    (SPX_0119, (2024, 1, 18, 16, 14), True, ""),  # AM series: last day is the day before
    (SPX_0119, (2024, 1, 18, 16, 15), False, "expired"),
    (SPX_0119, (2024, 1, 19, 10, 0), False, "expired"),
    (SPX_0119, (2024, 1, 15, 11, 0), False, "holiday"),  # Martin Luther King Jr. Day
    (SPX_2504, (2025, 4, 16, 16, 14), True, ""),
    (SPX_2504, (2025, 4, 16, 16, 16), False, "expired"),
    (SPXW_1206, (2024, 11, 29, 13, 10), True, ""),  # early close: options until 13:15
    (SPXW_1206, (2024, 11, 29, 13, 15), False, "early close"),
    (SPXW_1129, (2024, 11, 29, 12, 59), True, ""),
    (SPXW_1129, (2024, 11, 29, 13, 0), False, "expired"),  # PM series on an early close: 13:00
])
def test_market_open(contract, when, is_open, words):
    ok, reason = market_open(contract, ns(*when))
    assert ok is is_open
    assert (reason == "") is is_open
    assert words in reason
    if not ok:
        assert str(contract) in reason and "\n" not in reason


def test_last_trade_instants():
    assert last_trade_instant(SPXW_0105) == datetime(2024, 1, 5, 16, 0, tzinfo=ET)
    assert last_trade_instant(SPX_0119) == datetime(2024, 1, 18, 16, 15, tzinfo=ET)


def test_session_close_for_day_orders():
    assert session_close_ns(SPXW_0112, ns(2024, 1, 5, 10, 0)) == ns(2024, 1, 5, 16, 15)
    assert session_close_ns(SPXW_0105, ns(2024, 1, 5, 10, 0)) == ns(2024, 1, 5, 16, 0)
    # asked on a weekend or after the close: the next session's close
    assert session_close_ns(SPXW_0112, ns(2024, 1, 6, 10, 0)) == ns(2024, 1, 8, 16, 15)
    assert session_close_ns(SPXW_0112, ns(2024, 1, 5, 17, 0)) == ns(2024, 1, 8, 16, 15)
