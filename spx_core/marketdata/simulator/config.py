"""Frozen, validated configuration of the simulated SPX market.

Every field states its unit. Defaults are calibrated to the real SPXW chain of 2019-06-26 15:45 ET
(``../shared/data/cboe_datashop/spxw20190626.csv``): 30-day ATM IV ~14%, a steep put skew
(IV(0.9F) - IV(F) ~ +9 vol points, 25-delta risk reversal ~ +5 points at 30 days) and the file's
bid/ask widths by option price (one or two ticks below $3, ~0.3 at $10-50, several points deep in the
money). The default index level is a modern one; pass ``spot=2918.11`` to compare with the file.
See ``tests/marketdata/test_simulator_calibration.py`` for the comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["SimulatorConfig", "ProcessParams", "SurfaceParams", "QuotingParams", "StrikeParams", "SpyParams",
           "SimulatorConfigError"]


class SimulatorConfigError(ValueError):
    """A simulator configuration value is out of range; the message names the field and the fix."""


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise SimulatorConfigError(message)


@dataclass(frozen=True, slots=True)
class ProcessParams:
    """Bates dynamics of SPX: Heston variance with correlated Brownian shocks plus Poisson jumps.

    ``dS/S = (r - q - lambda*m) dt + sqrt(v) dW1 + (J - 1) dN``,
    ``dv = kappa (theta - v) dt + xi sqrt(v) dW2``, ``corr(dW1, dW2) = rho``,
    ``ln J ~ N(jump_mean, jump_std^2)``, ``N`` Poisson with intensity ``jump_intensity``.

    Attributes:
        v0: initial instantaneous variance (annualized vol squared, 1/year).
        kappa: mean-reversion speed of the variance (1/year).
        theta: long-run variance (1/year).
        xi: volatility of variance (1/sqrt(year)).
        rho: spot-variance correlation (dimensionless, negative for equity indices).
        jump_intensity: expected jumps per year (1/year).
        jump_mean: mean log jump size (dimensionless; negative = crashes).
        jump_std: standard deviation of the log jump size (dimensionless).
        v_floor: lower bound on the simulated variance (1/year); keeps the surface finite.
    """

    v0: float = 0.018
    kappa: float = 4.0
    theta: float = 0.026
    xi: float = 0.45
    rho: float = -0.72
    jump_intensity: float = 0.4
    jump_mean: float = -0.03
    jump_std: float = 0.03
    v_floor: float = 0.0016

    def __post_init__(self) -> None:
        for name in ("v0", "theta", "v_floor"):
            _check(getattr(self, name) > 0, f"ProcessParams.{name} must be > 0 (a variance, 1/year)")
        _check(self.kappa > 0, "ProcessParams.kappa must be > 0 (mean-reversion speed, 1/year)")
        _check(self.xi >= 0, "ProcessParams.xi must be >= 0 (vol of variance)")
        _check(-1 < self.rho < 1, "ProcessParams.rho must be in (-1, 1)")
        _check(self.jump_intensity >= 0 and self.jump_std >= 0,
               "ProcessParams.jump_intensity and jump_std must be >= 0")

    @property
    def jump_compensator(self) -> float:
        """E[J - 1] (dimensionless): the drift correction that keeps the forward a martingale."""
        return math.exp(self.jump_mean + 0.5 * self.jump_std ** 2) - 1.0

    @property
    def jump_variance_rate(self) -> float:
        """Variance the jumps add per year (1/year): ``lambda * E[(ln J)^2]``."""
        return self.jump_intensity * (self.jump_mean ** 2 + self.jump_std ** 2)


@dataclass(frozen=True, slots=True)
class SurfaceParams:
    """SSVI surface ``w(k, T) = theta_T/2 * (1 + rho*phi*k + sqrt((phi*k + rho)^2 + 1 - rho^2))``
    with the power-law ``phi(theta) = eta / (theta^gamma * (1 + theta)^(1 - gamma))``.

    Gatheral-Jacquier (2014): free of calendar arbitrage for ``0 < gamma <= 1/2`` and non-decreasing
    ``theta_T``; free of butterfly arbitrage when ``eta * (1 + |rho|) <= 2``. Both are enforced here.

    Attributes:
        rho: smile asymmetry (dimensionless, negative = put skew).
        eta: curvature level (dimensionless).
        gamma: power-law decay of the curvature with total variance (dimensionless).
        atm_premium: ratio of implied ATM variance to the model's expected variance (dimensionless);
            index options trade above realized (variance risk premium).
    """

    rho: float = -0.70
    eta: float = 1.1
    gamma: float = 0.45
    atm_premium: float = 1.0

    def __post_init__(self) -> None:
        _check(-1 < self.rho < 1, "SurfaceParams.rho must be in (-1, 1)")
        _check(0 < self.gamma <= 0.5, "SurfaceParams.gamma must be in (0, 0.5] (no calendar arbitrage)")
        _check(self.eta > 0 and self.eta * (1 + abs(self.rho)) <= 2.0,
               f"SurfaceParams.eta*(1+|rho|) = {self.eta * (1 + abs(self.rho)):.3f} must be <= 2 "
               f"(Gatheral-Jacquier no-butterfly condition): lower eta or |rho|")
        _check(self.atm_premium > 0, "SurfaceParams.atm_premium must be > 0")


#: Median bid/ask width (index points) by option price in the real SPXW chain of 2019-06-26 15:45 ET,
#: expiries up to 120 days (out of the money below ~100, in the money above).
_WIDTH_PRICES = (0.05, 0.5, 2.0, 3.0, 4.0, 6.0, 10.0, 15.0, 25.0, 40.0, 60.0, 90.0, 130.0, 200.0, 300.0,
                 450.0, 700.0, 1000.0, 1500.0)
_WIDTH_POINTS = (0.08, 0.09, 0.10, 0.15, 0.19, 0.20, 0.26, 0.28, 0.30, 0.32, 0.38, 0.55, 1.60, 2.10, 2.40,
                 4.00, 5.50, 6.40, 8.30)


@dataclass(frozen=True, slots=True)
class QuotingParams:
    """Market-maker quoting: a target width from the theoretical price (piecewise linear in log price
    through ``width_prices -> width_points``), scaled by a term factor and a per-quote jitter, then
    quoted as a whole number of ticks (0.05 below 3.00, 0.10 at and above) around the theo.

    Attributes:
        width_prices: option prices of the width table, increasing (index points).
        width_points: target widths at those prices (index points).
        long_dated_days: widths grow linearly from 30 days to ``long_dated_factor`` at this DTE (days).
        long_dated_factor: multiplier on widths of long-dated expiries (dimensionless).
        zero_dte_factor: multiplier on widths of same-day expiries (dimensionless).
        width_jitter: lognormal sigma of a per-quote width multiplier, redrawn on refresh (dimensionless).
        base_size: median displayed size near the money (contracts).
        refresh_rate: refresh rate of the most liquid quotes while still good (1/second); less liquid
            quotes refresh proportionally less often. A quote the theo has left always moves.
        trade_rate: expected trades per second over the whole chain (1/second).
    """

    width_prices: tuple[float, ...] = _WIDTH_PRICES
    width_points: tuple[float, ...] = _WIDTH_POINTS
    long_dated_days: float = 150.0
    long_dated_factor: float = 1.3
    zero_dte_factor: float = 1.2
    width_jitter: float = 0.2
    base_size: float = 20.0
    refresh_rate: float = 0.5
    trade_rate: float = 6.0

    def __post_init__(self) -> None:
        _check(len(self.width_prices) == len(self.width_points) >= 2,
               "QuotingParams.width_prices and width_points must have the same length (>= 2)")
        _check(all(b > a > 0 for a, b in zip(self.width_prices, self.width_prices[1:])),
               "QuotingParams.width_prices must be positive and strictly increasing")
        _check(all(w > 0 for w in self.width_points), "QuotingParams.width_points must be > 0")
        for name in ("long_dated_factor", "zero_dte_factor", "base_size", "refresh_rate"):
            _check(getattr(self, name) > 0, f"QuotingParams.{name} must be > 0")
        _check(self.long_dated_days > 30, "QuotingParams.long_dated_days must be > 30")
        _check(self.width_jitter >= 0 and self.trade_rate >= 0,
               "QuotingParams.width_jitter and trade_rate must be >= 0")


@dataclass(frozen=True, slots=True)
class StrikeParams:
    """Which strikes list around the forward ``F`` of an expiry, with ``s = sigma_ref*sqrt(max(T, min_t))``.

    Bands go outward from the forward, each with a strike step and an edge in standard deviations of
    log-moneyness, and at most ``*_count`` strikes per side: 5-point strikes to ``fine_sd`` (only for
    expiries up to ``fine_max_days``), 25-point to ``mid_sd``, 50-point to ``wide_sd``, 100-point to
    ``put_tail_sd`` below (puts list far deeper than calls) and ``call_tail_sd`` above. Strikes stop at
    ``max_put_moneyness * F``. The counts keep a full chain at ~15-20k quotes.

    Attributes:
        sigma_ref: reference vol for the strike range (1/sqrt(year)).
        min_t: floor on T for the range so 0DTE still lists a useful width (years).
        fine_sd, mid_sd, wide_sd, put_tail_sd, call_tail_sd: band edges (standard deviations).
        fine_count, mid_count, wide_count, tail_count: most strikes per side in each band (strikes).
        fine_max_days: longest expiry with 5-point strikes (calendar days).
        max_put_moneyness: lowest strike as a fraction of the forward (dimensionless).
    """

    sigma_ref: float = 0.16
    min_t: float = 4.0 / 365.0
    fine_sd: float = 2.5
    mid_sd: float = 3.0
    wide_sd: float = 4.0
    put_tail_sd: float = 6.0
    call_tail_sd: float = 3.0
    fine_count: int = 32
    mid_count: int = 10
    wide_count: int = 8
    tail_count: int = 12
    fine_max_days: float = 100.0
    max_put_moneyness: float = 0.35

    def __post_init__(self) -> None:
        _check(self.sigma_ref > 0 and self.min_t > 0, "StrikeParams.sigma_ref and min_t must be > 0")
        _check(0 < self.fine_sd <= self.mid_sd <= self.wide_sd <= self.put_tail_sd,
               "StrikeParams bands must satisfy 0 < fine_sd <= mid_sd <= wide_sd <= put_tail_sd")
        _check(self.call_tail_sd > 0, "StrikeParams.call_tail_sd must be > 0")
        _check(min(self.fine_count, self.mid_count, self.wide_count, self.tail_count) >= 1,
               "StrikeParams counts must be >= 1 strike per side")
        _check(0 < self.max_put_moneyness < 1, "StrikeParams.max_put_moneyness must be in (0, 1)")


@dataclass(frozen=True, slots=True)
class SpyParams:
    """SPY listed beside the index: price ``ratio * SPX * exp(e) * exp(q * tau)`` with ``e`` a mean-reverting
    (Ornstein-Uhlenbeck) tracking difference and ``tau`` the years since the last ex-dividend date (SPY holds
    the index's dividends in cash and pays them quarterly, dropping by the dividend on the ex-date). Options are
    American, priced with :func:`spx_core.pricing.american.american_price` on the index's SSVI surface (same
    log-moneyness against SPY's own forward) with the dividends as cash dividends.

    Attributes:
        ratio: SPY per index point (dimensionless; SPY ~ SPX/10).
        tracking_bp: stationary standard deviation of the log tracking difference (basis points).
        tracking_halflife: half-life of the tracking difference (seconds of clock time).
        div_yield: yield paid as four cash dividends a year (1/year); each is one quarter's accrual.
        ex_months: months whose third Friday is an ex-dividend date.
        daily_days: daily expiries (every trading day) out to this many calendar days (days).
        weekly_days: Friday expiries out to this many calendar days (days).
        monthly_months: third-Friday monthly expiries for this many months (months).
        near_step, far_step: strike steps near the money and further out (dollars).
        near_sd, far_sd: band edges in standard deviations of log-moneyness (``sigma_ref * sqrt(T)``).
        near_count, far_count: most strikes per side in each band (strikes).
        sigma_ref: reference vol for the strike range (1/sqrt(year)); min_t: floor on T for it (years).
        width_scale: SPY width = this * the index width table at 10x the price, / 10 (dimensionless).
        method: American model, "bs2002" or "baw".
        eep_refresh_seconds: the early-exercise premium (American minus European, slow-moving) is recomputed at
            most this often (simulated seconds) and on every listing; in between quotes move with the European
            part. 0 = every tick.
    """

    ratio: float = 0.1
    tracking_bp: float = 2.0
    tracking_halflife: float = 1800.0
    div_yield: float = 0.013
    ex_months: tuple[int, ...] = (3, 6, 9, 12)
    daily_days: int = 30
    weekly_days: int = 60
    monthly_months: int = 6
    near_step: float = 1.0
    far_step: float = 5.0
    near_sd: float = 2.0
    far_sd: float = 4.0
    near_count: int = 30
    far_count: int = 12
    sigma_ref: float = 0.16
    min_t: float = 4.0 / 365.0
    width_scale: float = 0.5
    method: str = "bs2002"
    eep_refresh_seconds: float = 15.0

    def __post_init__(self) -> None:
        _check(self.ratio > 0, "SpyParams.ratio must be > 0 (SPY per index point, e.g. 0.1)")
        _check(self.tracking_bp >= 0 and self.tracking_halflife > 0,
               "SpyParams.tracking_bp must be >= 0 and tracking_halflife > 0 (seconds)")
        _check(0 <= self.div_yield < 0.5, "SpyParams.div_yield is per year as a decimal; use e.g. 0.013, not 1.3")
        _check(all(1 <= m <= 12 for m in self.ex_months), "SpyParams.ex_months must be months 1-12")
        _check(0 < self.near_step <= self.far_step, "SpyParams strike steps must satisfy 0 < near_step <= far_step")
        _check(0 < self.near_sd <= self.far_sd and min(self.near_count, self.far_count) >= 1,
               "SpyParams bands must satisfy 0 < near_sd <= far_sd and counts >= 1")
        _check(self.method in ("bs2002", "baw"), f"SpyParams.method {self.method!r}: use 'bs2002' or 'baw'")
        _check(self.eep_refresh_seconds >= 0 and self.width_scale > 0,
               "SpyParams.eep_refresh_seconds must be >= 0 and width_scale > 0")


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """The simulated market.

    Attributes:
        seed: seed of the numpy Generator; same seed + same start -> identical snapshots.
        start: simulated start instant (aware datetime); None = now (wall clock), truncated to the second.
            With ``market_hours`` a start outside the regular session moves to the next open.
        speed: simulated seconds per wall second (1, 10, 60, ...); used by :class:`SimulatorSource`.
        tick_seconds: simulated seconds per tick (seconds).
        market_hours: follow the exchange calendar (frozen outside regular hours, skip to next open);
            False = always-open demo mode on calendar time.
        spot: SPX level at the start (index points).
        rate: continuously compounded risk-free rate (1/year).
        div_yield: continuously compounded dividend yield (1/year).
        overnight_variance_share: share of a trading day's variance realized between close and open
            (dimensionless; only with ``market_hours``).
        underlying: symbol written into snapshots.
        spy: SPY listed beside the index (each batch carries SPY's as a companion); None = index only.
    """

    seed: int = 7
    start: datetime | None = None
    speed: float = 1.0
    tick_seconds: float = 1.0
    market_hours: bool = True
    spot: float = 5800.0
    rate: float = 0.04
    div_yield: float = 0.013
    overnight_variance_share: float = 0.2
    underlying: str = "SPX"
    process: ProcessParams = field(default_factory=ProcessParams)
    surface: SurfaceParams = field(default_factory=SurfaceParams)
    quoting: QuotingParams = field(default_factory=QuotingParams)
    strikes: StrikeParams = field(default_factory=StrikeParams)
    spy: SpyParams | None = field(default_factory=SpyParams)

    def __post_init__(self) -> None:
        _check(isinstance(self.seed, int) and self.seed >= 0, f"seed {self.seed!r} must be an int >= 0")
        _check(self.start is None or self.start.tzinfo is not None,
               f"start {self.start!r} is naive: pass an aware datetime (e.g. tzinfo=ET)")
        _check(self.speed > 0, f"speed {self.speed!r} must be > 0 (simulated seconds per wall second)")
        _check(0 < self.tick_seconds <= 3600, f"tick_seconds {self.tick_seconds!r} must be in (0, 3600]")
        _check(self.spot > 0, f"spot {self.spot!r} must be > 0 index points")
        _check(-0.2 < self.rate < 0.5 and -0.2 < self.div_yield < 0.5,
               "rate and div_yield are continuously compounded per year; use e.g. 0.04, not 4")
        _check(0 <= self.overnight_variance_share < 1, "overnight_variance_share must be in [0, 1)")
