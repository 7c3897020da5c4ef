"""ReplaySource: plays stored snapshots back as a :class:`MarketDataSource`.

Snapshots play in time order at ``speed`` market seconds per wall second (1x keeps real time: a
60 s gap between two minute snapshots takes 60 s; ``speed=0`` = as fast as the store can load
them). The pace is anchored to the loop's clock, not to the end of the previous emit, so the time a
load or a busy GUI takes is not added to every gap; when the replay falls behind, snapshots that are
already overdue are passed over (the next batch is diffed against the last one shown) and
:attr:`ReplaySource.achieved_speed` measures what was really played. Gaps are never compressed
silently: with ``skip_gaps`` on, a gap longer than ``gap_seconds`` of market time (a night, a weekend,
a halt) is jumped at once and announced in ``status.notice``; with it off the replay waits it out.

Loads run in a worker thread (``asyncio.to_thread``; a load is a few ms) and the next snapshot is
prefetched while waiting, so the event loop is never blocked. A snapshot that fails its checksum or
cannot be decoded (or was deleted meanwhile) is reported (``status.notice`` names its id and the
reason, and it is logged) and skipped; the replay continues with the next one.

A session may hold several underlyings (``spx-data simulate`` records SPY beside SPX). The replay
plays the session's **primary** underlying: SPX when the session (or the chosen ids) holds any SPX
snapshot, otherwise the underlying with the most snapshots (ties: the first in time). One
:class:`QuoteBatch` is emitted per primary snapshot, so ``batch.snapshot`` is always the primary chain;
every other underlying rides in ``batch.companions`` with its snapshot of the same time, or the latest
earlier one (none before its first). Positions, ``length``, ``times``, seeks, speed and gaps are those
of the primary snapshots only; a session of one underlying replays exactly as it always did. A
companion that cannot be played is reported like a primary one and left out of that batch.

Each batch's ``changed`` rows come from comparing the snapshot with the previously emitted one when
both have the same rows; otherwise (and after a seek) the batch has ``layout_changed=True``. A
companion is diffed the same way against the previous batch's companion of its underlying (a
repeated snapshot has no changed rows).

Events (see :mod:`spx_core.marketdata.source`): ``on_batch(QuoteBatch)`` per played snapshot;
``on_status(SourceStatus)``: starting, running, paused, finished (end reached; a seek continues),
stopped, error (the index cannot be read, or the store failed); notices as above.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from spx_core.domain.calendar import ET, from_ns, to_ns
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.marketdata.source import (SESSION_GAP_SECONDS, PacedSource, QuoteBatch, SourceKind, SourceState,
                                        speed_label)
from spx_core.storage.errors import SnapshotIntegrityError, SnapshotNotFoundError

__all__ = ["ReplaySource", "ReplayError", "changed_rows", "primary_underlying", "GAP_SECONDS"]

log = logging.getLogger(__name__)

#: shortest gap (market seconds) that ``skip_gaps`` jumps by default
GAP_SECONDS = SESSION_GAP_SECONDS
#: a snapshot that cannot be played; anything else failing is the store's problem and stops the replay
_UNPLAYABLE = (SnapshotIntegrityError, SnapshotNotFoundError)

_LAYOUT = ("root", "expiry", "strike", "is_call")
_MARKET = ("bid", "ask", "last", "bid_size", "ask_size", "volume", "open_interest", "quote_time", "vendor_iv",
           "vendor_delta", "flags")


def primary_underlying(underlyings: Sequence[str]) -> str | None:
    """The underlying a replay plays (``underlyings`` in time order): SPX when present, else the most
    frequent (ties: the first seen); None when empty."""
    if "SPX" in underlyings:
        return "SPX"
    counts: dict[str, int] = {}
    for u in underlyings:
        counts[u] = counts.get(u, 0) + 1
    return max(counts, key=counts.__getitem__, default=None)  # max keeps the first of equal counts


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
    """Replay of stored snapshots ("Replay"); :class:`Seekable` and :class:`SpeedControl`.

    Args:
        store: a :class:`spx_core.storage.Store` (anything with ``list_snapshots``, ``load_snapshot``).
        session: play this session's snapshots; or
        snapshot_ids: play these snapshots (in time order).
        speed: market seconds per wall second (1.0 = real time); 0 = as fast as possible.
        skip_gaps: jump over gaps longer than ``gap_seconds`` instead of waiting them out.
        gap_seconds: shortest gap (market seconds) that ``skip_gaps`` jumps.
        max_catch_up: longest lag (wall seconds) made up by passing over overdue snapshots; a longer
            stall is dropped (play resumes from where it is) and shows in :attr:`achieved_speed`.
    """

    name = "Replay"
    kind = SourceKind.REPLAY

    def __init__(self, store: Any, session: str | None = None, snapshot_ids: Sequence[int] | None = None,
                 speed: float = 1.0, *, skip_gaps: bool = False, gap_seconds: float = GAP_SECONDS,
                 max_catch_up: float = 1.0) -> None:
        if (session is None) == (snapshot_ids is None):
            raise ReplayError("ReplaySource needs exactly one of session=... or snapshot_ids=[...]")
        _check_speed(speed)
        if not (gap_seconds > 0 and max_catch_up > 0):
            raise ReplayError(f"gap_seconds {gap_seconds!r} and max_catch_up {max_catch_up!r} must be > 0 (seconds)")
        super().__init__(speed=speed)
        self._store, self._session = store, session
        self._wanted = None if snapshot_ids is None else [int(i) for i in snapshot_ids]
        self._skip_gaps = bool(skip_gaps)
        self._gap_ns, self._max_catch_up = round(gap_seconds * 1e9), float(max_catch_up)
        self._ids: list[int] | None = None
        self._times: list[int] = []
        self._gaps: list[int] = []  # indices entered by a gap longer than gap_seconds
        self._position = -1
        self._prev: ChainSnapshot | None = None
        # other underlyings: name -> (ids, times) in time order; the last emitted (id, snapshot) of each
        self._companions: dict[str, tuple[list[int], list[int]]] = {}
        self._prev_companions: dict[str, tuple[int, ChainSnapshot]] = {}
        self._companion_seq: dict[str, int] = {}
        self._seek_to: int | None = None
        self._seq = 0
        self._played_ns = 0  # market time played (gaps jumped on purpose not counted): the meter's input

    # --- protocol and controls -------------------------------------------------------------------
    @property
    def latest(self) -> ChainSnapshot | None:
        return self._prev

    @property
    def session(self) -> str | None:
        return self._session

    @property
    def position(self) -> int:
        """Index of the snapshot last played (-1 before the first)."""
        return self._position

    @property
    def length(self) -> int:
        """Number of snapshots in the replay (0 until :meth:`start` has read the index)."""
        return len(self._ids or ())

    @property
    def skip_gaps(self) -> bool:
        return self._skip_gaps

    @property
    def times(self) -> list[datetime]:
        """Timestamps of the snapshots (after start)."""
        return [from_ns(t) for t in self._times]

    def set_speed(self, speed: float) -> None:
        """Market seconds per wall second (1, 10, ...); 0 = as fast as possible. Takes effect at once."""
        _check_speed(speed)
        self._speed = float(speed)
        self._replan()

    def set_skip_gaps(self, skip: bool) -> None:
        """Jump over (True) or wait out (False) gaps longer than ``gap_seconds``; takes effect at once."""
        self._skip_gaps = bool(skip)
        self._replan()

    def seek(self, target: int | datetime) -> None:
        """Jump to a snapshot index (negative counts from the end) or to the last snapshot at or before
        a datetime; the target is emitted at once, also while paused (``layout_changed=True``), and
        play continues from it."""
        if self._ids is None:
            raise ReplayError("seek() before start(): start the replay first so its index is known")
        self._seek_to = self._index_of(target)
        self._replan()

    def pause(self) -> None:
        if not self._paused:
            self._paused = True
            self._replan()
            if self._task is not None and self._status.state is not SourceState.FINISHED:
                self._set_status(SourceState.PAUSED, f"paused at {self._position + 1}/{self.length}")

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._replan()
            if self._task is not None and self._status.state is SourceState.PAUSED:
                self._set_status(SourceState.RUNNING, self._running_message())

    async def start(self) -> None:
        """Read the index, emit the current (first) snapshot and start playing. Idempotent."""
        if self._task is not None and not self._task.done():
            return
        self._set_status(SourceState.STARTING, "reading the replay index")
        try:
            if self._ids is None:
                self._ids, self._times, self._companions = await asyncio.to_thread(self._read_index)
                self._gaps = self._find_gaps()
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
    def _replan(self) -> None:
        """A control changed: re-anchor the pace, restart the measurement, wake the loop."""
        self._rebase = True
        self._meter.reset()
        self._poke()

    def _read_index(self) -> tuple[list[int], list[int], dict[str, tuple[list[int], list[int]]]]:
        """(primary ids, primary times, {other underlying: (ids, times)}), each in time order."""
        infos = self._store.list_snapshots(session=self._session)
        if self._wanted is not None:
            wanted = set(self._wanted)
            infos = [i for i in infos if i.id in wanted]
            missing = wanted - {i.id for i in infos}
            if missing:
                raise ReplayError(f"snapshot ids not in the store: {sorted(missing)[:10]}")
        primary = primary_underlying([i.underlying for i in infos])
        by_underlying: dict[str, tuple[list[int], list[int]]] = {}
        for i in infos:
            ids, times = by_underlying.setdefault(i.underlying, ([], []))
            ids.append(i.id)
            times.append(to_ns(i.time))
        ids, times = by_underlying.pop(primary, ([], []))
        return ids, times, by_underlying

    def _index_of(self, target: int | datetime) -> int:
        n = len(self._ids)
        if isinstance(target, datetime):
            i = bisect.bisect_right(self._times, to_ns(target)) - 1
            return min(max(i, 0), n - 1)
        i = int(target) + (n if int(target) < 0 else 0)
        if not 0 <= i < n:
            raise ReplayError(f"seek index {target} is outside 0..{n - 1}")
        return i

    def _load(self, index: int, prev: ChainSnapshot | None,
              prev_companions: dict[str, tuple[int, ChainSnapshot]]) -> _Loaded:
        snap = self._store.load_snapshot(self._ids[index])
        companions, skipped = [], []
        for name, (ids, times) in self._companions.items():
            j = bisect.bisect_right(times, self._times[index]) - 1
            if j < 0:
                continue  # not listed yet at this time
            before = prev_companions.get(name)
            if before is not None and before[0] == ids[j]:  # the same snapshot again: nothing changed
                companions.append((name, ids[j], before[1], np.zeros(0, np.int64)))
                continue
            try:
                other = self._store.load_snapshot(ids[j])
            except _UNPLAYABLE as exc:
                skipped.append(str(exc))
                continue
            companions.append((name, ids[j], other, changed_rows(before and before[1], other)))
        return snap, changed_rows(prev, snap), companions, skipped

    def _is_gap(self, index: int) -> bool:
        """True when the step into ``index`` is a gap that ``skip_gaps`` jumps."""
        return self._skip_gaps and 0 < index and self._times[index] - self._times[index - 1] > self._gap_ns

    def _find_gaps(self) -> list[int]:
        """Indices whose step in from the previous snapshot is longer than ``gap_seconds``."""
        return (np.flatnonzero(np.diff(np.asarray(self._times, dtype=np.int64)) > self._gap_ns) + 1).tolist()

    async def _run(self) -> None:
        try:
            await self._play()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store failed (closed, unreadable file): say so and stop
            log.exception("replay failed")
            self._set_status(SourceState.ERROR, f"replay failed at {self._position + 1}/{self.length}: {exc}")

    async def _play(self) -> None:
        loop = asyncio.get_running_loop()
        prefetch: tuple[int, asyncio.Future] | None = None
        anchor_wall, anchor_ns = loop.time(), 0
        while True:
            if self._seek_to is not None:
                index, self._seek_to = self._seek_to, None
                prefetch = None
                await self._show(index, self._load_soon(index, None), jumped=True)
                self._set_status(SourceState.PAUSED if self._paused else SourceState.RUNNING,
                                 self._running_message())
                continue
            nxt = self._position + 1
            if self._paused or nxt >= len(self._ids):
                if nxt >= len(self._ids) and not self._paused and self._status.state is not SourceState.FINISHED:
                    self._set_status(SourceState.FINISHED, f"end of replay ({len(self._ids)} snapshots)")
                await self._wait_for_poke()
                continue
            jumped = self._is_gap(nxt)
            if self._rebase or jumped:  # play the next snapshot on schedule from now
                self._rebase = False
                anchor_wall, anchor_ns = loop.time(), self._times[max(self._position, 0)]
                if jumped:
                    anchor_ns = self._times[nxt]
                    self._announce_gap(nxt)
            if prefetch is None or prefetch[0] != nxt:
                prefetch = (nxt, self._load_soon(nxt, self._prev))
            index = nxt
            if self._speed > 0:
                due = anchor_wall + (self._times[nxt] - anchor_ns) / 1e9 / self._speed
                if loop.time() < due and await self._sleep_until(due):
                    continue  # woken by seek/pause/speed: re-evaluate
                index, stalled = self._overdue(nxt, anchor_wall, anchor_ns, loop.time())
                if stalled:  # drop the stall instead of racing through it
                    anchor_wall, anchor_ns = loop.time(), self._times[index]
            load = prefetch[1] if index == nxt else self._load_soon(index, self._prev)
            prefetch = None
            await self._show(index, load, jumped=jumped)

    def _overdue(self, nxt: int, anchor_wall: float, anchor_ns: int, now: float) -> tuple[int, bool]:
        """The latest snapshot due at ``now`` (>= ``nxt``, never across a gap to be jumped), and whether
        it is late by more than ``max_catch_up``."""
        target_ns = anchor_ns + (now - anchor_wall) * self._speed * 1e9
        stop = len(self._ids)
        if self._skip_gaps:  # the first gap after ``nxt``: a catch-up never crosses it unannounced
            k = bisect.bisect_right(self._gaps, nxt)
            stop = self._gaps[k] if k < len(self._gaps) else stop
        index = max(nxt, bisect.bisect_right(self._times, target_ns, nxt, stop) - 1)
        late = now - (anchor_wall + (self._times[index] - anchor_ns) / 1e9 / self._speed)
        return index, late > self._max_catch_up

    def _load_soon(self, index: int, prev: ChainSnapshot | None) -> asyncio.Future:
        """Load ``index`` (and its companions) in a worker thread, diffed against ``prev`` (and the last
        emitted companions; none when ``prev`` is None: a seek re-reads everything)."""
        prev_companions = dict(self._prev_companions) if prev is not None else {}
        fut = asyncio.ensure_future(asyncio.to_thread(self._load, index, prev, prev_companions))
        # a prefetch that is passed over must not leave an unretrieved exception behind
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        return fut

    async def _show(self, index: int, load: asyncio.Future, *, jumped: bool) -> None:
        """Emit the loaded snapshot ``index``; a snapshot that cannot be played is reported and skipped."""
        before = self._position
        try:
            snap, changed, companions, skipped = await load
        except _UNPLAYABLE as exc:
            self._position = index  # past it: play goes on with the next one
            log.warning("replay skipped %s", exc)
            self._set_status(self._status.state, self._status.message, notice=f"Replay skipped {exc}")
            return
        for reason in skipped:
            log.warning("replay left out a companion: %s", reason)
            self._set_status(self._status.state, self._status.message, notice=f"Replay skipped {reason}")
        if not jumped and before >= 0:
            self._played_ns += self._times[index] - self._times[before]
        self._emit(index, snap, changed, companions)
        self._meter.mark(asyncio.get_running_loop().time(), self._played_ns / 1e9)

    def _announce_gap(self, index: int) -> None:
        gap = (self._times[index] - self._times[index - 1]) / 1e9
        to = from_ns(self._times[index]).astimezone(ET).strftime("%a %d %b %H:%M:%S ET")
        notice = f"Replay jumped a {_duration(gap)} gap to {to} (skip gaps is on)"
        log.info(notice)
        self._set_status(self._status.state, self._status.message, notice=notice)

    def _emit(self, index: int, snap: ChainSnapshot, changed: np.ndarray | None,
              companions: Sequence[_Companion] = ()) -> None:
        self._position, self._prev = index, snap
        self._prev_companions = {name: (cid, other) for name, cid, other, _ in companions}
        extra = []
        for name, _, other, rows in companions:
            seq = self._companion_seq.get(name, 0)
            self._companion_seq[name] = seq + 1
            extra.append(_batch(other, rows, seq))
        batch = _batch(snap, changed, self._seq, tuple(extra))
        self._seq += 1
        self._subs.emit_batch(batch)

    def _running_message(self) -> str:
        return f"{self._position + 1}/{self.length} at {speed_label(self._speed, None)}"


#: (underlying, snapshot id, snapshot, changed rows or None for a layout change)
_Companion = tuple[str, int, ChainSnapshot, "np.ndarray | None"]
#: what a load yields: primary snapshot, its changed rows, its companions, the companions left out (reasons)
_Loaded = tuple[ChainSnapshot, "np.ndarray | None", list[_Companion], list[str]]


def _batch(snap: ChainSnapshot, changed: np.ndarray | None, sequence: int,
           companions: tuple[QuoteBatch, ...] = ()) -> QuoteBatch:
    """A batch of ``snap``; ``changed`` None = a layout change (every row changed)."""
    layout_changed = changed is None
    if layout_changed:
        changed = np.arange(len(snap), dtype=np.int64)
    return QuoteBatch(snapshot=snap, changed=changed.astype(np.int64, copy=False), layout_changed=layout_changed,
                      sequence=sequence, companions=companions)


def _duration(seconds: float) -> str:
    """``17h 30m``, ``2d 17h``, ``45m``, ``50s``: a gap for people."""
    s = int(round(seconds))
    d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
    if d:
        return f"{d}d {h}h"
    if h:
        return f"{h}h {m:02d}m"
    return f"{m}m" if m else f"{s}s"


def _check_speed(speed: float) -> None:
    if not (speed >= 0 and speed < float("inf")):
        raise ReplayError(f"replay speed {speed!r} must be >= 0 (0 = as fast as possible)")
