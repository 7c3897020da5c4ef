"""The backtest's simulated market: stored snapshots revealed in time order, and nothing later.

    feed = StoredFeed(store, start_ns, end_ns)        # metadata only: no quote is decoded yet
    for now in feed.times():                          # each distinct stored snapshot instant, ascending
        fresh = feed.advance(now)                     # the metadata of the snapshots revealed (stamped <= now)
        feed.now_ns(); feed.snapshot("SPX")           # the MarketView the live components read

A snapshot is decoded only when a component asks for its underlying (:meth:`StoredFeed.snapshot`), and only the
latest revealed one per underlying: a step where nothing is held, due or working decodes nothing.

No look-ahead by construction: :meth:`StoredFeed.advance` never reveals a snapshot stamped after the clock, and
the view only ever holds the latest revealed snapshot per underlying. Between snapshot instants the clock may be
moved forward (:meth:`StoredFeed.set_clock`, a settlement instant) without revealing anything new.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from spx_core.domain.snapshot import ChainSnapshot
from spx_core.storage.records import SnapshotInfo

__all__ = ["StoredFeed"]


class StoredFeed:
    """A :class:`~spx_core.execution.broker.MarketView` over the store's snapshots in ``[start_ns, end_ns]`` (or of
    one ``session``), advanced by the backtest's clock.

    Attributes:
        read: ``(snapshot id, checksum)`` of every snapshot decoded so far, in reading order (the run's inputs).
    """

    def __init__(self, store: Any, start_ns: int | None = None, end_ns: int | None = None, *,
                 session: str | None = None) -> None:
        self._store = store
        infos = store.list_snapshots(session=session, start=start_ns, end=end_ns)
        self._infos: list[SnapshotInfo] = list(infos)
        self._times = [_ns(i) for i in self._infos]
        self._next = 0  # index of the first snapshot not yet revealed
        self._now = 0
        self._latest: dict[str, ChainSnapshot] = {}
        self._pending: dict[str, SnapshotInfo] = {}  # revealed, not decoded yet (nobody asked)
        self.read: list[tuple[int, str]] = []

    # --- schedule --------------------------------------------------------------------------------------------
    def times(self) -> Iterator[int]:
        """Each distinct snapshot instant, ascending (the steps of the run)."""
        last = None
        for t in self._times:
            if t != last:
                last = t
                yield t

    @property
    def n_steps(self) -> int:
        return len(set(self._times))

    @property
    def bounds(self) -> tuple[int, int] | None:
        """(first, last) snapshot instant, or None when the range holds no snapshot."""
        return (self._times[0], self._times[-1]) if self._times else None

    # --- the clock -------------------------------------------------------------------------------------------
    def advance(self, now_ns: int) -> list[SnapshotInfo]:
        """Move the clock to ``now_ns`` and reveal the snapshots stamped at or before it not yet seen; returns
        their metadata (the underlying price is there: no decoding). Only the latest per underlying will be
        decoded, on demand."""
        if now_ns < self._now:
            raise ValueError(f"the backtest clock cannot go back ({now_ns} < {self._now})")
        self._now = int(now_ns)
        fresh = []
        while self._next < len(self._infos) and self._times[self._next] <= now_ns:
            info = self._infos[self._next]
            self._pending[info.underlying] = info  # ordered by time then id: the last one wins
            fresh.append(info)
            self._next += 1
        return fresh

    def set_clock(self, now_ns: int) -> None:
        """Move the clock without revealing data (a settlement instant between snapshots)."""
        if now_ns < self._now:
            raise ValueError(f"the backtest clock cannot go back ({now_ns} < {self._now})")
        self._now = int(now_ns)

    # --- MarketView ------------------------------------------------------------------------------------------
    def now_ns(self) -> int:
        return self._now

    def snapshot(self, underlying: str) -> ChainSnapshot | None:
        info = self._pending.pop(underlying, None)
        if info is not None:  # revealed (stamped <= now) and asked for: decode it now
            self._latest[underlying] = self._store.load_snapshot(info.id)
            self.read.append((info.id, info.checksum))
        return self._latest.get(underlying)

    @property
    def snapshots(self) -> dict[str, ChainSnapshot]:
        """Every underlying's latest revealed snapshot (decoding them)."""
        for underlying in list(self._pending):
            self.snapshot(underlying)
        return dict(self._latest)


def _ns(info: SnapshotInfo) -> int:
    from spx_core.domain.calendar import to_ns

    return int(to_ns(info.time))
