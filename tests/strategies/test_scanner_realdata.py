"""The scanner on the real Cboe DataShop chain of 2019-06-26 15:45 ET, imported through the store."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from spx_core.strategies.scanner import ScanParams, ScanStructure, scan
from tests.strategies.scanner_reference import Fitted, fit_all

pytestmark = pytest.mark.shared_data


@functools.cache
def _datashop(folder: Path) -> Fitted:
    import tempfile

    from tests.surface.realdata import load_datashop

    with tempfile.TemporaryDirectory() as tmp:  # import_files + Store.load_snapshot, as the app reads it
        return fit_all(load_datashop(folder / "cboe_datashop" / "spxw20190626.csv", Path(tmp)))


def test_020_delta_25_wide_put_credit_verticals_have_natural_credit_short_bid_minus_long_ask(shared_data):
    f = _datashop(shared_data)
    assert len(f.snap) == 10_384 and len(f.snap.expiries()) == 30
    # Flagged quotes allowed: at 15:45 the 0DTE wing is bid 0 / offered 0.05 (ZERO_BID), still bought at the ask.
    params = ScanParams(ScanStructure.PUT_CREDIT_VERTICAL, short_delta=0.20, widths=(25.0,), dte=(0, 400), top=100,
                        allow_flagged=True)
    result = scan(f.snap, f.civ, f.surface, params, densities=f.densities)
    c = f.snap.columns
    # one candidate per expiry at most (0DTE included), found for most of the 30 expiries
    expiries = [cand.expiry for cand in result.candidates]
    assert len(expiries) == len(set(expiries)) >= 20
    assert min(cand.dte for cand in result.candidates) == 0
    for cand in result.candidates:
        short, long_ = cand.structure.legs
        assert (short.ratio, long_.ratio) == (-1, 1)
        assert short.contract.strike - long_.contract.strike == 25.0
        s = int(np.flatnonzero((c["strike"] == short.contract.strike) & ~c["is_call"]
                               & (c["expiry"] == np.datetime64(cand.expiry)))[0])
        lg = int(np.flatnonzero((c["strike"] == long_.contract.strike) & ~c["is_call"]
                                & (c["expiry"] == np.datetime64(cand.expiry)))[0])
        assert cand.credit_natural == c["bid"][s] - c["ask"][lg]  # exactly, no tolerance
        assert cand.credit_mid == pytest.approx(0.5 * (c["bid"][s] + c["ask"][s]) - 0.5 * (c["bid"][lg] + c["ask"][lg]))
        assert abs(abs(f.civ.delta[s]) - 0.20) < 0.05  # the nearest strike to 0.20 delta on a 5-point grid
        assert cand.max_loss == pytest.approx(25.0 - cand.credit_mid)
        fit = f.surface.by_expiry(short.contract.root, cand.expiry)
        if fit.fitted:
            assert 0.5 < cand.pop < 1.0 and np.isfinite(cand.ev)
        else:  # the 15:45 0DTE slice has too few usable quotes to fit: no density, so POP/EV are unknown
            assert cand.dte == 0 and np.isnan(cand.pop) and np.isnan(cand.ev)
