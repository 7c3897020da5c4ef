"""A package that cannot lose at its mid but can at the natural (inconsistent, e.g. stale, leg mids) is not a
candidate: the scanner removes it with a named, counted filter instead of ranking a max loss of 0 first."""

from __future__ import annotations

import numpy as np

from spx_core.strategies.scanner import ScanParams, ScanStructure, scan
from tests.strategies.scanner_reference import fit_all, realistic

FLY = ScanParams(ScanStructure.BUTTERFLY, short_delta=(0.20, 0.40), widths=(25.0,), dte=(0, 60), top=1000,
                 allow_flagged=True)


def test_a_fly_whose_body_ask_is_stale_high_is_removed_as_riskless_only_at_mid():
    f = realistic()
    before = scan(f.snap, f.civ, f.surface, FLY, densities=f.densities)
    rows = before.table.candidates.rows[0]  # the best fly: wing, body (x2), wing
    body = rows[1]
    snap = f.snap
    debit = -before.table.credit_mid[0]
    assert debit > 0 and dict(before.removed)["riskless only at mid"] == 0
    ask = snap.ask.copy()
    ask[body] += debit + 2.0  # the body's mid rises by more than half the debit: the fly's mid is a credit
    stale = fit_all(snap.replace_quotes(time=snap.time_ns, underlying_price=snap.underlying_price, ask=ask))
    after = scan(stale.snap, stale.civ, stale.surface, FLY, densities=stale.densities)
    kept = {tuple(r) for r in after.table.candidates.rows}
    assert tuple(rows) not in kept
    assert dict(after.removed)["riskless only at mid"] >= 1
    assert np.all(after.table.max_loss > 0)
