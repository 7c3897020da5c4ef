"""Arbitrage reports: constructed violations in the quotes are found; clean chains report none."""

from __future__ import annotations

import numpy as np

from spx_core.domain import ChainSnapshot
from spx_core.surface import ArbFlag, chain_iv, market_arbitrage
from tests.chains import NOW, make_chain


def _rebuild(snap, cols):
    cols = {k: np.array(v) for k, v in cols.items()}
    cols.pop("flags", None)
    return ChainSnapshot.from_columns(underlying="SPX", time=NOW, underlying_price=snap.underlying_price, **cols)


def _rows(snap, expiry, is_call):
    c = snap.columns
    return np.flatnonzero((c["expiry"] == np.datetime64(expiry)) & (c["is_call"] == is_call) & (c["bid"] > 0))


def test_clean_chain_has_no_market_arbitrage():
    snap, _ = make_chain(n_expiries=5, noise=0.0, seed=21)
    assert all(r.flags == ArbFlag.NONE for r in market_arbitrage(chain_iv(snap)))


def test_butterfly_in_the_quotes_is_reported():
    snap, truth = make_chain(n_expiries=3, noise=0.0, seed=22)
    cols = {k: np.array(v) for k, v in snap.columns.items()}
    rows = _rows(snap, truth[1].expiry, True)
    mid = rows[len(rows) // 2]
    cols["bid"][mid] += 5.0  # middle call bid far above its neighbours' interpolation
    cols["ask"][mid] += 5.2
    reports = market_arbitrage(chain_iv(_rebuild(snap, cols)))
    assert reports[1].flags & ArbFlag.BUTTERFLY
    assert reports[1].butterfly >= 1 and reports[1].worst > 0
    assert reports[0].flags == ArbFlag.NONE and reports[2].flags == ArbFlag.NONE


def test_vertical_spread_violation_is_reported():
    snap, truth = make_chain(n_expiries=2, noise=0.0, seed=23)
    cols = {k: np.array(v) for k, v in snap.columns.items()}
    rows = _rows(snap, truth[0].expiry, False)
    i = rows[len(rows) // 3]
    cols["ask"][i] = cols["bid"][rows[len(rows) // 3 - 1]] - 0.5  # put ask below the lower strike's bid
    cols["bid"][i] = cols["ask"][i] - 0.1
    reports = market_arbitrage(chain_iv(_rebuild(snap, cols)))
    assert reports[0].flags & ArbFlag.VERTICAL


def test_calendar_violation_is_reported():
    snap, truth = make_chain(n_expiries=4, noise=0.0, seed=24)
    cols = {k: np.array(v) for k, v in snap.columns.items()}
    later = cols["expiry"] == np.datetime64(truth[2].expiry)
    # Quote the later expiry's options at a fraction of their price: its total variance falls below the earlier one's.
    cols["bid"][later] *= 0.3
    cols["ask"][later] *= 0.3
    reports = market_arbitrage(chain_iv(_rebuild(snap, cols)))
    assert reports[2].flags & ArbFlag.CALENDAR and reports[2].calendar > 0
