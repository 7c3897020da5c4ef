"""Risk-neutral density from the fitted smile: mass, sign, repricing, mean, lognormal limit, edge slices."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pytest
from scipy.stats import lognorm

from spx_core.surface.density import (
    RiskNeutralDensity,
    expiry_density,
    surface_densities,
)
from spx_core.surface.surface import ExpiryFit, fit_surface
from spx_core.surface.svi import SVIParams
from tests.chains import black, default_svi, make_chain


@pytest.fixture(scope="module")
def surface():
    snap, _ = make_chain(n_expiries=6)
    return fit_surface(snap)


@pytest.fixture(scope="module")
def densities(surface):
    return surface_densities(surface)


def _fitted(surface) -> list[ExpiryFit]:
    fits = [f for f in surface.expiries if f.fitted]
    assert len(fits) >= 5
    return fits


def _flat(fit: ExpiryFit, vol: float, t: float | None = None) -> ExpiryFit:
    t = fit.t if t is None else t
    return replace(fit, t=t, svi=SVIParams(vol * vol * t, 0.0, 0.0, 0.0, 0.1), correction=None, floor_layers=())


def test_density_integrates_to_one_and_is_non_negative(surface, densities):
    for fit in _fitted(surface):
        d = densities[(fit.root, fit.expiry)]
        assert d.ok, d.reason
        assert abs(d.expected(np.ones_like) - 1.0) < 1e-9  # measured: ~2e-13 (the tails left out)
        # The stored arrays alone (trapezoid on the 801-point plot grid, ~100 points per SD near the money):
        # second-order, measured <= 1.1e-5; quadrature() is the accurate route.
        assert abs(np.trapezoid(d.pdf, d.price) - 1.0) < 5e-5
        assert d.expectation(np.ones_like(d.price)) == pytest.approx(1.0, abs=5e-5)
        assert d.expectation(d.price) == pytest.approx(fit.forward, rel=5e-5)
        assert np.all(d.pdf >= 0.0)
        _, weights = d.quadrature()
        assert np.all(weights >= 0.0)
        assert d.cdf[0] < 1e-12 and 1.0 - d.cdf[-1] < 1e-12  # tails hold < 1e-6 (we keep < 1e-13)
        assert np.all(np.diff(d.cdf) >= -1e-15)


def test_cdf_is_the_integral_of_the_pdf(surface, densities):
    """The closed-form distribution (first derivative of the smile) agrees with the density (second)."""
    fit = _fitted(surface)[2]
    d = densities[(fit.root, fit.expiry)]
    strikes = fit.forward * np.exp(np.linspace(-0.3, 0.15, 19))
    by_density = np.array([d.expected(lambda s, x=x: (s < x) * 1.0, kinks=[x]) for x in strikes])
    np.testing.assert_allclose(d.prob_below(strikes), by_density, atol=1e-9)
    np.testing.assert_allclose(d.prob_above(strikes), 1.0 - by_density, atol=1e-9)


def test_density_reprices_the_fitted_calls(surface, densities):
    """Breeden-Litzenberger round trip: D * E[(S_T - K)+] = Black-76 at the fitted IV, every strike."""
    worst = 0.0
    for fit in _fitted(surface):
        d = densities[(fit.root, fit.expiry)]
        strikes = fit.forward * np.exp(np.linspace(-4, 2, 25) * fit.atm_iv * np.sqrt(fit.t))
        fitted = black(fit.forward, strikes, fit.t, fit.iv(np.log(strikes / fit.forward)), fit.discount, True)
        by_density = np.array([fit.discount * d.expected(lambda s, x=x: np.maximum(s - x, 0.0), kinks=[x])
                               for x in strikes])
        worst = max(worst, float(np.max(np.abs(by_density - fitted))))
    assert worst < 1e-6  # index points; measured ~2e-9


def test_density_mean_is_the_forward(surface, densities):
    for fit in _fitted(surface):
        d = densities[(fit.root, fit.expiry)]
        assert d.expected(lambda s: s) == pytest.approx(fit.forward, rel=1e-10)


def test_flat_smile_gives_the_lognormal_density(surface):
    fit = _flat(_fitted(surface)[3], 0.2)
    d = expiry_density(surface, fit)
    ref = lognorm(s=0.2 * np.sqrt(fit.t), scale=fit.forward * np.exp(-0.02 * fit.t))
    np.testing.assert_allclose(d.pdf, ref.pdf(d.price), rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(d.cdf, ref.cdf(d.price), rtol=1e-10, atol=1e-15)
    x = fit.forward * np.array([0.8, 0.95, 1.0, 1.1])
    np.testing.assert_allclose(d.prob_above(x), ref.sf(x), rtol=1e-10)


def test_zero_dte_slice(surface):
    """Half an hour to expiry: a very narrow density, still normalized and centred on the forward."""
    t = 0.5 / (24 * 365)
    fit = replace(_fitted(surface)[0], t=t, svi=SVIParams(*default_svi(t)), correction=None, floor_layers=())
    d = expiry_density(surface, fit)
    assert d.ok
    assert abs(d.expected(np.ones_like) - 1.0) < 1e-9
    assert d.expected(lambda s: s) == pytest.approx(fit.forward, rel=1e-12)
    assert d.price[-1] / d.price[0] < 1.2  # the grid follows the smile's width, not a fixed range
    strikes = fit.forward * np.array([0.995, 1.0, 1.004])
    fitted = black(fit.forward, strikes, t, fit.iv(np.log(strikes / fit.forward)), 1.0, True)
    by_density = [d.expected(lambda s, x=x: np.maximum(s - x, 0.0), kinks=[x]) for x in strikes]
    np.testing.assert_allclose(by_density, fitted, atol=1e-8)


def test_few_quotes_fitted_slice_and_unfitted_slice():
    snap, _ = make_chain(n_expiries=2, strikes_per_expiry=6)  # 6 usable quotes: just enough to fit
    few = fit_surface(snap)
    for d in surface_densities(few).values():
        assert d.ok and abs(d.expected(np.ones_like) - 1.0) < 1e-9
    snap, _ = make_chain(n_expiries=2, strikes_per_expiry=2)
    none = fit_surface(snap)
    for (root, expiry), d in surface_densities(none).items():
        assert not d.ok and "not fitted" in d.reason and "too few usable quotes" in d.reason
        assert str(expiry) in d.reason and "\n" not in d.reason
        assert np.isnan(d.prob_below(5000.0)) and np.isnan(d.expected(lambda s: s))
        assert len(d.price) == 0


def test_expired_slice_has_a_reason(surface):
    fit = replace(_fitted(surface)[0], t=0.0)
    d = expiry_density(surface, fit)
    assert not d.ok and "no time left" in d.reason


def test_shortfall_of_a_short_put_is_its_worst_five_percent(surface, densities):
    fit = _fitted(surface)[3]
    d = densities[(fit.root, fit.expiry)]
    strike = fit.forward * 0.95

    def short_put(s):
        return -np.maximum(strike - s, 0.0)

    es = d.shortfall(short_put, 0.05, kinks=[strike])
    # Independent: the 5% quantile q of S_T, then E[payoff | S_T < q] by the density.
    grid = np.linspace(d.price[0], fit.forward, 200_001)
    q = grid[np.searchsorted(d.prob_below(grid), 0.05)]
    tail = d.expected(lambda s: short_put(s) * (s < q), kinks=[strike, q]) / d.prob_below(q)
    assert es == pytest.approx(tail, rel=1e-4)
    assert es < d.expected(short_put, kinks=[strike]) < 0
    with pytest.raises(ValueError, match="alpha"):
        d.shortfall(short_put, 1.5)


def test_layer_switch_atoms_keep_the_calls_repriced(shared_data, tmp_path):
    """Real chain: calendar repair serves the max of layers; its kinks are point masses, kept as atoms."""
    from tests.surface.realdata import load_datashop

    surf = fit_surface(load_datashop(shared_data / "cboe_datashop" / "spxw20190626.csv", tmp_path))
    dens = surface_densities(surf)
    with_atoms = [(f, dens[(f.root, f.expiry)]) for f in surf.expiries if dens[(f.root, f.expiry)].atoms]
    assert with_atoms, "expected calendar-layer switches in this chain"
    for fit, d in with_atoms:
        strikes = np.array([a for a, _ in d.atoms] + [fit.forward])
        strikes = np.r_[strikes * 0.999, strikes * 1.001]
        fitted = black(fit.forward, strikes, fit.t, fit.iv(np.log(strikes / fit.forward)), 1.0, True)
        by_density = [d.expected(lambda s, x=x: np.maximum(s - x, 0.0), kinks=[x]) for x in strikes]
        np.testing.assert_allclose(by_density, fitted, atol=1e-6)
        assert abs(d.expected(np.ones_like) - 1.0) < 1e-9
    same_day = dens[(surf.expiries[0].root, date(2019, 6, 26))]
    assert not same_day.ok and "too few usable quotes" in same_day.reason


def test_density_is_a_value_object(densities):
    d = next(iter(densities.values()))
    assert isinstance(d, RiskNeutralDensity)
    with pytest.raises(AttributeError):
        d.forward = 1.0  # type: ignore[misc]


def test_hockey_stick_smile_spike_is_integrated():
    """A short expiry fitted with a near-zero SVI sigma (rho ~ -1) has a density spike ~1e-6 wide in k at m,
    far inside one grid cell; the quadrature cuts cells around m so the mass still integrates to 1
    (it was 1 - 1.7e-4 when the spike fell between Gauss-Legendre nodes)."""
    from spx_core.surface import fit_surface
    from tests.chains import realistic_chain

    surf = fit_surface(realistic_chain(n_quotes=4000, seed=5))
    for d in surface_densities(surf).values():
        if d.ok:
            assert abs(d.expected(np.ones_like) - 1.0) < 1e-8, (d.expiry, d.expected(np.ones_like))


def test_probabilities_at_zero_and_below_need_no_logarithm(densities):
    d = next(iter(densities.values()))
    np.testing.assert_array_equal(d.prob_below(np.array([0.0, -1.0])), [0.0, 0.0])
    np.testing.assert_array_equal(d.prob_above(np.array([0.0, -1.0])), [1.0, 1.0])
