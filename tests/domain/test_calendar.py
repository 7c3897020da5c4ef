from datetime import date, datetime, timedelta

import numpy as np
import pytest

from spx_core.domain import ET, MarketSession, Root, Settlement, default_calendar

CAL = default_calendar()


@pytest.mark.parametrize("year, month, expected", [
    (2026, 4, date(2026, 4, 17)),  # Good Friday is 2026-04-03, so the third Friday trades
    (2025, 4, date(2025, 4, 17)),  # third Friday 2025-04-18 is Good Friday -> Thursday
    (2019, 6, date(2019, 6, 21)),
    (2026, 12, date(2026, 12, 18)),
])
def test_monthly_expiry_is_third_friday_or_thursday_before_holiday(year, month, expected):
    assert CAL.monthly_expiry(year, month) == expected


def test_holidays_and_early_closes_come_from_the_calendar():
    assert CAL.is_holiday(date(2025, 1, 9))  # national day of mourning (ad hoc closure)
    assert CAL.is_holiday(date(2026, 11, 26))  # Thanksgiving
    assert CAL.is_early_close(date(2026, 11, 27))
    assert CAL.session_close(date(2026, 11, 27)) == datetime(2026, 11, 27, 13, 0, tzinfo=ET)


def test_zero_dte_pm_expiry_one_minute_before_close():
    now = datetime(2026, 11, 20, 15, 59, tzinfo=ET)
    t = CAL.time_to_expiry(now, date(2026, 11, 20), Settlement.PM)
    assert t == pytest.approx(60 / (365 * 86400), rel=1e-12)


def test_am_expiry_fixes_at_the_open_and_stops_trading_the_day_before():
    expiry = date(2026, 12, 18)
    assert CAL.expiry_instant(expiry, Root.SPX) == datetime(2026, 12, 18, 9, 30, tzinfo=ET)
    assert CAL.last_trade_instant(expiry, Root.SPX) == datetime(2026, 12, 17, 16, 0, tzinfo=ET)


def test_pm_expiry_on_an_early_close_day_fixes_at_1pm():
    assert CAL.expiry_instant(date(2026, 11, 27), Settlement.PM) == datetime(2026, 11, 27, 13, 0, tzinfo=ET)


def test_time_to_expiry_is_negative_after_expiry_and_spans_dst():
    assert CAL.time_to_expiry(datetime(2026, 11, 20, 16, 1, tzinfo=ET), date(2026, 11, 20), "PM") < 0
    # across the 2026-11-01 DST change: 24h wall-clock day + 1 hour
    t = CAL.time_to_expiry(datetime(2026, 10, 30, 16, 0, tzinfo=ET), date(2026, 11, 2), "PM")
    assert t * 365 * 24 == pytest.approx(3 * 24 + 1)


def test_vector_expiry_instants_match_scalar():
    expiries = np.array(["2026-11-20", "2026-12-18", "2026-12-18"], dtype="datetime64[D]")
    am = np.array([False, True, False])
    got = CAL.expiry_instants_ns(expiries, am)
    want = [CAL.expiry_instant(date(2026, 11, 20), "PM"), CAL.expiry_instant(date(2026, 12, 18), "AM"),
            CAL.expiry_instant(date(2026, 12, 18), "PM")]
    assert [datetime.fromtimestamp(ns / 1e9, ET) for ns in got] == want


def test_listed_expiries_include_0dte_dailies_monthlies_and_a_year_out():
    asof = date(2026, 11, 20)
    listed = CAL.listed_expiries(asof)
    assert (Root.SPXW, asof) in listed
    assert (Root.SPX, date(2026, 12, 18)) in listed
    assert (Root.SPX, asof) not in listed  # AM expiry already fixed at the open
    assert max(e for _, e in listed) >= asof + timedelta(days=365)
    dailies = [e for r, e in listed if r is Root.SPXW and e <= asof + timedelta(days=14)]
    assert dailies == CAL.trading_days(asof, asof + timedelta(days=14))
    assert date(2026, 11, 26) not in dailies  # Thanksgiving


@pytest.mark.parametrize("ts, session", [
    (datetime(2026, 11, 20, 8, 0, tzinfo=ET), MarketSession.PRE_MARKET),
    (datetime(2026, 11, 20, 10, 0, tzinfo=ET), MarketSession.OPEN),
    (datetime(2026, 11, 20, 17, 0, tzinfo=ET), MarketSession.AFTER_HOURS),
    (datetime(2026, 11, 21, 12, 0, tzinfo=ET), MarketSession.CLOSED),
    (datetime(2026, 11, 26, 12, 0, tzinfo=ET), MarketSession.HOLIDAY),
    (datetime(2026, 11, 27, 12, 0, tzinfo=ET), MarketSession.EARLY_CLOSE),
    (datetime(2026, 11, 27, 13, 30, tzinfo=ET), MarketSession.AFTER_HOURS),
])
def test_market_session(ts, session):
    assert CAL.session_at(ts) is session


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.session_at(datetime(2026, 11, 20, 10, 0))
