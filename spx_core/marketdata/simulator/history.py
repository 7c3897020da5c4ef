"""The simulated market's past: daily SPX and VIX bars leading into the simulation's first session.

**These bars are simulated, not market data.** They exist so that a simulated market comes with a simulated past:
the trend and mixture regimes, the VIX level, bucket and rank, the realized vols and the historical VaR all need
daily history, and the simulator's store is usually empty. They must never be written into a user's database
(the app keeps them in memory and labels them "simulated history (750 days, seed N)").

Model: the simulator's own (:mod:`~spx_core.marketdata.simulator.process`), with its parameters and seed.

* Each trading day is an overnight step of ``overnight_variance_share / 252`` years of process time (close to open)
  and :data:`INTRADAY_STEPS` equal steps sharing the rest of the day's ``1/252`` (open to close), as the market-hours
  clock runs it. Dates are the exchange's trading days (:class:`~spx_core.domain.calendar.MarketCalendar`).
* The history must lead into the simulation, which starts at ``config.spot`` with variance ``config.process.v0``.
  Both ends are met exactly rather than by luck:

  - **variance**: the Heston (CIR) variance is a stationary one-dimensional diffusion, hence time-reversible:
    a path run *backwards* from ``v0`` (the simulator's full-truncation Euler step, drawn from the seed) and read
    forwards is a path from the stationary law that ends at ``v0``. Read forwards, its Brownian increments are
    the negatives of the generating draws, so the spot shocks are correlated with them at ``rho`` (the leverage
    effect keeps its sign: falling prices with rising vol);
  - **jumps** run forwards (a crash must come before the volatility it causes): Poisson with the simulator's
    intensity and lognormal size; a down-jump adds ``4 * ln(J)^2`` of variance, as in the simulator, decaying at
    the variance's mean-reversion speed ``kappa`` (the simulator's expected decay). A crash in the last weeks
    leaves the history's last variance above ``v0`` by what is left of it;
  - **level**: the index is scale-free in the model, so the path is scaled to close its last day at
    ``config.spot``, the level the simulation opens at.

* OHLC: open after the overnight step, high and low over the day's intraday points, close after the last one;
  prices in cents, as the index prints. Volume is NaN: an index trades no volume of its own.
* VIX (:func:`vix_level`): the simulator's own 30-calendar-day ATM implied vol in points,
  ``100 * sqrt(theta(v, 30/365) / (30/365))`` with ``theta`` the SSVI surface's ATM total variance
  (:func:`~spx_core.marketdata.simulator.surface.atm_total_variance`) at the day's variance: exactly what the live
  simulated surface shows as its 30-day ATM IV at that variance, so yesterday's VIX and today's ATM IV agree. It
  mean-reverts with the variance (speed ``kappa``, level ``theta``). The real VIX, a variance swap over the whole
  smile, runs about 1-3 points above the ATM IV; this one does not.

Determinism: the draws come from their own generator, ``default_rng([seed, HISTORY_STREAM])``, so the same config
(seed and model), ``end`` and ``days`` give byte-identical frames, and the live simulation's draws are untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from spx_core.marketdata.simulator.clock import TRADING_DAYS_PER_YEAR
from spx_core.marketdata.simulator.config import SimulatorConfig
from spx_core.marketdata.simulator.surface import atm_total_variance

if TYPE_CHECKING:
    from spx_core.domain.calendar import MarketCalendar

__all__ = ["DEFAULT_DAYS", "HISTORY_STREAM", "INTRADAY_STEPS", "SimulatedPath", "history_end", "history_label",
           "simulated_daily_history", "simulated_path", "vix_level"]

#: Trading days of history by default (about three years: the trend rule needs 200, IV rank a year, VaR 500).
DEFAULT_DAYS = 750
#: Second number of the SeedSequence of the history's generator ("HIST"): its own stream beside SPX's and SPY's.
HISTORY_STREAM = 0x48495354
#: Intraday steps per session (5-minute steps of a 6.5-hour day): enough points for a realistic high-low range.
INTRADAY_STEPS = 78
#: The VIX horizon: 30 calendar days in ACT/365 years.
VIX_T = 30.0 / 365.0
_V_CAP = 4.0  # the simulator's cap on the variance (200% vol)


def vix_level(config: SimulatorConfig, variance: Any) -> Any:
    """The VIX (index points) the simulated market shows at instantaneous ``variance`` (1/year, broadcasts):
    its 30-day ATM implied vol, ``100 * sqrt(theta(variance, 30/365) / (30/365))``."""
    theta = atm_total_variance(variance=np.asarray(variance, dtype=np.float64), t=np.float64(VIX_T),
                               process=config.process, surface=config.surface)
    return 100.0 * np.sqrt(theta / VIX_T)


def history_label(config: SimulatorConfig, days: int = DEFAULT_DAYS) -> str:
    """How the app names these bars where their source is shown."""
    return f"simulated history ({days} days, seed {config.seed})"


def history_end(config: SimulatorConfig, *, now_ns: int | None = None,
                calendar: MarketCalendar | None = None) -> date:
    """The simulation's first session (ET date): the ``end`` its history leads into.

    ``config.start`` fixes it; a config without a start begins at the wall clock, which the core never reads:
    pass that instant as ``now_ns`` (e.g. the first snapshot's time). With ``market_hours`` a start outside a
    session moves to the next open, as :class:`~spx_core.marketdata.simulator.SimulatedMarket` does.
    """
    from spx_core.domain.calendar import ET, default_calendar, from_ns, to_ns
    from spx_core.marketdata.simulator.clock import next_session, session_containing

    if config.start is None and now_ns is None:
        raise ValueError("the simulator config has no start: pass now_ns, the instant the simulation began")
    start_ns = to_ns(config.start) if config.start is not None else int(now_ns)
    if not config.market_hours:
        return from_ns(start_ns).astimezone(ET).date()
    cal = calendar or default_calendar()
    session = session_containing(cal, start_ns) or next_session(cal, start_ns)
    return session.day


@dataclass(frozen=True, slots=True, eq=False)
class SimulatedPath:
    """The history's path at every point: ``days * (INTRADAY_STEPS + 1) + 1`` points, oldest first.

    Point 0 is the close before the first day; day ``d`` opens at point ``d * (INTRADAY_STEPS + 1) + 1`` and closes
    at point ``(d + 1) * (INTRADAY_STEPS + 1)``; the last point is the last close.

    Attributes:
        spot: index level (index points, unrounded); ``spot[-1] == config.spot``.
        variance: instantaneous variance (1/year) including the jumps' decaying part.
        jump_variance: the jumps' part of ``variance`` (1/year).
    """

    spot: np.ndarray
    variance: np.ndarray
    jump_variance: np.ndarray

    @property
    def days(self) -> int:
        return (len(self.spot) - 1) // (INTRADAY_STEPS + 1)

    def closes(self) -> np.ndarray:
        """Indices of the day closes in the path arrays."""
        return np.arange(1, self.days + 1) * (INTRADAY_STEPS + 1)


def _step_years(config: SimulatorConfig, days: int) -> np.ndarray:
    """Process time (years) of every step: per day one overnight step, then the session's steps."""
    share = config.overnight_variance_share
    day = np.full(INTRADAY_STEPS + 1, (1.0 - share) / TRADING_DAYS_PER_YEAR / INTRADAY_STEPS)
    day[0] = share / TRADING_DAYS_PER_YEAR
    return np.tile(day, days)


def _diffusion_variance(config: SimulatorConfig, dt: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """The jump-free variance path ending at ``v0``: the simulator's Euler step run backwards from the end."""
    p = config.process
    v = np.empty(len(dt) + 1)
    v[-1] = x = p.v0
    kappa, theta, xi, floor = p.kappa, p.theta, p.xi, p.v_floor
    for j in range(len(dt) - 1, -1, -1):  # a recursion: one float step per point (~60k points, ~40 ms)
        h = dt[j]
        x = x + kappa * (theta - x) * h + xi * math.sqrt(x * h) * draws[j]
        x = min(max(x, floor), _V_CAP)
        v[j] = x
    return v


def _jumps(config: SimulatorConfig, dt: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Log jumps per step and the decaying variance they add at every point (1/year)."""
    p = config.process
    n = rng.poisson(p.jump_intensity * dt) if p.jump_intensity > 0 else np.zeros(len(dt), np.int64)
    u = rng.standard_normal(len(dt))
    log_jump = n * p.jump_mean + np.sqrt(n) * p.jump_std * u
    added = np.zeros(len(dt) + 1)
    clock = np.concatenate(([0.0], np.cumsum(dt)))
    for j in np.flatnonzero(log_jump < 0):  # rare (~0.4 a year): each adds a shock decaying at kappa
        after = slice(j + 1, None)
        added[after] += 4.0 * log_jump[j] ** 2 * np.exp(-p.kappa * (clock[after] - clock[j + 1]))
    return log_jump, added


def simulated_path(config: SimulatorConfig, days: int = DEFAULT_DAYS) -> SimulatedPath:
    """The simulated past of ``config``'s market over ``days`` trading days (module docstring); no dates."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 2:
        raise ValueError(f"days must be a whole number of trading days >= 2, got {days!r}")
    p = config.process
    rng = np.random.default_rng([config.seed, HISTORY_STREAM])
    dt = _step_years(config, days)
    var_draws = rng.standard_normal(len(dt))
    spot_draws = rng.standard_normal(len(dt))
    v_diff = _diffusion_variance(config, dt, var_draws)
    log_jump, jump_var = _jumps(config, dt, rng)
    v = np.minimum(v_diff + jump_var, _V_CAP)
    # read forwards, the variance's Brownian increments are minus the backward run's draws (module docstring)
    z_var = -var_draws
    z_spot = p.rho * z_var + math.sqrt(1.0 - p.rho ** 2) * spot_draws
    # the step's diffusion variance must not depend on its own shock, or the shock's correlation with the
    # variance turns into a drift (~+16%/year at rho=-0.72): the backward run drew v[j] from v[j+1] with
    # draws[j], so the step from j to j+1 uses v[j+1] (its jumps' part is the one known at j)
    vs = np.minimum(v_diff[1:] + jump_var[:-1], _V_CAP)
    drift = config.rate - config.div_yield - p.jump_intensity * p.jump_compensator
    log_ret = (drift - 0.5 * vs) * dt + np.sqrt(vs * dt) * z_spot + log_jump
    log_spot = np.concatenate(([0.0], np.cumsum(log_ret)))
    spot = config.spot * np.exp(log_spot - log_spot[-1])
    return SimulatedPath(spot, v, jump_var)


def _trading_days_before(end: date, days: int, calendar: MarketCalendar) -> list[date]:
    span = int(days * 1.5) + 30  # calendar days that hold ``days`` sessions with room for holidays
    while True:
        found = calendar.trading_days(end - timedelta(days=span), end - timedelta(days=1))
        if len(found) >= days:
            return found[-days:]
        span *= 2


def _bar_times(dates: list[date]) -> Any:
    """Each date's bar stamp, 16:00 ET as the daily-bars importer stamps it, as tz-aware UTC ns."""
    import pandas as pd

    from spx_core.domain.calendar import ET
    from spx_core.marketdata.importers.daily_bars import BAR_CLOCK

    local = pd.DatetimeIndex(np.array(dates, dtype="datetime64[ns]")) + pd.Timedelta(BAR_CLOCK + ":00")
    return local.tz_localize(ET).tz_convert("UTC").as_unit("ns")


def _ohlc(points: np.ndarray, days: int) -> dict[str, np.ndarray]:
    """Daily open/high/low/close of a path sampled at every point (rounded to cents, as the index prints)."""
    per_day = INTRADAY_STEPS + 1
    session = np.round(points[1:], 2).reshape(days, per_day)  # row d: day d's open .. close
    return {"open": session[:, 0], "high": session.max(axis=1), "low": session.min(axis=1),
            "close": session[:, -1]}


def simulated_daily_history(config: SimulatorConfig, *, end: date, days: int = DEFAULT_DAYS,
                            calendar: MarketCalendar | None = None) -> tuple[Any, Any]:
    """Simulated daily SPX and VIX bars of the ``days`` trading days before ``end`` (module docstring).

    Args:
        config: the simulated market (its seed, spot, process and surface parameters).
        end: the session the history leads into (exclusive): the last bar is the trading day before it. For the
            running simulation that is its first session (:func:`history_end`).
        days: trading days (bars) of history.

    Returns:
        ``(spx, vix)``: frames shaped as ``Store.load_bars`` returns them (time as tz-aware UTC ns stamped 16:00
        ET, open, high, low, close, volume as float64; volume NaN). Simulated, not market data: keep them out of
        the user's database.
    """
    import pandas as pd

    from spx_core.domain.calendar import default_calendar

    path = simulated_path(config, days)
    dates = _trading_days_before(end, days, calendar or default_calendar())
    times = _bar_times(dates)
    frames = []
    for points in (path.spot, vix_level(config, path.variance)):
        frame = pd.DataFrame({k: v.astype(np.float64) for k, v in _ohlc(points, days).items()})
        frame["volume"] = np.nan
        frame.insert(0, "time", times)
        frames.append(frame)
    return frames[0], frames[1]
