"""Forwards and discount factors implied from put-call parity."""

from __future__ import annotations

import numpy as np
import pytest

from spx_core.domain import ChainSnapshot
from spx_core.surface import ForwardConfig, ForwardMethod, implied_forwards
from tests.chains import NOW, make_chain


def test_recovers_forward_and_discount_from_noisy_parity_chain():
    snap, truth = make_chain(n_expiries=10, noise=1.0, half_spread_vol=0.001, seed=7)
    fwds = implied_forwards(snap)
    assert [(f.root, f.expiry) for f in fwds] == [(x.root, x.expiry) for x in truth]
    for f, x in zip(fwds, truth, strict=True):
        # The forward is pinned by the strikes near the money: well within a tick of 0.05 * a few.
        assert f.forward == pytest.approx(x.forward, abs=max(0.6, 2e-4 * x.forward)), f
        assert f.discount == pytest.approx(x.discount, abs=3e-3), f
        assert f.n_pairs >= 4
    long = [f for f in fwds if f.t > 0.4]
    assert long and all(f.method is ForwardMethod.PARITY_FIT for f in long)
    assert all(abs(f.rate - 0.05) < 0.01 for f in long)


def test_exact_chain_gives_exact_forward():
    snap, truth = make_chain(n_expiries=4, noise=0.0, half_spread_vol=0.0005, seed=1)
    for f, x in zip(implied_forwards(snap), truth, strict=True):
        if f.method is ForwardMethod.PARITY_FIT:
            assert f.forward == pytest.approx(x.forward, rel=1e-9)
            assert f.discount == pytest.approx(x.discount, rel=1e-9)


def test_short_expiry_takes_discount_from_term_structure_and_says_why():
    snap, _ = make_chain(n_expiries=10, noise=1.0, half_spread_vol=0.002, seed=3)
    first = implied_forwards(snap)[0]
    assert first.t < 0.01
    assert first.method is ForwardMethod.PARITY_FIXED_DF
    assert "discount factor from the other expiries" in first.reason


def test_a_stale_pair_does_not_drag_the_forward():
    snap, truth = make_chain(n_expiries=3, noise=0.0, half_spread_vol=0.001, seed=2)
    cols = {k: np.array(v) for k, v in snap.columns.items()}
    f0 = truth[-1].forward
    rows = np.flatnonzero((cols["expiry"] == np.datetime64(truth[-1].expiry)) & cols["is_call"])
    near = rows[np.argsort(np.abs(cols["strike"][rows] - f0))[:2]]
    cols["bid"][near] += 8.0  # two calls quoted 8 points too high (stale after a move)
    cols["ask"][near] += 8.0
    del cols["flags"]
    bad = ChainSnapshot.from_columns(underlying="SPX", time=NOW, underlying_price=snap.underlying_price, **cols)
    f = implied_forwards(bad)[-1]
    assert f.forward == pytest.approx(f0, abs=0.5)


def test_no_pairs_falls_back_to_spot_with_implied_carry():
    snap, truth = make_chain(n_expiries=4, noise=0.0, seed=4)
    cols = {k: np.array(v) for k, v in snap.columns.items()}
    last = cols["expiry"] == np.datetime64(truth[-1].expiry)
    cols["bid"][last & ~cols["is_call"]] = np.nan  # puts of the last expiry unquoted
    cols["ask"][last & ~cols["is_call"]] = np.nan
    del cols["flags"]
    bad = ChainSnapshot.from_columns(underlying="SPX", time=NOW, underlying_price=snap.underlying_price, **cols)
    f = implied_forwards(bad)[-1]
    assert f.method is ForwardMethod.SPOT_CARRY and f.n_pairs == 0
    assert "no call/put pair" in f.reason
    assert f.forward == pytest.approx(truth[-1].forward, rel=2e-3)


def test_config_is_validated():
    with pytest.raises(ValueError, match="rate_bounds"):
        ForwardConfig(rate_bounds=(0.1, 0.0))
