"""The correction machinery: the spline basis, the LSI solver, and calendar repair by domination,
each against an independent reference (scipy's BSpline and SLSQP, Black call prices)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.interpolate import BSpline
from scipy.optimize import minimize
from scipy.special import ndtr

from spx_core.surface import SmileCorrection, fit_surface
from spx_core.surface.correction_fit import lsi
from spx_core.surface.layers import SliceBank, layer_derivatives
from spx_core.surface.svi import g_function
from tests.chains import make_chain


def test_spline_matches_scipy_inside_and_is_linear_beyond_the_knots():
    knots = -0.2 + 0.05 * np.arange(-3, 10)  # 6 segments on [-0.2, 0.1]
    coef = np.random.default_rng(0).standard_normal(9) * 1e-3
    corr = SmileCorrection(tuple(knots), tuple(coef))
    ref = BSpline(knots, coef, 3)
    k = np.linspace(-0.2, 0.1, 301)
    c, c1, c2 = corr.derivatives(k)
    assert np.allclose(c, ref(k), rtol=0, atol=1e-15)
    assert np.allclose(c1, ref(k, 1), rtol=0, atol=1e-13)
    assert np.allclose(c2, ref(k, 2), rtol=0, atol=1e-10)
    out = np.array([-0.5, -0.3, 0.2, 0.6])
    o, _, o2 = corr.derivatives(out)
    lo, hi = -0.2, 0.1
    expect = np.where(out < lo, ref(lo) + ref(lo, 1) * (out - lo), ref(hi) + ref(hi, 1) * (out - hi))
    assert np.allclose(o, expect, atol=1e-15) and np.all(o2 == 0.0)


def test_lsi_solves_inequality_constrained_least_squares_like_slsqp():
    rng = np.random.default_rng(3)
    n = 6
    X = rng.standard_normal((20, n))
    y = rng.standard_normal(20)
    H, rhs = X.T @ X, X.T @ y
    G = rng.standard_normal((12, n))
    free = np.linalg.solve(H, rhs)
    inside = free + rng.standard_normal(n)  # a point the constraints admit ...
    h = G @ inside - np.abs(0.3 * rng.standard_normal(12))
    assert np.sum(G @ free < h) >= 3  # ... while the unconstrained optimum violates several of them
    c = lsi(H, rhs, G, h)
    ref = minimize(lambda v: 0.5 * v @ H @ v - rhs @ v, np.zeros(n), jac=lambda v: H @ v - rhs,
                   constraints=[{"type": "ineq", "fun": lambda v: G @ v - h, "jac": lambda v: G}],
                   method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})
    assert ref.success
    assert np.all(G @ c >= h - 1e-9)
    assert np.allclose(c, ref.x, atol=1e-6)


def test_lsi_reports_infeasible_constraints():
    H, rhs = np.eye(2), np.zeros(2)
    G = np.array([[1.0, 0.0], [-1.0, 0.0]])
    assert lsi(H, rhs, G, np.array([1.0, 0.0])) is None  # x >= 1 and -x >= 0


def _call(k: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Undiscounted Black call per unit forward at log-moneyness k (independent of spx_core)."""
    sw = np.sqrt(w)
    d1 = -k / sw + 0.5 * sw
    return ndtr(d1) - np.exp(k) * ndtr(d1 - sw)


def test_maximum_of_two_butterfly_free_slices_is_butterfly_free():
    # Two arbitrage-free raw SVI slices that cross twice: a steep-skew short slice and a flatter one.
    a = np.array([0.010, 0.10, -0.9, 0.02, 0.08])
    b = np.array([0.012, 0.06, -0.3, 0.00, 0.20])
    k = np.linspace(-0.8, 0.6, 4001)
    for p in (a, b):
        assert g_function(k, *p).min() > 0
    wa, wb = a[0] + a[1] * (a[2] * (k - a[3]) + np.hypot(k - a[3], a[4])), b[0] + b[1] * (
        b[2] * (k - b[3]) + np.hypot(k - b[3], b[4]))
    assert np.any(wa > wb) and np.any(wb > wa)
    w = layer_derivatives([(a, None), (b, None)], k)[0]
    assert np.allclose(w, np.maximum(wa, wb))
    # Call prices in strike (K = e^k, forward 1) are convex and decreasing: no butterfly, no vertical.
    strike = np.exp(k)
    price = _call(k, w)
    slope = np.diff(price) / np.diff(strike)
    assert np.all(slope < 0) and np.all(slope > -1)
    assert np.all(np.diff(slope) >= -1e-12)


def test_served_slices_never_fall_below_an_earlier_expiry():
    snap, _ = make_chain(n_expiries=8, noise=0.8, half_spread_vol=0.002, seed=61)
    surf = fit_surface(snap)
    fits = sorted((f for f in surf.expiries if f.fitted), key=lambda f: f.t)
    k = np.linspace(-0.3, 0.15, 901)
    for early, late in zip(fits[:-1], fits[1:], strict=True):
        assert np.all(late.w(k) >= early.w(k) - 1e-15), (early.expiry, late.expiry)


def test_batched_evaluation_matches_each_slice():
    snap, _ = make_chain(n_expiries=6, noise=0.5, half_spread_vol=0.002, seed=62)
    surf = fit_surface(snap)
    params = np.array([f.svi.as_array() for f in surf.expiries])
    bank = SliceBank.build(params, [f.correction for f in surf.expiries])
    assert any(f.correction is not None for f in surf.expiries)
    k = np.linspace(-0.4, 0.3, 57)
    for e, f in enumerate(surf.expiries):
        got = bank.derivatives(np.full(k.shape, e), k)
        want = layer_derivatives([(params[e], f.correction)], k)
        for g_, w_ in zip(got, want, strict=True):
            assert np.allclose(g_, w_, rtol=1e-12, atol=1e-14)


class _BumpySmile:
    """Quotes SVI cannot follow: a raw SVI smile plus a small bump of total variance in the put wing."""

    def __call__(self, k, a, b, rho, m, sigma):
        w = a + b * (rho * (k - m) + np.sqrt((k - m) ** 2 + sigma ** 2))
        w_atm = a + b * (-rho * m + np.sqrt(m * m + sigma * sigma))
        return w + 0.1 * w_atm * np.exp(-0.5 * ((k + 2.0 * np.sqrt(w_atm)) / (0.5 * np.sqrt(w_atm))) ** 2)


@pytest.mark.parametrize("seed", [71, 72])
def test_correction_follows_what_svi_cannot_and_stays_arbitrage_free(seed, monkeypatch):
    import tests.chains

    monkeypatch.setattr(tests.chains, "svi_w", _BumpySmile())
    snap, _ = make_chain(n_expiries=5, noise=0.3, half_spread_vol=0.001, seed=seed)
    surf = fit_surface(snap)
    gains = []
    for f in surf.expiries:
        assert f.fitted and f.fit_arb.flags == 0
        assert f.in_band_share >= f.in_band_share_svi
        assert f.rmse_volpts <= f.rmse_volpts_svi + 1e-9
        gains.append(f.in_band_share - f.in_band_share_svi)
    assert max(gains) > 0.1  # the bump really is beyond SVI, and the correction really follows it
