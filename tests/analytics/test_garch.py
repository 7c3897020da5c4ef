"""GARCH(1,1) forecasts against arch's own fit and forecast, and against the closed-form recursion."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pandas as pd
import pytest
from arch import arch_model

from spx_core.analytics.garch import MIN_RETURNS, GarchError, garch_forecast


def _simulated_returns(n: int = 1500, seed: int = 3) -> np.ndarray:
    """Daily returns from a known GARCH(1,1): omega 2e-6, alpha 0.08, beta 0.90 (long-run vol ~22%)."""
    rng = np.random.default_rng(seed)
    omega, alpha, beta = 2e-6, 0.08, 0.90
    var, out = omega / (1 - alpha - beta), np.empty(n)
    for i in range(n):
        out[i] = math.sqrt(var) * rng.standard_normal()
        var = omega + alpha * out[i] ** 2 + beta * var
    return out


def _arch_reference(returns: np.ndarray, horizon: int):
    res = arch_model(returns * 100, mean="Constant", vol="GARCH", p=1, q=1, dist="normal").fit(disp="off")
    return res, res.forecast(horizon=horizon, reindex=False).variance.to_numpy()[-1]


def _check_against_arch(returns: np.ndarray) -> None:
    got = garch_forecast(returns, (1, 5, 21))
    res, path = _arch_reference(returns, 21)
    assert (got.mu, got.omega, got.alpha, got.beta) == pytest.approx(
        (res.params["mu"], res.params["omega"], res.params["alpha[1]"], res.params["beta[1]"]), rel=1e-9)
    np.testing.assert_allclose(got.variance_path, path, rtol=1e-12)
    for h, vol in zip((1, 5, 21), got.vol, strict=True):
        assert vol == pytest.approx(math.sqrt(path[:h].mean() * 252) / 100, rel=1e-12)
    assert got.vol_for(5) == got.vol[1]
    # arch's path is the closed-form GARCH recursion: LR + persistence^(h-1) (sigma2_1 - LR)
    lr = got.omega / (1 - got.persistence)
    expected = lr + got.persistence ** np.arange(21) * (path[0] - lr)
    np.testing.assert_allclose(got.variance_path, expected, rtol=1e-9)
    assert got.long_run_vol == pytest.approx(math.sqrt(lr * 252) / 100)


def test_matches_arch_on_a_simulated_garch_series():
    returns = _simulated_returns()
    _check_against_arch(returns)
    got = garch_forecast(returns)
    assert 0.85 < got.persistence < 1.0  # recovers the persistence of the generating model (0.98)
    assert 0.10 < got.long_run_vol < 0.40


@pytest.mark.shared_data
def test_matches_arch_on_the_real_sp500_file(shared_data):
    path = shared_data / "index_daily" / "sp500.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    with gzip.open(path, "rt") as fh:
        close = pd.read_csv(fh)["Close"].to_numpy()
    returns = np.diff(np.log(close))[-1500:]
    _check_against_arch(returns)


def test_too_short_history_is_refused_with_a_clear_message():
    with pytest.raises(GarchError, match=f"at least {MIN_RETURNS} daily returns, got 99"):
        garch_forecast(np.concatenate(([np.nan], _simulated_returns(99))))


def test_bad_horizon_and_unknown_horizon():
    with pytest.raises(ValueError, match="horizon_days"):
        garch_forecast(_simulated_returns(200), (0, 5))
    with pytest.raises(KeyError, match="no forecast for 10 days"):
        garch_forecast(_simulated_returns(200), (1, 5)).vol_for(10)
