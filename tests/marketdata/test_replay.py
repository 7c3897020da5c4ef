"""ReplaySource against a real SQLite store filled with simulated snapshots."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import datetime, timedelta

import numpy as np
import pytest

from spx_core.domain.calendar import ET
from spx_core.marketdata.replay import ReplayError, ReplaySource, changed_rows
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.marketdata.source import MarketDataSource, SourceState
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
    assert isinstance(src, MarketDataSource) and src.name == "Replay"


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


def test_corrupt_snapshot_reports_an_error_naming_it(tmp_path):
    path = tmp_path / "bad.sqlite"
    market = SimulatedMarket(SimulatorConfig(seed=8, start=START))
    with Store.open(path) as store:
        store.save_snapshot(market.snapshot(), source="Simulated", session="bad")
        bad_id = store.save_snapshot(market.advance(1.0).snapshot, source="Simulated", session="bad")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE snapshots SET checksum = ? WHERE id = ?", ("0" * 64, bad_id))
    with Store.open(path) as store:
        batches, states = _play(ReplaySource(store, session="bad", speed=0),
                                lambda b, s: any(x.state is SourceState.ERROR for x in s))
    assert len(batches) == 1
    error = next(s for s in states if s.state is SourceState.ERROR)
    assert str(bad_id) in error.message
