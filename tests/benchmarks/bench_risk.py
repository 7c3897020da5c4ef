"""Stress benchmark (issue 10 §3): 2,000 full-revaluation scenarios on a 50-leg SPX book in < 100 ms.

Chain: ``SimulatedMarket(SimulatorConfig(seed=1)).snapshot()`` as in the payoff benchmark; the book is 50
listed SPX/SPXW options (calls and puts, +-10% of spot, every expiry up to 60 days) with quantities -5..5.
Scenarios: spot -20%..+10% x vol -10..+40 points (40 x 50 = 2,000), with one day of decay.
Reference, same run: the same P&L from a Python loop over scenarios, one vectorized Black-76 call over the
legs per scenario (what a per-scenario engine would do).
"""

from __future__ import annotations

import numpy as np

from tests.benchmarks.report import Report, best_of

GROUP = "risk"
REF = "reference: loop over scenarios, legs vectorized"


def _book(snap, civ, n: int = 50):
    c = snap.columns
    s = snap.underlying_price
    ok = np.flatnonzero((np.abs(c["strike"] / s - 1) < 0.10) & (civ.t > 1 / 365) & (civ.t < 60 / 365)
                        & np.isfinite(civ.iv_mid))
    rng = np.random.default_rng(7)
    rows = rng.choice(ok, size=n, replace=False)
    qty = rng.choice([-5, -4, -3, -2, -1, 1, 2, 3, 4, 5], size=n)
    return [(_contract(snap, int(r)), int(q)) for r, q in zip(rows, qty, strict=True)]


def _contract(snap, r: int):
    from spx_core.domain.contracts import ROOTS, OptionContract, Right

    c = snap.columns
    return OptionContract(ROOTS[int(c["root"][r])], np.datetime64(c["expiry"][r], "D").item(), float(c["strike"][r]),
                          Right.CALL if c["is_call"][r] else Right.PUT)


def _loop_reference(x, grid) -> np.ndarray:
    from spx_core.pricing import black76
    from spx_core.risk.scenarios import term_scaled_vol_shock

    w = x.quantity * x.multiplier
    base = black76.price(forward=x.forward, strike=x.strike, t=x.t, vol=x.vol, discount=x.discount, is_call=x.is_call)
    out = np.empty(len(grid))
    for i in range(len(grid)):
        t = np.maximum(x.t - grid.days[i] / 365.0, 0.0)
        vol = np.maximum(x.vol + term_scaled_vol_shock(grid.vol_pts[i], x.t * 365.0), 0.005)
        v = black76.price(forward=x.forward * (1 + grid.spot_pct[i]), strike=x.strike, t=t, vol=vol,
                          discount=x.discount ** (t / x.t), is_call=x.is_call)
        out[i] = float((v - base) @ w)
    return out


def run(report: Report) -> None:
    from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
    from spx_core.risk.greeks import gather_legs, portfolio_greeks
    from spx_core.risk.scenarios import ScenarioGrid, stress
    from spx_core.strategies.market import Market
    from spx_core.surface import chain_iv

    snap = SimulatedMarket(SimulatorConfig(seed=1)).snapshot()
    civ = chain_iv(snap)
    market = Market.of(civ)
    book = _book(snap, civ)
    grid = ScenarioGrid.matrix(np.linspace(-0.20, 0.10, 40), np.linspace(-10, 40, 50), days=1.0)
    x = gather_legs(book, market)
    pnl = stress(x, None, grid)  # warm up (numba compile)
    ref_pnl = _loop_reference(x, grid)
    worst = float(np.max(np.abs(pnl - ref_pnl)))
    note = f"{len(grid)} scenarios x {len(book)} legs; chain {len(snap)} quotes; max |P&L - reference| ${worst:.2e}"
    ref = best_of(lambda: _loop_reference(x, grid), repeat=3)
    report.add(GROUP, REF, ref * 1e3, "ms", note="same P&L")
    t = best_of(lambda: stress(x, None, grid), repeat=10)
    report.add(GROUP, "stress: 2,000 scenarios x 50 legs (legs looked up)", t * 1e3, "ms", target=100.0,
               reference=REF, note=note)
    t = best_of(lambda: stress(book, market, grid), repeat=10)
    report.add(GROUP, "stress incl. leg look-up", t * 1e3, "ms", target=100.0, reference=REF, note=note)
    t = best_of(lambda: portfolio_greeks(book, market), repeat=10)
    report.add(GROUP, "portfolio_greeks, 50 legs (all breakdowns)", t * 1e3, "ms", note="look-up + 6 greeks + groups")
