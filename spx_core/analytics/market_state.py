"""The market state a trader (and the scanner's entry filters) reads before trading: regime, VIX, IV rank,
realized vs implied, GARCH forecast, term-structure slope and the front expiry's expected move.

``market_state(bars_spx, bars_vix, surface)`` combines two inputs of different speed:

* daily bars (``Store.load_bars("SPX" / "VIX")``): realized vols, VIX level and rank, trend and mixture
  regimes, the GARCH forecast. Only closes of sessions *before* the snapshot's session are used (the
  snapshot's own day is not closed yet; a replay or backtest never sees a later close). These are the
  estimator-heavy parts (GARCH, Gaussian mixture): :class:`BarsCache` keeps them per bars' last date, so a
  snapshot stream only pays for the surface part.
* the fitted surface of the snapshot: 30-day ATM IV, front expiry ATM IV, term slope, expected move, and
  everything that compares implied with realized (variance risk premium, rank of the ATM IV).

Every field may be missing: then it is NaN (or None) and :meth:`MarketState.why` says why and how to fix it
(e.g. "no VIX bars: import vix.csv.gz with spx-data import"); no value is ever made up.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date
from functools import partial
from typing import Any

import numpy as np

from spx_core.analytics.market_bars import (
    BarsPart,
    bars_part,
    rank_and_percentile,
    session_cutoff,
)
from spx_core.domain import Root

__all__ = ["MISSING_SURFACE", "BarsCache", "MarketState", "MarketStateConfig", "market_state"]

NAN = float("nan")
DAYS_30 = 30.0 / 365.0  # the 30-calendar-day horizon in ACT/365 years (the project's time-to-expiry)
MISSING_SURFACE = "no fitted surface yet: wait for a chain snapshot (start the simulator or a replay)"


@dataclass(frozen=True, slots=True)
class MarketStateConfig:
    """How the market state is computed.

    Attributes:
        rv_windows: realized-vol windows (sessions, i.e. daily bars), shown as "10d/20d/30d".
        vrp_window: sessions of realized vol compared with the 30-calendar-day ATM IV (21 sessions span
            about 30 calendar days).
        rank_window: sessions of history for IV rank and percentile (252 = one year).
        max_bar_age_days: calendar days the last bar may lie before the snapshot's session before the
            bars are called stale (covers a long weekend); stale bars still give their own fields,
            labelled with their date, but are not compared with the live surface (VRP).
        garch_horizons: GARCH forecast horizons (sessions).
        fit_sessions: the GARCH and mixture models are fitted on at most this many latest sessions
            (2520 = ten years): the cost stays bounded as the stored history grows, and regimes of decades
            ago do not outweigh today's market.
    """

    rv_windows: tuple[int, int, int] = (10, 20, 30)
    vrp_window: int = 21
    rank_window: int = 252
    max_bar_age_days: int = 5
    garch_horizons: tuple[int, ...] = (1, 5, 21)
    fit_sessions: int = 2520

    def __post_init__(self) -> None:
        if len(self.rv_windows) != 3 or min(self.rv_windows) < 2 or self.vrp_window < 2:
            raise ValueError(f"rv_windows needs three windows of >= 2 sessions, got {self.rv_windows}")
        if self.rank_window < 2 or self.max_bar_age_days < 0 or not self.garch_horizons or self.fit_sessions < 2:
            raise ValueError("rank_window >= 2, max_bar_age_days >= 0, fit_sessions >= 2 and at least one GARCH "
                             "horizon are needed")


@dataclass(frozen=True, slots=True)
class MarketState:
    """The market at one snapshot. Vols are annualized fractions (0.15 = 15%) unless the name says
    ``volpts`` (vol points: 1.0 = 1% vol); ranks and percentiles are percent (0-100).

    Attributes:
        time_ns: the snapshot's instant (ns UTC); None without a surface.
        spot: the index at the snapshot (index points).
        spx_as_of / vix_as_of: session date of the last SPX / VIX bar used (None: none stored).
        vix: VIX close of ``vix_as_of`` (index points = annualized vol in percent).
        vix_bucket: the VIX bucket of ``vix`` (``regimes.vix_bucket``).
        trend: trend regime from ADX + SMA on SPX bars (``regimes.trend_regime``).
        mixture_regime: label of the most likely Gaussian-mixture regime on returns/vol features.
        mixture_probability: its posterior probability (fraction).
        vix_rank / vix_percentile: IV rank / percentile of the last VIX close within the VIX closes of
            ``rank_window`` sessions ("from VIX history").
        atm_iv_rank / atm_iv_percentile: the same for the current 30-day ATM IV within our stored ATM
            IVs ("from our stored ATM IVs").
        atm_iv_30d: ATM IV 30 calendar days out, interpolated in total variance on the fitted surface.
        front_root / front_expiry / front_days: the nearest fitted expiry and its calendar days to expiry.
        front_atm_iv: its fitted ATM IV.
        term_slope_volpts: front ATM IV minus 30-day ATM IV (vol points; > 0 = inverted front).
        rv_yz_10d/20d/30d: Yang-Zhang realized vol over ``rv_windows`` sessions.
        rv_cc_10d/20d/30d: close-to-close realized vol over the same windows.
        rv_vrp: Yang-Zhang realized vol over ``vrp_window`` sessions (the VRP's realized leg).
        vrp_volpts: variance risk premium of ``atm_iv_30d`` over ``rv_vrp`` in vol points (implied minus
            realized x 100; ``volatility.variance_risk_premium``).
        vrp_variance: the same in annualized variance (implied^2 - realized^2, decimal).
        garch_vol: GARCH(1,1) forecast of realized vol per horizon: ((sessions, annualized vol), ...).
        expected_move: the front expiry's 1 SD move from its ATM IV (index points, F * iv * sqrt(t)).
        straddle_move: the front expiry's ATM straddle (index points).
        missing: (field, why) for every missing field: why it is missing and how to fix it.
        notes: warnings that do not remove a field (e.g. stale bars).
    """

    time_ns: int | None = None
    spot: float = NAN
    spx_as_of: date | None = None
    vix_as_of: date | None = None
    vix: float = NAN
    vix_bucket: Any = None
    trend: Any = None
    mixture_regime: str = ""
    mixture_probability: float = NAN
    vix_rank: float = NAN
    vix_percentile: float = NAN
    atm_iv_rank: float = NAN
    atm_iv_percentile: float = NAN
    atm_iv_30d: float = NAN
    front_root: Root | None = None
    front_expiry: date | None = None
    front_days: float = NAN
    front_atm_iv: float = NAN
    term_slope_volpts: float = NAN
    rv_yz_10d: float = NAN
    rv_yz_20d: float = NAN
    rv_yz_30d: float = NAN
    rv_cc_10d: float = NAN
    rv_cc_20d: float = NAN
    rv_cc_30d: float = NAN
    rv_vrp: float = NAN
    vrp_volpts: float = NAN
    vrp_variance: float = NAN
    garch_vol: tuple[tuple[int, float], ...] = ()
    expected_move: float = NAN
    straddle_move: float = NAN
    missing: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()

    def why(self, name: str) -> str:
        """Why field ``name`` is missing ("" when it has a value)."""
        return next((why for key, why in self.missing if key == name), "")

    def has(self, name: str) -> bool:
        """Field ``name`` has a value."""
        return not self.why(name)

    @property
    def missing_fields(self) -> dict[str, str]:
        return dict(self.missing)


class BarsCache:
    """The bars-only part of the market state (GARCH and mixture fits included), kept per bars' last
    date. Thread-safe (the panel computes in a worker); holds at most ``size`` entries (LRU) so a replay
    that moves across days does not grow it."""

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._parts: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """The value cached under ``key``, else ``compute()`` (cached)."""
        with self._lock:
            if key in self._parts:
                self._parts.move_to_end(key)
                self.hits += 1
                return self._parts[key]
        part = compute()  # outside the lock: a fit takes ~1 s; one worker, so no duplicate work
        with self._lock:
            self.misses += 1
            self._parts[key] = part
            while len(self._parts) > self._size:
                self._parts.popitem(last=False)
        return part


def market_state(bars_spx: Any, bars_vix: Any, surface: Any | None, *, civ: Any = None,
                 atm_iv_history: Any = None, cache: BarsCache | None = None,
                 config: MarketStateConfig = MarketStateConfig(), session: date | None = None) -> MarketState:
    """The market state at the surface's snapshot.

    Args:
        bars_spx / bars_vix: daily bars frames (``Store.load_bars``: time, open, high, low, close,
            volume); None or empty when not stored (the fields depending on them are missing).
        surface: the snapshot's fitted :class:`~spx_core.surface.VolSurface` (None: no snapshot yet).
        civ: the snapshot's :class:`~spx_core.surface.ChainIV` (for the ATM straddle; None: straddle missing).
        atm_iv_history: our stored 30-day ATM IVs (``iv_rank.stored_atm_iv_history``: a Series on ET
            dates; only dates before the session are used), or None when not available.
        cache: keeps the bars part between calls (None: computed every call).
        session: the session the state is for (default: the snapshot's ET date; needed without a surface).
    """
    if session is None and surface is not None:
        session = session_cutoff(surface.time_ns)
    key_inputs = (bars_spx, bars_vix, atm_iv_history, session, config)
    compute = partial(bars_part, *key_inputs)
    if cache is None:
        part = compute()
    else:
        part = cache.get(_bars_key(*key_inputs), compute)
    values = dict(part.values)
    missing = dict(part.missing)
    notes = list(part.notes)
    if surface is None:
        for name in _SURFACE_FIELDS:
            missing.setdefault(name, MISSING_SURFACE)
    else:
        _surface_fields(surface, civ, values, missing)
        _implied_vs_realized(part, values, missing, config)
    names = {f.name for f in fields(MarketState)}
    values = {k: v for k, v in values.items() if k in names}
    return MarketState(**values, missing=tuple(sorted(missing.items())), notes=tuple(notes))


_SURFACE_FIELDS = ("atm_iv_30d", "front_atm_iv", "term_slope_volpts", "expected_move", "straddle_move",
                   "vrp_volpts", "vrp_variance", "atm_iv_rank", "atm_iv_percentile")


def _bars_key(bars_spx: Any, bars_vix: Any, atm_iv_history: Any, session: date | None,
              config: MarketStateConfig) -> tuple:
    """Cache key: what the bars part depends on: each input's length and last stamp, the session, the config."""
    def stamp(frame: Any) -> tuple:
        if frame is None or len(frame) == 0:
            return (0, None)
        return (len(frame), frame["time"].iloc[-1] if "time" in getattr(frame, "columns", ()) else frame.index[-1])

    return (stamp(bars_spx), stamp(bars_vix), stamp(atm_iv_history), session, config)


def _surface_fields(surface: Any, civ: Any, values: dict, missing: dict) -> None:
    """ATM 30d, front expiry, term slope and expected move from the fitted surface."""
    values["time_ns"] = int(surface.time_ns)
    values["spot"] = float(surface.underlying_price)
    nodes = sorted((f for f in surface.expiries if f.fitted and f.t > 0), key=lambda f: f.t)
    if not nodes:
        for name in ("atm_iv_30d", "front_atm_iv", "term_slope_volpts", "expected_move", "straddle_move"):
            missing[name] = "no expiry of the snapshot could be fitted: check the chain's quotes"
        return
    front = nodes[0]
    values.update(front_root=front.root, front_expiry=front.expiry, front_days=front.t * 365.0,
                  front_atm_iv=float(front.atm_iv))
    if nodes[0].t <= DAYS_30 <= nodes[-1].t:
        # total variance at the forward, linear in t between the bracketing expiries (VolSurface.iv). The
        # surface's calendar repair is a running max from the front, so expiries past the first one at or
        # beyond 30 days cannot change it: evaluating only up to it gives the same number (~5x faster on
        # a chain with daily expiries, where every slice is a spline evaluation).
        t_hi = next(f.t for f in nodes if f.t >= DAYS_30)
        near = dataclasses.replace(surface, expiries=tuple(f for f in surface.expiries if f.t <= t_hi))
        values["atm_iv_30d"] = float(near.iv(k=np.array(0.0), t=np.array(DAYS_30)))
        values["term_slope_volpts"] = (values["front_atm_iv"] - values["atm_iv_30d"]) * 100.0
    else:
        why = (f"fitted expiries span {nodes[0].t * 365:.1f}-{nodes[-1].t * 365:.1f} days, not 30 days: "
               "the 30-day IV would be extrapolated")
        missing["atm_iv_30d"] = missing["term_slope_volpts"] = why
    _expected_move(surface, civ, front, values, missing)


def _expected_move(surface: Any, civ: Any, front: Any, values: dict, missing: dict) -> None:
    # scipy-heavy, and only needed with a surface
    from spx_core.strategies.probability import expected_moves

    sources = (surface,) if civ is None else (surface, civ)
    move = next((m for m in expected_moves(*sources) if (m.root, m.expiry) == (front.root, front.expiry)), None)
    label = f"the front expiry {front.expiry:%d %b %y} {front.root.value}"
    if move is None:
        missing["expected_move"] = missing["straddle_move"] = f"no expected move for {label}"
        return
    for name, value in (("expected_move", move.iv_move), ("straddle_move", move.straddle_move)):
        if math.isfinite(value):
            values[name] = float(value)
        else:
            missing[name] = f"{label}: {move.reason or 'not computed'}" if civ is not None else (
                f"{label}: no chain quotes passed (the straddle needs the snapshot's ChainIV)")


def _implied_vs_realized(part: BarsPart, values: dict, missing: dict, config: MarketStateConfig) -> None:
    """VRP and the rank of the 30d ATM IV among our stored ATM IVs (need both the surface and history)."""
    from spx_core.analytics.volatility import variance_risk_premium

    iv = values.get("atm_iv_30d", NAN)
    if not math.isfinite(iv):
        why = "no 30-day ATM IV: " + missing.get("atm_iv_30d", "surface missing")
        for name in ("vrp_volpts", "vrp_variance", "atm_iv_rank", "atm_iv_percentile"):
            missing[name] = why
        return
    if part.vrp_blocker:
        missing["vrp_volpts"] = missing["vrp_variance"] = part.vrp_blocker
    else:
        vrp = variance_risk_premium(iv, values["rv_vrp"])
        values["vrp_volpts"], values["vrp_variance"] = vrp.vol_points, vrp.variance
    if part.atm_history is None:
        missing["atm_iv_rank"] = missing["atm_iv_percentile"] = part.atm_history_reason
        return
    rank, pct, why = rank_and_percentile(part.atm_history, iv, config.rank_window, "stored ATM IVs")
    if why:
        missing["atm_iv_rank"] = missing["atm_iv_percentile"] = why
    else:
        values["atm_iv_rank"], values["atm_iv_percentile"] = rank, pct
