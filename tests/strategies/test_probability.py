"""Odds under the fitted risk-neutral density and the lognormal-ATM figures; expected moves."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date

import numpy as np
import pytest
from scipy.special import ndtr

from spx_core.strategies import builders
from spx_core.strategies.market import Market, MarketChain
from spx_core.strategies.payoff import front_expiry_value
from spx_core.strategies.probability import (
    STRADDLE_TO_SD,
    expected_moves,
    structure_odds,
)
from spx_core.surface.chain_iv import chain_iv
from spx_core.surface.density import expiry_density
from spx_core.surface.surface import VolSurface, fit_surface
from spx_core.surface.svi import SVIParams
from tests.chains import black, make_chain


@pytest.fixture(scope="module")
def chain():
    snap, _ = make_chain(n_expiries=6)
    civ = chain_iv(snap)
    return civ, fit_surface(civ)


@pytest.fixture(scope="module")
def market(chain):
    civ, surface = chain
    return Market.of(civ, surfaces={"SPX": surface})


def _fit(surface, i: int):
    return [f for f in surface.expiries if f.fitted][i]


def _flat_market(civ, surface) -> Market:
    """The same chain with every fitted slice replaced by a flat smile at its ATM IV."""
    flat = tuple(replace(f, svi=SVIParams(f.atm_iv ** 2 * f.t, 0.0, 0.0, 0.0, 0.1), correction=None,
                         floor_layers=()) if f.fitted else f for f in surface.expiries)
    return Market({"SPX": MarketChain(civ.snapshot, civ, VolSurface(flat, surface.snapshot_checksum,
                                                                     surface.time_ns, surface.underlying_price))})


def test_pop_under_a_flat_smile_is_the_lognormal_figure(chain):
    civ, surface = chain
    mkt = _flat_market(civ, surface)
    fit = _fit(surface, 2)
    short = round(0.96 * fit.forward / 5) * 5
    vertical = builders.put_credit_vertical(fit.root, fit.expiry, short, 25)
    odds = structure_odds(vertical, mkt, cost=-700.0)  # a 7-point credit
    breakeven = short - 7.0
    sd = fit.atm_iv * math.sqrt(fit.t)
    want = ndtr((math.log(fit.forward / breakeven) - 0.5 * sd * sd) / sd)  # P(S_T > breakeven), lognormal
    assert odds.breakevens == pytest.approx((breakeven,), abs=1e-9)
    assert odds.pop == pytest.approx(want, abs=1e-10)
    assert odds.pop_lognormal == pytest.approx(want, abs=1e-10)
    assert odds.ev == pytest.approx(odds.ev_lognormal, abs=1e-6)


def test_ev_of_a_call_spread_is_its_fitted_price_difference_over_the_discount(market, chain):
    _, surface = chain
    for i in (0, 2, 4):
        fit = _fit(surface, i)
        lo = round(fit.forward / 5) * 5
        spread = builders.call_debit_vertical(fit.root, fit.expiry, lo, 50)
        odds = structure_odds(spread, market, cost=0.0)
        k = np.array([lo, lo + 50.0])
        prices = black(fit.forward, k, fit.t, fit.iv(np.log(k / fit.forward)), fit.discount, True)
        want = 100.0 * (prices[0] - prices[1]) / fit.discount
        assert odds.ev == pytest.approx(want, abs=1e-4)  # dollars: 1e-6 points per unit x 100


def test_touch_is_twice_the_finish_probability_and_at_least_it(market, chain):
    _, surface = chain
    fit = _fit(surface, 2)
    atm = round(fit.forward / 5) * 5
    condor = builders.iron_condor(fit.root, fit.expiry, atm - 150, atm + 150, 25, 25)
    odds = structure_odds(condor, market)
    assert set(odds.touch) == {atm - 150.0, atm + 150.0}
    d = expiry_density(surface, fit)
    finish = {atm - 150.0: float(d.prob_below(atm - 150.0)), atm + 150.0: float(d.prob_above(atm + 150.0))}
    for strike, p in odds.touch.items():
        assert p >= finish[strike]
        assert p == pytest.approx(min(1.0, 2.0 * finish[strike]), abs=1e-12)
    for strike, p in odds.touch_lognormal.items():
        assert 0.0 < p <= 1.0 and strike in odds.touch


def test_skew_puts_more_risk_under_far_otm_puts_than_the_lognormal(market, chain):
    """Equity skew: the fitted density has a fatter left tail than the lognormal at ATM IV, so a far
    out-of-the-money put credit vertical loses more often and its expected value is lower."""
    _, surface = chain
    fit = _fit(surface, 3)
    short = round(fit.forward * math.exp(-2.0 * fit.atm_iv * math.sqrt(fit.t)) / 5) * 5
    vertical = builders.put_credit_vertical(fit.root, fit.expiry, short, 25)
    odds = structure_odds(vertical, market, cost=-100.0)
    assert odds.pop < odds.pop_lognormal
    assert odds.ev < odds.ev_lognormal


def test_expected_shortfall_lies_between_the_max_loss_and_the_ev(market, chain):
    _, surface = chain
    fit = _fit(surface, 1)
    short = round(0.97 * fit.forward / 5) * 5
    vertical = builders.put_credit_vertical(fit.root, fit.expiry, short, 25)
    odds = structure_odds(vertical, market)
    max_loss = 25 * 100 + odds.cost  # cost < 0: the credit received
    assert odds.cost < 0
    assert -max_loss - 1e-9 <= odds.expected_shortfall < odds.ev
    assert -max_loss - 1e-9 <= odds.expected_shortfall_lognormal < odds.ev_lognormal


def test_calendar_odds_use_the_front_expiry_value(market, chain):
    _, surface = chain
    near, far = _fit(surface, 1), _fit(surface, 3)
    atm = round(near.forward / 25) * 25
    cal = builders.calendar(near.root, near.expiry, far.expiry, atm, "C")
    odds = structure_odds(cal, market)
    assert odds.expiry == near.expiry and odds.cost > 0
    lo, hi = odds.breakevens  # a long calendar profits between two breakevens around its strike
    assert lo < atm < hi
    np.testing.assert_allclose(front_expiry_value(cal, market, np.array([lo, hi])), odds.cost, rtol=1e-9)
    assert 0.0 < odds.pop < 1.0 and odds.expected_shortfall < 0 < odds.cost


def test_no_surface_or_unfitted_slice_gives_nan_with_a_reason(chain):
    civ, surface = chain
    fit = _fit(surface, 0)
    vertical = builders.put_credit_vertical(fit.root, fit.expiry, round(fit.forward / 5) * 5 - 50, 25)
    odds = structure_odds(vertical, Market.of(civ), cost=-300.0)
    assert math.isnan(odds.pop) and "no fitted surface" in odds.reason
    unfitted = tuple(replace(f, status="too few usable quotes (3)") if f is fit else f for f in surface.expiries)
    mkt = Market({"SPX": MarketChain(civ.snapshot, civ, VolSurface(unfitted, surface.snapshot_checksum,
                                                                   surface.time_ns, surface.underlying_price))})
    odds = structure_odds(vertical, mkt, cost=-300.0)
    assert math.isnan(odds.pop) and math.isnan(odds.ev) and "not fitted" in odds.reason


def test_expected_moves_from_the_straddle_and_from_atm_iv(chain):
    civ, surface = chain
    moves = expected_moves(civ, surface)
    assert [(m.root, m.expiry) for m in moves] == [(f.root, f.expiry) for f in civ.forwards]
    for m in moves:
        fit = surface.by_expiry(m.root, m.expiry)
        assert m.reason == ""
        assert m.iv_move == pytest.approx(fit.forward * fit.atm_iv * math.sqrt(fit.t), rel=1e-12)
        # The undiscounted straddle at the forward is E|S_T - F| = SD sqrt(2/pi): the two agree to the
        # strike's distance from the forward and the lognormal's skewness (measured < 0.3%).
        assert m.straddle_move == pytest.approx(m.iv_move, rel=0.01)
        assert m.straddle_move == pytest.approx(m.straddle / fit.discount * STRADDLE_TO_SD, rel=1e-12)
        assert m.sd1_low == pytest.approx(m.forward - m.iv_move) and m.sd2_high == pytest.approx(
            m.forward + 2 * m.iv_move)
    only_civ = expected_moves(civ)
    for a, b in zip(only_civ, moves, strict=True):
        assert a.atm_iv == pytest.approx(b.atm_iv, abs=0.005)  # interpolated mid IVs vs the fit
        assert a.straddle == b.straddle
    only_surface = expected_moves(surface)
    assert all(math.isnan(m.straddle) and "straddle" in m.reason for m in only_surface)
    assert all(math.isfinite(m.iv_move) for m in only_surface)
    with pytest.raises(TypeError, match="ChainIV"):
        expected_moves()


def test_missing_leg_or_no_mid_gives_nan_with_a_reason(market, chain):
    _, surface = chain
    fit = _fit(surface, 1)
    unlisted = builders.put_credit_vertical(fit.root, fit.expiry, round(fit.forward / 5) * 5 - 50, 3)
    odds = structure_odds(unlisted, market)  # the long leg's strike is not on the 5-point grid
    assert math.isnan(odds.pop) and math.isnan(odds.ev) and "pass cost=" in odds.reason
    missing = builders.put_credit_vertical(fit.root, date(2031, 1, 17), 5000, 25)  # not listed in the chain
    odds = structure_odds(missing, market, cost=-100.0)
    assert math.isnan(odds.pop) and "no forward" in odds.reason
