"""VaR benchmark (issue 10 §3): historical VaR/ES by full revaluation of 500 days on a 50-leg book, and the
what-if report (before/after a 4-leg order).

Chain and book: the ``risk`` group's (``SimulatedMarket(SimulatorConfig(seed=1)).snapshot()``, 50 listed SPX/SPXW
options within 10% of spot up to 60 days, quantities -5..5). History: 500 synthetic days (SPX 1.1% daily sd, VIX
1.5 pt sd, correlation -0.75), ending on the snapshot's date so the named stresses take its last VIX.
References, same run: the same P&L from a Python loop over the days, one vectorized Black-76 call over the legs
per day (what a per-scenario engine would do), and for the what-if every scenario the two reports revalue (500
days + 4 named + 99 matrix cells + 2 x 121 curve points, per book) through that loop.
"""

from __future__ import annotations

import numpy as np

from tests.benchmarks.bench_risk import _book, _loop_reference
from tests.benchmarks.report import Report, best_of

GROUP = "var"
REF = "reference: loop over days, legs vectorized"
REF_WHAT_IF = "reference: what-if scenarios through the loop"


def _history(snap, n: int = 500):
    from spx_core.domain import ET
    from spx_core.risk.history import ReturnHistory

    rng = np.random.default_rng(17)
    z = rng.standard_normal((2, n))
    last = np.datetime64(snap.time.astimezone(ET).date(), "D")
    return ReturnHistory(last - np.arange(n)[::-1], 0.011 * z[0], 1.5 * (-0.75 * z[0] + np.sqrt(1 - 0.75 ** 2) * z[1]),
                         "synthetic", float(snap.underlying_price), 16.0)


def _what_if_grids(history, front_days: float):
    from spx_core.risk.report import CURVE_PCTS
    from spx_core.risk.scenarios import ScenarioGrid, named_scenarios, spot_vol_matrix
    from spx_core.risk.var import history_grid

    n = len(CURVE_PCTS)
    zero = np.zeros(n)
    return [history_grid(history), named_scenarios(history.last_vol), spot_vol_matrix(),
            ScenarioGrid(("c",) * n, CURVE_PCTS, zero, zero), ScenarioGrid(("e",) * n, CURVE_PCTS, zero, np.full(n, front_days))]


def run(report: Report) -> None:
    from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
    from spx_core.risk.greeks import gather_legs
    from spx_core.risk.report import merge_books, what_if_report
    from spx_core.risk.var import historical_pnl, historical_var, history_grid
    from spx_core.strategies.market import Market
    from spx_core.surface import chain_iv

    snap = SimulatedMarket(SimulatorConfig(seed=1)).snapshot()
    civ = chain_iv(snap)
    market = Market.of(civ)
    book = _book(snap, civ)
    order = [(c, -q) for c, q in book[:4]]  # closing four positions: the what-if of an exit
    history = _history(snap)
    x = gather_legs(book, market)
    pnl = historical_pnl(x, None, history)  # warm up
    worst = float(np.max(np.abs(pnl - _loop_reference(x, history_grid(history)))))
    note = f"{len(history)} days x {len(book)} legs; max |P&L - reference| ${worst:.2e}"

    ref = best_of(lambda: _loop_reference(x, history_grid(history)), repeat=3)
    report.add(GROUP, REF, ref * 1e3, "ms", note="same P&L")
    t = best_of(lambda: historical_var(x, None, history), repeat=10)
    report.add(GROUP, "historical VaR/ES: 500 days x 50 legs (legs looked up)", t * 1e3, "ms", reference=REF,
               note=note)
    t = best_of(lambda: historical_var(book, market, history), repeat=10)
    report.add(GROUP, "historical VaR/ES incl. leg look-up", t * 1e3, "ms", reference=REF, note=note)

    xs = [x, gather_legs(merge_books(book, order), market)]
    grids = [_what_if_grids(history, float(b.t.min()) * 365.0) for b in xs]
    ref = best_of(lambda: [_loop_reference(b, g) for b, gs in zip(xs, grids, strict=True) for g in gs], repeat=3)
    count = sum(len(g) for gs in grids for g in gs)
    report.add(GROUP, REF_WHAT_IF, ref * 1e3, "ms", note=f"{count} scenario revaluations")
    what_if_report(book, order, market, history)  # warm up
    t = best_of(lambda: what_if_report(book, order, market, history), repeat=5)
    report.add(GROUP, "what_if_report: 50-leg book + 4-leg order (both reports)", t * 1e3, "ms",
               reference=REF_WHAT_IF, note="greeks, VaR both methods, named, matrix, curves; x2")
