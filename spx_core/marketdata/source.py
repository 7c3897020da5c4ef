"""The market-data source protocol shared by the simulator, replay and (later) Interactive Brokers.

A source produces :class:`QuoteBatch` objects: each one carries a complete, immutable
:class:`~spx_core.domain.snapshot.ChainSnapshot` plus the row indices that changed since the previous
batch. Consumers are called once per batch, never once per quote.

Events (plain callbacks, registered with :meth:`MarketDataSource.subscribe`):
    on_batch(batch: QuoteBatch): a new chain state; ``batch.changed`` lists changed rows, or
        ``batch.layout_changed`` is True when the rows themselves changed (new listing, day roll,
        seek), in which case consumers must re-read the whole snapshot.
    on_status(status: SourceStatus): state changes (starting, running, paused, finished, error)
        with a human-readable message; ``status.notice`` carries a one-off event the user should
        see without the state changing (a corrupt snapshot skipped, a session gap jumped over).

A failing callback is logged and does not stop the source or the other subscribers.

Capabilities are small runtime-checkable protocols, not attribute probing: a source that can jump
is :class:`Seekable`; one whose pace can be set is :class:`SpeedControl`. :class:`SourceKind` says
what a source is (simulated, replay, IB) for code that must decide by kind (menus, settings).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np

from spx_core.domain.snapshot import ChainSnapshot

__all__ = ["SourceKind", "SourceState", "SourceStatus", "QuoteBatch", "MarketDataSource", "Seekable",
           "SpeedControl", "SpeedMeter", "speed_label", "SESSION_GAP_SECONDS", "BatchCallback",
           "StatusCallback", "Subscribers", "PacedSource"]

log = logging.getLogger(__name__)

#: a gap between two snapshots longer than this (market seconds) is a session gap (a night, a
#: weekend, a halt) rather than the data's own spacing; a replay skips such gaps only when asked
SESSION_GAP_SECONDS = 1800.0


class SourceKind(StrEnum):
    """What a source is. Values are stable strings (command line ``--source``, saved settings)."""

    SIM = "sim"
    REPLAY = "replay"
    IB = "ib"


class SourceState(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"  # a replay reached its end
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """What a source says about itself. ``message`` is for people; ``state`` is for code."""

    source: str  # "Simulated", "Replay", "IB"
    state: SourceState
    message: str = ""
    kind: SourceKind | None = None
    notice: str = ""  # a one-off event for people (skipped snapshot, jumped gap); state unchanged


@dataclass(frozen=True, slots=True, eq=False)
class QuoteBatch:
    """One coalesced update.

    Attributes:
        snapshot: the full chain after this update.
        changed: int64 row indices (into ``snapshot``) whose quote changed; all rows when
            ``layout_changed``.
        layout_changed: the row set differs from the previous batch's snapshot.
        sequence: monotonically increasing batch number per source run.
        companions: batches of other underlyings taken at the same instant (the simulator's SPY), each
            with its own rows, ``changed``, ``layout_changed`` and ``sequence``; consumers of the primary
            chain ignore them, a panel showing another underlying reads :meth:`for_underlying`.
    """

    snapshot: ChainSnapshot
    changed: np.ndarray
    layout_changed: bool
    sequence: int
    companions: tuple[QuoteBatch, ...] = ()

    def for_underlying(self, underlying: str) -> QuoteBatch | None:
        """This batch or the companion whose snapshot is of ``underlying`` (None when the source has none)."""
        if self.snapshot.underlying == underlying:
            return self
        return next((b for b in self.companions if b.snapshot.underlying == underlying), None)


BatchCallback = Callable[[QuoteBatch], None]
StatusCallback = Callable[[SourceStatus], None]


@runtime_checkable
class MarketDataSource(Protocol):
    """Contract every market-data source keeps.

    * ``start()`` begins producing batches (the first batch has ``layout_changed=True``);
      ``stop()`` ends production and releases resources; both are idempotent and async.
    * ``pause()``/``resume()`` freeze and continue the source's clock (replay and simulator).
    * ``subscribe()`` registers callbacks and returns a function that unsubscribes them.
    * ``status`` is the latest :class:`SourceStatus`; ``latest`` the latest snapshot or None.
    * ``kind`` says what the source is; ``name`` is its label for people.
    """

    name: str
    kind: SourceKind

    @property
    def status(self) -> SourceStatus: ...

    @property
    def latest(self) -> ChainSnapshot | None: ...

    def subscribe(self, on_batch: BatchCallback | None = None,
                  on_status: StatusCallback | None = None) -> Callable[[], None]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...


@runtime_checkable
class Seekable(Protocol):
    """A source with a position in a finite sequence (replay).

    * ``seek(index)`` jumps to snapshot ``index`` (negative counts from the end); the target is
      emitted at once, also while paused, as a ``layout_changed`` batch.
    * ``position`` is the index last emitted (-1 before the first); ``length`` the number of snapshots.
    """

    def seek(self, target: int) -> None: ...

    @property
    def position(self) -> int: ...

    @property
    def length(self) -> int: ...


@runtime_checkable
class SpeedControl(Protocol):
    """A source whose pace can be set.

    * ``set_speed(x)``: market seconds per wall second (1, 10, 60; replay: 0 = as fast as possible).
    * ``speed`` is the stated speed; ``achieved_speed`` the measured one over the last few wall
      seconds (None until measured, and while paused), so a UI can say when the machine falls behind.
    """

    def set_speed(self, speed: float) -> None: ...

    @property
    def speed(self) -> float: ...

    @property
    def achieved_speed(self) -> float | None: ...


class SpeedMeter:
    """Measures achieved speed: market seconds advanced per wall second over a sliding window.

    ``mark(wall, market_elapsed)`` is called once per emitted batch with the loop time and the
    cumulative market seconds the source has played (gaps it skipped on purpose not counted).
    The estimate spans from the newest sample at least ``window`` wall seconds old to the latest
    (or the oldest kept when none is that old), so sparse data (minute bars at 1x) still measures
    between two of its own batches. ``reset()`` after a pause, seek or speed change. The window is a
    few seconds because a batch delivered late by a busy GUI thread skews both of its end points: over
    5 s, a 250 ms hiccup moves the estimate by 5%, under the 10% that :func:`speed_label` reports.
    """

    def __init__(self, window: float = 5.0, min_span: float = 0.5) -> None:
        self._window, self._min_span = float(window), float(min_span)
        self._samples: deque[tuple[float, float]] = deque()

    def reset(self) -> None:
        self._samples.clear()

    def mark(self, wall: float, market_elapsed: float) -> None:
        self._samples.append((wall, market_elapsed))
        # keep one sample older than the window as the reference
        while len(self._samples) > 2 and wall - self._samples[1][0] >= self._window:
            self._samples.popleft()

    def speed(self) -> float | None:
        """Market seconds per wall second, or None with fewer than two samples or too short a span."""
        if len(self._samples) < 2:
            return None
        (w0, m0), (w1, m1) = self._samples[0], self._samples[-1]
        if w1 - w0 < self._min_span:
            return None
        return (m1 - m0) / (w1 - w0)


def speed_label(speed: float, achieved: float | None, *, tolerance: float = 0.1) -> str:
    """"60x", "max", or "60x (achieved 41x)" when the measured speed is more than ``tolerance`` short."""
    text = "max" if speed == 0 else f"{speed:g}x"
    if achieved is not None and speed > 0 and achieved < speed * (1.0 - tolerance):
        text += f" (achieved {achieved:.3g}x)"
    return text


class Subscribers:
    """Fan-out helper for sources: isolates failing callbacks (logged, not raised)."""

    def __init__(self) -> None:
        self._batch: list[BatchCallback] = []
        self._status: list[StatusCallback] = []

    def add(self, on_batch: BatchCallback | None, on_status: StatusCallback | None) -> Callable[[], None]:
        if on_batch is not None:
            self._batch.append(on_batch)
        if on_status is not None:
            self._status.append(on_status)

        def unsubscribe() -> None:
            if on_batch in self._batch:
                self._batch.remove(on_batch)
            if on_status in self._status:
                self._status.remove(on_status)

        return unsubscribe

    def emit_batch(self, batch: QuoteBatch) -> None:
        for cb in list(self._batch):
            try:
                cb(batch)
            except Exception:  # one bad consumer must not starve the others
                log.exception("market-data batch callback %r failed", cb)

    def emit_status(self, status: SourceStatus) -> None:
        for cb in list(self._status):
            try:
                cb(status)
            except Exception:
                log.exception("market-data status callback %r failed", cb)


class PacedSource:
    """Shared machinery of sources paced on the running asyncio loop (simulator, replay).

    Holds the subscribers, the current status, the pacing task and a wake-up event that control
    calls (speed, pause, seek) set so a sleeping loop re-reads them at once. Subclasses set ``name``
    and ``kind`` and implement ``start()``; ``stop()`` cancels the pacing task. Pace against the loop's
    clock from an anchor (not by sleeping a fixed time after each batch, which adds the batch's own
    cost to every step) and report what was achieved with a :class:`SpeedMeter`.
    """

    name = "Source"
    kind: SourceKind

    def __init__(self, *, speed: float) -> None:
        self._subs = Subscribers()
        self._status = SourceStatus(self.name, SourceState.STOPPED, "not started", self.kind)
        self._task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._speed = float(speed)
        self._paused = False
        self._rebase = True  # re-anchor the pace at the next step (start, resume, seek, speed)
        self._meter = SpeedMeter()

    @property
    def status(self) -> SourceStatus:
        return self._status

    @property
    def speed(self) -> float:
        """The stated speed: market seconds per wall second."""
        return self._speed

    @property
    def achieved_speed(self) -> float | None:
        """Measured market seconds played per wall second over the last few seconds (None while paused)."""
        return None if self._paused else self._meter.speed()

    @property
    def paused(self) -> bool:
        return self._paused

    def subscribe(self, on_batch: BatchCallback | None = None,
                  on_status: StatusCallback | None = None) -> Callable[[], None]:
        return self._subs.add(on_batch, on_status)

    @property
    def running(self) -> bool:
        """True while the pacing task is alive."""
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """Cancel the pacing task (state is kept; a later start continues). Idempotent."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self._status.state not in (SourceState.ERROR, SourceState.STOPPED):
            self._set_status(SourceState.STOPPED, "stopped")

    def _set_status(self, state: SourceState, message: str, *, notice: str = "") -> None:
        self._status = SourceStatus(self.name, state, message, self.kind, notice)
        self._subs.emit_status(self._status)

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _sleep_until(self, deadline: float) -> bool:
        """Sleep until ``deadline`` (loop time); True when woken early by a control call."""
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=max(deadline - asyncio.get_running_loop().time(), 0))
        except TimeoutError:
            return False
        return True

    async def _wait_for_poke(self) -> None:
        self._wake.clear()
        await self._wake.wait()
