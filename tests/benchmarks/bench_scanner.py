"""Scanner benchmark: every SPXW vertical 5-100 wide with short |delta| 0.05-0.50 on a full simulated chain.

Target (issue 8): <= 200 ms for the scan with the chain's IVs and fitted surface already computed. The chain is
``SimulatedMarket(SimulatorConfig(seed=1, start=2026-12-14 11:00 ET)).snapshot()`` (~15.8k quotes, ~100 listed
expiries). The scan covers put and call credit verticals (every strike pair of both rights; debit verticals are
the same pairs the other way round). POP uses the risk-neutral density's closed-form CDF of every expiry's
served slice in one batch, so no density object is built (calendars, which integrate over the density, are not
part of this figure). Reference, same run: the Python-loop scanner of the tests (``tests.strategies.scanner_reference``), one
candidate at a time, on the 7-DTE expiry only (it takes ~5 ms per candidate); the ratio is per candidate.
"""

from __future__ import annotations

from datetime import datetime

from tests.benchmarks.report import Report, best_of

GROUP = "scanner"
REF = "reference: Python loop per candidate (7-DTE verticals)"


def run(report: Report) -> None:
    from spx_core.domain.calendar import ET
    from spx_core.domain.contracts import Root
    from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
    from spx_core.strategies.scanner import ScanParams, ScanStructure, scan
    from spx_core.surface import chain_iv, fit_surface
    from spx_core.surface.density import surface_densities
    from tests.strategies.scanner_reference import reference_scan

    snap = SimulatedMarket(SimulatorConfig(seed=1, start=datetime(2026, 12, 14, 11, 0, tzinfo=ET))).snapshot()
    civ = chain_iv(snap)
    surface = fit_surface(civ)
    densities = surface_densities(surface)  # for the reference's quadrature; the scan does not use them
    widths = tuple(float(w) for w in range(5, 105, 5))
    params = [ScanParams(s, short_delta=(0.05, 0.50), widths=widths, dte=(0, 1000), roots=(Root.SPXW,), top=20)
              for s in (ScanStructure.PUT_CREDIT_VERTICAL, ScanStructure.CALL_CREDIT_VERTICAL)]
    results = [scan(snap, civ, surface, p) for p in params]  # warm-up
    n = sum(r.n_considered for r in results)
    note = (f"{len(snap)} quotes, {results[0].n_expiries} SPXW expiries, {n} verticals built, "
            f"{sum(r.n_passed for r in results)} passed the quote filters")

    sub = ScanParams(ScanStructure.PUT_CREDIT_VERTICAL, short_delta=(0.05, 0.50), widths=widths, dte=(7, 7),
                     roots=(Root.SPXW,))
    n_sub = scan(snap, civ, surface, sub).n_passed
    t_ref = best_of(lambda: reference_scan(snap, civ, surface, sub, densities), repeat=1)
    report.add(GROUP, REF, t_ref / n_sub * 1e6, "us/candidate", note=f"{n_sub} candidates in {t_ref:.2f} s")
    t_sub = best_of(lambda: scan(snap, civ, surface, sub), repeat=5)
    report.add(GROUP, "vectorized, same 7-DTE verticals", t_sub / n_sub * 1e6, "us/candidate", reference=REF,
               note=f"{t_sub * 1e3:.1f} ms for {n_sub} candidates")

    t_scan = best_of(lambda: [scan(snap, civ, surface, p) for p in params], repeat=5)
    report.add(GROUP, "all SPXW verticals 5-100 wide, |delta| 0.05-0.50 (IV and surface given)", t_scan * 1e3, "ms",
               target=200.0, note=note)
    report.add(GROUP, "  per candidate", t_scan / n * 1e6, "us/candidate", reference=REF)
