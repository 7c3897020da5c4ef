"""The sweep pool: tasks in spawned worker processes, results as they finish, a failing task is its own error,
cancel stops submitting; the worker count and a Dask scheduler that cannot be reached are one clear error."""

from __future__ import annotations

import os
import time

import pytest

from spx_core.backtest import pool as pool_module
from spx_core.backtest.pool import Done, Pool, PoolError, one_line


def square_or_fail(x: int) -> tuple[int, int]:
    """Runs in a worker process: returns its pid so the test sees the work left the parent."""
    if x < 0:
        raise ValueError(f"negative input {x}\nsecond line never shown")
    time.sleep(0.01 * x)
    return x * x, os.getpid()


@pytest.fixture(scope="module")
def pool():
    with Pool(workers=2) as p:
        yield p


def test_results_come_back_from_worker_processes_with_progress(pool):
    calls = []
    done = list(pool.map_unordered(square_or_fail, [3, 0, 1, 2], progress=lambda d, t: calls.append((d, t))))
    assert sorted(d.index for d in done) == [0, 1, 2, 3]
    assert {d.index: d.value[0] for d in done} == {0: 9, 1: 0, 2: 1, 3: 4}
    assert all(d.error is None for d in done)
    assert os.getpid() not in {d.value[1] for d in done}  # the work ran in other processes
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_a_failing_task_is_one_line_in_its_own_result(pool):
    done = sorted(pool.map_unordered(square_or_fail, [1, -2, 2]), key=lambda d: d.index)
    assert [d.error for d in done] == [None, "ValueError: negative input -2", None]
    assert done[1].value is None and done[2].value[0] == 4


def test_cancel_stops_submitting():
    with Pool(workers=1) as one:
        seen = []
        done = list(one.map_unordered(square_or_fail, [0, 0, 0, 0, 0], progress=lambda d, t: seen.append(d),
                                      cancel=lambda: bool(seen)))
    assert [d.index for d in done] == [0] and seen == [1]


def test_cancel_before_the_start_runs_nothing(pool):
    assert list(pool.map_unordered(square_or_fail, [1, 2], cancel=lambda: True)) == []


def test_worker_count():
    assert Pool(size_hint=1).workers == 1  # never more processes than tasks
    assert Pool(workers=3, size_hint=10).workers == 3
    assert Pool(size_hint=1000).workers == (os.cpu_count() or 1)
    with pytest.raises(PoolError, match="^workers 0 must be at least 1$"):
        Pool(workers=0)
    with pytest.raises(PoolError, match="not both"):
        Pool(workers=2, scheduler="tcp://127.0.0.1:8786")


def test_an_unreachable_scheduler_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(pool_module, "CONNECT_TIMEOUT_S", 0.5)
    with pytest.raises(PoolError) as info:
        Pool(scheduler="tcp://127.0.0.1:9")  # the discard port: nothing listens
    message = str(info.value)
    assert message.startswith("cannot reach the Dask scheduler at tcp://127.0.0.1:9 (")
    assert "without --scheduler" in message and "\n" not in message


def test_one_line():
    assert one_line(KeyError("no run 7")) == "KeyError: 'no run 7'"
    assert one_line(RuntimeError()) == "RuntimeError"
    assert Done(0, None, "x").error == "x"


def test_leaving_on_an_exception_stops_the_running_workers_at_once():
    """A second Ctrl-C (KeyboardInterrupt in the parent) must not wait for a long point to finish."""
    started = time.monotonic()

    def interrupt_later() -> bool:
        if time.monotonic() - started > 1.0:  # the task is running in its worker by now
            raise KeyboardInterrupt
        return False

    with pytest.raises(KeyboardInterrupt), Pool(workers=1) as one:
        list(one.map_unordered(time.sleep, [60], cancel=interrupt_later))
    assert time.monotonic() - started < 20
