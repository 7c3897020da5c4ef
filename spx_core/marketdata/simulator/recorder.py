"""Long simulated histories: whole trading days of simulated chains written to a store in bulk.

    ids = record_history(store, SimulatorConfig(seed=7, start=datetime(2024, 1, 2, tzinfo=ET)), "my session",
                         days=252, interval="eod")

This is ``spx-data simulate --days D --interval 1m|5m|eod`` (:mod:`spx_core.cli.simulate_command`); the model is
the simulator's own (:class:`~spx_core.marketdata.simulator.SimulatedMarket` in market-hours mode), so every
recorded chain is exactly what the live simulated market shows at that instant.

**Days.** The exchange's trading days (:class:`~spx_core.domain.calendar.MarketCalendar`, XNYS: holidays skipped,
early closes at 13:00 ET), starting with the session of ``config.start`` (or the next one when the market is
closed then), each recorded from its open. The chain relists at every open (the market's rule): each day's chain
lists that day's live expiries (SPXW dailies incl. 0DTE, weeklies, quarterlies, SPX AM monthlies), so expiries
roll as the calendar moves.

**Prints** (the instants recorded; each is the SPX chain and its SPY companion of the same instant):

* ``1m`` / ``5m``: the open, every 1 or 5 minutes after it, and the close (16:00 ET, 13:00 on early closes).
* ``eod``: one chain a day, at :data:`EOD_BEFORE_CLOSE` (15 minutes) before the close, 15:45 ET (12:45 on early
  closes), the Cboe end-of-day convention (the DataShop files' "1545" quotes): the day's expiries, 0DTE included,
  are still live and a strategy entering or exiting "at 15:45" trades on it. An eod year is thus 252 SPX chains
  (and their SPY companions), like a real end-of-day file. Expiries settle from the daily bars, as with real
  end-of-day data: the backtester hands the settlement watch each SPX/SPY daily bar's close (PM: SPXW, SPY) and
  open (AM SPX) once the bar's 16:00 stamp is reached (:mod:`spx_core.backtest.settle_bars`). The market still runs
  to the close after the last print (the path and the bars' closes are those of the close), it is not recorded.

**Path.** The simulator's Bates dynamics (:class:`~spx_core.marketdata.simulator.config.ProcessParams`):
Heston stochastic variance (``v0``, mean reversion ``kappa`` to ``theta``, vol of variance ``xi``, spot-variance
correlation ``rho``) gives volatility regimes (calm stretches near ``theta``, stressed ones after shocks, with the
leverage effect: falling prices with rising vol); Poisson jumps (``jump_intensity`` a year, log size
``N(jump_mean, jump_std^2)``) give crashes, each lifting the variance. A trading day carries ``1/252`` year of
variance, ``overnight_variance_share`` of it in the gap before the open (a gap open), the rest over the session in
steps of at most 5 minutes whatever the interval, so an eod recording follows the same path law as a 1m one.

**Bars** (``underlying_bars``, for the regime filter, the VIX rank and the VaR's daily history):

* ``SPX`` (eod): one daily bar per day, stamped 16:00 ET as the daily-bars importer stamps them: the opening
  value (the AM settlement value), high and low over every process step of the session (up to 5 minutes apart),
  the closing value (the PM settlement value); volume NaN.
* ``SPY`` (eod): one daily bar per day, same stamp: the opening and closing values (SPY's PM settlement), high and
  low over the open, the 15:45 print and the close (SPY is the companion of the prints, not of every step).
* ``SPX`` and ``SPY`` (1m / 5m): bars of the interval built from the prints as ``--minutes`` builds them
  (:class:`~spx_core.marketdata.simulator.bars.MinuteBars`; a 5m recording gives 5-minute bars stamped at their start);
  the analytics fold them into daily bars by ET date.
* ``VIX`` (every interval): one daily bar per day, the simulator's 30-day ATM implied vol
  (:func:`~spx_core.marketdata.simulator.history.vix_level`) at the open, the variance's extremes and the close.

These bars go into the store's one bars table, keyed by symbol and time: record into a database of its own, not
one holding imported real SPX/VIX bars of the same dates (a bar of the same time is replaced).

**Writes.** Snapshots are written in one transaction per batch of whole days holding at least
:data:`BATCH_SNAPSHOTS` of them (a 1m day is split at twice that; an SPX chain is never stored without its SPY
companion); the bars of the days written follow in one transaction per symbol. A failure
(a full disk) raises :class:`RecordingFailed` saying how many days were recorded whole.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from spx_core.domain.calendar import ET, MarketCalendar, default_calendar, to_ns
from spx_core.marketdata.simulator.clock import (
    next_session,
    session_containing,
    wall_start,
)
from spx_core.marketdata.simulator.config import SimulatorConfig
from spx_core.marketdata.simulator.market import SimulatedMarket

__all__ = [
    "BATCH_SNAPSHOTS",
    "EOD_BEFORE_CLOSE",
    "INTERVALS",
    "RecordingFailed",
    "SessionExistsError",
    "print_instants",
    "record_history",
    "recording_days",
]

#: Seconds between prints of the intraday intervals; "eod" prints once a day (and at the settlement instants).
INTERVALS: dict[str, int | None] = {"1m": 60, "5m": 300, "eod": None}
#: The eod chain is taken this long before the session's close (15:45 ET; 12:45 ET on early closes).
EOD_BEFORE_CLOSE = timedelta(minutes=15)
#: Snapshots written per transaction (bounds memory: an SPX chain is ~16k quotes).
BATCH_SNAPSHOTS = 48
_NS = 1_000_000_000


class SessionExistsError(ValueError):
    """The session already holds snapshots and ``replace`` was not asked for (the message says what to do)."""


class RecordingFailed(Exception):
    """A write failed (``__cause__``: the database error); ``days_done`` of ``days_total`` days are stored whole."""

    def __init__(self, days_done: int, days_total: int) -> None:
        super().__init__(f"{days_done} of {days_total} days were recorded")
        self.days_done, self.days_total = days_done, days_total


def recording_days(calendar: MarketCalendar, start: datetime, days: int) -> list[date]:
    """The ``days`` trading days recorded from ``start``: its session (or the next one when closed), then on."""
    start_ns = to_ns(start)
    first = (session_containing(calendar, start_ns) or next_session(calendar, start_ns)).day
    span = int(days * 1.5) + 10
    while True:
        found = calendar.trading_days(first, first + timedelta(days=span))
        if len(found) >= days:
            return found[:days]
        span *= 2


def print_instants(calendar: MarketCalendar, day: date, interval: str) -> list[int]:
    """The instants (UTC ns, ascending) recorded on trading day ``day`` (module docstring)."""
    open_ns, close_ns = to_ns(calendar.session_open(day)), to_ns(calendar.session_close(day))
    step = INTERVALS[interval]
    if step is None:
        return [close_ns - int(EOD_BEFORE_CLOSE.total_seconds()) * _NS]
    return list(range(open_ns, close_ns, step * _NS)) + [close_ns]


def record_history(store: Any, market_config: SimulatorConfig, session: str, *, days: int, interval: str,
                   replace: bool = False, calendar: MarketCalendar | None = None,
                   progress: Callable[[int, int], None] | None = None) -> list[int]:
    """Record ``days`` trading days of ``market_config``'s simulated market at ``interval`` into ``session``.

    Args:
        market_config: the simulated market (seed, model); ``start`` picks the first day (None = now), and
            ``market_hours`` must be on (the recording follows the exchange calendar).
        interval: "1m", "5m" or "eod" (module docstring).
        replace: delete the session's snapshots first when it already holds some.
        progress: called with ``(days recorded, days)`` after each day.

    Returns:
        The ids of every snapshot recorded (SPX and SPY), in recording order.

    Raises:
        ValueError: a bad ``days`` or ``interval``, or a config without market hours.
        SessionExistsError: the session holds snapshots and ``replace`` is False.
        RecordingFailed: a write failed (its ``__cause__``); the days before it are stored whole.
    """
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a whole number of trading days >= 1, got {days!r}")
    if interval not in INTERVALS:
        raise ValueError(f"interval {interval!r} must be one of {', '.join(INTERVALS)}")
    if not market_config.market_hours:
        raise ValueError("record_history follows the exchange calendar: use a config with market_hours=True")
    cal = calendar or default_calendar()
    day_list = recording_days(cal, wall_start(market_config.start), days)
    # the market starts at the first day's open, so each day is recorded from its open
    config = dataclasses.replace(market_config, start=cal.session_open(day_list[0]).astimezone(ET))
    _clear_session(store, session, config.underlying, replace)
    market = SimulatedMarket(config, calendar=cal)
    writer = _Writer(store, session, days_total=days)
    for n, day in enumerate(day_list):
        _record_day(market, writer, cal, day, interval, first=n == 0)
        writer.end_day(final=n == days - 1)
        if progress is not None:
            progress(n + 1, days)
    return writer.ids


def _clear_session(store: Any, session: str, underlying: str, replace: bool) -> None:
    existing = store.snapshot_ids(session)
    if existing and not replace:
        # counted as the recording counts them: index snapshots, the SPY companions aside
        steps = len(store.list_snapshots(session=session, underlying=underlying))
        raise SessionExistsError(f"session {session!r} already recorded ({steps} snapshots); "
                                 f"use --session NAME to record another, or --replace to record it again")
    if existing:
        store.delete_snapshots(existing)


def _record_day(market: SimulatedMarket, writer: _Writer, cal: MarketCalendar, day: date, interval: str, *,
                first: bool) -> None:
    # the first batch is advance(0.0), as the live source starts; later ones skip the night to the open (relisting)
    batch = market.advance(0.0 if first else 1.0)
    if market.now_ns != to_ns(cal.session_open(day)):
        raise RuntimeError(f"the simulated market opened at {market.now_ns}, not at {day}'s open")  # a bug
    day_open, vix_open = market.spot, market.variance
    spy = [_spy(batch)]
    for instant in print_instants(cal, day, interval):
        if instant > market.now_ns:
            batch = market.advance((instant - market.now_ns) / _NS)
        writer.add_step([batch.snapshot, *(b.snapshot for b in batch.companions)], intraday=interval != "eod")
        spy.append(_spy(batch))
    if interval == "eod":  # run on to the close (not recorded): the daily bars carry the settlement values
        close_ns = to_ns(cal.session_close(day))
        if close_ns > market.now_ns:
            spy.append(_spy(market.advance((close_ns - market.now_ns) / _NS)))
    high, low, v_high, v_low = market.session_range
    bar_day = {"open": day_open, "high": high, "low": low, "close": market.spot}
    if interval == "eod":
        writer.add_daily("SPX", day, {k: round(v, 2) for k, v in bar_day.items()})
        seen = [p for p in spy if p is not None]
        if seen:
            writer.add_daily("SPY", day, {"open": round(seen[0], 2), "high": round(max(seen), 2),
                                          "low": round(min(seen), 2), "close": round(seen[-1], 2)})
    vix = _vix_points(market.config, [vix_open, v_high, v_low, market.variance])
    writer.add_daily("VIX", day, {"open": vix[0], "high": vix[1], "low": vix[2], "close": vix[3]})


def _spy(batch: Any) -> float | None:
    """SPY's level in a step's batch (its companion snapshot), None when the market lists no SPY."""
    return next((float(b.snapshot.underlying_price) for b in batch.companions if b.snapshot.underlying == "SPY"),
                None)


def _vix_points(config: SimulatorConfig, variances: list[float]) -> list[float]:
    from spx_core.marketdata.simulator.history import vix_level

    return [round(float(v), 2) for v in vix_level(config, np.array(variances))]


class _Writer:
    """Pending snapshots and bars, written in batches (see the module docstring's *Writes*)."""

    def __init__(self, store: Any, session: str, *, days_total: int) -> None:
        self.store, self.session, self.days_total = store, session, days_total
        self.ids: list[int] = []
        self.days_done = 0  # days whose snapshots and bars are all committed
        self._snaps: list[Any] = []
        self._bars: dict[str, dict[int, dict[str, float]]] = {}  # symbol -> bar time -> row
        self._minute: dict[str, Any] = {}  # symbol -> MinuteBars (intraday intervals)
        self._days_pending = 0

    def add_step(self, snaps: list[Any], *, intraday: bool) -> None:
        self._snaps.extend(snaps)
        if intraday:
            from spx_core.marketdata.simulator.bars import MinuteBars

            for snap in snaps:
                bars = self._minute.setdefault(snap.underlying, MinuteBars())
                bar = bars.update(snap.time_ns, snap.underlying_price)
                if bar is not None:  # the latest version of a bar wins
                    self._bars.setdefault(snap.underlying, {})[int(bar.pop("time"))] = bar
        if len(self._snaps) >= 2 * BATCH_SNAPSHOTS:  # a long day (1m: ~780 chains): flush within it too
            self._flush()

    def add_daily(self, symbol: str, day: date, bar: dict[str, float]) -> None:
        from spx_core.marketdata.simulator.history import _bar_times

        stamp = int(_bar_times([day])[0].value)
        self._bars.setdefault(symbol, {})[stamp] = {**bar, "volume": math.nan}

    def end_day(self, *, final: bool) -> None:
        self._days_pending += 1
        if final or len(self._snaps) >= BATCH_SNAPSHOTS:
            self._flush()

    def _flush(self) -> None:
        import pandas as pd

        try:
            if self._snaps:
                self.ids.extend(self.store.save_snapshots(self._snaps, source="Simulated", session=self.session))
            for symbol, rows in self._bars.items():
                if rows:
                    times = sorted(rows)
                    frame = pd.DataFrame([rows[t] for t in times], columns=["open", "high", "low", "close", "volume"])
                    frame.insert(0, "time", np.array(times, dtype=np.int64))
                    self.store.save_bars(symbol, frame)
        except Exception as exc:
            raise RecordingFailed(self.days_done, self.days_total) from exc
        self._snaps.clear()
        for rows in self._bars.values():
            rows.clear()
        self.days_done += self._days_pending
        self._days_pending = 0
