"""ReplaySource over sessions holding several underlyings: SPX plays, SPY rides as the companion."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import datetime, timedelta

import numpy as np
import pytest

from spx_core.cli.simulate_command import record_session
from spx_core.domain.calendar import ET
from spx_core.marketdata.replay import ReplaySource, changed_rows, primary_underlying
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.marketdata.source import SourceState
from spx_core.storage import Store

START = datetime(2025, 3, 12, 10, 0, tzinfo=ET)


def _play(source: ReplaySource, actions=None, timeout: float = 30.0):
    batches, states = [], []

    async def main():
        source.subscribe(on_batch=batches.append, on_status=states.append)
        await source.start()
        if actions is not None:
            await actions(source, batches)
        deadline = time.monotonic() + timeout
        while not any(s.state is SourceState.FINISHED for s in states) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        await source.stop()

    asyncio.run(main())
    return batches, states


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """``record_session`` (what ``spx-data simulate`` runs) for 4 minutes; plus what the simulator emitted."""
    path = tmp_path_factory.mktemp("companions") / "sim.sqlite"
    with Store.open(path) as store:
        record_session(store, SimulatedMarket(SimulatorConfig(seed=6, start=START)), "sim", 4, replace=False)
    again = SimulatedMarket(SimulatorConfig(seed=6, start=START))
    emitted = [again.advance(60.0 if k else 0.0) for k in range(4)]
    store = Store.open(path)
    yield store, emitted
    store.close()


def test_a_simulated_session_replays_spx_with_its_spy_companions(recorded):
    store, emitted = recorded
    stored_spy = store.list_snapshots(session="sim", underlying="SPY")
    assert len(stored_spy) == 4 and len(store.list_snapshots(session="sim")) == 8
    src = ReplaySource(store, session="sim", speed=0)
    batches, _ = _play(src)
    assert src.length == 4 and [b.snapshot.underlying for b in batches] == ["SPX"] * 4
    assert [b.snapshot.checksum for b in batches] == [e.snapshot.checksum for e in emitted]
    spy = [b.for_underlying("SPY") for b in batches]
    assert [s.snapshot.time_ns for s in spy] == [b.snapshot.time_ns for b in batches]
    assert [s.snapshot.checksum for s in spy] == [i.checksum for i in stored_spy]
    assert [s.snapshot.checksum for s in spy] == [e.for_underlying("SPY").snapshot.checksum for e in emitted]
    assert [s.sequence for s in spy] == [0, 1, 2, 3]
    assert spy[0].layout_changed and not spy[1].layout_changed
    np.testing.assert_array_equal(spy[1].changed, changed_rows(spy[0].snapshot, spy[1].snapshot))
    assert len(spy[1].changed) > 0


def test_a_session_with_companions_plays_spx_exactly_as_an_spx_only_one(recorded, tmp_path):
    store, emitted = recorded
    with Store.open(tmp_path / "spx.sqlite") as only:
        for e in emitted:
            only.save_snapshot(e.snapshot, source="Simulated", session="sim")
        plain, _ = _play(ReplaySource(only, session="sim", speed=0))
    both, _ = _play(ReplaySource(store, session="sim", speed=0))
    assert all(b.companions == () for b in plain)
    assert [_key(b) for b in both] == [_key(b) for b in plain]


def _key(batch):
    return batch.snapshot.checksum, batch.layout_changed, batch.changed.tolist(), batch.sequence


def test_a_companion_is_the_latest_at_or_before_the_primary_time(tmp_path):
    market = SimulatedMarket(SimulatorConfig(seed=9, start=START))
    batches = [market.advance(1.0 if k else 0.0) for k in range(4)]
    with Store.open(tmp_path / "gaps.sqlite") as store:
        for k, b in enumerate(batches):
            store.save_snapshot(b.snapshot, source="Simulated", session="s")
            if k in (1, 2):  # SPY missing at the first step (not listed yet) and at the last (repeats)
                store.save_snapshot(b.for_underlying("SPY").snapshot, source="Simulated", session="s")
        played, _ = _play(ReplaySource(store, session="s", speed=0))
    assert [b.snapshot.checksum for b in played] == [b.snapshot.checksum for b in batches]
    spy = [b.for_underlying("SPY") for b in played]
    assert spy[0] is None
    assert [s.snapshot.checksum for s in spy[1:]] == [batches[k].for_underlying("SPY").snapshot.checksum
                                                      for k in (1, 2, 2)]
    assert spy[1].layout_changed and not spy[2].layout_changed
    assert not spy[3].layout_changed and len(spy[3].changed) == 0 and spy[3].snapshot is spy[2].snapshot


def test_seek_reads_the_companion_afresh(recorded):
    store, emitted = recorded

    async def actions(src, batches):
        while not batches:
            await asyncio.sleep(0.005)
        src.pause()
        src.seek(emitted[2].snapshot.time + timedelta(seconds=30))
        deadline = time.monotonic() + 20
        while batches[-1].snapshot.checksum != emitted[2].snapshot.checksum and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        src.set_speed(0)
        src.resume()

    batches, _ = _play(ReplaySource(store, session="sim", speed=1), actions=actions)
    k = [b.snapshot.checksum for b in batches].index(emitted[2].snapshot.checksum)
    seeked, after = batches[k].for_underlying("SPY"), batches[k + 1].for_underlying("SPY")
    assert seeked.layout_changed and seeked.snapshot.checksum == emitted[2].for_underlying("SPY").snapshot.checksum
    assert not after.layout_changed
    assert after.snapshot.checksum == emitted[3].for_underlying("SPY").snapshot.checksum


def test_a_corrupt_companion_is_left_out_and_said_and_spx_plays_on(tmp_path, caplog):
    market = SimulatedMarket(SimulatorConfig(seed=8, start=START))
    path = tmp_path / "bad.sqlite"
    with Store.open(path) as store:
        record_session(store, market, "bad", 3, replace=False)
        bad = store.list_snapshots(session="bad", underlying="SPY")[1].id
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE snapshots SET checksum = ? WHERE id = ?", ("0" * 64, bad))
    with Store.open(path) as store:
        batches, states = _play(ReplaySource(store, session="bad", speed=0))
    assert len(batches) == 3 and [b.for_underlying("SPY") is None for b in batches] == [False, True, False]
    assert batches[2].for_underlying("SPY").layout_changed  # nothing to diff against: read whole
    notices = [s.notice for s in states if s.notice]
    assert len(notices) == 1 and f"snapshot {bad}: checksum mismatch" in notices[0]
    assert not any(s.state is SourceState.ERROR for s in states)


def test_the_primary_underlying_is_spx_when_present():
    assert primary_underlying(["SPY", "SPX", "SPY"]) == "SPX"
    assert primary_underlying(["SPY", "XSP", "XSP"]) == "XSP"
    assert primary_underlying(["SPY", "XSP"]) == "SPY"
    assert primary_underlying([]) is None


def test_a_spy_only_session_plays_spy(recorded, tmp_path):
    _, emitted = recorded
    with Store.open(tmp_path / "spy.sqlite") as store:
        for e in emitted[:2]:
            store.save_snapshot(e.for_underlying("SPY").snapshot, source="Simulated", session="spy")
        batches, _ = _play(ReplaySource(store, session="spy", speed=0))
    assert [b.snapshot.underlying for b in batches] == ["SPY", "SPY"] and batches[0].companions == ()
