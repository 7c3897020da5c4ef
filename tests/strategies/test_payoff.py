"""Payoff curves: expiry value, T+0 re-pricing off the surface, sticky rules, IV shift, calendars, SPX/SPY."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest

from spx_core.domain import ChainSnapshot, OptionContract, Right, Root, default_calendar
from spx_core.pricing.american import american_price
from spx_core.strategies import builders
from spx_core.strategies.market import Market, MarketChain, MarketError
from spx_core.strategies.payoff import (
    PayoffModel,
    Sticky,
    front_expiry_value,
    payoff_grid,
)
from spx_core.strategies.valuation import value_structure
from spx_core.surface.chain_iv import chain_iv
from spx_core.surface.surface import VolSurface, fit_surface
from tests.chains import black, make_chain


@pytest.fixture(scope="module")
def market():
    snap, _ = make_chain(n_expiries=6)
    civ = chain_iv(snap)
    return Market.of(civ, surfaces={"SPX": fit_surface(civ)})


def _fit(market, i: int):
    return [f for f in market["SPX"].surface.expiries if f.fitted][i]


def _condor(market, i: int = 2):
    fit = _fit(market, i)
    atm = round(fit.forward / 5) * 5
    return fit, builders.iron_condor(fit.root, fit.expiry, atm - 100, atm + 100, 25, 25)


def _grid(fit, n: int = 400):
    return np.linspace(0.85 * fit.forward, 1.15 * fit.forward, n)


def test_expiry_curve_is_the_structure_expiry_value_minus_the_snapshot_mid(market):
    fit, ic = _condor(market)
    prices = _grid(fit)
    curves = payoff_grid(ic, market, prices)
    mid = value_structure(ic, market).mid
    assert curves.cost == pytest.approx(-mid * 100)
    assert curves.cost < 0  # an iron condor opens for a credit
    np.testing.assert_allclose(curves.expiry, ic.expiry_value(prices) - curves.cost, atol=1e-9)
    assert curves.reason == "" and curves.approximations == ""
    given = payoff_grid(ic, market, prices, cost=-250.0)
    np.testing.assert_allclose(given.expiry, ic.expiry_value(prices) + 250.0, atol=1e-9)


def test_t0_at_the_expiry_instant_equals_the_expiry_payoff(market):
    fit, ic = _condor(market)
    prices = _grid(fit)
    at = default_calendar().expiry_instant(fit.expiry, fit.root)
    curves = payoff_grid(ic, market, prices, at=at, sticky=Sticky.MONEYNESS, iv_shift=0.05)
    np.testing.assert_allclose(curves.t0, curves.expiry, atol=1e-9)
    before = payoff_grid(ic, market, prices, at=at - timedelta(hours=2))
    assert np.max(np.abs(before.t0 - before.expiry)) > 1.0  # two hours before, time value remains


def test_t0_at_the_snapshot_reprices_every_leg_at_its_fitted_iv(market):
    """Independent: Black-76 (tests.chains) at the slice's fitted IV for each leg, summed by hand."""
    fit, ic = _condor(market)
    spot = market["SPX"].snapshot.underlying_price
    prices = np.array([0.97, 1.0, 1.02]) * spot
    k = np.array([leg.contract.strike for leg in ic.legs])
    calls = np.array([leg.contract.is_call for leg in ic.legs])
    ratios = ic.ratios * 100.0
    for sticky in Sticky:
        curves = payoff_grid(ic, market, prices, sticky=sticky, cost=0.0)
        for s, got in zip(prices, curves.t0, strict=True):
            fwd = fit.forward * s / spot
            f_vol = fwd if sticky is Sticky.MONEYNESS else fit.forward
            vol = fit.iv(np.log(k / f_vol))
            want = black(fwd, k, fit.t, vol, fit.discount, calls) @ ratios
            assert got == pytest.approx(want, abs=1e-7)


def test_iv_shift_is_a_parallel_vol_shift(market):
    fit = _fit(market, 1)
    atm = round(fit.forward / 5) * 5
    straddle = builders.straddle(fit.root, fit.expiry, atm)
    spot = market["SPX"].snapshot.underlying_price
    up = payoff_grid(straddle, market, np.array([spot]), iv_shift=0.02, cost=0.0).t0[0]
    base = payoff_grid(straddle, market, np.array([spot]), cost=0.0).t0[0]
    vol = fit.iv(np.log(np.array([atm, atm]) / fit.forward)) + 0.02
    want = black(fit.forward, atm, fit.t, vol, fit.discount, np.array([True, False])).sum() * 100
    assert up == pytest.approx(want, abs=1e-7)
    assert up > base


