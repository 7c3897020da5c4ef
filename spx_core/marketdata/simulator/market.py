"""SimulatedMarket: a pure, synchronous, deterministic simulated SPX option market.

``SimulatedMarket(config)`` lists the chain at the start instant; each ``advance(seconds)`` moves
the clock, steps the Bates process, reprices every option on the SSVI surface with Black-76,
requotes on the tick grid and returns a :class:`~spx_core.marketdata.source.QuoteBatch` holding
the new snapshot and only the rows whose quote changed. Same seed and start -> same snapshots.

Market-hours mode follows the exchange calendar: inside a session the clock runs; the advance that
reaches the close stops there (same-day expiries roll off at their expiry instant); the next advance
skips to the next open, where expiries are relisted (a ``layout_changed`` batch). Demo mode
(``market_hours=False``) runs around the clock and relists when the ET date changes.
"""

from __future__ import annotations

import math

import numpy as np

from spx_core.domain.calendar import ET, YEAR_SECONDS, MarketCalendar, default_calendar, from_ns, to_ns
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.marketdata.simulator import quoting
from spx_core.marketdata.simulator.chain import ChainLayout, list_chain
from spx_core.marketdata.simulator.clock import (Session, TRADING_DAYS_PER_YEAR, calendar_process_years,
                                                 next_session, session_containing, wall_start)
from spx_core.marketdata.simulator.config import SimulatorConfig
from spx_core.marketdata.simulator.process import ProcessState, step
from spx_core.marketdata.simulator.surface import atm_total_variance
from spx_core.marketdata.source import QuoteBatch
from spx_core.pricing import black76

__all__ = ["SimulatedMarket", "MAX_QUOTE_AGE_SECONDS"]

