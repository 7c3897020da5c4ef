"""The market-data source protocol shared by the simulator, replay and (later) Interactive Brokers.

A source produces :class:`QuoteBatch` objects: each one carries a complete, immutable
:class:`~spx_core.domain.snapshot.ChainSnapshot` plus the row indices that changed since the previous
batch. Consumers are called once per batch, never once per quote.

Events (plain callbacks, registered with :meth:`MarketDataSource.subscribe`):
    on_batch(batch: QuoteBatch): a new chain state; ``batch.changed`` lists changed rows, or
        ``batch.layout_changed`` is True when the rows themselves changed (new listing, day roll,
        seek), in which case consumers must re-read the whole snapshot.
    on_status(status: SourceStatus): state changes (starting, running, paused, finished, error)
        with a human-readable message.

A failing callback is logged and does not stop the source or the other subscribers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np

from spx_core.domain.snapshot import ChainSnapshot

__all__ = ["SourceState", "SourceStatus", "QuoteBatch", "MarketDataSource", "BatchCallback",
           "StatusCallback", "Subscribers", "PacedSource"]

log = logging.getLogger(__name__)


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


@dataclass(frozen=True, slots=True, eq=False)
class QuoteBatch:
    """One coalesced update.

    Attributes:
        snapshot: the full chain after this update.
        changed: int64 row indices (into ``snapshot``) whose quote changed; all rows when
            ``layout_changed``.
        layout_changed: the row set differs from the previous batch's snapshot.
        sequence: monotonically increasing batch number per source run.
    """

    snapshot: ChainSnapshot
    changed: np.ndarray
    layout_changed: bool
    sequence: int


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
    """

    name: str

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
    and implement ``start()``; ``stop()`` cancels the pacing task.
    """

    name = "Source"

    def __init__(self) -> None:
        self._subs = Subscribers()
        self._status = SourceStatus(self.name, SourceState.STOPPED, "not started")
        self._task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None

    @property
    def status(self) -> SourceStatus:
        return self._status

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

    def _set_status(self, state: SourceState, message: str) -> None:
        self._status = SourceStatus(self.name, state, message)
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
