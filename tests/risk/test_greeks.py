"""Portfolio greeks against value_structure's dollar greeks and against the sum of the legs."""

import math

import numpy as np
import pytest

from spx_core.domain.contracts import OptionContract, Right, Root
from spx_core.risk.greeks import GREEK_FIELDS, portfolio_greeks
from spx_core.strategies import builders as b
from spx_core.strategies import value_structure


def _book(truth, spot):
    e0, e1 = truth[0].expiry, truth[1].expiry
    k = round(spot / 25) * 25
    spy_k = round(spot / 10)
    return [(OptionContract(Root.SPXW, e1, k - 100, Right.PUT), -3), (OptionContract(Root.SPXW, e1, k - 125, Right.PUT), 3),
            (OptionContract(Root.SPXW, e0, k + 50, Right.CALL), 2), (OptionContract(Root.SPXW, e1, k, Right.CALL), -1),
            (OptionContract(Root.SPY, e1, spy_k, Right.CALL), 10), (OptionContract(Root.SPXW, e1, k - 100, Right.PUT), 1)]


def test_each_position_matches_value_structure_at_beta_one(spx, market) -> None:
    snap, truth, _ = spx
    book = _book(truth, snap.underlying_price)
    rep = portfolio_greeks(book, market)
    for c, pos in rep.by_contract.items():
        v = value_structure(b.single(c), market)
        per_spx_point = 0.1 if c.root == Root.SPY else 1.0  # a lone SPY leg's value_structure is per SPY point
        assert pos.greeks.delta_usd_pt == pytest.approx(pos.quantity * v.delta_usd * per_spx_point, rel=1e-12)
        assert pos.greeks.gamma_usd_1pct == pytest.approx(pos.quantity * v.gamma_usd_1pct, rel=1e-12)
        assert pos.greeks.vega_usd_volpt == pytest.approx(pos.quantity * v.vega_usd_volpt, rel=1e-12)
        assert pos.greeks.theta_usd_day == pytest.approx(pos.quantity * v.theta_usd_day, rel=1e-12)
    # the repeated SPXW put nets to -2 contracts
    assert rep.by_contract[book[0][0]].quantity == -2


def test_totals_are_sums_of_every_breakdown(spx, market) -> None:
    snap, truth, _ = spx
    book = _book(truth, snap.underlying_price)
    rep = portfolio_greeks(book, market, trades=["pcv", "pcv", "c", "c", "spy", "pcv"], strike_bucket=50)
    for f in GREEK_FIELDS:
        total = getattr(rep.total, f)
        assert math.isfinite(total)
        for parts in (rep.by_expiry, rep.by_strike_bucket, rep.by_trade):
            assert sum(getattr(g, f) for g in parts.values()) == pytest.approx(total, abs=1e-9)
        assert sum(getattr(p.greeks, f) for p in rep.by_contract.values()) == pytest.approx(total, abs=1e-9)
    assert set(rep.by_expiry) == {truth[0].expiry, truth[1].expiry}
    assert all(k % 50 == 0 for k in rep.by_strike_bucket)


def test_spy_leg_is_beta_weighted(spx, market) -> None:
    snap, truth, _civ = spx
    spy = [c for c in _book(truth, snap.underlying_price) if c[0].root == Root.SPY]
    one = portfolio_greeks(spy, market).total
    beta = portfolio_greeks(spy, market, spy_beta=1.2).total
    assert beta.delta_usd_pt == pytest.approx(1.2 * one.delta_usd_pt, rel=1e-12)
    assert beta.delta == pytest.approx(1.2 * one.delta, rel=1e-12)
    assert beta.gamma_usd_1pct == pytest.approx(1.44 * one.gamma_usd_1pct, rel=1e-12)
    assert beta.vega_usd_volpt == one.vega_usd_volpt
    # 10 SPY contracts ~ 1 SPX contract: delta in SPX-contract equivalents is delta of 10 SPY x 0.1
    row = np.flatnonzero((market["SPY"].snapshot.columns["strike"] == spy[0][0].strike)
                         & market["SPY"].snapshot.columns["is_call"])[0]
    assert one.delta == pytest.approx(10 * 0.1 * market["SPY"].civ.delta[row], rel=1e-12)


def test_bad_inputs_are_one_clear_line(spx, market) -> None:
    snap, truth, _ = spx
    missing = OptionContract(Root.SPXW, truth[1].expiry, 12345, Right.CALL)
    with pytest.raises(ValueError, match="not listed in the SPX snapshot"):
        portfolio_greeks([(missing, 1)], market)
    with pytest.raises(ValueError, match="spy_beta"):
        portfolio_greeks([], market, spy_beta=0)
    with pytest.raises(ValueError, match="one trade per leg"):
        portfolio_greeks(_book(truth, snap.underlying_price), market, trades=["a"])


def test_a_leg_without_iv_takes_surface_greeks_and_is_stressed_at_the_surface_vol(spx) -> None:
    from spx_core.risk.scenarios import Scenario, stress
    from spx_core.strategies import Market
    from spx_core.surface.chain_iv import chain_iv
    from spx_core.surface.surface import fit_surface
    from tests.strategies.test_valuation import _edited, _row

    snap, truth, civ = spx
    call = OptionContract(Root.SPXW, truth[1].expiry, 5100, Right.CALL)
    i = _row(snap, call)
    bid, ask = np.array(snap.bid), np.array(snap.ask)
    bid[i] = ask[i] = np.nan
    edited_civ = chain_iv(_edited(snap, bid=bid, ask=ask))
    bare = portfolio_greeks([(call, 2)], Market.of(edited_civ))
    assert math.isnan(bare.total.delta_usd_pt) and "greeks NaN (no fitted surface)" in bare.notes[0]
    assert "no mid IV" in bare.by_contract[call].note
    fitted_market = Market.of(edited_civ, surfaces={"SPX": fit_surface(civ)})
    fitted = portfolio_greeks([(call, 2)], fitted_market)
    assert "from the fitted surface" in fitted.notes[0]
    v = value_structure(b.single(call), fitted_market)
    assert fitted.total.delta_usd_pt == pytest.approx(2 * v.delta_usd, rel=1e-12)
    assert fitted.total.vega_usd_volpt == pytest.approx(2 * v.vega_usd_volpt, rel=1e-12)
    assert stress([(call, 2)], fitted_market, [Scenario("up", spot_pct=0.02)])[0] > 0


def test_book_of_portfolio_positions_leaves_flat_ones_out(spx, market) -> None:
    from spx_core.portfolio.positions import Position
    from spx_core.risk.greeks import book_of

    snap, truth, _ = spx
    (put, _), (call, _) = _book(truth, snap.underlying_price)[:2]
    book = book_of([Position(put, -2), Position(call, 0)])
    assert book == [(put, -2)]
    assert portfolio_greeks(book, market).total == portfolio_greeks([(put, -1), (put, -1)], market).total
