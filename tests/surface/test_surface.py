"""VolSurface: interpolation in total variance, term structure, RR/BF/skew, warm start."""

from __future__ import annotations

import numpy as np
import pytest

from spx_core.surface import VolSurface, chain_iv, fit_surface
from tests.chains import make_chain


@pytest.fixture(scope="module")
def surf() -> VolSurface:
    snap, _ = make_chain(n_expiries=6, noise=0.3, half_spread_vol=0.002, seed=31)
    return fit_surface(chain_iv(snap))


def test_iv_at_a_node_is_the_slice_and_between_nodes_total_variance_is_linear(surf):
    a, b = surf.expiries[2], surf.expiries[3]
    k = np.linspace(-0.1, 0.05, 7)
    assert np.allclose(surf.iv(k=k, t=np.full_like(k, a.t)), a.iv(k), atol=1e-12)
    tm = 0.25 * a.t + 0.75 * b.t
    w = surf.total_variance(k=k, t=np.full_like(k, tm))
    assert np.allclose(w, 0.25 * np.maximum(a.w(k), 0) + 0.75 * np.maximum(b.w(k), a.w(k)), atol=1e-12)
    # Before the first expiry: constant vol; after the last: constant vol.
    first, last = surf.expiries[0], surf.expiries[-1]
    assert np.allclose(surf.iv(k=k, t=first.t / 2), first.iv(k))
    assert np.allclose(surf.iv(k=k, t=last.t * 2), last.iv(k))


def test_atm_term_structure_and_smile_summaries(surf):
    t, atm = surf.atm_term_structure()
    assert np.all(np.diff(t) > 0) and len(t) == len(surf.expiries)
    assert np.all((atm > 0.1) & (atm < 0.4))
    for f in surf.expiries:
        assert f.rr25 < 0  # equity skew: 25-delta puts over calls
        assert f.skew < 0
        assert f.bf25 > 0
        assert 0.75 <= f.in_band_share <= 1.0  # noisy mids: even the true smile misses some bands


def test_warm_start_from_the_previous_surface_gives_the_same_fit():
    snap, _ = make_chain(n_expiries=5, noise=0.3, half_spread_vol=0.002, seed=32)
    civ = chain_iv(snap)
    cold = fit_surface(civ)
    warm = fit_surface(civ, previous=cold)
    for a, b in zip(cold.expiries, warm.expiries, strict=True):
        k = np.linspace(-0.1, 0.05, 11)
        assert np.abs(a.iv(k) - b.iv(k)).max() < 5e-4


def test_forward_interpolation(surf):
    f = [e.forward for e in surf.expiries]
    t = [e.t for e in surf.expiries]
    assert surf.forward(np.array(t)) == pytest.approx(f)
    mid = surf.forward(0.5 * (t[0] + t[1]))
    assert min(f[0], f[1]) <= mid <= max(f[0], f[1])
