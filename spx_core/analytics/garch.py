"""GARCH(1,1) forecasts of realized volatility, fitted with the maintained ``arch`` package.

The model is arch's constant-mean GARCH(1,1) with normal innovations, fitted by maximum likelihood
on daily log returns scaled by 100 (arch's optimizer is tuned for returns in percent; unscaled
returns trigger its DataScaleWarning and converge worse). ``arch`` is imported on first use only.

A horizon's forecast is the vol of the *sum* of the next ``h`` daily returns, annualized:
``sqrt(mean(sigma^2_{t+1..t+h}) * 252) / 100`` with ``sigma^2_{t+i}`` arch's analytic i-step variance
forecast. That is the number to compare with an option's implied vol over the same horizon, or with
the realized vol measured afterwards.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from spx_core.analytics._series import TRADING_DAYS, as_float_array

__all__ = ["MIN_RETURNS", "RETURN_SCALE", "GarchError", "GarchForecast", "garch_forecast"]

#: Fewer daily returns than this cannot pin down three variance parameters; the fit is refused.
MIN_RETURNS = 100
#: Returns are multiplied by this before fitting (percent), as arch recommends.
RETURN_SCALE = 100.0


class GarchError(ValueError):
    """The GARCH model cannot be fitted (too little history, or the optimizer did not converge)."""


@dataclass(frozen=True, slots=True)
class GarchForecast:
    """A fitted GARCH(1,1) and its vol forecasts.

    Attributes:
        horizon_days: forecast horizons (trading days), as asked.
        vol: annualized vol (decimal, 0.18 = 18%) of the next ``h`` days' returns, per horizon.
        current_vol: annualized conditional vol of the last fitted day (decimal).
        long_run_vol: annualized unconditional vol ``sqrt(omega / (1 - alpha - beta))`` (decimal;
            NaN when ``alpha + beta >= 1``, i.e. no mean reversion).
        mu: mean daily return (percent, i.e. of returns x 100).
        omega: variance intercept (percent^2 per day).
        alpha: ARCH (shock) coefficient; beta: GARCH (persistence) coefficient.
        persistence: ``alpha + beta`` (half-life of a vol shock = ln 0.5 / ln persistence days).
        n_returns: returns used in the fit.
        log_likelihood: of the fit (for comparing models on the same data).
        variance_path: daily variance forecasts for days 1..max(horizon) (percent^2).
    """

    horizon_days: tuple[int, ...]
    vol: tuple[float, ...]
    current_vol: float
    long_run_vol: float
    mu: float
    omega: float
    alpha: float
    beta: float
    persistence: float
    n_returns: int
    log_likelihood: float
    variance_path: np.ndarray

    def vol_for(self, horizon_days: int) -> float:
        """The annualized vol forecast for one of the fitted horizons."""
        try:
            return self.vol[self.horizon_days.index(int(horizon_days))]
        except ValueError:
            raise KeyError(f"no forecast for {horizon_days} days; horizons are {self.horizon_days}") from None


def _check_horizons(horizon_days: Sequence[int]) -> tuple[int, ...]:
    horizons = tuple(int(h) for h in horizon_days)
    if not horizons or any(h < 1 or h != hd for h, hd in zip(horizons, horizon_days, strict=True)):
        raise ValueError(f"horizon_days must be whole numbers of days >= 1, got {tuple(horizon_days)!r}")
    return horizons


def garch_forecast(returns: Any, horizon_days: Sequence[int] = (1, 5, 21), *,
                   periods_per_year: float = TRADING_DAYS) -> GarchForecast:
    """Fit GARCH(1,1) to daily log ``returns`` (decimal, oldest first) and forecast vol per horizon.

    NaN returns (e.g. the first one of :func:`~spx_core.analytics.volatility.log_returns`) are dropped.

    Raises:
        GarchError: fewer than :data:`MIN_RETURNS` finite returns, or the fit did not converge.
        ValueError: a horizon that is not a whole number of days >= 1.
    """
    horizons = _check_horizons(horizon_days)
    r = as_float_array(returns, "returns")
    r = r[np.isfinite(r)]
    if len(r) < MIN_RETURNS:
        raise GarchError(f"GARCH(1,1) needs at least {MIN_RETURNS} daily returns, got {len(r)}; "
                         f"import more daily bars (spx-data import) or use a realized-vol estimator")
    from arch import arch_model

    model = arch_model(r * RETURN_SCALE, mean="Constant", vol="GARCH", p=1, q=1, dist="normal")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is checked below through the flag, not a warning
        res = model.fit(disp="off")
    if res.convergence_flag != 0:
        raise GarchError(f"the GARCH(1,1) fit did not converge on {len(r)} returns "
                         f"({res.optimization_result.message}); check the returns for bad prints")
    params = res.params
    mu, omega, alpha, beta = (float(params[k]) for k in ("mu", "omega", "alpha[1]", "beta[1]"))
    path = np.asarray(res.forecast(horizon=max(horizons), reindex=False).variance, dtype=np.float64)[-1]
    scale = np.sqrt(float(periods_per_year)) / RETURN_SCALE
    vols = tuple(float(np.sqrt(path[:h].mean()) * scale) for h in horizons)
    persistence = alpha + beta
    long_run = float(np.sqrt(omega / (1.0 - persistence)) * scale) if persistence < 1.0 else float("nan")
    current = float(np.asarray(res.conditional_volatility, dtype=np.float64)[-1] * scale)
    return GarchForecast(horizon_days=horizons, vol=vols, current_vol=current, long_run_vol=long_run, mu=mu,
                         omega=omega, alpha=alpha, beta=beta, persistence=persistence, n_returns=len(r),
                         log_likelihood=float(res.loglikelihood), variance_path=path)
