"""The bars-only part of the market state: realized vols, VIX level/bucket/rank, trend and mixture regimes,
GARCH forecast (see :mod:`spx_core.analytics.market_state`, which caches it per bars' last date).

Look-ahead: only bars of sessions strictly before ``session`` are used. A daily bar's session is the UTC
date of its time stamp, which is the trading date for every stamp convention in use (midnight UTC, the
16:00 ET close, midnight ET).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np

from spx_core.domain import ET

if TYPE_CHECKING:
    from spx_core.analytics.market_state import MarketStateConfig

__all__ = ["NO_SPX_BARS", "NO_VIX_BARS", "BarsPart", "bars_part", "before_session", "rank_and_percentile", "session_cutoff"]

NO_SPX_BARS = "no SPX bars: import sp500.csv.gz with spx-data import"
NO_VIX_BARS = "no VIX bars: import vix.csv.gz with spx-data import"
NO_ATM_HISTORY = "no stored ATM IVs: record or import chain snapshots on earlier days"
ANNUALIZE = math.sqrt(252.0)


@dataclass(frozen=True, slots=True)
class BarsPart:
    """What the bars give, as market-state field values plus the reasons for missing ones."""

    values: tuple[tuple[str, Any], ...]
    missing: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    vrp_blocker: str  # "" when the realized leg of the VRP may be compared with the live surface
    atm_history: np.ndarray | None = field(default=None, compare=False)  # stored ATM IVs before the session
    atm_history_reason: str = ""


def session_cutoff(time_ns: int) -> date:
    """The ET session date of a snapshot instant (ns UTC): bars of this session and later are not used."""
    from spx_core.domain.calendar import from_ns

    return from_ns(int(time_ns)).astimezone(ET).date()


def _bar_dates(frame: Any) -> np.ndarray:
    times = frame["time"]
    return np.asarray(times.dt.tz_convert("UTC").dt.date if times.dt.tz is not None else times.dt.date)


def before_session(frame: Any, session: date | None) -> Any:
    """The rows of ``frame`` (bars) of sessions before ``session``, NaN closes dropped."""
    if frame is None or len(frame) == 0:
        return None
    keep = np.isfinite(np.asarray(frame["close"], dtype=np.float64))
    if session is not None:
        keep &= _bar_dates(frame) < session
    out = frame[keep]
    return out if len(out) else None


def bars_part(bars_spx: Any, bars_vix: Any, atm_iv_history: Any, session: date | None,
              config: MarketStateConfig) -> BarsPart:
    """Compute every bars-only field (the estimator-heavy part: call it through ``BarsCache``)."""
    values: dict[str, Any] = {}
    missing: dict[str, str] = {}
    notes: list[str] = []
    spx = before_session(bars_spx, session)
    vix = before_session(bars_vix, session)
    vrp_blocker = ""
    if spx is None:
        for name in _SPX_FIELDS:
            missing[name] = NO_SPX_BARS if bars_spx is None or len(bars_spx) == 0 else _none_before("SPX", session)
        vrp_blocker = missing["rv_vrp"]
    else:
        values["spx_as_of"] = _bar_dates(spx)[-1]
        stale = _staleness("SPX", values["spx_as_of"], session, config)
        if stale:
            notes.append(stale)
            vrp_blocker = f"realized vol is not current: {stale}"
        _realized(spx, values, missing, config)
        _trend(spx, values, missing)
        recent = spx.iloc[-config.fit_sessions:]
        _garch(recent, values, missing, config)
        _mixture(recent, values, missing)
        vrp_blocker = vrp_blocker or missing.get("rv_vrp", "")
    if vix is None:
        for name in ("vix", "vix_bucket", "vix_rank", "vix_percentile"):
            missing[name] = NO_VIX_BARS if bars_vix is None or len(bars_vix) == 0 else _none_before("VIX", session)
    else:
        _vix(vix, values, missing, session, notes, config)
    history, history_reason = _atm_history(atm_iv_history, session)
    return BarsPart(tuple(values.items()), tuple(missing.items()), tuple(notes), vrp_blocker, history,
                    history_reason)


_SPX_FIELDS = ("rv_yz_10d", "rv_yz_20d", "rv_yz_30d", "rv_cc_10d", "rv_cc_20d", "rv_cc_30d", "rv_vrp",
               "trend", "garch_vol", "mixture_regime", "mixture_probability")


def _none_before(symbol: str, session: date | None) -> str:
    return f"no {symbol} bars before the {session:%Y-%m-%d} session: import earlier {symbol} bars"


def _staleness(symbol: str, last: date, session: date | None, config: MarketStateConfig) -> str:
    if session is None:
        return ""
    age = (session - last).days
    if age <= config.max_bar_age_days:
        return ""
    return (f"{symbol} bars end {last:%Y-%m-%d}, {age:,} days before the {session:%Y-%m-%d} session: "
            f"import recent {symbol} bars with spx-data import")


def _realized(spx: Any, values: dict, missing: dict, config: MarketStateConfig) -> None:
    from spx_core.analytics.volatility import close_to_close, yang_zhang

    o, h, lo, c = (np.asarray(spx[k], dtype=np.float64) for k in ("open", "high", "low", "close"))
    for window, label in zip(config.rv_windows, ("10d", "20d", "30d"), strict=True):
        values[f"rv_cc_{label}"] = _last(close_to_close(c, window))
        values[f"rv_yz_{label}"] = _last(yang_zhang(o, h, lo, c, window))
    values["rv_vrp"] = _last(yang_zhang(o, h, lo, c, config.vrp_window))
    windows = dict(zip(("10d", "20d", "30d"), config.rv_windows, strict=True))
    for name in ("rv_cc_10d", "rv_cc_20d", "rv_cc_30d", "rv_yz_10d", "rv_yz_20d", "rv_yz_30d", "rv_vrp"):
        if not math.isfinite(values[name]):
            need = config.vrp_window if name == "rv_vrp" else windows[name[-3:]]
            missing[name] = (f"only {len(c)} SPX sessions with full OHLC: a {need}-session realized vol "
                             f"needs {need + 1}; import more SPX bars")


def _trend(spx: Any, values: dict, missing: dict) -> None:
    from spx_core.analytics.regimes import TrendRegime, TrendRule, trend_regime

    h, lo, c = (np.asarray(spx[k], dtype=np.float64) for k in ("high", "low", "close"))
    regime = trend_regime(h, lo, c)
    if regime is TrendRegime.UNKNOWN:  # ADX or the slow SMA is not defined yet
        rule = TrendRule()
        missing["trend"] = (f"only {len(c)} SPX sessions: the trend rule (ADX {rule.adx_window} + SMA "
                            f"{rule.fast}/{rule.slow}) needs {rule.slow}; import more SPX bars")
    else:
        values["trend"] = regime


def _returns(spx: Any) -> np.ndarray:
    c = np.asarray(spx["close"], dtype=np.float64)
    return np.diff(np.log(c))


def _garch(spx: Any, values: dict, missing: dict, config: MarketStateConfig) -> None:
    from spx_core.analytics.garch import GarchError, garch_forecast

    try:
        forecast = garch_forecast(_returns(spx), horizon_days=config.garch_horizons)
    except GarchError as exc:  # too little history or no convergence: the message says what to do
        missing["garch_vol"] = str(exc)
        return
    values["garch_vol"] = tuple(zip(forecast.horizon_days, forecast.vol, strict=True))


def _mixture(spx: Any, values: dict, missing: dict) -> None:
    from spx_core.analytics.regimes import MixtureRegimes, RegimeModelError

    close = np.asarray(spx["close"], dtype=np.float64)
    try:
        model = MixtureRegimes().fit(close)
    except RegimeModelError as exc:  # too little history or no convergence: the message says what to do
        missing["mixture_regime"] = missing["mixture_probability"] = str(exc)
        return
    proba = model.predict_proba(close)[-1]
    state = model.current(close)
    if state is None or not np.isfinite(proba).all():
        missing["mixture_regime"] = missing["mixture_probability"] = "the last session has no mixture features"
        return
    values["mixture_regime"], values["mixture_probability"] = str(state), float(proba.max())


def _vix(vix: Any, values: dict, missing: dict, session: date | None, notes: list,
         config: MarketStateConfig) -> None:
    from spx_core.analytics.regimes import vix_bucket

    closes = np.asarray(vix["close"], dtype=np.float64)
    values["vix_as_of"] = _bar_dates(vix)[-1]
    values["vix"] = float(closes[-1])
    values["vix_bucket"] = vix_bucket(values["vix"])
    stale = _staleness("VIX", values["vix_as_of"], session, config)
    if stale:
        notes.append(stale)
    rank, pct, why = rank_and_percentile(closes[:-1], values["vix"], config.rank_window, "VIX closes")
    if why:
        missing["vix_rank"] = missing["vix_percentile"] = why
    else:
        values["vix_rank"], values["vix_percentile"] = rank, pct


def rank_and_percentile(history: np.ndarray, current: float, window: int, what: str) -> tuple[float, float, str]:
    """IV rank and IV percentile (percent, 0-100) of ``current`` within the last ``window`` of ``history``,
    and why they are NaN ("" when they are not)."""
    from spx_core.analytics.iv_rank import MIN_OBSERVATIONS, iv_percentile, iv_rank

    history = np.asarray(history, dtype=np.float64)
    rank = float(iv_rank(history, current, window=window))
    pct = float(iv_percentile(history, current, window=window))
    n = int(np.isfinite(history[-window:]).sum())
    if n < MIN_OBSERVATIONS:
        return rank, pct, (f"only {n} {what} in the lookback: IV rank needs {MIN_OBSERVATIONS}; "
                           "a longer history fills it")
    if not math.isfinite(rank):
        return rank, pct, f"the {what} of the lookback do not vary: no range to rank in"
    return rank, pct, ""


def _atm_history(history: Any, session: date | None) -> tuple[np.ndarray | None, str]:
    """Our stored ATM IVs (``iv_rank.stored_atm_iv_history``: a Series on ET dates, annualized fractions)
    of sessions before ``session``."""
    if history is None or len(history) == 0:
        return None, NO_ATM_HISTORY
    values = np.asarray(history, dtype=np.float64)
    if session is not None:
        days = np.array([_as_date(d) for d in history.index], dtype=object)
        values = values[days < session]
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None, f"{NO_ATM_HISTORY} (none before the {session:%Y-%m-%d} session)"
    return values, ""


def _as_date(value: Any) -> date:
    """A history index entry as a date (dates stay; timestamps are read in ET)."""
    if hasattr(value, "tzinfo") and hasattr(value, "astimezone"):
        return value.astimezone(ET).date() if value.tzinfo is not None else value.date()
    return value


def _last(series: Any) -> float:
    arr = np.asarray(series, dtype=np.float64)
    return float(arr[-1]) if len(arr) else float("nan")
