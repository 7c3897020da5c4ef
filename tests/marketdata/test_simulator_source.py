"""SimulatorSource on a real asyncio loop: batches arrive, pause stops them, speed changes spacing, stop is clean."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest

from spx_core.domain.calendar import ET
from spx_core.marketdata.simulator import SimulatorConfig, SimulatorConfigError, SimulatorSource
from spx_core.marketdata.source import (MarketDataSource, Seekable, SourceKind, SourceState, SpeedControl,
                                        speed_label)

START = datetime(2025, 3, 12, 10, 0, tzinfo=ET)


def _source(speed: float = 100.0) -> SimulatorSource:
    # 1 simulated second per tick at 100x = one batch every 10 ms of wall time (no batch-rate floor)
    return SimulatorSource(SimulatorConfig(seed=3, start=START, speed=speed, tick_seconds=1.0), min_interval=0)


async def _collect_for(source: SimulatorSource, seconds: float) -> list:
    got = []
    unsubscribe = source.subscribe(on_batch=got.append)
    await asyncio.sleep(seconds)
    unsubscribe()
    return got


def test_satisfies_protocol():
    assert isinstance(_source(), MarketDataSource)
    assert _source().name == "Simulated" and _source().kind is SourceKind.SIM
    assert isinstance(_source(), SpeedControl) and not isinstance(_source(), Seekable)


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
    # whole simulated seconds per step (more than one when a step came back late and caught up)
    assert all(b > a and (b - a) % 1_000_000_000 == 0 for a, b in zip(times[1:], times[2:]))
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
        src.set_speed(200.0)
        fast = await _collect_for(src, 0.45)
        await src.stop()
        return slow, fast

    slow, fast = asyncio.run(main())
    assert 2 <= len(slow) <= 6
    span = [(b[-1].snapshot.time_ns - b[0].snapshot.time_ns) / 1e9 for b in (slow, fast)]
    assert span[1] >= 8 * span[0]  # 20x the speed: ~20x the simulated time per wall second


def _measure_pace(speed: float, consumer_seconds: float, **kwargs) -> tuple[float, float | None]:
    """Simulated seconds per wall second over ~3 s with a consumer that blocks the loop per batch
    (as a busy GUI thread does), and the source's own measured ``achieved_speed``."""

    async def main():
        loop = asyncio.get_running_loop()
        src = SimulatorSource(SimulatorConfig(seed=3, start=START, speed=speed), **kwargs)
        src.subscribe(on_batch=lambda _b: time.sleep(consumer_seconds))
        await src.start()
        await asyncio.sleep(0.5)  # past the first full chain
        w0, m0 = loop.time(), src.latest.time_ns
        await asyncio.sleep(3.0)
        w1, m1 = loop.time(), src.latest.time_ns
        achieved = src.achieved_speed
        await src.stop()
        return (m1 - m0) / 1e9 / (w1 - w0), achieved

    return asyncio.run(main())


def test_stated_speed_holds_when_each_batch_costs_the_consumer_time():
    # 40 ms of GUI work per batch: one-tick-per-sleep pacing ran at ~17x while saying 60x
    rate, achieved = _measure_pace(60.0, 0.04)
    assert rate == pytest.approx(60.0, rel=0.1)
    assert achieved == pytest.approx(60.0, rel=0.1)
    assert speed_label(60.0, achieved) == "60x"


def test_achieved_speed_is_measured_when_the_machine_cannot_keep_up():
    # 300 ms per batch and at most 0.1 s caught up per step: the stated 60x cannot hold
    rate, achieved = _measure_pace(60.0, 0.3, max_catch_up=0.1)
    assert rate < 0.5 * 60.0
    assert achieved == pytest.approx(rate, rel=0.15)
    assert speed_label(60.0, achieved).startswith("60x (achieved ")


def test_achieved_speed_is_none_while_paused():
    async def main():
        src = _source(speed=10.0)
        await src.start()
        await asyncio.sleep(0.8)
        running = src.achieved_speed
        src.pause()
        paused = src.achieved_speed
        await src.stop()
        return running, paused

    running, paused = asyncio.run(main())
    assert running == pytest.approx(10.0, rel=0.25)
    assert paused is None


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
        return got[:5]

    played = asyncio.run(main())
    steps = [(b.snapshot.time_ns - a.snapshot.time_ns) / 1e9 for a, b in zip(played, played[1:])]
    market = SimulatedMarket(SimulatorConfig(seed=3, start=START))
    expected = [market.advance(0.0).snapshot.checksum] + [market.advance(dt).snapshot.checksum for dt in steps]
    assert [b.snapshot.checksum for b in played] == expected  # the model's path for the steps taken


def test_speed_meter_measures_over_its_window_and_sparse_samples():
    from spx_core.marketdata.source import SpeedMeter

    meter = SpeedMeter(window=3.0, min_span=0.5)
    assert meter.speed() is None
    meter.mark(0.0, 0.0)
    meter.mark(0.2, 12.0)
    assert meter.speed() is None  # too short a span to say anything
    for i in range(2, 50):  # 60 market seconds per wall second, sampled every 0.2 s
        meter.mark(0.2 * i, 12.0 * i)
    assert meter.speed() == pytest.approx(60.0)
    meter.mark(9.8 + 5.0, 12.0 * 50)  # a 5 s stall with one step: measured, not assumed
    assert meter.speed() == pytest.approx(12.0 / 5.0, rel=0.01)
    meter.reset()
    meter.mark(100.0, 0.0)
    meter.mark(160.0, 60.0)  # minute data at 1x: two samples a minute apart still measure
    assert meter.speed() == pytest.approx(1.0)


@pytest.mark.parametrize(("speed", "achieved", "text"), [
    (60.0, None, "60x"), (60.0, 55.0, "60x"), (60.0, 41.2, "60x (achieved 41.2x)"), (0.0, 5.0, "max"),
    (1.0, 0.5, "1x (achieved 0.5x)")])
def test_speed_label(speed, achieved, text):
    assert speed_label(speed, achieved) == text
