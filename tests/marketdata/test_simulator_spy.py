"""SPY in the simulated market: price ~ SPX/10, quarterly dividends, $1/$5 strikes, daily expiries, American quotes,
and SPX's own output untouched by it."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import numpy as np
import pytest

from spx_core.domain.calendar import ET, default_calendar, from_ns
from spx_core.domain.contracts import Root
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig, SimulatorConfigError, SpyParams
from spx_core.marketdata.simulator.spy import ex_dividend_dates, penny_quotes
from spx_core.pricing.american import american_iv

OPEN = datetime(2025, 3, 12, 9, 30, tzinfo=ET)  # a Wednesday; SPY goes ex on Friday 2025-03-21


@pytest.fixture(scope="module")
def spy_run():
    m = SimulatedMarket(SimulatorConfig(seed=11, start=OPEN))
    first = m.advance(0.0)
    batches = [m.advance(1.0) for _ in range(60)]
    return m, first, batches


def _checksums(config: SimulatorConfig, steps) -> list[str]:
    m = SimulatedMarket(config)
    return [m.advance(s).snapshot.checksum for s in steps]


def test_spx_output_is_the_same_with_or_without_spy():
    steps = [0.0] + [1.0] * 20 + [3600.0] * 10  # through the close, the night and a relisting
    with_spy = _checksums(SimulatorConfig(seed=5, start=OPEN + timedelta(hours=5)), steps)
    without = _checksums(SimulatorConfig(seed=5, start=OPEN + timedelta(hours=5), spy=None), steps)
    assert with_spy == without


def test_spy_is_deterministic_per_seed():
    def run(seed):
        m = SimulatedMarket(SimulatorConfig(seed=seed, start=OPEN))
        return [m.advance(s).for_underlying("SPY").snapshot.checksum for s in (0.0, 1.0, 1.0, 30.0)]

    assert run(3) == run(3)
    assert run(3)[1:] != run(4)[1:]


def test_every_batch_carries_a_spy_batch(spy_run):
    _, first, batches = spy_run
    spy = first.for_underlying("SPY")
    assert spy is not None and spy.layout_changed and spy.snapshot.underlying == "SPY"
    assert first.for_underlying("SPX") is first and first.for_underlying("QQQ") is None
    later = [b.for_underlying("SPY") for b in batches]
    assert [b.sequence for b in later] == list(range(1, 61))
    assert not any(b.layout_changed for b in later)
    assert all(b.snapshot.time_ns == a.snapshot.time_ns for a, b in zip(batches, later))
    assert sum(len(b.changed) for b in later) > 0


def test_spy_tracks_a_tenth_of_spx_plus_accrued_dividends(spy_run):
    _, _, batches = spy_run
    ratios = np.array([b.for_underlying("SPY").snapshot.underlying_price / b.snapshot.underlying_price
                       for b in batches])
    # since the Dec-20 ex-date SPY has accrued ~0.22 years of a 1.3% yield: ~0.1 * exp(0.0029)
    accrued = 0.1 * math.exp(0.013 * (date(2025, 3, 12) - date(2024, 12, 20)).days / 365.0)
    assert np.all(np.abs(ratios / accrued - 1.0) < 10e-4)  # a few bp of tracking noise, cents rounding
    assert np.std(ratios) > 0  # the noise is there


def test_spy_drops_by_the_dividend_on_the_ex_date():
    m = SimulatedMarket(SimulatorConfig(seed=2, start=datetime(2025, 3, 20, 15, 59, tzinfo=ET)))
    m.advance(0.0)
    _, amounts = m.spy.dividends(m.now_ns)
    assert 1.6 < amounts[0] < 2.1  # a quarter of 1.3% on ~$580
    before = m.spy.spot / m.spot
    while from_ns(m.now_ns).astimezone(ET).date() < date(2025, 3, 21):
        m.advance(3600.0)  # to the close, then the next open (the ex-date)
    after = m.spy.spot / m.spot
    assert after < before * (1 - 0.002)  # the accrual (~0.3%) went out as the dividend
    assert m.spy.dividends(m.now_ns)[0][0] > 0.2  # the next one is June's


def test_ex_dividend_dates_are_third_fridays_of_the_quarter_months():
    days = ex_dividend_dates(default_calendar(), date(2025, 1, 1), date(2025, 12, 31), (3, 6, 9, 12))
    assert days == [date(2025, 3, 21), date(2025, 6, 20), date(2025, 9, 19), date(2025, 12, 19)]


def test_daily_expiries_and_one_dollar_strikes_near_the_money(spy_run):
    _, first, _ = spy_run
    snap = first.for_underlying("SPY").snapshot
    slices = snap.expiries()
    assert {s.root for s in slices} == {Root.SPY}
    expiries = [s.expiry for s in slices]
    cal = default_calendar()
    # every trading day for a month (0DTE included), then Fridays and monthlies out to ~6 months
    assert expiries[:len(cal.trading_days(OPEN.date(), OPEN.date() + timedelta(days=30)))] == \
        cal.trading_days(OPEN.date(), OPEN.date() + timedelta(days=30))
    assert date(2025, 4, 4) in expiries and date(2025, 9, 19) in expiries
    spot = snap.underlying_price
    for sl in slices:
        strikes = snap.strike[sl.rows][::2]
        steps = np.diff(strikes)
        near = np.abs(strikes[1:] - spot) < 0.02 * spot
        assert np.all(steps[near] == 1.0), sl.expiry  # $1 strikes near the money
        assert steps.max() <= 5.0
        # strikes off the $5 grid form one run of $1 strikes around the money; the rest are on the $5 grid
        odd = strikes[strikes % 5 != 0]
        run = strikes[(strikes >= odd.min()) & (strikes <= odd.max())]
        assert np.all(np.diff(run) == 1.0) and odd.min() < spot + 1 and odd.max() > spot - 1
        assert strikes[0] < spot < strikes[-1]
    assert 3_000 <= len(snap) <= 8_000


def test_quotes_are_in_pennies_two_sided_and_hold_the_american_theo(spy_run):
    _, _, batches = spy_run
    snap = batches[-1].for_underlying("SPY").snapshot
    bid, ask = snap.bid, snap.ask
    assert np.all(ask > bid) and np.all(bid >= 0)
    assert np.allclose(np.round(bid * 100), bid * 100) and np.allclose(np.round(ask * 100), ask * 100)
    # American: a deep ITM put never trades below exercising it now (K - S)
    puts = ~snap.is_call & (snap.strike > snap.underlying_price * 1.05)
    assert puts.any() and np.all(ask[puts] >= snap.strike[puts] - snap.underlying_price - 0.011)


def test_quotes_invert_to_the_surface_vol_with_the_american_model(spy_run):
    """The mid of a liquid near-money quote inverts (same model, same dividends) near the surface's vol."""
    m, first, _ = spy_run
    snap = first.for_underlying("SPY").snapshot
    sl = next(s for s in snap.expiries() if (s.expiry - OPEN.date()).days == 9)  # spans the ex-date
    r = sl.rows
    strike, call = snap.strike[r], snap.is_call[r]
    otm = (strike > snap.underlying_price) == call
    near = otm & (np.abs(np.log(strike / snap.underlying_price)) < 0.02)
    t = (default_calendar().time_to_expiry(snap.time, sl.expiry, "PM"))
    mid = 0.5 * (snap.bid[r] + snap.ask[r])
    res = american_iv(mid[near], m.spy.spot, strike[near], t, m.config.rate, 0.0, call[near],
                      dividends=m.spy.dividends(m.now_ns))
    assert np.all(res.ok)
    assert np.all((res.vol > 0.05) & (res.vol < 0.4))
    assert np.ptp(res.vol) < 0.08  # one smooth smile across the money


def test_penny_quotes_bracket_the_theo():
    theo = np.array([0.004, 0.5, 1.006, 12.3456, 47.0])
    bid, ask = penny_quotes(theo=theo, width=np.array([0.01, 0.02, 0.01, 0.05, 0.3]))
    assert np.all(bid <= theo) and np.all(theo <= ask) and np.all(ask >= 0.01)
    np.testing.assert_allclose(ask - bid, [0.01, 0.02, 0.01, 0.05, 0.3], atol=1e-9)


def test_spy_params_are_validated():
    with pytest.raises(SimulatorConfigError, match="method"):
        SpyParams(method="crr")
    with pytest.raises(SimulatorConfigError, match="div_yield"):
        SpyParams(div_yield=1.3)
