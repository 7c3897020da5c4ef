"""SimulatorSource: the simulated market as an async :class:`MarketDataSource`.

Paces :class:`SimulatedMarket` on the running asyncio loop so that simulated time advances at
``speed`` simulated seconds per wall second, measured against the loop's clock rather than assumed
from a sleep per tick: each step advances the market by the whole ``config.tick_seconds`` ticks that
are due. A step is at least one tick and at least ``min_interval`` wall seconds of simulated time
(60x with 1 s ticks: 3 s per batch, 20 batches a second), so a high speed costs a bounded number of
batches. When a step (the model's few ms in a worker thread, plus the GUI's work on the batch) comes
back late, the next step advances by the ticks that fell due meanwhile, so the stated speed holds on
a slow machine; a stall longer than ``max_catch_up`` wall seconds (a suspended laptop) is dropped,
not replayed in a burst, and shows as a lower :attr:`achieved_speed`, which is measured from the
emitted batches. The path is the model's for the step sizes taken: same seed and same steps give the
same snapshots (``spx-data simulate`` steps the model directly for a reproducible recording).

Events (see :mod:`spx_core.marketdata.source`): ``on_batch(QuoteBatch)`` once per tick that has a
new snapshot; ``on_status(SourceStatus)`` on starting, running, paused, stopped and error.
"""

from __future__ import annotations

import asyncio
import logging
import math

from spx_core.domain.calendar import MarketCalendar
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.marketdata.simulator.config import SimulatorConfig, SimulatorConfigError
from spx_core.marketdata.simulator.market import SimulatedMarket
from spx_core.marketdata.source import PacedSource, QuoteBatch, SourceKind, SourceState, speed_label

__all__ = ["SimulatorSource"]

log = logging.getLogger(__name__)


class SimulatorSource(PacedSource):
    """The embedded default market-data source ("Simulated").

    Args:
        config: the market to simulate; ``config.speed`` is the initial speed.
        calendar: exchange calendar (defaults to the shared default calendar).
        min_interval: shortest wall time between batches (seconds); bounds the batch rate at high speed.
        max_catch_up: longest lag (wall seconds) made up by a bigger step; a longer stall is dropped.
    """

    name = "Simulated"
    kind = SourceKind.SIM

    def __init__(self, config: SimulatorConfig | None = None, *, calendar: MarketCalendar | None = None,
                 min_interval: float = 0.05, max_catch_up: float = 1.0) -> None:
        if not (min_interval >= 0 and max_catch_up > 0):
            raise SimulatorConfigError(f"min_interval {min_interval!r} must be >= 0 and max_catch_up "
                                       f"{max_catch_up!r} > 0 (wall seconds)")
        self._config = config or SimulatorConfig()
        super().__init__(speed=self._config.speed)
        self._calendar = calendar
        self._min_interval, self._max_catch_up = float(min_interval), float(max_catch_up)
        self._market: SimulatedMarket | None = None
        self._latest: ChainSnapshot | None = None
        self._played = 0.0  # simulated seconds advanced since start (what the meter measures)

    # --- protocol ------------------------------------------------------------------------------
    @property
    def latest(self) -> ChainSnapshot | None:
        return self._latest

    @property
    def config(self) -> SimulatorConfig:
        """The simulated market's configuration (its seed and model; e.g. for its simulated past)."""
        return self._config

    @property
    def market(self) -> SimulatedMarket | None:
        """The underlying model (None before the first start); read its clock, spot, variance."""
        return self._market

    async def start(self) -> None:
        """Build the market (first time, off the loop), emit the full chain, start ticking. Idempotent."""
        if self._task is not None and not self._task.done():
            return
        self._set_status(SourceState.STARTING, "listing the simulated chain")
        try:
            if self._market is None:
                self._market = await asyncio.to_thread(SimulatedMarket, self._config, calendar=self._calendar)
            first = await asyncio.to_thread(self._market.advance, 0.0)
        except Exception as exc:
            self._set_status(SourceState.ERROR, f"simulator failed to start: {exc}")
            raise
        self._publish(first)
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="simulator-source")
        self._announce_running()

    def pause(self) -> None:
        """Freeze the simulated clock (no batches until :meth:`resume`)."""
        if self._paused:
            return
        self._paused = True
        self._meter.reset()
        self._poke()
        if self._task is not None:
            self._set_status(SourceState.PAUSED, "paused")

    def resume(self) -> None:
        if not self._paused:
            return
        self._paused = False
        self._rebase = True
        self._poke()
        if self._task is not None:
            self._announce_running()

    def set_speed(self, speed: float) -> None:
        """Simulated seconds per wall second (e.g. 1, 10, 60); takes effect at once."""
        if not speed > 0:
            raise SimulatorConfigError(f"speed {speed!r} must be > 0 (simulated seconds per wall second)")
        self._speed = float(speed)
        self._rebase = True
        self._meter.reset()
        self._poke()
        if self._task is not None and not self._paused:
            self._announce_running()

    # --- loop ----------------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        market, tick = self._market, self._config.tick_seconds
        anchor, played = loop.time(), 0.0  # wall time and simulated seconds since the pace was anchored
        self._rebase = True
        try:
            while True:
                if self._paused:
                    await self._wait_resumed()
                    continue
                speed = self._speed
                base = tick * max(1, math.ceil(speed * self._min_interval / tick - 1e-9))
                if self._rebase:  # the next step falls due one base step from now
                    self._rebase, anchor, played = False, loop.time(), 0.0
                deadline = anchor + (played + base) / speed
                if loop.time() < deadline and await self._sleep_until(deadline):
                    continue  # woken by set_speed/pause/resume: re-read them
                lag = speed * (loop.time() - anchor) - played - base  # simulated seconds overdue
                if lag > speed * self._max_catch_up:  # a stall: drop it rather than jump the market
                    anchor, lag = loop.time() - (played + base) / speed, 0.0
                step = base + tick * math.floor(max(lag, 0.0) / tick + 1e-9)
                batch = await asyncio.to_thread(market.advance, step)
                played += step
                self._played += step
                self._publish(batch)  # published even if paused meanwhile: the market did move
                self._meter.mark(loop.time(), self._played)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the model failed: report it and stop, do not die silently
            log.exception("simulator tick failed")
            self._set_status(SourceState.ERROR, f"simulator tick failed: {exc}")

    async def _wait_resumed(self) -> None:
        while self._paused:
            self._wake.clear()
            await self._wake.wait()

    def _publish(self, batch: QuoteBatch) -> None:
        self._latest = batch.snapshot
        self._subs.emit_batch(batch)

    def _announce_running(self) -> None:
        self._set_status(SourceState.RUNNING, f"running at {speed_label(self._speed, None)}")
