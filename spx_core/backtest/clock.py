"""The backtest's simulated market: stored snapshots revealed in time order, and nothing later.

    feed = StoredFeed(store, start_ns, end_ns)        # metadata only: no quote is decoded yet
    for now in feed.times():                          # each distinct stored snapshot instant, ascending
        fresh = feed.advance(now)                     # decodes only the snapshots stamped <= now not yet seen
        feed.now_ns(); feed.snapshot("SPX")           # the MarketView the live components read

No look-ahead by construction: :meth:`StoredFeed.advance` never decodes a snapshot stamped after the clock, and
the view only ever holds the latest decoded snapshot per underlying. Between snapshot instants the clock may be
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
        read: ``(snapshot id, checksum)`` of every snapshot decoded so far, in reading order.
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
    def advance(self, now_ns: int) -> list[ChainSnapshot]:
        """Move the clock to ``now_ns`` and decode the snapshots stamped at or before it not yet seen (only the
        latest per underlying is decoded: an older one of the same underlying would be replaced at once)."""
        if now_ns < self._now:
            raise ValueError(f"the backtest clock cannot go back ({now_ns} < {self._now})")
        self._now = int(now_ns)
        due: dict[str, SnapshotInfo] = {}
        while self._next < len(self._infos) and self._times[self._next] <= now_ns:
            info = self._infos[self._next]
            due[info.underlying] = info  # ordered by time then id: the last one wins
            self._next += 1
        fresh = []
        for info in due.values():
            snap = self._store.load_snapshot(info.id)
            self._latest[snap.underlying] = snap
            self.read.append((info.id, info.checksum))
            fresh.append(snap)
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
        return self._latest.get(underlying)

    @property
    def snapshots(self) -> dict[str, ChainSnapshot]:
        return dict(self._latest)


class FixedView:
    """A MarketView of given snapshots at a given instant (the monitor's view with adjusted marks)."""

    def __init__(self, now_ns: int, snapshots: dict[str, ChainSnapshot]) -> None:
        self._now = now_ns
        self._snapshots = snapshots

    def now_ns(self) -> int:
        return self._now

    def snapshot(self, underlying: str) -> ChainSnapshot | None:
        return self._snapshots.get(underlying)

    @property
    def snapshots(self) -> dict[str, ChainSnapshot]:
        return dict(self._snapshots)


def _ns(info: SnapshotInfo) -> int:
    from spx_core.domain.calendar import to_ns

    return int(to_ns(info.time))
