"""SimulatedMarket: a pure, synchronous, deterministic simulated SPX option market.

``SimulatedMarket(config)`` lists the chain at the start instant; each ``advance(seconds)`` moves
the clock, steps the Bates process, reprices every option on the SSVI surface with Black-76,
requotes on the tick grid and returns a :class:`~spx_core.marketdata.source.QuoteBatch` holding
the new snapshot and only the rows whose quote changed. Same seed and start -> same snapshots.

SPY (``config.spy``, :mod:`~spx_core.marketdata.simulator.spy`) rides along: its batch is the SPX batch's
``companions[0]`` (``batch.for_underlying("SPY")``). Why a companion rather than a second batch through the
same callback: every existing consumer (panels, recorder, surface) reads ``batch.snapshot`` as *the* chain;
a companion leaves what they see, and the SPX bytes (SPY draws from its own generator), exactly as before,
and only a consumer that asks for SPY gets it. Rows and quotes of both live in a :class:`QuoteBook` each.

Market-hours mode follows the exchange calendar: inside a session the clock runs; the advance that
reaches the close stops there (same-day expiries roll off at their expiry instant); the next advance
skips to the next open, where expiries are relisted (a ``layout_changed`` batch). Demo mode
(``market_hours=False``) runs around the clock and relists when the ET date changes.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from spx_core.domain.calendar import ET, YEAR_SECONDS, MarketCalendar, default_calendar, from_ns, to_ns
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.marketdata.simulator import quoting
from spx_core.marketdata.simulator.book import MAX_QUOTE_AGE_SECONDS, QuoteBook
from spx_core.marketdata.simulator.chain import ChainLayout, list_chain
from spx_core.marketdata.simulator.clock import (Session, TRADING_DAYS_PER_YEAR, calendar_process_years,
                                                 next_session, session_containing, wall_start)
from spx_core.marketdata.simulator.config import SimulatorConfig
from spx_core.marketdata.simulator.process import ProcessState, step
from spx_core.marketdata.simulator.spy import SpyListing
from spx_core.marketdata.simulator.surface import atm_total_variance
from spx_core.marketdata.source import QuoteBatch
from spx_core.pricing import black76

__all__ = ["SimulatedMarket", "MAX_QUOTE_AGE_SECONDS"]

#: longest process sub-step (seconds of clock time) so a big ``advance`` still follows the dynamics
_MAX_SUBSTEP = 300.0


class SimulatedMarket:
    """The simulated market. Not thread-safe; owned by one caller (e.g. :class:`SimulatorSource`)."""

    def __init__(self, config: SimulatorConfig, *, calendar: MarketCalendar | None = None) -> None:
        self._cfg = config
        self._cal = calendar or default_calendar()
        self._rng = np.random.default_rng(config.seed)
        self._state = ProcessState(spot=config.spot, variance=config.process.v0)
        start_ns = to_ns(wall_start(config.start))
        self._session: Session | None = None
        if config.market_hours:
            self._session = session_containing(self._cal, start_ns) or next_session(self._cal, start_ns)
            start_ns = max(start_ns, self._session.open_ns)
        self._now_ns = start_ns
        self._range = [config.spot, config.spot, config.process.v0, config.process.v0]
        self._book = QuoteBook(underlying=config.underlying, quoting_params=config.quoting, rng=self._rng)
        # SPY draws from its own generator (seeded from the same seed), so SPX's path and quotes are the
        # same draws, in the same order, with or without SPY listed
        self._spy = SpyListing(config, calendar=self._cal) if config.spy is not None else None
        self._relist(previous=None)
        self._book.snap = self._book.full_snapshot(now_ns=self._now_ns, price=self._price_print())

    # --- public ----------------------------------------------------------------------------
    @property
    def config(self) -> SimulatorConfig:
        return self._cfg

    @property
    def now_ns(self) -> int:
        return self._now_ns

    @property
    def spot(self) -> float:
        return self._state.spot

    @property
    def variance(self) -> float:
        """Instantaneous variance of the index (annualized vol squared)."""
        return self._state.variance

    @property
    def is_open(self) -> bool:
        """True while quotes move (always in demo mode; inside a regular session otherwise)."""
        return not self._cfg.market_hours or (self._session is not None and self._now_ns < self._session.close_ns)

    @property
    def layout(self) -> ChainLayout:
        return self._book.layout

    @property
    def spy(self) -> SpyListing | None:
        """The SPY listing riding on the index (None when ``config.spy`` is None)."""
        return self._spy

    @property
    def session_range(self) -> tuple[float, float, float, float]:
        """``(high, low)`` of the index and ``(high, low)`` of its variance over every process step since the last
        listing (the session's open; in demo mode the ET day's first tick): what a daily bar's high and low need,
        sampled at the sub-steps of at most five minutes the clock takes (unrounded)."""
        return self._range[0], self._range[1], self._range[2], self._range[3]

    def snapshot(self) -> ChainSnapshot:
        """The current chain."""
        return self._book.snap

    def spy_snapshot(self) -> ChainSnapshot | None:
        """The current SPY chain (None when SPY is not listed)."""
        return None if self._spy is None else self._spy.book.snap

    def advance(self, seconds: float) -> QuoteBatch:
        """Move the clock by ``seconds`` (>= 0) and return the batch of what changed.

        The first batch after construction or a relisting has ``layout_changed=True``.
        """
        if not seconds >= 0 or not math.isfinite(seconds):
            raise ValueError(f"advance(seconds={seconds!r}): seconds must be finite and >= 0")
        if self._cfg.market_hours:
            changed = self._advance_market_hours(seconds)
        else:
            changed = self._advance_demo(seconds)
        return self._emit(changed)

    # --- clock -------------------------------------------------------------------------------
    def _advance_market_hours(self, seconds: float) -> np.ndarray:
        if not self.is_open:  # closed: skip the night, reopen with a fresh listing
            nxt = next_session(self._cal, self._now_ns + 1)
            self._evolve(process_years=self._cfg.overnight_variance_share / TRADING_DAYS_PER_YEAR,
                         clock_seconds=(nxt.open_ns - self._now_ns) / 1e9)
            self._session, self._now_ns = nxt, nxt.open_ns
            self._relist(previous=self._book.layout)
            return np.arange(len(self._book.layout))
        session = self._session
        end_ns = min(self._now_ns + round(seconds * 1e9), session.close_ns)
        dt = (end_ns - self._now_ns) / 1e9
        self._evolve(process_years=session.process_years(dt, overnight_share=self._cfg.overnight_variance_share),
                     clock_seconds=dt)
        self._now_ns = end_ns
        return self._after_move(dt)

    def _advance_demo(self, seconds: float) -> np.ndarray:
        day = from_ns(self._now_ns).astimezone(ET).date()
        self._evolve(process_years=calendar_process_years(seconds), clock_seconds=seconds)
        self._now_ns += round(seconds * 1e9)
        if from_ns(self._now_ns).astimezone(ET).date() != day:
            self._relist(previous=self._book.layout)
            return np.arange(len(self._book.layout))
        return self._after_move(seconds)

    def _after_move(self, dt: float) -> np.ndarray:
        if self._book.has_expired(self._now_ns):
            self._book.drop_expired(self._now_ns)
        changed = self._requote(dt)
        if self._spy is not None:
            self._spy.after_move(dt=dt, now_ns=self._now_ns, spx_spot=self._state.spot,
                                 variance=self._state.variance)
        return changed

    def _evolve(self, *, process_years: float, clock_seconds: float) -> None:
        """Step the process over ``process_years`` in sub-steps of at most ``_MAX_SUBSTEP`` clock seconds."""
        if process_years <= 0:
            return
        n = max(1, math.ceil(clock_seconds / _MAX_SUBSTEP))
        drift = self._cfg.rate - self._cfg.div_yield
        for _ in range(n):
            self._state = step(self._state, dt=process_years / n, drift=drift, params=self._cfg.process,
                               rng=self._rng)
            self._track(self._state)
        if self._spy is not None:
            self._spy.evolve(clock_seconds)

    def _track(self, state: ProcessState) -> None:
        r = self._range
        r[0], r[1] = max(r[0], state.spot), min(r[1], state.spot)
        r[2], r[3] = max(r[2], state.variance), min(r[3], state.variance)

    # --- listing -----------------------------------------------------------------------------
    def _relist(self, *, previous: ChainLayout | None) -> None:
        cfg, book = self._cfg, self._book
        # a listing opens a session: the range restarts here (the night's steps are no part of the day's bar)
        self._range = [self._state.spot, self._state.spot, self._state.variance, self._state.variance]
        layout = list_chain(now=from_ns(self._now_ns), spot=self._state.spot, carry=cfg.rate - cfg.div_yield,
                            calendar=self._cal, params=cfg.strikes, previous=previous)
        book.list_rows(layout)
        theo, liq, days = self._price()
        book.relist(now_ns=self._now_ns, theo=theo, liq=liq, days=days, previous=previous)
        if self._spy is not None:
            self._spy.relist(now_ns=self._now_ns, spx_spot=self._state.spot, variance=self._state.variance)

    # --- pricing and quoting --------------------------------------------------------------------
    def _price(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Theoretical prices, liquidity and days to expiry per row at the current state."""
        cfg, lay = self._cfg, self._book.layout
        idx = lay.exp_index
        t_e = np.maximum((lay.exp_instant_ns - self._now_ns) / 1e9 / YEAR_SECONDS, 0.0)
        log_f_e = math.log(self._state.spot) + (cfg.rate - cfg.div_yield) * t_e
        theta_e = np.maximum(atm_total_variance(variance=self._state.variance, t=t_e, process=cfg.process,
                                                surface=cfg.surface), 1e-12)
        sp = cfg.surface
        phi_e = sp.eta / (np.power(theta_e, sp.gamma) * np.power(1.0 + theta_e, 1.0 - sp.gamma))
        k = self._book.log_k - log_f_e[idx]
        pk = phi_e[idx] * k
        w = 0.5 * theta_e[idx] * (1.0 + sp.rho * pk + np.sqrt((pk + sp.rho) ** 2 + 1.0 - sp.rho ** 2))
        t = t_e[idx]
        vol = np.sqrt(w / np.maximum(t, 1e-9))
        theo = black76.price(forward=np.exp(log_f_e)[idx], strike=lay.strike, t=t, vol=vol,
                             discount=np.exp(-cfg.rate * t_e)[idx], is_call=lay.is_call)
        z = k / np.sqrt(np.maximum(theta_e, 1e-6))[idx]
        otm = (k > 0) == lay.is_call
        days_e = t_e * 365.0
        term_e = 1.0 / (1.0 + days_e / 7.0)
        liq = quoting.liquidity(z=z, otm=otm, roundness=lay.roundness, term=term_e[idx])
        return theo, liq, days_e[idx]

    def _requote(self, dt: float) -> np.ndarray:
        """Requote after the clock moved ``dt`` seconds; returns the changed rows."""
        if dt <= 0:
            return np.zeros(0, np.int64)
        theo, liq, days = self._price()
        return self._book.requote(dt=dt, now_ns=self._now_ns, theo=theo, liq=liq, days=days)

    # --- snapshots ----------------------------------------------------------------------------
    def _emit(self, changed: np.ndarray) -> QuoteBatch:
        batch = self._book.emit(changed, now_ns=self._now_ns, price=self._price_print())
        if self._spy is None:
            return batch
        # SPY rides along as its own batch (own rows, sequence and layout flag) after SPX's: SPX's is unchanged
        return dataclasses.replace(batch, companions=(self._spy.emit(now_ns=self._now_ns),))

    def _price_print(self) -> float:
        return round(self._state.spot, 2)  # the index prints in cents


