"""SimulatorSource on a real asyncio loop: batches arrive, pause stops them, speed changes spacing, stop is clean."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from spx_core.domain.calendar import ET
from spx_core.marketdata.simulator import SimulatorConfig, SimulatorConfigError, SimulatorSource
from spx_core.marketdata.source import MarketDataSource, SourceState

START = datetime(2025, 3, 12, 10, 0, tzinfo=ET)


def _source(speed: float = 100.0) -> SimulatorSource:
    # 1 simulated second per tick at 100x = one batch every 10 ms of wall time
    return SimulatorSource(SimulatorConfig(seed=3, start=START, speed=speed, tick_seconds=1.0))


async def _collect_for(source: SimulatorSource, seconds: float) -> list:
    got = []
    unsubscribe = source.subscribe(on_batch=got.append)
    await asyncio.sleep(seconds)
    unsubscribe()
    return got


def test_satisfies_protocol():
    assert isinstance(_source(), MarketDataSource)
    assert _source().name == "Simulated"


def test_batches_arrive_in_sequence_with_a_full_first_batch():
    async def main():
        src = _source()
        batches, states = [], []
        src.subscribe(on_batch=batches.append, on_status=lambda s: states.append(s.state))
        await src.start()
        await src.start()  # idempotent: no second loop, no second first batch
        for _ in range(300):
            if len(batches) >= 6:
                break
            await asyncio.sleep(0.01)
        await src.stop()
        return src, batches, states

    src, batches, states = asyncio.run(main())
    assert len(batches) >= 6
    assert batches[0].layout_changed and len(batches[0].changed) == len(batches[0].snapshot)
    assert sum(b.layout_changed for b in batches) == 1
    assert [b.sequence for b in batches] == list(range(len(batches)))
    times = [b.snapshot.time_ns for b in batches]
    assert all(b - a == 1_000_000_000 for a, b in zip(times[1:], times[2:]))  # one simulated second per tick
    assert states[:2] == [SourceState.STARTING, SourceState.RUNNING]
    assert states[-1] is SourceState.STOPPED
    assert src.latest is batches[-1].snapshot


def test_pause_stops_batches_and_resume_restarts_them():
    async def main():
        src = _source()
        await src.start()
        await asyncio.sleep(0.1)
        src.pause()
        await asyncio.sleep(0.05)  # let an in-flight tick land
        during_pause = await _collect_for(src, 0.25)
        paused_state = src.status.state
        src.resume()
        after = await _collect_for(src, 0.25)
        await src.stop()
        return during_pause, paused_state, after

    during_pause, paused_state, after = asyncio.run(main())
    assert during_pause == []
    assert paused_state is SourceState.PAUSED
    assert len(after) >= 3


def test_speed_changes_the_spacing_of_batches():
    async def main():
        src = _source(speed=10.0)  # one tick per 100 ms
        await src.start()
        slow = await _collect_for(src, 0.45)
        src.set_speed(200.0)  # one tick per 5 ms (bounded by the tick's own cost)
        fast = await _collect_for(src, 0.45)
        await src.stop()
        return slow, fast

    slow, fast = asyncio.run(main())
    assert 2 <= len(slow) <= 6
    assert len(fast) >= 3 * len(slow)


def test_stop_is_clean_and_idempotent_and_start_continues_the_clock():
    async def main():
        src = _source()
        await src.stop()  # stopping a never-started source is fine
        await src.start()
        await asyncio.sleep(0.05)
        await src.stop()
        await src.stop()
        t_stop = src.latest.time_ns
        quiet = await _collect_for(src, 0.1)
        await src.start()
        await asyncio.sleep(0.05)
        await src.stop()
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return quiet, t_stop, src.latest.time_ns, pending, src.status.state

    quiet, t_stop, t_end, pending, state = asyncio.run(main())
    assert quiet == []
    assert t_end > t_stop
    assert pending == []
    assert state is SourceState.STOPPED


def test_set_speed_rejects_non_positive():
    with pytest.raises(SimulatorConfigError, match="speed"):
        _source().set_speed(0)


def test_a_failing_subscriber_does_not_stop_the_source(caplog):
    async def main():
        src = _source()
        good = []

        def bad(_batch):
            raise RuntimeError("consumer bug")

        src.subscribe(on_batch=bad)
        src.subscribe(on_batch=good.append)
        await src.start()
        await asyncio.sleep(0.1)
        await src.stop()
        return good

    assert len(asyncio.run(main())) >= 3
    assert "consumer bug" in caplog.text


def test_the_source_plays_exactly_the_models_deterministic_path():
    from spx_core.marketdata.simulator import SimulatedMarket

    async def main():
        src = _source(speed=200.0)
        got = []
        src.subscribe(on_batch=got.append)
        await src.start()
        for _ in range(400):
            if len(got) >= 5:
                break
            await asyncio.sleep(0.01)
        await src.stop()
        return [b.snapshot.checksum for b in got[:5]]

    played = asyncio.run(main())
    market = SimulatedMarket(SimulatorConfig(seed=3, start=START))
    expected = [market.advance(0.0).snapshot.checksum] + [market.advance(1.0).snapshot.checksum for _ in range(4)]
    assert played == expected
