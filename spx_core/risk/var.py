"""1-day VaR and expected shortfall at 95% and 99%: historical full revaluation, parametric as its cross-check.

**Historical** (:func:`historical_var`): each day of a :class:`~spx_core.risk.history.ReturnHistory` becomes a
scenario of :func:`~spx_core.risk.scenarios.stress`: SPX moves by ``exp(r) - 1`` (SPY by that times beta), every
leg's IV moves by that day's VIX change in points, term-scaled by ``stress`` itself (``dVIX x sqrt(30 / days to
expiry)``, days floored at 1), and ``days = 1``: one calendar day passes, so every leg loses a day of time value
(its discount factor rolled with it) and a leg expiring within the day is worth its intrinsic value. Every leg is
fully re-priced (Black-76 / American, the model its greeks come from); the scenario P&L is model value after minus
model value now.

**Quantile convention** (:func:`var_es`), for n scenario P&Ls and confidence p: losses ``L = -P&L`` sorted from
the worst down, ``k = ceil(n (1 - p))`` (rounded to 1e-9 first so 500 x 0.05 is exactly 25);
VaR = ``L_(k)``, the k-th worst loss (the loss exceeded in at most ``k - 1`` of the n days); ES = the mean of the
k worst losses ``L_(1) .. L_(k)`` (the VaR day and the ones beyond it). With n = 500: VaR95 is the 25th worst
loss and ES95 the mean of the 25 worst; VaR99 the 5th worst and ES99 the mean of the 5 worst. Figures are
dollars, positive = a loss (negative when even the tail day is a gain). A NaN P&L (a leg with no vol) makes
every figure NaN rather than hiding the leg.

**Parametric** (:func:`parametric_var`), delta-gamma-vega. P&L over one day is approximated by
``theta + a u + c u^2 + b v`` with ``u = exp(r) - 1`` the SPX return and ``v`` the VIX change in points:
``a = 100 x delta_usd_1pct`` ($ per unit return), ``c = 10^4 x gamma_usd_1pct`` ($ per unit return squared:
``gamma_usd_1pct`` is ``1/2 gamma (0.01 S)^2``), ``b = sum of vega_usd_volpt x sqrt(30 / max(days, 1))`` ($ per
VIX point, the same term scaling as the historical scenarios), theta = ``theta_usd_day`` (one day).
Distributional assumption: ``(u, v)`` jointly normal with **zero mean** and the covariance of the history's
moves (equal weights, ``E[x x^T]`` about zero). The P&L is then a quadratic form in normals whose first four
cumulants are exact (``kappa_s = 2^(s-1) (s-1)! [tr((A S)^s) + s/4 g^T S (A S)^(s-2) g]`` for s >= 2); VaR and ES
come from the **Cornish-Fisher** expansion of the quantile with that skewness and excess kurtosis, ES from the
same expansion integrated over the tail (Boudt, Peterson & Croux 2008, "modified ES"). It misses what full
revaluation captures (vanna, volga, large-move convexity, expiry within the day), so it is a cross-check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spx_core.pricing import black76
from spx_core.risk.greeks import Book, LegInputs, gather_legs, leg_greek_matrix
from spx_core.risk.history import ReturnHistory
from spx_core.risk.scenarios import MIN_SCALE_DAYS, ScenarioGrid, stress
from spx_core.strategies.market import Market

__all__ = [
    "CONFIDENCES",
    "VarFigures",
    "historical_pnl",
    "historical_var",
    "history_grid",
    "parametric_moments",
    "parametric_var",
    "var_es",
]

CONFIDENCES = (0.95, 0.99)
HISTORICAL = "historical (full revaluation)"
PARAMETRIC = "parametric (delta-gamma-vega, Cornish-Fisher)"


@dataclass(frozen=True, slots=True)
class VarFigures:
    """1-day VaR and ES in dollars (positive = loss) at 95% and 99%; ``n`` scenarios (days) behind them."""

    var95: float
    es95: float
    var99: float
    es99: float
    method: str
    n: int


def var_es(pnl: np.ndarray, confidence: float) -> tuple[float, float]:
    """(VaR, ES) of scenario P&Ls at ``confidence`` by the module's quantile convention."""
    pnl = np.asarray(pnl, dtype=np.float64)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95, got {confidence!r}")
    if pnl.size == 0 or not np.all(np.isfinite(pnl)):
        return math.nan, math.nan
    k = max(1, math.ceil(round(pnl.size * (1.0 - confidence), 9)))
    worst = np.sort(-pnl)[::-1][:k]
    return float(worst[-1]) + 0.0, float(worst.mean()) + 0.0  # + 0.0: no "-0.0" for a flat book


