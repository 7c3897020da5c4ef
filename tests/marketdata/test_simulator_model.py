"""The simulator's dynamics and surface: no-arbitrage, martingale forward, leverage effect, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from spx_core.marketdata.simulator.config import ProcessParams, SurfaceParams
from spx_core.marketdata.simulator.process import ProcessState, expected_integrated_variance, step
from spx_core.marketdata.simulator.surface import atm_total_variance, g_function, implied_vol, ssvi_total_variance

T_GRID = np.array([1 / 365 / 24, 1 / 365, 7 / 365, 30 / 365, 0.25, 0.5, 1.0, 2.0])
K_GRID = np.linspace(-1.5, 0.8, 2301)


def _call(k: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Undiscounted Black call on a unit forward at log-strike k with total variance w (independent of the sim)."""
    sd = np.sqrt(w)
    d1 = -k / sd + 0.5 * sd
    return ndtr(d1) - np.exp(k) * ndtr(d1 - sd)


@pytest.mark.parametrize("variance", [0.002, 0.018, 0.09, 0.6])
def test_surface_has_no_butterfly_arbitrage(variance):
    surface, process = SurfaceParams(), ProcessParams()
    theta = atm_total_variance(variance=variance, t=T_GRID, process=process, surface=surface)
    for th in theta:
        assert g_function(k=K_GRID, theta=float(th), surface=surface).min() >= -1e-9
        strikes = np.exp(K_GRID)
        prices = _call(K_GRID, ssvi_total_variance(k=K_GRID, theta=th, surface=surface))
        slopes = np.diff(prices) / np.diff(strikes)
        assert np.all(np.diff(slopes) >= -1e-10)  # call prices convex in strike
        assert np.all(slopes <= 1e-12) and np.all(slopes >= -1 - 1e-12)


@pytest.mark.parametrize("variance", [0.002, 0.018, 0.6])
def test_surface_has_no_calendar_arbitrage(variance):
    surface, process = SurfaceParams(), ProcessParams()
    theta = atm_total_variance(variance=variance, t=T_GRID, process=process, surface=surface)
    w = np.array([ssvi_total_variance(k=K_GRID, theta=th, surface=surface) for th in theta])
    assert np.all(np.diff(theta) > 0)
    assert np.all(np.diff(w, axis=0) >= -1e-14)  # total variance non-decreasing in T at every k


def test_surface_is_skewed_and_tied_to_the_variance():
    surface, process = SurfaceParams(), ProcessParams()
    t = np.array([30 / 365])
    low = atm_total_variance(variance=0.01, t=t, process=process, surface=surface)
    high = atm_total_variance(variance=0.09, t=t, process=process, surface=surface)
    assert high[0] > 2 * low[0]
    vols = implied_vol(k=np.array([np.log(0.9), 0.0, np.log(1.05)]), t=t, theta=low, surface=surface)
    assert vols[0] > vols[1] > vols[2]  # put skew


def test_expected_integrated_variance_matches_the_closed_form_limits():
    p = ProcessParams()
    short = expected_integrated_variance(variance=0.04, t=np.array([1e-6]), params=p)[0] / 1e-6
    assert short == pytest.approx(0.04 + p.jump_variance_rate, rel=1e-4)
    long_avg = expected_integrated_variance(variance=0.04, t=np.array([200.0]), params=p)[0] / 200.0
    assert long_avg == pytest.approx(p.theta + p.jump_variance_rate, rel=1e-3)


def _paths(seed: int, n_paths: int, n_steps: int, dt: float, params: ProcessParams, drift: float = 0.0):
    rng = np.random.default_rng(seed)
    spots, variances = np.empty((n_paths, n_steps + 1)), np.empty((n_paths, n_steps + 1))
    for i in range(n_paths):
        s = ProcessState(100.0, params.v0)
        spots[i, 0], variances[i, 0] = s.spot, s.variance
        for j in range(n_steps):
            s = step(s, dt=dt, drift=drift, params=params, rng=rng)
            spots[i, j + 1], variances[i, j + 1] = s.spot, s.variance
    return spots, variances


def test_forward_is_a_martingale_and_variance_is_leveraged():
    params = ProcessParams(v0=0.04, theta=0.04, jump_intensity=2.0, jump_mean=-0.05)
    spots, variances = _paths(1, 4000, 12, 1 / 52, params, drift=0.03)
    horizon = 12 / 52
    mean = spots[:, -1].mean()
    se = spots[:, -1].std() / np.sqrt(len(spots))
    assert abs(mean - 100.0 * np.exp(0.03 * horizon)) < 4 * se  # jump compensator keeps the drift right
    d_log_s = np.diff(np.log(spots), axis=1).ravel()
    d_v = np.diff(variances, axis=1).ravel()
    assert np.corrcoef(d_log_s, d_v)[0, 1] < -0.5  # spot down, vol up


def test_process_is_deterministic_from_the_seed():
    p = ProcessParams()
    a, _ = _paths(7, 3, 50, 1e-4, p)
    b, _ = _paths(7, 3, 50, 1e-4, p)
    c, _ = _paths(8, 3, 50, 1e-4, p)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_zero_step_draws_nothing():
    rng = np.random.default_rng(0)
    s = ProcessState(100.0, 0.04)
    assert step(s, dt=0.0, drift=0.0, params=ProcessParams(), rng=rng) is s
    assert rng.random() == np.random.default_rng(0).random()
