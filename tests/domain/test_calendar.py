from datetime import date, datetime, timedelta

import numpy as np
import pytest

from spx_core.domain import ET, MarketCalendar, MarketSession, Root, Settlement, default_calendar

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


# --- no fixed window: SPX lists five years out, backtests reach back decades ---------------------
def test_dates_far_outside_the_first_window_are_answered_by_widening_it():
    cal = MarketCalendar(start=date(2024, 1, 2), end=date(2026, 12, 31))  # a narrow first window
    assert cal.monthly_expiry(2035, 12) == date(2035, 12, 21)
    assert cal.is_holiday(date(2035, 12, 25)) and cal.is_early_close(date(2035, 11, 23))
    assert cal.expiry_instant(date(2035, 12, 31), Root.SPXW) == datetime(2035, 12, 31, 16, 0, tzinfo=ET)
    assert cal.monthly_expiry(2014, 4) == date(2014, 4, 17)  # Good Friday 2014-04-18: the Thursday before
    assert cal.previous_trading_day(date(2035, 1, 2)) == date(2034, 12, 29)
    assert cal.trading_days_between(date(2034, 12, 29), date(2035, 1, 2)) == 1


def test_beyond_the_exchange_calendar_range_every_weekday_trades():
    cal = MarketCalendar()
    assert cal.is_trading_day(date(2300, 7, 4)) and not cal.is_trading_day(date(2300, 7, 8))  # a Sunday
    assert cal.monthly_expiry(2400, 1) == date(2400, 1, 21)
    assert cal.next_trading_day(date(2261, 12, 31)) == date(2262, 1, 1)  # past the seam no holiday is known


def test_answers_do_not_change_when_the_window_widens():
    narrow = MarketCalendar(start=date(2026, 1, 2), end=date(2026, 12, 31))
    before = narrow.trading_days(date(2026, 3, 1), date(2026, 4, 30))
    narrow.monthly_expiry(2040, 1)
    assert narrow.trading_days(date(2026, 3, 1), date(2026, 4, 30)) == before == CAL.trading_days(
        date(2026, 3, 1), date(2026, 4, 30))


def test_a_snapshot_with_a_2035_spxw_expiry_gets_greeks_and_a_surface():
    from spx_core.domain.snapshot import ChainSnapshot
    from spx_core.surface import chain_iv, fit_surface

    strikes = np.array([5000.0, 6000.0, 7000.0, 8000.0] * 2)
    is_call = np.repeat([True, False], 4)
    now = datetime(2026, 6, 26, 15, 45, tzinfo=ET)
    snap = ChainSnapshot.from_columns(
        underlying="SPX", time=int(now.timestamp() * 1e9), underlying_price=6000.0,
        root=np.full(8, 1, np.uint8), expiry=np.full(8, np.datetime64("2035-12-31"), "datetime64[D]"),
        strike=strikes, is_call=is_call,
        bid=np.array([2300.0, 1700.0, 1200.0, 800.0, 500.0, 800.0, 1200.0, 1700.0]),
        ask=np.array([2350.0, 1750.0, 1250.0, 850.0, 550.0, 850.0, 1250.0, 1750.0]))
    assert snap.expiries()[0].root is Root.SPXW
    civ = chain_iv(snap)
    assert np.all(np.isfinite(snap.time_to_expiry())) and snap.time_to_expiry()[0] == pytest.approx(9.52, abs=0.01)
    assert np.isfinite(civ.iv_mid).any()
    [fit] = fit_surface(civ).expiries
    assert fit.expiry == date(2035, 12, 31)


def test_the_simulator_starts_in_2029(tmp_path, capsys):
    from spx_core.cli.main import main

    code = main(["simulate", "--db", str(tmp_path / "sim.sqlite"), "--seed", "7", "--minutes", "2",
                 "--start", "2029-06-01T10:00"])
    assert code == 0, capsys.readouterr().err
    assert "recorded 2 simulated snapshots" in capsys.readouterr().out
