"""SVI slices: recovery of a known surface, the g function, and the fit's own arbitrage checks."""

from __future__ import annotations

import numpy as np
import pytest

from spx_core.surface import ArbFlag, CorrectionConfig, SurfaceConfig, chain_iv, fit_surface, g_function
from tests.chains import make_chain, svi_w

PURE_SVI = SurfaceConfig(correction=CorrectionConfig(enabled=False))


@pytest.fixture(scope="module")
def exact_chain():
    return make_chain(n_expiries=8, noise=0.0, half_spread_vol=0.002, seed=11)


def test_recovers_known_svi_from_exact_quotes(exact_chain):
    snap, truth = exact_chain
    surf = fit_surface(snap, config=PURE_SVI)
    for fit, x in zip(surf.expiries, truth, strict=True):
        assert fit.fitted, fit.status
        k = np.linspace(-2.0, 1.0, 61) * np.sqrt(x.svi[0] + x.svi[1] * x.svi[4])  # +-2 ATM sd
        true_iv = np.sqrt(svi_w(k, *x.svi) / x.t)
        assert np.abs(fit.iv(k) - true_iv).max() < 2e-4, (fit.expiry, fit.svi)
        assert fit.rmse_volpts < 0.05  # vs the IV-band centre, which is not the true IV (price spreads)
        assert fit.in_band_share > 0.99
        assert fit.fit_arb.flags == ArbFlag.NONE
        assert fit.market_arb.flags == ArbFlag.NONE


def test_noisy_quotes_fit_as_well_as_the_truth():
    snap, truth = make_chain(n_expiries=6, noise=0.5, half_spread_vol=0.002, seed=12)
    surf = fit_surface(snap, config=PURE_SVI)
    civ = chain_iv(snap)
    for e, (fit, x) in enumerate(zip(surf.expiries, truth, strict=True)):
        rows = slice(civ.forwards[e].start, civ.forwards[e].stop)
        k = np.log(snap.columns["strike"][rows] / x.forward)
        true_iv = np.sqrt(svi_w(k, *x.svi) / x.t)
        ok = np.isfinite(civ.iv_bid[rows]) & np.isfinite(civ.iv_ask[rows]) & (civ.vega[rows] >= 0.05)
        truth_share = np.mean((true_iv[ok] >= civ.iv_bid[rows][ok]) & (true_iv[ok] <= civ.iv_ask[rows][ok]))
        assert fit.in_band_share >= truth_share - 0.05, (fit.expiry, fit.in_band_share, truth_share)


def test_g_function_flags_the_published_arbitrage_example():
    # Axel Vogt's raw SVI slice (Gatheral & Jacquier 2014, "Arbitrage-free SVI volatility surfaces", eq. 5.1):
    # it has butterfly arbitrage (g < 0 around k ~ 1).
    k = np.linspace(-1.5, 1.5, 3001)
    g = g_function(k, -0.0410, 0.1331, 0.3060, 0.3586, 0.4153)
    assert g.min() < 0
    assert 0.5 < k[np.argmin(g)] < 1.5
    # A plain symmetric smile is arbitrage-free.
    assert g_function(k, 0.04, 0.1, 0.0, 0.0, 0.2).min() > 0


def test_surface_has_no_butterfly_or_calendar_arbitrage_on_a_fine_grid(exact_chain):
    snap, _ = exact_chain
    surf = fit_surface(snap)
    t = np.array([f.t for f in surf.expiries])
    k = np.linspace(-0.4, 0.3, 281)
    tt = np.linspace(t.min(), t.max(), 200)
    w = surf.total_variance(k=k[None, :], t=tt[:, None])
    assert np.all(np.diff(w, axis=0) >= -1e-12)  # non-decreasing in T at every k
    for fit in surf.expiries:
        kk = np.linspace(-0.5, 0.4, 901)
        wk = fit.w(kk)
        w1 = np.gradient(wk, kk)
        w2 = np.gradient(w1, kk)
        g = (1 - kk * w1 / (2 * wk)) ** 2 - w1 ** 2 / 4 * (1 / wk + 0.25) + w2 / 2
        assert g[5:-5].min() > -1e-3, fit.expiry  # finite differences: small tolerance
