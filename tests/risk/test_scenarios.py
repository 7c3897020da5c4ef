"""Full-revaluation stress against direct Black-76 repricing and hand computations."""

import numpy as np
import pytest

from spx_core.domain.contracts import OptionContract, Right, Root
from spx_core.pricing import black76
from spx_core.risk.scenarios import (
    Scenario,
    ScenarioGrid,
    named_scenarios,
    spot_vol_matrix,
    stress,
    term_scaled_vol_shock,
)
from spx_core.strategies.market import locate


def _near_atm(spx, right, offset=0.0, expiry_i=1):
    snap, truth, _civ = spx
    e = truth[expiry_i].expiry
    k = round(snap.underlying_price * (1 + offset) / 25) * 25
    c = OptionContract(Root.SPXW, e, k, right)
    return c, int(locate(snap, [c])[0])


def test_short_put_under_minus_five_percent_is_the_black76_reprice_difference(spx, market) -> None:
    _, _, civ = spx
    put, row = _near_atm(spx, Right.PUT, -0.03)
    pnl = stress([(put, -1)], market, [Scenario("gap", spot_pct=-0.05)])
    args = {"strike": put.strike, "t": civ.t[row], "vol": civ.iv_mid[row], "discount": civ.discount[row], "is_call": False}
    before = float(black76.price(forward=civ.forward[row], **args))
    after = float(black76.price(forward=civ.forward[row] * 0.95, **args))
    assert pnl[0] == pytest.approx(-100 * (after - before), rel=1e-12)
    assert pnl[0] < 0


def test_zero_shock_gives_exactly_zero(spx, market) -> None:
    put, _ = _near_atm(spx, Right.PUT, -0.03)
    call, _ = _near_atm(spx, Right.CALL, 0.02)
    spy = OptionContract(Root.SPY, put.expiry, round(spx[0].underlying_price / 10), Right.CALL)
    assert np.all(stress([(put, -3), (call, 2), (spy, 10)], market, [Scenario("flat"), Scenario("flat2")]) == 0.0)


def test_vol_shock_is_term_scaled_and_time_decay_shrinks_t(spx, market) -> None:
    _, _, civ = spx
    call, row = _near_atm(spx, Right.CALL, 0.0, expiry_i=0)
    days = civ.t[row] * 365
    pnl = stress([(call, 1)], market, [Scenario("v", vol_pts=5), Scenario("d", days=1.0)])
    args = {"forward": civ.forward[row], "strike": call.strike, "discount": civ.discount[row], "is_call": True}
    base = float(black76.price(t=civ.t[row], vol=civ.iv_mid[row], **args))
    vol = civ.iv_mid[row] + 0.05 * np.sqrt(30 / days)
    assert pnl[0] == pytest.approx(100 * (float(black76.price(t=civ.t[row], vol=vol, **args)) - base), rel=1e-12)
    t1 = civ.t[row] - 1 / 365
    disc = civ.discount[row] ** (t1 / civ.t[row])
    decayed = float(black76.price(forward=civ.forward[row], strike=call.strike, discount=disc, is_call=True,
                                  t=t1, vol=civ.iv_mid[row]))
    assert pnl[1] == pytest.approx(100 * (decayed - base), rel=1e-12)
    assert term_scaled_vol_shock(5, 0.01) == pytest.approx(0.05 * np.sqrt(30))  # floored at one day


def test_matrix_shape_and_long_call_monotone(spx, market) -> None:
    call, _ = _near_atm(spx, Right.CALL, 0.0)
    grid = spot_vol_matrix()
    assert grid.shape == (11, 9) and len(grid) == 99
    pnl = stress([(call, 1)], market, grid).reshape(grid.shape)
    assert np.all(np.diff(pnl, axis=0) > 0)  # higher spot, more value
    assert np.all(np.diff(pnl, axis=1) > 0)  # higher vol, more value
    flat = (grid.spot_pct == 0) & (grid.vol_pts == 0)
    assert pnl.ravel()[flat] == 0.0


def test_spy_leg_moves_with_beta_and_is_priced_american(spx, market) -> None:
    e = spx[1][1].expiry
    spy = OptionContract(Root.SPY, e, round(spx[0].underlying_price / 10) - 5, Right.PUT)
    one = stress([(spy, -10)], market, [Scenario("gap", spot_pct=-0.05)])
    steep = stress([(spy, -10)], market, [Scenario("gap", spot_pct=-0.05)], spy_beta=1.3)
    assert steep[0] < one[0] < 0


def test_named_scenarios_and_bad_input(spx, market) -> None:
    grid = named_scenarios(vix=15.0)
    assert grid.names[:3] == ("flash crash -10%", "VIX to 50", "gap down -5%")
    assert grid.vol_pts[1] == 35.0 and grid.spot_pct[0] == -0.10
    with pytest.raises(ValueError, match="spot_pct"):
        Scenario("x", spot_pct=-1.5)
    with pytest.raises(ValueError, match="vix"):
        named_scenarios(vix=float("nan"))
    assert len(stress([], market, ScenarioGrid.of([Scenario("a")]))) == 1