def test_sticky_moneyness_vs_sticky_strike_on_a_skewed_smile(market):
    """Equity skew (IV falls with k): sticky-moneyness reads a strike's vol further up the smile when the
    underlying falls (the strike is relatively higher) -> lower vol -> a long put is worth less than under
    sticky-strike; when the underlying rises, more. At today's spot the two agree."""
    fit = _fit(market, 2)
    assert fit.skew < 0
    atm = round(fit.forward / 5) * 5
    put = builders.single(OptionContract(fit.root, fit.expiry, atm, Right.PUT))
    spot = market["SPX"].snapshot.underlying_price
    prices = spot * np.array([0.95, 1.0, 1.05])
    strike = payoff_grid(put, market, prices, sticky=Sticky.STRIKE, cost=0.0).t0
    money = payoff_grid(put, market, prices, sticky="sticky-moneyness", cost=0.0).t0
    assert money[0] < strike[0] - 1.0
    assert money[1] == pytest.approx(strike[1], abs=1e-9)
    assert money[2] > strike[2] + 1.0


def test_calendar_front_expiry_value_prices_the_back_leg_off_the_surface(market):
    near, far = _fit(market, 1), _fit(market, 3)
    atm = round(near.forward / 25) * 25
    cal = builders.calendar(near.root, near.expiry, far.expiry, atm, "C")
    spot = market["SPX"].snapshot.underlying_price
    prices = np.linspace(0.9, 1.1, 201) * spot
    value = front_expiry_value(cal, market, prices)
    # By hand: the near call at intrinsic; the far call with tau = T_far - T_near, its forward scaled with S
    # by the carry over tau, vol from its own expiry's fitted smile at its strike (sticky-strike).
    tau = far.t - near.t
    frac = tau / far.t
    carry = (far.forward / spot) ** frac
    vol = far.iv(np.log(atm / far.forward))
    back = black(prices * carry, atm, tau, vol, far.discount ** frac, True)
    near_leg = np.maximum(prices - atm, 0.0)
    signs = {leg.contract.expiry: leg.ratio for leg in cal.legs}
    want = 100 * (signs[far.expiry] * back + signs[near.expiry] * near_leg)
    np.testing.assert_allclose(value, want, rtol=1e-9, atol=1e-7)
    curves = payoff_grid(cal, market, prices)
    np.testing.assert_allclose(curves.expiry, value - curves.cost, atol=1e-9)
    assert prices[np.argmax(value)] == pytest.approx(atm, abs=0.02 * atm)  # a long calendar peaks at its strike


def _spy(snapshot: ChainSnapshot) -> ChainSnapshot:
    """The same chain as SPY: a tenth of the prices and strikes, root SPY (European-priced quotes)."""
    c = snapshot.columns
    return ChainSnapshot.from_columns(
        underlying="SPY", time=snapshot.time_ns, underlying_price=snapshot.underlying_price / 10,
        root=np.full(len(c["strike"]), Root.SPY.value), expiry=c["expiry"], strike=c["strike"] / 10,
        is_call=c["is_call"], bid=c["bid"] / 10, ask=c["ask"] / 10)


def test_spx_spy_pair_maps_the_spy_legs_by_leg_scale_and_prices_them_american(market):
    spx = market["SPX"].snapshot
    spy = chain_iv(_spy(spx))
    spy_surface = fit_surface(spy)
    mkt = Market.of(market["SPX"].civ, spy, surfaces={"SPX": market["SPX"].surface, "SPY": spy_surface})
    fit = _fit(market, 1)
    spy_fit = spy_surface.by_expiry(Root.SPY, fit.expiry)
    atm = round(fit.forward / 5) * 5
    pair = builders.spx_spy_pair(fit.expiry, atm)
    prices = spx.underlying_price * np.array([0.95, 1.0, 1.05])
    curves = payoff_grid(pair, mkt, prices)
    assert curves.approximations == "" and curves.reason == ""
    np.testing.assert_allclose(curves.expiry, pair.expiry_value(prices) - curves.cost, atol=1e-8)
    # By hand: the SPX call by Black-76 on its fitted smile; 10 SPY calls at K/10 by the American model at
    # x = S/10 (same basis here), r = -ln(D)/t and the yield that carries x to SPY's forward.
    spx_leg = black(fit.forward * prices / spx.underlying_price, atm, fit.t, fit.iv(np.log(np.array([atm])
                                                                                          / fit.forward)),
                    fit.discount, True)
    x = prices / 10
    rate = -np.log(spy_fit.discount) / spy_fit.t
    q = rate - np.log(spy_fit.forward / (spx.underlying_price / 10)) / spy_fit.t
    spy_vol = spy_fit.iv(np.log(np.array([atm / 10]) / spy_fit.forward))
    spy_leg = american_price(x, atm / 10, spy_fit.t, rate, q, spy_vol, True)
    np.testing.assert_allclose(curves.t0 + curves.cost, 100 * (spx_leg - 10 * spy_leg), rtol=1e-10, atol=1e-8)
    assert np.all(american_price(x, atm / 10, spy_fit.t, rate, q, spy_vol, True)
                  >= black(spy_fit.forward * prices / spx.underlying_price, atm / 10, spy_fit.t, spy_vol,
                           spy_fit.discount, True) - 1e-12)
    # At today's spot each leg is worth its quoted mid up to the fits: within the legs' half-spreads.
    value = value_structure(pair, mkt)
    half = 100 * sum(abs(leg.ratio) * 0.5 * (a - b) for leg, a, b in zip(pair.legs, value.leg_ask, value.leg_bid,
                                                                          strict=True))
    assert abs(curves.t0[1]) <= half


