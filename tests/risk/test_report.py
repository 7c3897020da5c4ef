"""Risk report and what-if: every figure is the full revaluation it claims to be."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spx_core.domain import ET
from spx_core.domain.contracts import OptionContract, Right, Root
from spx_core.pricing import black76
from spx_core.risk.history import ReturnHistory
from spx_core.risk.report import CURVE_PCTS, merge_books, risk_report, what_if_report
from spx_core.risk.scenarios import named_scenarios, spot_vol_matrix, stress
from spx_core.risk.var import historical_var, parametric_var
from spx_core.strategies.market import locate


def _history(n=120, *, last=None, last_vol=18.0):
    rng = np.random.default_rng(4)
    last = np.datetime64(last or "2024-03-01")
    dates = last - np.arange(n)[::-1]
    return ReturnHistory(dates, rng.normal(0, 0.01, n), rng.normal(0, 1.0, n), "synthetic", 5000.0, last_vol)


def _leg(spx, right, offset, expiry_i):
    snap, truth, _ = spx
    c = OptionContract(Root.SPXW, truth[expiry_i].expiry, round(snap.underlying_price * (1 + offset) / 25) * 25, right)
    return c, int(locate(snap, [c])[0])


def test_report_figures_are_the_stress_and_var_of_the_book(spx, market):
    put, _ = _leg(spx, Right.PUT, -0.03, 1)
    call, _ = _leg(spx, Right.CALL, 0.02, 2)
    book = [(put, -2), (call, 1)]
    h = _history()

    r = risk_report(book, market, h)

    grid = spot_vol_matrix()
    np.testing.assert_array_equal(r.matrix, stress(book, market, grid).reshape(grid.shape))
    assert r.matrix.shape == (len(r.matrix_axes[0]), len(r.matrix_axes[1])) == (11, 9)
    assert r.matrix_axes[0][0] == pytest.approx(-0.15) and r.matrix_axes[1][-1] == 30.0
    assert r.historical == historical_var(book, market, h) and r.parametric == parametric_var(book, market, h)
    # the history ends 3 days before the snapshot (2024-03-04): its last VIX is today's
    assert r.vix == 18.0
    named = named_scenarios(18.0)
    assert r.named == dict(zip(named.names, stress(book, market, named).tolist(), strict=True))
    assert r.greeks.total.delta_usd_pt != 0 and r.notes == ("history: synthetic",)


def test_pnl_curve_t0_and_at_the_front_expiry_by_hand(spx, market):
    _, _, civ = spx
    front, frow = _leg(spx, Right.PUT, -0.02, 0)
    later, lrow = _leg(spx, Right.CALL, 0.01, 2)

    spot, t0, at_expiry = risk_report([(front, -1), (later, 2)], market, None).pnl_curve

    s0 = spx[0].underlying_price
    np.testing.assert_allclose(spot, s0 * (1 + CURVE_PCTS))
    assert t0[CURVE_PCTS == 0] == 0.0 and np.all(np.diff(t0[:20]) > 0)  # below spot the short put dominates
    i = int(np.argmin(np.abs(CURVE_PCTS + 0.05)))  # spot -5%
    move = 1 + CURVE_PCTS[i]

    def value(row, k, is_call, *, dt=0.0, f_move=1.0):
        t = civ.t[row] - dt
        return float(black76.price(forward=civ.forward[row] * f_move, strike=k, t=t, vol=civ.iv_mid[row],
                                   discount=civ.discount[row] ** (t / civ.t[row]), is_call=is_call))

    dt = civ.t[frow]  # the front leg's time to expiry passes
    put_now, call_now = value(frow, front.strike, False), value(lrow, later.strike, True)
    put_exp = max(front.strike - civ.forward[frow] * move, 0.0)  # intrinsic on the moved forward
    call_exp = value(lrow, later.strike, True, dt=dt, f_move=move)
    expected = 100 * (-(put_exp - put_now) + 2 * (call_exp - call_now))
    assert at_expiry[i] == pytest.approx(expected, rel=1e-9)
    expected_t0 = 100 * (-(value(frow, front.strike, False, f_move=move) - put_now)
                         + 2 * (value(lrow, later.strike, True, f_move=move) - call_now))
    assert t0[i] == pytest.approx(expected_t0, rel=1e-9)


def test_vix_level_sources_and_notes(spx, market):
    put, _ = _leg(spx, Right.PUT, -0.03, 1)
    book = [(put, -1)]

    explicit = risk_report(book, market, _history(), vix=30.0)
    stale = risk_report(book, market, _history(last="2019-01-03"))
    none = risk_report(book, market, None)

    assert explicit.vix == 30.0
    assert explicit.named["VIX to 50"] == pytest.approx(float(stress(book, market, named_scenarios(30.0))[1]))
    # a history years old: its moves are scenarios, its VIX is not today's -> the SPX 30-day ATM IV
    assert any("days before the snapshot" in n for n in stale.notes)
    assert any(n.startswith("VIX to 50 from the SPX 30-day ATM IV") for n in stale.notes)
    assert 5 < stale.vix < 60
    assert none.historical is None and none.parametric is None
    assert any(n.startswith("no daily history") for n in none.notes)
    ahead = risk_report(book, market, _history(last="2024-03-20"))
    assert any("look-ahead" in n for n in ahead.notes)
    with pytest.raises(ValueError, match="vix"):
        risk_report(book, market, None, vix=-1.0)


def test_no_vix_at_all_leaves_that_scenario_out(spx, market):
    from spx_core.strategies.market import Market

    spy_only = Market({"SPY": market.chains["SPY"]})
    snap = market.chains["SPY"].snapshot
    c = snap.contract(int(np.flatnonzero(snap.columns["is_call"])[len(snap) // 4]))
    r = risk_report([(c, 10)], spy_only, None)
    assert "VIX to 50" not in r.named and set(r.named) == {"flash crash -10%", "gap down -5%", "one day of decay"}
    assert math.isnan(r.vix) and any("'VIX to 50' left out" in n for n in r.notes)
    assert r.pnl_curve[0][CURVE_PCTS == 0] == pytest.approx(snap.underlying_price * 10)  # SPX-equivalent level


def test_what_if_adds_the_order_legs(spx, market):
    put, _ = _leg(spx, Right.PUT, -0.03, 1)
    hedge, _ = _leg(spx, Right.PUT, -0.06, 1)
    h = _history()

    before, after = what_if_report([(put, -2)], [(hedge, 2)], market, h)
    _, flat = what_if_report([(put, -2)], [(put, 2)], market, h)

    assert before.historical == risk_report([(put, -2)], market, h).historical
    assert after.historical == risk_report([(put, -2), (hedge, 2)], market, h).historical
    assert after.historical.var99 < before.historical.var99  # a long put below caps the tail
    assert after.named["flash crash -10%"] > before.named["flash crash -10%"]
    assert flat.historical.var95 == 0.0 and flat.named["flash crash -10%"] == 0.0 and flat.greeks.total.delta == 0
    assert merge_books([(put, -2), (hedge, 1)], [(hedge, 1), (put, 2)]) == [(hedge, 2)]


def test_report_reads_no_wall_clock(spx, market, monkeypatch):
    import time as time_module

    def boom(*_a):
        raise AssertionError("the risk report read the wall clock")

    monkeypatch.setattr(time_module, "time", boom)
    monkeypatch.setattr(time_module, "time_ns", boom)
    put, _ = _leg(spx, Right.PUT, -0.03, 1)
    r = risk_report([(put, -1)], market, _history(last=str(spx[0].time.astimezone(ET).date())))
    assert math.isfinite(r.historical.var95)


def test_order_legs_of_a_ticket_request_are_signed_contracts(spx, market):
    from spx_core.execution.orders import OrderRequest, Side
    from spx_core.risk.report import order_legs
    from spx_core.strategies.structure import Leg

    put, _ = _leg(spx, Right.PUT, -0.03, 1)
    hedge, _ = _leg(spx, Right.PUT, -0.06, 1)
    credit = OrderRequest(ref="t1", legs=(Leg(put, 1), Leg(hedge, -1)), side=Side.SELL, quantity=3, limit=1.2,
                          created_ns=0, name="put credit vertical")

    assert order_legs(credit) == [(put, -3), (hedge, 3)]
    before, after = what_if_report([], order_legs(credit), market, _history())
    assert after.greeks.total == risk_report([(put, -3), (hedge, 3)], market, _history()).greeks.total
    assert before.historical.var95 == 0.0 and after.historical.var95 > 0