#: a live quote is re-stamped at least this often even when its price did not move (seconds), so
#: the snapshot's STALE flag (60 s by default) marks only what a real feed would leave stale
MAX_QUOTE_AGE_SECONDS = 45.0
#: longest process sub-step (seconds of clock time) so a big ``advance`` still follows the dynamics
_MAX_SUBSTEP = 300.0
_QUOTE_COLUMNS = ("bid", "ask", "bid_size", "ask_size", "last", "volume", "open_interest", "quote_time")


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
        self._seq = 0
        self._relist(previous=None)
        self._snap = self._full_snapshot()

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
        return self._layout

    def snapshot(self) -> ChainSnapshot:
        """The current chain."""
        return self._snap

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
            self._relist(previous=self._layout)
            return np.arange(len(self._layout))
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
            self._relist(previous=self._layout)
            return np.arange(len(self._layout))
        return self._after_move(seconds)

    def _after_move(self, dt: float) -> np.ndarray:
        if (self._layout.exp_instant_ns <= self._now_ns).any():
            self._drop_expired()
        return self._requote(dt)

    def _evolve(self, *, process_years: float, clock_seconds: float) -> None:
        """Step the process over ``process_years`` in sub-steps of at most ``_MAX_SUBSTEP`` clock seconds."""
        if process_years <= 0:
            return
        n = max(1, math.ceil(clock_seconds / _MAX_SUBSTEP))
        drift = self._cfg.rate - self._cfg.div_yield
        for _ in range(n):
            self._state = step(self._state, dt=process_years / n, drift=drift, params=self._cfg.process,
                               rng=self._rng)

    # --- listing -----------------------------------------------------------------------------
    def _relist(self, *, previous: ChainLayout | None) -> None:
        cfg = self._cfg
        layout = list_chain(now=from_ns(self._now_ns), spot=self._state.spot, carry=cfg.rate - cfg.div_yield,
                            calendar=self._cal, params=cfg.strikes)
        n = len(layout)
        self._layout = layout
        self._log_k = np.log(layout.strike)
        self._jitter = self._rng.lognormal(0.0, cfg.quoting.width_jitter, size=n)
        theo, liq, days = self._price()
        bid, ask = quoting.make_quotes(theo=theo, width=self._width(theo, days))
        bid_size, ask_size = quoting.draw_sizes(liq=liq, theo=theo, params=cfg.quoting, rng=self._rng)
        oi = quoting.initial_open_interest(liq=liq, roundness=layout.roundness, days=days, rng=self._rng)
        last = np.full(n, np.nan)
        if previous is not None:  # contracts that stay listed keep their open interest (+ part of the volume)
            pos, found = _match(layout.key, previous.key)
            old = self._cols
            oi = np.where(found, old["open_interest"][pos] + old["volume"][pos] // 4, oi).astype(np.int32)
            last = np.where(found, old["last"][pos], last)
        self._cols = {"bid": bid, "ask": ask, "bid_size": np.where(bid > 0, bid_size, 0).astype(np.int32),
                      "ask_size": ask_size, "last": last, "volume": np.zeros(n, np.int32), "open_interest": oi,
                      "quote_time": np.full(n, self._now_ns, np.int64)}
        self._layout_pending = True

    def _drop_expired(self) -> None:
        lay = self._layout
        keep_exp = lay.exp_instant_ns > self._now_ns
        keep = keep_exp[lay.exp_index]
        new_index = np.cumsum(keep_exp) - 1
        counts = (lay.exp_stop - lay.exp_start)[keep_exp]
        stops = np.cumsum(counts)
        self._layout = ChainLayout(
            exp_root=lay.exp_root[keep_exp], exp_date=lay.exp_date[keep_exp],
            exp_instant_ns=lay.exp_instant_ns[keep_exp], exp_start=stops - counts, exp_stop=stops,
            root=lay.root[keep], expiry=lay.expiry[keep], strike=lay.strike[keep], is_call=lay.is_call[keep],
            exp_index=new_index[lay.exp_index[keep]], roundness=lay.roundness[keep], key=lay.key[keep],
            listed_ns=lay.listed_ns)
        self._log_k = self._log_k[keep]
        self._jitter = self._jitter[keep]
        self._cols = {k: v[keep] for k, v in self._cols.items()}
        self._layout_pending = True

    # --- pricing and quoting --------------------------------------------------------------------
    def _price(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Theoretical prices, liquidity and days to expiry per row at the current state."""
        cfg, lay, idx = self._cfg, self._layout, self._layout.exp_index
        t_e = np.maximum((lay.exp_instant_ns - self._now_ns) / 1e9 / YEAR_SECONDS, 0.0)
        log_f_e = math.log(self._state.spot) + (cfg.rate - cfg.div_yield) * t_e
        theta_e = np.maximum(atm_total_variance(variance=self._state.variance, t=t_e, process=cfg.process,
                                                surface=cfg.surface), 1e-12)
        sp = cfg.surface
        phi_e = sp.eta / (np.power(theta_e, sp.gamma) * np.power(1.0 + theta_e, 1.0 - sp.gamma))
        k = self._log_k - log_f_e[idx]
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

    def _width(self, theo: np.ndarray, days: np.ndarray) -> np.ndarray:
        return quoting.quote_width(theo=theo, days=days, jitter=self._jitter, params=self._cfg.quoting)

    def _requote(self, dt: float) -> np.ndarray:
        """Requote after the clock moved ``dt`` seconds; returns the changed rows."""
        if dt <= 0:
            return np.zeros(0, np.int64)
        cfg, rng, old = self._cfg.quoting, self._rng, self._cols
        theo, liq, days = self._price()
        n = len(theo)
        refresh = rng.random(n) < -np.expm1(-cfg.refresh_rate * dt * np.minimum(liq, 1.0))
        n_ref = int(refresh.sum())
        if n_ref:
            self._jitter = self._jitter.copy()
            self._jitter[refresh] = rng.lognormal(0.0, cfg.width_jitter, size=n_ref)
        bid, ask = quoting.make_quotes(theo=theo, width=self._width(theo, days))
        moved = (bid != old["bid"]) | (ask != old["ask"])
        off_market = (theo < old["bid"]) | (theo > old["ask"])
        aged = (self._now_ns - old["quote_time"]) > MAX_QUOTE_AGE_SECONDS * 1e9
        # a quote the theo left must move; a quote still good moves only when its maker refreshes
        update = off_market | aged | refresh
        new = dict(old)
        new["bid"] = np.where(update, bid, old["bid"])
        new["ask"] = np.where(update, ask, old["ask"])
        resize = update & (moved | refresh)
        if resize.any():
            bsz, asz = quoting.draw_sizes(liq=liq[resize], theo=theo[resize], params=cfg, rng=rng)
            new["bid_size"] = old["bid_size"].copy()
            new["ask_size"] = old["ask_size"].copy()
            new["bid_size"][resize] = np.where(new["bid"][resize] > 0, bsz, 0)
            new["ask_size"][resize] = asz
        traded = self._trade(new, liq, dt)
        new["quote_time"] = np.where(update, self._now_ns, old["quote_time"])
        self._cols = new
        return np.flatnonzero(update | traded)

    def _trade(self, cols: dict[str, np.ndarray], liq: np.ndarray, dt: float) -> np.ndarray:
        """Random trades at the bid or ask, weighted by liquidity; updates last and volume in ``cols``."""
        rng, n = self._rng, len(liq)
        traded = np.zeros(n, dtype=bool)
        n_trades = int(rng.poisson(self._cfg.quoting.trade_rate * dt))
        if n_trades == 0 or n == 0:
            return traded
        cum = np.cumsum(liq)
        rows = np.minimum(np.searchsorted(cum, rng.random(n_trades) * cum[-1]), n - 1)
        sizes = rng.geometric(0.2, size=n_trades).astype(np.int32)
        at_ask = (rng.random(n_trades) < 0.5) | ~(cols["bid"][rows] > 0)
        volume = cols["volume"].copy()
        np.add.at(volume, rows, sizes)
        last = cols["last"].copy()
        last[rows] = np.where(at_ask, cols["ask"][rows], cols["bid"][rows])
        cols["volume"], cols["last"] = volume, last
        traded[rows] = True
        return traded

    # --- snapshots ----------------------------------------------------------------------------
    def _emit(self, changed: np.ndarray) -> QuoteBatch:
        if self._layout_pending:
            if self._snap.time_ns != self._now_ns or len(self._snap) != len(self._layout) or self._seq:
                self._snap = self._full_snapshot()
            changed = np.arange(len(self._layout), dtype=np.int64)
        elif len(changed) or self._now_ns != self._snap.time_ns:
            self._snap = self._snap.replace_quotes(time=self._now_ns, underlying_price=self._price_print(),
                                                   **self._cols)
        batch = QuoteBatch(snapshot=self._snap, changed=np.asarray(changed, dtype=np.int64),
                           layout_changed=self._layout_pending, sequence=self._seq)
        self._layout_pending = False
        self._seq += 1
        return batch

    def _price_print(self) -> float:
        return round(self._state.spot, 2)  # the index prints in cents

    def _full_snapshot(self) -> ChainSnapshot:
        lay = self._layout
        return ChainSnapshot.from_columns(
            underlying=self._cfg.underlying, time=self._now_ns, underlying_price=self._price_print(),
            root=lay.root, expiry=lay.expiry, strike=lay.strike, is_call=lay.is_call, assume_sorted=True,
            **self._cols)


def _match(keys: np.ndarray, old_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``keys`` in ``old_keys`` and whether each was found."""
    if len(old_keys) == 0:
        return np.zeros(len(keys), np.int64), np.zeros(len(keys), bool)
    order = np.argsort(old_keys)
    pos = np.minimum(np.searchsorted(old_keys, keys, sorter=order), len(old_keys) - 1)
    pos = order[pos]
    return pos, old_keys[pos] == keys
