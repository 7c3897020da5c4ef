"""The simulator's arbitrage-free implied-volatility surface (SSVI) tied to the variance process.

``theta_T`` (ATM total implied variance) is the process's expected integrated variance to ``T``
times a variance premium, so the whole surface rises and falls with the simulated variance and,
through the negative spot-variance correlation, with the index. The smile is SSVI with a power-law
curvature (Gatheral & Jacquier, "Arbitrage-free SVI volatility surfaces", 2014).
"""

from __future__ import annotations

import numpy as np

from spx_core.marketdata.simulator.config import ProcessParams, SurfaceParams
from spx_core.marketdata.simulator.process import expected_integrated_variance

__all__ = ["atm_total_variance", "ssvi_total_variance", "implied_vol", "g_function"]

#: floor on T (years) so an option at its expiry instant still has a finite, tiny smile
_MIN_T = 1e-7


def atm_total_variance(*, variance: float, t: np.ndarray, process: ProcessParams,
                       surface: SurfaceParams) -> np.ndarray:
    """``theta_T``: ATM total implied variance per expiry (dimensionless), non-decreasing in ``t``."""
    return surface.atm_premium * expected_integrated_variance(variance=variance, t=t, params=process)


def _phi(theta: np.ndarray, surface: SurfaceParams) -> np.ndarray:
    g = surface.gamma
    return surface.eta / (np.power(theta, g) * np.power(1.0 + theta, 1.0 - g))


def ssvi_total_variance(*, k: np.ndarray, theta: np.ndarray, surface: SurfaceParams) -> np.ndarray:
    """Total implied variance ``w(k, theta)`` at log-moneyness ``k = ln(K/F)`` (broadcasts)."""
    rho = surface.rho
    pk = _phi(theta, surface) * k
    return 0.5 * theta * (1.0 + rho * pk + np.sqrt((pk + rho) ** 2 + 1.0 - rho * rho))


def implied_vol(*, k: np.ndarray, t: np.ndarray, theta: np.ndarray, surface: SurfaceParams) -> np.ndarray:
    """Black implied vol (1/sqrt(year)) at log-moneyness ``k`` and time ``t`` (years)."""
    t = np.maximum(t, _MIN_T)
    return np.sqrt(ssvi_total_variance(k=k, theta=np.maximum(theta, 1e-12), surface=surface) / t)


def g_function(*, k: np.ndarray, theta: float, surface: SurfaceParams, dk: float = 1e-4) -> np.ndarray:
    """Gatheral's density function ``g(k)``; ``g >= 0`` everywhere means no butterfly arbitrage.

    Derivatives by central differences (for checks and tests, not the hot path).
    """
    def w(x: np.ndarray) -> np.ndarray:
        return ssvi_total_variance(k=x, theta=np.float64(theta), surface=surface)

    w0 = w(k)
    w1 = (w(k + dk) - w(k - dk)) / (2 * dk)
    w2 = (w(k + dk) - 2 * w0 + w(k - dk)) / (dk * dk)
    return (1 - k * w1 / (2 * w0)) ** 2 - w1 ** 2 / 4 * (1 / w0 + 0.25) + w2 / 2
