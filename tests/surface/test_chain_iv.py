"""chain_iv: per-row forwards, bid/ask/mid IVs and greeks, against an independent Black-76."""

from __future__ import annotations

import numpy as np
import pytest

from spx_core.pricing.iv import IVReason
from spx_core.surface import chain_iv
from tests.surface.synth import black, make_chain, svi_w


@pytest.fixture(scope="module")
def exact():
    return make_chain(n_expiries=5, noise=0.0, half_spread_vol=0.0005, seed=5)


def test_rows_align_with_snapshot_and_mid_iv_recovers_the_smile(exact):
    snap, truth = exact
    civ = chain_iv(snap)
    for name in ("t", "forward", "discount", "k", "iv_bid", "iv_ask", "iv_mid", "reason", "delta", "gamma",
                 "vega", "theta"):
        assert getattr(civ, name).shape == (len(snap),), name
    c = snap.columns
    for f, x in zip(civ.forwards, truth, strict=True):
        rows = slice(f.start, f.stop)
        k_true = np.log(c["strike"][rows] / x.forward)
        true_vol = np.sqrt(svi_w(k_true, *x.svi) / x.t)
        mid_price = black(x.forward, c["strike"][rows], x.t, true_vol, x.discount, c["is_call"][rows])
        # The quotes' mid is the model price only where the bid was not floored at 0.
        clean = (c["bid"][rows] > 0) & np.isfinite(civ.iv_mid[rows])
        assert np.allclose(0.5 * (c["bid"][rows] + c["ask"][rows])[clean], mid_price[clean], atol=1e-9)
        otm = clean & (c["is_call"][rows] == (k_true >= 0)) & (civ.vega[rows] > 0.05)
        assert np.abs(civ.iv_mid[rows][otm] - true_vol[otm]).max() < 2e-6
        both = clean & np.isfinite(civ.iv_bid[rows])
        assert both.sum() > 10
        assert np.all(civ.iv_bid[rows][both] <= civ.iv_ask[rows][both])


def test_greeks_are_in_display_units(exact):
    snap, _ = exact
    civ = chain_iv(snap)
    c = snap.columns
    i = int(np.nanargmax(civ.vega))  # an at-the-money row
    f, k, t, d, vol, call = civ.forward[i], c["strike"][i], civ.t[i], civ.discount[i], civ.iv_mid[i], c["is_call"][i]
    h = 1e-4
    vega_fd = (black(f, k, t, vol + h, d, call) - black(f, k, t, vol - h, d, call)) / (2 * h) / 100.0
    assert civ.vega[i] == pytest.approx(vega_fd, rel=1e-6)
    dt = 1e-6
    r = -np.log(d) / t
    later = black(f, k, t - dt, vol, np.exp(-r * (t - dt)), call)
    theta_fd = (later - black(f, k, t, vol, d, call)) / dt / 365.0  # F and r fixed, per calendar day
    assert civ.theta[i] == pytest.approx(theta_fd, rel=1e-4)
    assert 0.3 < abs(civ.delta[i]) < 0.7


def test_unsolvable_quotes_are_nan_with_a_reason(exact):
    snap, _ = exact
    civ = chain_iv(snap)
    zero_bid = snap.columns["bid"] == 0
    assert zero_bid.any()
    assert np.all(np.isnan(civ.iv_bid[zero_bid]))
    assert np.all(civ.reason_bid[zero_bid] != IVReason.OK)
    assert np.all((civ.reason == IVReason.OK) == np.isfinite(civ.iv_mid))
