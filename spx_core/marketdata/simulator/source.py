"""SimulatorSource: the simulated market as an async :class:`MarketDataSource`.

Paces :class:`SimulatedMarket` on the running asyncio loop: one tick of ``config.tick_seconds``
simulated seconds every ``tick_seconds / speed`` wall seconds. The tick itself (a few ms of numpy and
a SHA-256) runs in a worker thread (``asyncio.to_thread``) so the loop (the GUI's, under qasync) is
never blocked; ticks stay strictly sequential, so a run is as deterministic as the model.

Events (see :mod:`spx_core.marketdata.source`): ``on_batch(QuoteBatch)`` once per tick that has a
new snapshot; ``on_status(SourceStatus)`` on starting, running, paused, stopped and error.
"""

from __future__ import annotations

import asyncio
import logging

from spx_core.domain.calendar import MarketCalendar, from_ns
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.marketdata.simulator.config import SimulatorConfig, SimulatorConfigError
from spx_core.marketdata.simulator.market import SimulatedMarket
from spx_core.marketdata.source import PacedSource, QuoteBatch, SourceState

__all__ = ["SimulatorSource"]

log = logging.getLogger(__name__)


class SimulatorSource(PacedSource):
    """The embedded default market-data source ("Simulated").

    Args:
        config: the market to simulate; ``config.speed`` is the initial speed.
        calendar: exchange calendar (defaults to the shared default calendar).
    """

    name = "Simulated"

    def __init__(self, config: SimulatorConfig | None = None, *, calendar: MarketCalendar | None = None) -> None:
        super().__init__()
        self._config = config or SimulatorConfig()
        self._calendar = calendar
        self._speed = self._config.speed
        self._market: SimulatedMarket | None = None
        self._latest: ChainSnapshot | None = None
        self._paused = False

    # --- protocol ------------------------------------------------------------------------------
    @property
    def latest(self) -> ChainSnapshot | None:
        return self._latest

    @property
    def market(self) -> SimulatedMarket | None:
        """The underlying model (None before the first start); read its clock, spot, variance."""
        return self._market

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def paused(self) -> bool:
        return self._paused

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
        self._poke()
        if self._task is not None:
            self._set_status(SourceState.PAUSED, "paused")

    def resume(self) -> None:
        if not self._paused:
            return
        self._paused = False
        self._poke()
        if self._task is not None:
            self._announce_running()

    def set_speed(self, speed: float) -> None:
        """Simulated seconds per wall second (e.g. 1, 10, 60); takes effect at once."""
        if not speed > 0:
            raise SimulatorConfigError(f"speed {speed!r} must be > 0 (simulated seconds per wall second)")
        self._speed = float(speed)
        self._poke()
        if self._task is not None and not self._paused:
            self._announce_running()

    # --- loop ----------------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        market, tick = self._market, self._config.tick_seconds
        last = loop.time()
        try:
            while True:
                if self._paused:
                    await self._wait_resumed()
                    last = loop.time()
                    continue
                deadline = last + tick / self._speed
                if loop.time() < deadline and await self._sleep_until(deadline):
                    continue  # woken by set_speed/pause/resume: re-read them
                batch = await asyncio.to_thread(market.advance, tick)
                self._publish(batch)  # published even if paused meanwhile: the market did move
                now = loop.time()
                last = deadline if now - deadline < tick / self._speed else now  # late: no catch-up burst
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
        m = self._market
        when = from_ns(m.now_ns).isoformat() if m is not None else ""
        self._set_status(SourceState.RUNNING, f"running at {self._speed:g}x, simulated time {when}")
