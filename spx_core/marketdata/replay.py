"""ReplaySource: plays stored snapshots back as a :class:`MarketDataSource`.

Snapshots play in time order, spaced by their own timestamps divided by ``speed`` (1x, 10x, ...;
``speed=0`` = as fast as the store can load them); a gap longer than ``max_wait_seconds`` of wall
time (a night between two recorded sessions) is cut to that. Loads run in a worker thread
(``asyncio.to_thread``; a load is a few ms) and the next snapshot is prefetched while waiting, so the
event loop is never blocked.

Each batch's ``changed`` rows come from comparing the snapshot with the previously emitted one when
both have the same rows; otherwise (and after a seek) the batch has ``layout_changed=True``.

Events (see :mod:`spx_core.marketdata.source`): ``on_batch(QuoteBatch)`` per played snapshot;
``on_status(SourceStatus)``: starting, running, paused, finished (end reached; a seek continues),
stopped, error (e.g. a snapshot failed its checksum: the message names its id).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from spx_core.domain.calendar import from_ns, to_ns
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.marketdata.source import PacedSource, QuoteBatch, SourceState

__all__ = ["ReplaySource", "ReplayError", "changed_rows"]

log = logging.getLogger(__name__)

_LAYOUT = ("root", "expiry", "strike", "is_call")
_MARKET = ("bid", "ask", "last", "bid_size", "ask_size", "volume", "open_interest", "quote_time", "vendor_iv",
           "vendor_delta", "flags")


class ReplayError(ValueError):
    """A replay was set up wrongly (no session or ids, unknown ids, bad speed or seek target)."""


def changed_rows(prev: ChainSnapshot | None, cur: ChainSnapshot) -> np.ndarray | None:
    """Rows of ``cur`` whose quote differs from ``prev``; None when the row layouts differ."""
    if prev is None or len(prev) != len(cur):
        return None
    a, b = prev.columns, cur.columns
    if not all(a[name] is b[name] or np.array_equal(a[name], b[name]) for name in _LAYOUT):
        return None
    diff = np.zeros(len(cur), dtype=bool)
    for name in _MARKET:
        x, y = a[name], b[name]
        if x is y:
            continue
        if x.dtype.kind == "f":
            diff |= ~((x == y) | (np.isnan(x) & np.isnan(y)))
        else:
            diff |= x != y
    return np.flatnonzero(diff)


class ReplaySource(PacedSource):
    """Replay of stored snapshots ("Replay").

    Args:
        store: a :class:`spx_core.storage.Store` (anything with ``list_snapshots``, ``load_snapshot``).
        session: play this session's snapshots; or
        snapshot_ids: play these snapshots (in time order).
        speed: wall-clock speed-up (1.0 = real time); 0 = as fast as possible.
        max_wait_seconds: longest wall-clock wait between two snapshots (seconds).
    """

    name = "Replay"

    def __init__(self, store: Any, session: str | None = None, snapshot_ids: Sequence[int] | None = None,
                 speed: float = 1.0, *, max_wait_seconds: float = 10.0) -> None:
        if (session is None) == (snapshot_ids is None):
            raise ReplayError("ReplaySource needs exactly one of session=... or snapshot_ids=[...]")
        _check_speed(speed)
        super().__init__()
        self._store, self._session = store, session
        self._wanted = None if snapshot_ids is None else [int(i) for i in snapshot_ids]
        self._speed, self._max_wait = float(speed), float(max_wait_seconds)
        self._ids: list[int] | None = None
        self._times: list[int] = []
        self._position = -1
        self._prev: ChainSnapshot | None = None
        self._seek_to: int | None = None
        self._paused = False
        self._seq = 0

    # --- protocol and controls -------------------------------------------------------------------
    @property
    def latest(self) -> ChainSnapshot | None:
        return self._prev

    @property
    def position(self) -> int:
        """Index of the snapshot last played (-1 before the first)."""
        return self._position

    @property
    def length(self) -> int:
        """Number of snapshots in the replay (0 until :meth:`start` has read the index)."""
        return len(self._ids or ())

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def times(self) -> list[datetime]:
        """Timestamps of the snapshots (after start)."""
        return [from_ns(t) for t in self._times]

    def set_speed(self, speed: float) -> None:
        """Wall-clock speed-up (1, 10, ...); 0 = as fast as possible. Takes effect at once."""
        _check_speed(speed)
        self._speed = float(speed)
        self._poke()

    def seek(self, target: int | datetime) -> None:
        """Jump to a snapshot index (negative counts from the end) or to the last snapshot at or before
        a datetime; the target is emitted at once (``layout_changed=True``) and play continues from it."""
        if self._ids is None:
            raise ReplayError("seek() before start(): start the replay first so its index is known")
        self._seek_to = self._index_of(target)
        self._poke()

    def pause(self) -> None:
        if not self._paused:
            self._paused = True
            self._poke()
            if self._task is not None and self._status.state is not SourceState.FINISHED:
                self._set_status(SourceState.PAUSED, f"paused at {self._position + 1}/{self.length}")

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._poke()
            if self._task is not None and self._status.state is SourceState.PAUSED:
                self._set_status(SourceState.RUNNING, self._running_message())

    async def start(self) -> None:
        """Read the index, emit the current (first) snapshot and start playing. Idempotent."""
        if self._task is not None and not self._task.done():
            return
        self._set_status(SourceState.STARTING, "reading the replay index")
        try:
            if self._ids is None:
                self._ids, self._times = await asyncio.to_thread(self._read_index)
        except Exception as exc:
            self._set_status(SourceState.ERROR, f"replay failed to start: {exc}")
            raise
        if not self._ids:
            self._set_status(SourceState.FINISHED, "nothing to replay: no snapshots")
            return
        if self._seek_to is None and (self._position < 0 or self._position >= len(self._ids) - 1):
            self._seek_to = 0  # fresh start, or a restart after the end
        elif self._seek_to is None:
            self._seek_to = self._position
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="replay-source")

    # --- internals -------------------------------------------------------------------------------
    def _read_index(self) -> tuple[list[int], list[int]]:
        infos = self._store.list_snapshots(session=self._session)
        if self._wanted is not None:
            wanted = set(self._wanted)
            infos = [i for i in infos if i.id in wanted]
            missing = wanted - {i.id for i in infos}
            if missing:
                raise ReplayError(f"snapshot ids not in the store: {sorted(missing)[:10]}")
        return [i.id for i in infos], [to_ns(i.time) for i in infos]

    def _index_of(self, target: int | datetime) -> int:
        n = len(self._ids)
        if isinstance(target, datetime):
            i = bisect.bisect_right(self._times, to_ns(target)) - 1
            return min(max(i, 0), n - 1)
        i = int(target) + (n if int(target) < 0 else 0)
        if not 0 <= i < n:
            raise ReplayError(f"seek index {target} is outside 0..{n - 1}")
        return i

    def _load(self, index: int, prev: ChainSnapshot | None) -> tuple[ChainSnapshot, np.ndarray | None]:
        snap = self._store.load_snapshot(self._ids[index])
        return snap, changed_rows(prev, snap)

    async def _run(self) -> None:
        try:
            await self._play()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a corrupt snapshot or a closed store: say so and stop
            log.exception("replay failed")
            self._set_status(SourceState.ERROR, f"replay failed at {self._position + 1}/{self.length}: {exc}")

    async def _play(self) -> None:
        loop = asyncio.get_running_loop()
        last_emit = loop.time()
        prefetch: tuple[int, asyncio.Future] | None = None
        while True:
            if self._seek_to is not None:
                index, self._seek_to = self._seek_to, None
                snap, _ = await asyncio.to_thread(self._load, index, None)
                self._emit(index, snap, None)
                prefetch, last_emit = None, loop.time()
                self._set_status(SourceState.PAUSED if self._paused else SourceState.RUNNING,
                                 self._running_message())
                continue
            nxt = self._position + 1
            if self._paused or nxt >= len(self._ids):
                if nxt >= len(self._ids) and self._status.state is not SourceState.FINISHED:
                    self._set_status(SourceState.FINISHED, f"end of replay ({len(self._ids)} snapshots)")
                await self._wait_for_poke()
                continue
            if prefetch is None or prefetch[0] != nxt:
                prefetch = (nxt, asyncio.ensure_future(asyncio.to_thread(self._load, nxt, self._prev)))
            gap = (self._times[nxt] - self._times[nxt - 1]) / 1e9
            wait = 0.0 if self._speed == 0 else min(gap / self._speed, self._max_wait)
            if loop.time() < last_emit + wait and await self._sleep_until(last_emit + wait):
                continue  # woken by seek/pause/speed: re-evaluate
            snap, changed = await prefetch[1]
            prefetch = None
            self._emit(nxt, snap, changed)
            now = loop.time()
            last_emit = now if now - (last_emit + wait) > max(wait, 0.05) else last_emit + wait

    def _emit(self, index: int, snap: ChainSnapshot, changed: np.ndarray | None) -> None:
        layout_changed = changed is None
        if layout_changed:
            changed = np.arange(len(snap), dtype=np.int64)
        self._position, self._prev = index, snap
        batch = QuoteBatch(snapshot=snap, changed=changed.astype(np.int64, copy=False),
                           layout_changed=layout_changed, sequence=self._seq)
        self._seq += 1
        self._subs.emit_batch(batch)

    def _running_message(self) -> str:
        speed = "max speed" if self._speed == 0 else f"{self._speed:g}x"
        return f"{self._position + 1}/{self.length} at {speed}"


def _check_speed(speed: float) -> None:
    if not (speed >= 0 and speed < float("inf")):
        raise ReplayError(f"replay speed {speed!r} must be >= 0 (0 = as fast as possible)")
