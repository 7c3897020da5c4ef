"""Bates dynamics of the index: Heston stochastic variance, correlated shocks, Poisson jumps.

The state is the index level and its instantaneous variance. A step is a full-truncation Euler
scheme in log-spot (exact for the jump part), which stays stable for any step up to about a day.
All randomness comes from the caller's ``numpy.random.Generator``, so a seeded run is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spx_core.marketdata.simulator.config import ProcessParams

__all__ = ["ProcessState", "step", "expected_integrated_variance"]


@dataclass(frozen=True, slots=True)
class ProcessState:
    """Index level (index points) and instantaneous variance (1/year)."""

    spot: float
    variance: float


def step(state: ProcessState, *, dt: float, drift: float, params: ProcessParams,
         rng: np.random.Generator) -> ProcessState:
    """Advance the index by ``dt`` years of process time.

    Args:
        dt: process time in years (>= 0); 0 returns ``state`` unchanged and draws nothing.
        drift: ``r - q`` (1/year); the jump compensator is subtracted here so ``S*exp((r-q)t)`` is
            the forward.
    """
    if dt <= 0:
        return state
    z1, z2, u = rng.standard_normal(3)
    v = max(state.variance, 0.0)
    sq = math.sqrt(v * dt)
    w2 = params.rho * z1 + math.sqrt(1.0 - params.rho ** 2) * z2
    n_jumps = int(rng.poisson(params.jump_intensity * dt)) if params.jump_intensity > 0 else 0
    log_jump = 0.0
    if n_jumps:
        # the sum of n normal log-jumps is normal; ``u`` is only used when a jump happened
        log_jump = n_jumps * params.jump_mean + math.sqrt(n_jumps) * params.jump_std * float(u)
    log_ret = (drift - params.jump_intensity * params.jump_compensator - 0.5 * v) * dt + sq * z1 + log_jump
    new_v = v + params.kappa * (params.theta - v) * dt + params.xi * sq * w2
    # a jump down lifts the variance (leverage in crashes): add the squared jump as an instantaneous shock
    if n_jumps:
        new_v += 4.0 * log_jump ** 2 if log_jump < 0 else 0.0
    new_v = min(max(new_v, params.v_floor), 4.0)  # cap at 200% vol: keeps a runaway path finite
    return ProcessState(spot=state.spot * math.exp(log_ret), variance=new_v)


def expected_integrated_variance(*, variance: float, t: np.ndarray, params: ProcessParams) -> np.ndarray:
    """``E[int_0^T v_s ds] + lambda E[(ln J)^2] T``: expected total variance to each ``t`` (years).

    The Heston part is ``theta*T + (v - theta)(1 - exp(-kappa T))/kappa``; it is increasing in ``T``
    for any ``v > 0``, which keeps an SSVI surface built on it free of calendar arbitrage.
    """
    t = np.maximum(np.asarray(t, dtype=np.float64), 0.0)
    k = params.kappa
    decay = -np.expm1(-k * t) / k
    return params.theta * t + (variance - params.theta) * decay + params.jump_variance_rate * t
