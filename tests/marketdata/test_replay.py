"""ReplaySource against a real SQLite store filled with simulated snapshots."""

from __future__ import annotations

import asyncio
import selectors
import sqlite3
import time
from datetime import datetime, timedelta

import numpy as np
import pytest

from spx_core.domain.calendar import ET
from spx_core.marketdata.replay import ReplayError, ReplaySource, changed_rows
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.marketdata.source import MarketDataSource, Seekable, SourceKind, SourceState, SpeedControl
from spx_core.storage import Store

START = datetime(2025, 3, 12, 10, 0, tzinfo=ET)
N_SAME = 8  # snapshots 1 s apart with one layout, then one with another layout


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A store with session "s1": 8 same-layout snapshots then one from a relisted chain; plus "other"."""
    path = tmp_path_factory.mktemp("replay") / "replay.sqlite"
    market = SimulatedMarket(SimulatorConfig(seed=4, start=START))
    snaps = [market.snapshot()] + [market.advance(1.0).snapshot for _ in range(N_SAME - 1)]
    relisted = SimulatedMarket(SimulatorConfig(seed=5, start=START + timedelta(seconds=N_SAME), spot=6100.0))
    snaps.append(relisted.snapshot())
    store = Store.open(path)
    ids = [store.save_snapshot(s, source="Simulated", session="s1") for s in snaps]
    store.save_snapshot(relisted.advance(1.0).snapshot, source="Simulated", session="other")
    yield store, ids, snaps
    store.close()


def _play(source: ReplaySource, until, timeout: float = 20.0, actions=None):
    """Start ``source``, run ``actions(source, batches)`` coroutine if given, wait for ``until(batches)``."""
    batches, states = [], []

    async def main():
        source.subscribe(on_batch=batches.append, on_status=lambda s: states.append(s))
        await source.start()
        if actions is not None:
            await actions(source, batches)
        deadline = time.monotonic() + timeout
        while not until(batches, states) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        await source.stop()

    asyncio.run(main())
    return batches, states


def _finished(_batches, states):
    return any(s.state is SourceState.FINISHED for s in states)


def test_satisfies_protocol(recorded):
    store, _, _ = recorded
    src = ReplaySource(store, session="s1")
    assert isinstance(src, MarketDataSource) and src.name == "Replay" and src.kind is SourceKind.REPLAY
    assert isinstance(src, Seekable) and isinstance(src, SpeedControl)


def test_plays_every_snapshot_in_order_then_finishes(recorded):
    store, ids, snaps = recorded
    src = ReplaySource(store, session="s1", speed=0)
    batches, states = _play(src, _finished)
    assert [b.snapshot.checksum for b in batches] == [s.checksum for s in snaps]
    assert [b.sequence for b in batches] == list(range(len(snaps)))
    assert src.position == len(snaps) - 1 and src.length == len(snaps)
    assert [s.state for s in states][:2] == [SourceState.STARTING, SourceState.RUNNING]
    assert SourceState.FINISHED in [s.state for s in states]
    assert states[-1].state is SourceState.STOPPED


def test_changed_rows_come_from_the_previous_snapshot_or_mark_a_layout_change(recorded):
    store, _, snaps = recorded
    batches, _ = _play(ReplaySource(store, session="s1", speed=0), _finished)
    assert batches[0].layout_changed and len(batches[0].changed) == len(snaps[0])
    for prev, cur, batch in zip(snaps[:N_SAME - 1], snaps[1:N_SAME], batches[1:N_SAME]):
        assert not batch.layout_changed
        a, b = prev.to_frame(), cur.to_frame()
        market = ["bid", "ask", "last", "bid_size", "ask_size", "volume", "open_interest", "quote_time", "flags"]
        differs = ~((a[market] == b[market]) | (a[market].isna() & b[market].isna())).all(axis=1)
        assert np.array_equal(batch.changed, np.flatnonzero(differs.to_numpy()))
        assert 0 < len(batch.changed) < len(cur)
    assert batches[N_SAME].layout_changed  # the relisted chain
    assert len(batches[N_SAME].changed) == len(snaps[N_SAME])


def test_changed_rows_helper_on_identical_and_different_layouts(recorded):
    _, _, snaps = recorded
    assert len(changed_rows(snaps[0], snaps[0])) == 0
    assert changed_rows(snaps[0], snaps[N_SAME]) is None
    assert changed_rows(None, snaps[0]) is None


def test_speed_follows_timestamps(recorded):
    store, _, snaps = recorded
    # 1 s apart at 20x: ~50 ms each, so all 9 snapshots cannot arrive in less than ~0.35 s of wall time
    t0 = time.monotonic()
    batches, _ = _play(ReplaySource(store, session="s1", speed=20), _finished)
    assert len(batches) == len(snaps)
    assert time.monotonic() - t0 >= 0.35


def test_pause_stops_and_resume_continues(recorded):
    store, _, snaps = recorded

    async def actions(src, batches):
        while not batches:
            await asyncio.sleep(0.005)
        src.pause()
        n = len(batches)
        await asyncio.sleep(0.3)  # at 100x the whole replay would take ~0.08 s
        assert len(batches) == n
        assert src.status.state is SourceState.PAUSED
        src.resume()

    batches, _ = _play(ReplaySource(store, session="s1", speed=100), _finished, actions=actions)
    assert len(batches) == len(snaps)


def test_seek_by_index_and_datetime(recorded):
    store, _, snaps = recorded

    async def actions(src, batches):
        while not batches:
            await asyncio.sleep(0.005)
        src.pause()
        src.seek(5)
        while batches[-1].snapshot.checksum != snaps[5].checksum:
            await asyncio.sleep(0.005)
        assert batches[-1].layout_changed and src.position == 5
        src.seek(snaps[2].time + timedelta(milliseconds=500))  # last snapshot at or before: index 2
        while batches[-1].snapshot.checksum != snaps[2].checksum:
            await asyncio.sleep(0.005)
        assert src.position == 2
        src.set_speed(0)
        src.resume()

    batches, _ = _play(ReplaySource(store, session="s1", speed=1), _finished, actions=actions)
    checks = [b.snapshot.checksum for b in batches]
    after_seek = len(checks) - 1 - checks[::-1].index(snaps[2].checksum)
    assert checks[after_seek + 1:] == [s.checksum for s in snaps[3:]]  # play continued from the seek target
    assert not batches[after_seek + 1].layout_changed  # diffed against the seeked snapshot


def test_replay_of_chosen_ids_only(recorded):
    store, ids, snaps = recorded
    src = ReplaySource(store, snapshot_ids=[ids[3], ids[1]], speed=0)
    batches, _ = _play(src, _finished)
    assert [b.snapshot.checksum for b in batches] == [snaps[1].checksum, snaps[3].checksum]  # time order
    assert not batches[1].layout_changed


@pytest.mark.parametrize("kwargs", [{}, {"session": "s1", "snapshot_ids": [1]}])
def test_needs_exactly_one_of_session_or_ids(recorded, kwargs):
    with pytest.raises(ReplayError, match="exactly one"):
        ReplaySource(recorded[0], **kwargs)


def test_bad_speed_and_seek_are_rejected(recorded):
    store, _, _ = recorded
    with pytest.raises(ReplayError, match="speed"):
        ReplaySource(store, session="s1", speed=-1)
    src = ReplaySource(store, session="s1")
    with pytest.raises(ReplayError, match="start"):
        src.seek(0)

    async def main():
        await src.start()
        try:
            with pytest.raises(ReplayError, match="outside"):
                src.seek(99)
        finally:
            await src.stop()

    asyncio.run(main())


def test_unknown_ids_fail_the_start_with_a_clear_error(recorded):
    src = ReplaySource(recorded[0], snapshot_ids=[10_000])

    async def main():
        with pytest.raises(ReplayError, match="10000"):
            await src.start()

    asyncio.run(main())
    assert src.status.state is SourceState.ERROR


def test_a_corrupt_snapshot_is_reported_and_skipped_and_play_continues(tmp_path, caplog):
    path = tmp_path / "bad.sqlite"
    market = SimulatedMarket(SimulatorConfig(seed=8, start=START))
    snaps = [market.snapshot()] + [market.advance(1.0).snapshot for _ in range(3)]
    with Store.open(path) as store:
        ids = [store.save_snapshot(s, source="Simulated", session="bad") for s in snaps]
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE snapshots SET checksum = ? WHERE id = ?", ("0" * 64, ids[1]))
        conn.execute("UPDATE snapshots SET payload = ? WHERE id = ?", (b"junk", ids[2]))
    with Store.open(path) as store:
        batches, states = _play(ReplaySource(store, session="bad", speed=0), _finished)
    assert [b.snapshot.checksum for b in batches] == [snaps[0].checksum, snaps[3].checksum]
    assert not any(s.state is SourceState.ERROR for s in states)
    notices = [s.notice for s in states if s.notice]
    assert len(notices) == 2
    assert f"snapshot {ids[1]}: checksum mismatch" in notices[0]
    assert f"snapshot {ids[2]}: payload is unreadable" in notices[1]
    assert f"snapshot {ids[1]}" in caplog.text  # logged too


class _VirtualSelector(selectors.DefaultSelector):
    """Idle sleeps advance a virtual clock instead of taking wall time, so pacing over minutes of
    market time is checked in milliseconds. While a worker thread (a snapshot load) is busy the
    clock stands still and the wait is real, so loads take no virtual time."""

    def __init__(self, clock: list[float], busy: list[int]) -> None:
        super().__init__()
        self._clock, self._busy = clock, busy

    def select(self, timeout=None):
        if self._busy[0]:
            return super().select(0.05 if timeout is None else min(timeout, 0.05))
        events = super().select(0 if timeout is not None else None)
        if not events and timeout:
            self._clock[0] += timeout
        return events


def _run_virtual(coro_fn):
    """Run ``coro_fn()`` on a loop whose ``time()`` is virtual (see :class:`_VirtualSelector`)."""
    clock, busy = [0.0], [0]

    class Loop(asyncio.SelectorEventLoop):
        def time(self):
            return clock[0]

        def run_in_executor(self, executor, func, *args):
            busy[0] += 1
            fut = super().run_in_executor(executor, func, *args)
            fut.add_done_callback(lambda _f: busy.__setitem__(0, busy[0] - 1))
            return fut

    with asyncio.Runner(loop_factory=lambda: Loop(_VirtualSelector(clock, busy))) as runner:
        return runner.run(coro_fn())


@pytest.fixture(scope="module")
def minute_session(tmp_path_factory):
    """Session "minutes": 10:00, 10:01, 10:02 on one day, then 09:31 the next day (a 23 h 29 min gap)."""
    path = tmp_path_factory.mktemp("minutes") / "minutes.sqlite"
    market = SimulatedMarket(SimulatorConfig(seed=6, start=START))
    snaps = [market.snapshot(), market.advance(60.0).snapshot, market.advance(60.0).snapshot]
    nxt = SimulatedMarket(SimulatorConfig(seed=6, start=START.replace(hour=9, minute=31) + timedelta(days=1)))
    snaps.append(nxt.snapshot())
    store = Store.open(path)
    for snap in snaps:
        store.save_snapshot(snap, source="Simulated", session="minutes")
    yield store
    store.close()


def _emit_times(store, **kwargs) -> tuple[list[float], list[str]]:
    """Virtual loop time at which each snapshot was emitted, and the notices."""
    async def main():
        loop = asyncio.get_running_loop()
        src = ReplaySource(store, session="minutes", **kwargs)
        at, notices = [], []
        src.subscribe(on_batch=lambda _b: at.append(loop.time()),
                      on_status=lambda s: s.notice and notices.append(s.notice))
        await src.start()
        while src.status.state is not SourceState.FINISHED and loop.time() < 200_000:
            await asyncio.sleep(1.0)
        await src.stop()
        return at, notices

    return _run_virtual(main)


def test_one_x_keeps_real_time_between_minute_snapshots(minute_session):
    at, notices = _emit_times(minute_session, speed=1.0)
    gaps = [b - a for a, b in zip(at, at[1:])]
    assert gaps[0] == pytest.approx(60.0, abs=0.5) and gaps[1] == pytest.approx(60.0, abs=0.5)
    assert gaps[2] == pytest.approx(23 * 3600 + 29 * 60, abs=1.0)  # 10:02 -> 09:31: never compressed
    assert notices == []


def test_skip_gaps_jumps_the_overnight_gap_and_says_so(minute_session):
    at, notices = _emit_times(minute_session, speed=10.0, skip_gaps=True)
    gaps = [b - a for a, b in zip(at, at[1:])]
    assert gaps[0] == pytest.approx(6.0, abs=0.1) and gaps[1] == pytest.approx(6.0, abs=0.1)
    assert gaps[2] < 1.0
    assert len(notices) == 1 and "23h 29m gap" in notices[0] and "09:31:00 ET" in notices[0]


@pytest.fixture(scope="module")
def long_session(tmp_path_factory):
    """Session "long": 61 snapshots one second apart."""
    path = tmp_path_factory.mktemp("long") / "long.sqlite"
    market = SimulatedMarket(SimulatorConfig(seed=9, start=START))
    store = Store.open(path)
    store.save_snapshots([market.snapshot()] + [market.advance(1.0).snapshot for _ in range(60)],
                         source="Simulated", session="long")
    yield store
    store.close()


def test_stated_speed_holds_when_each_batch_costs_the_consumer_time(long_session):
    # 100 ms of GUI work per batch at 20x (a snapshot due every 50 ms): overdue snapshots are passed
    # over, so market time still advances at 20x; waiting for each one played about 7x
    async def main():
        loop = asyncio.get_running_loop()
        src = ReplaySource(long_session, session="long", speed=20.0)
        seen = []

        def slow(batch):
            seen.append((loop.time(), batch.snapshot.time_ns))
            time.sleep(0.1)

        src.subscribe(on_batch=slow)
        await src.start()
        await asyncio.sleep(2.0)
        achieved = src.achieved_speed
        await src.stop()
        return seen, achieved

    seen, achieved = asyncio.run(main())
    (w0, m0), (w1, m1) = seen[1], seen[-1]
    rate = (m1 - m0) / 1e9 / (w1 - w0)
    assert rate == pytest.approx(20.0, rel=0.15)
    assert achieved == pytest.approx(20.0, rel=0.15)
    assert all(b[1] > a[1] for a, b in zip(seen, seen[1:]))  # in order, never backwards