def test_errors_are_one_clear_line(market):
    fit, ic = _condor(market)
    with pytest.raises(ValueError, match="before the snapshot"):
        payoff_grid(ic, market, _grid(fit), at=market["SPX"].snapshot.time - timedelta(minutes=1))
    pair = builders.spx_spy_pair(fit.expiry, round(fit.forward / 5) * 5)
    with pytest.raises(MarketError, match="no SPY chain"):
        payoff_grid(pair, market, _grid(fit))
    missing = builders.put_credit_vertical(fit.root, fit.expiry + timedelta(days=1), 5000, 25)
    curves = payoff_grid(missing, market, _grid(fit))
    assert "no forward" in curves.reason and np.all(np.isnan(curves.t0))


def test_model_is_reusable_across_grids_and_shifts(market):
    fit, ic = _condor(market)
    model = PayoffModel.build(ic, market)
    prices = _grid(fit)
    a = payoff_grid(ic, market, prices, model=model, iv_shift=0.01)
    b = payoff_grid(ic, market, prices, iv_shift=0.01)
    np.testing.assert_array_equal(a.t0, b.t0)
    assert a.t0.shape == prices.shape


def test_a_leg_in_an_unfitted_expiry_takes_the_surface_interpolated_in_time(market):
    surface = market["SPX"].surface
    fit = _fit(market, 2)
    unfitted = tuple(replace(f, status="too few usable quotes (3)") if f is fit else f for f in surface.expiries)
    holed = VolSurface(unfitted, surface.snapshot_checksum, surface.time_ns, surface.underlying_price)
    mkt = Market({"SPX": MarketChain(market["SPX"].snapshot, market["SPX"].civ, holed)})
    atm = round(fit.forward / 5) * 5
    call = builders.single(OptionContract(fit.root, fit.expiry, atm, Right.CALL))
    got = payoff_grid(call, mkt, np.array([mkt["SPX"].snapshot.underlying_price]), cost=0.0).t0[0]
    vol = holed.iv(k=np.log(atm / fit.forward), t=fit.t)  # between the neighbouring fitted expiries
    assert vol != pytest.approx(fit.iv(np.log(np.array([atm]) / fit.forward))[0], abs=1e-6)
    assert got == pytest.approx(100 * black(fit.forward, atm, fit.t, vol, fit.discount, True), abs=1e-7)


def test_a_deep_itm_spy_put_is_worth_at_least_its_exercise_value(market):
    """American: a deep in-the-money put with r > q is worth exercising now; Black-76 would value it below
    intrinsic (the discounted forward intrinsic)."""
    spy = chain_iv(_spy(market["SPX"].snapshot))
    mkt = Market.of(spy, surfaces={"SPY": fit_surface(spy)})
    fit = [f for f in mkt["SPY"].surface.expiries if f.fitted][-1]
    spot = mkt["SPY"].snapshot.underlying_price
    strike = round(1.3 * spot)
    put = builders.single(OptionContract(Root.SPY, fit.expiry, strike, Right.PUT))
    value = payoff_grid(put, mkt, np.array([spot]), cost=0.0).t0[0] / 100
    european = black(fit.forward, strike, fit.t, fit.iv(np.log(np.array([strike]) / fit.forward)), fit.discount,
                     False)[0]
    assert european < strike - spot <= value + 1e-12
