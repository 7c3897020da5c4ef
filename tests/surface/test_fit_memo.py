"""FitMemo: one chain-IV solve and surface fit per snapshot, shared by concurrent callers."""

from __future__ import annotations

import threading

import pytest

from spx_core.surface.fit_memo import FitMemo, fit_chain
from tests.chains import make_chain


@pytest.fixture(scope="module")
def snapshots():
    return [make_chain(seed=s, noise=0.002)[0] for s in (1, 2, 3)]


def test_concurrent_callers_share_one_fit(snapshots):
    calls = []
    gate = threading.Event()

    def slow_fit(snapshot, previous=None):
        calls.append(previous)
        gate.wait(5)  # hold the first fit until every caller has asked
        return fit_chain(snapshot, previous)

    memo = FitMemo(fitter=slow_fit)
    results = []
    threads = [threading.Thread(target=lambda: results.append(memo.fit(snapshots[0]))) for _ in range(4)]
    for t in threads:
        t.start()
    while memo.requests < 4:
        threading.Event().wait(0.01)
    gate.set()
    for t in threads:
        t.join(10)
    assert len(calls) == 1 and memo.fits == 1
    assert len({id(r) for r in results}) == 1
    assert results[0].surface.snapshot_checksum == snapshots[0].checksum


def test_next_snapshot_is_warm_started_from_the_newest_surface(snapshots):
    seen = []
    memo = FitMemo(fitter=lambda snapshot, previous: seen.append(previous) or fit_chain(snapshot, previous))
    first = memo.fit(snapshots[0])
    memo.fit(snapshots[1])
    assert seen == [None, first.surface]
    assert memo.fit(snapshots[0]) is first and memo.fits == 2  # remembered, not refitted


def test_a_failed_fit_reaches_the_caller_and_is_retried(snapshots):
    failures = [RuntimeError("boom")]

    def flaky(snapshot, previous):
        if failures:
            raise failures.pop()
        return fit_chain(snapshot, previous)

    memo = FitMemo(fitter=flaky)
    with pytest.raises(RuntimeError, match="boom"):
        memo.fit(snapshots[0])
    assert memo.fit(snapshots[0]).surface.snapshot_checksum == snapshots[0].checksum


def test_only_the_newest_fits_are_kept(snapshots):
    memo = FitMemo(keep=1)
    memo.fit(snapshots[0])
    memo.fit(snapshots[1])
    memo.fit(snapshots[0])
    assert memo.fits == 3
    with pytest.raises(ValueError, match="at least one"):
        FitMemo(keep=0)