def history_grid(history: ReturnHistory) -> ScenarioGrid:
    """The history's days as 1-day scenarios (spot ``exp(r) - 1``, vol the VIX change, one day passing)."""
    names = tuple(str(d) for d in history.dates)
    return ScenarioGrid(names, np.expm1(history.spot_returns), np.asarray(history.vol_changes, np.float64),
                        np.ones(len(history)))


def historical_pnl(legs: Book | LegInputs, market: Market | None, history: ReturnHistory, *,
                   spy_beta: float = 1.0) -> np.ndarray:
    """P&L in dollars of the book on each day of ``history`` (full revaluation), aligned with its dates."""
    return stress(legs, market, history_grid(history), spy_beta=spy_beta)


def historical_var(legs: Book | LegInputs, market: Market | None, history: ReturnHistory, *,
                   spy_beta: float = 1.0) -> VarFigures:
    """Historical-simulation VaR/ES of the book (module docstring); ``legs`` may be pre-gathered LegInputs."""
    pnl = historical_pnl(legs, market, history, spy_beta=spy_beta)
    return _figures(pnl, HISTORICAL)


def _figures(pnl: np.ndarray, method: str) -> VarFigures:
    (v95, e95), (v99, e99) = (var_es(pnl, p) for p in CONFIDENCES)
    return VarFigures(v95, e95, v99, e99, method, len(pnl))


def parametric_moments(legs: Book | LegInputs, market: Market | None, history: ReturnHistory, *,
                       spy_beta: float = 1.0) -> tuple[float, float, float, float]:
    """(mean, standard deviation, skewness, excess kurtosis) of the delta-gamma-vega 1-day P&L in dollars."""
    x = legs if isinstance(legs, LegInputs) else gather_legs(legs, market, spy_beta=spy_beta)  # type: ignore[arg-type]
    g = leg_greek_matrix(x)
    days = np.maximum(x.t * black76.DAYS_PER_YEAR, MIN_SCALE_DAYS)
    a = 100.0 * float(g[2].sum())
    c = 1e4 * float(g[3].sum())
    b = float((g[4] * np.sqrt(30.0 / days)).sum())
    theta = float(g[5].sum())
    moves = np.stack([np.expm1(history.spot_returns), history.vol_changes])
    sigma = moves @ moves.T / max(moves.shape[1], 1)
    grad = np.array([a, b])
    quad = np.array([[c, 0.0], [0.0, 0.0]])
    k = _quadratic_cumulants(grad, quad, sigma)
    mean = theta + k[0]
    sd = math.sqrt(k[1]) if k[1] > 0 else 0.0
    if not (math.isfinite(mean) and math.isfinite(sd)):
        return math.nan, math.nan, math.nan, math.nan
    if sd == 0.0:
        return mean, 0.0, 0.0, 0.0
    return mean, sd, k[2] / sd ** 3, k[3] / sd ** 4


def _quadratic_cumulants(g: np.ndarray, a: np.ndarray, s: np.ndarray) -> tuple[float, float, float, float]:
    """First four cumulants of ``g.x + x^T A x`` for x ~ N(0, S) (Mathai & Provost; see the module docstring)."""
    a_s = a @ s
    out = [float(np.trace(a_s))]
    power = np.eye(len(g))  # (A S)^(n-2)
    for n in (2, 3, 4):
        out.append(2 ** (n - 1) * math.factorial(n - 1)
                   * (float(np.trace(np.linalg.matrix_power(a_s, n))) + n / 4.0 * float(g @ s @ power @ g)))
        power = power @ a_s
    return out[0], out[1], out[2], out[3]


def parametric_var(legs: Book | LegInputs, market: Market | None, history: ReturnHistory, *,
                   spy_beta: float = 1.0) -> VarFigures:
    """Delta-gamma-vega VaR/ES with Cornish-Fisher quantiles (module docstring)."""
    mean, sd, skew, kurt = parametric_moments(legs, market, history, spy_beta=spy_beta)
    figures: list[float] = []
    for p in CONFIDENCES:
        figures += _cornish_fisher(mean, sd, skew, kurt, 1.0 - p)
    return VarFigures(*figures, PARAMETRIC, len(history))


def _cornish_fisher(mean: float, sd: float, skew: float, kurt: float, alpha: float) -> list[float]:
    """[VaR, ES] (positive = loss) at tail probability ``alpha`` of a P&L with these moments."""
    from scipy.stats import norm

    if not math.isfinite(mean):
        return [math.nan, math.nan]
    z = float(norm.ppf(alpha))
    zq = z + (z * z - 1) * skew / 6 + (z ** 3 - 3 * z) * kurt / 24 - (2 * z ** 3 - 5 * z) * skew ** 2 / 36
    lam = float(norm.pdf(z)) / alpha
    tail = -lam * (1 + z * skew / 6 + (z * z - 1) * kurt / 24 - (2 * z * z - 1) * skew ** 2 / 36)
    return [-(mean + sd * zq), -(mean + sd * tail)]
