"""Simulator benchmark: one tick of a full chain (target <= 20 ms) against in-process references.

References measured in the same run: pricing the same number of options with a naive per-row Python
loop (math.erf Black-76, timed on 1,000 rows and scaled), and the snapshot construction alone
(``ChainSnapshot.replace_quotes``: quality flags + SHA-256 over the columns), the floor of any tick.

Long recordings (``spx-data simulate --days``, end to end in a subprocess: interpreter start, imports, writes):
a year of end-of-day chains (target < 60 s) against the minute-stepped ``--minutes`` path timed on 30 minutes
and scaled to the same year (390 steps a day), and ten days of 5-minute chains extrapolated to two months
(42 trading days, target 180 s).
"""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from spx_core.domain.calendar import ET
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from tests.benchmarks.report import Report, best_of

GROUP = "simulator"
START = datetime(2025, 3, 12, 10, 0, tzinfo=ET)


def _naive_price(f: float, k: float, t: float, vol: float, d: float, call: bool) -> float:
    sd = vol * math.sqrt(t)
    d1 = math.log(f / k) / sd + 0.5 * sd
    d2 = d1 - sd
    cdf = lambda x: 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))
    if call:
        return d * (f * cdf(d1) - k * cdf(d2))
    return d * (k * cdf(-d2) - f * cdf(-d1))


def _naive_chain_seconds(n_rows: int) -> float:
    rng = np.random.default_rng(0)
    rows = [(5800.0, float(k), float(t), float(v), math.exp(-0.04 * float(t)), bool(c))
            for k, t, v, c in zip(rng.uniform(4000, 7000, 1000), rng.uniform(0.01, 1.5, 1000),
                                  rng.uniform(0.1, 0.4, 1000), rng.random(1000) < 0.5)]

    def loop() -> None:
        for r in rows:
            _naive_price(*r)

    return best_of(loop, repeat=5) * n_rows / len(rows)


def _simulate_seconds(*args: object) -> float:
    """Wall time of one ``spx-data simulate`` process into a fresh database."""
    with tempfile.TemporaryDirectory(prefix="spx_bench_sim_") as folder:
        cmd = [str(Path(sys.executable).parent / "spx-data"), "simulate", "--db", str(Path(folder) / "sim.sqlite"),
               "--seed", "7", *map(str, args)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, timeout=900)
        return time.perf_counter() - t0


def _minute_path_seconds(minutes: int) -> float:
    """The ``--minutes`` recording (one step, one transaction per simulated minute), in process."""
    from spx_core.cli.simulate_command import record_session
    from spx_core.storage.store import Store

    with tempfile.TemporaryDirectory(prefix="spx_bench_sim_") as folder, Store.open(Path(folder) / "m.sqlite") as st:
        market = SimulatedMarket(SimulatorConfig(seed=7, start=START))
        t0 = time.perf_counter()
        record_session(st, market, "m", minutes, replace=False)
        return time.perf_counter() - t0


def run_long(report: Report) -> None:
    minutes = 30
    per_minute = _minute_path_seconds(minutes) / minutes
    report.add(GROUP, "--minutes path, scaled to a year of eod (252 x 390 steps)", per_minute * 252 * 390, "s",
               note=f"{per_minute * 1e3:.0f} ms per recorded minute, timed on {minutes}")
    report.add(GROUP, "simulate --days 252 --interval eod (subprocess)",
               _simulate_seconds("--days", 252, "--interval", "eod", "--start", "2024-01-02"), "s", target=60.0,
               reference="--minutes path, scaled to a year of eod (252 x 390 steps)",
               note="516 SPX chains + SPY companions, daily SPX/VIX bars")
    ten = _simulate_seconds("--days", 10, "--interval", "5m", "--start", "2024-03-04")
    report.add(GROUP, "simulate --days 10 --interval 5m (subprocess)", ten, "s", note="790 SPX chains + SPY")
    report.add(GROUP, "5m, two months (42 days), extrapolated", ten * 4.2, "s", target=180.0,
               reference="--minutes path, scaled to a year of eod (252 x 390 steps)")


def run(report: Report) -> None:
    _run_ticks(report)
    run_long(report)


def _run_ticks(report: Report) -> None:
    t0 = time.perf_counter()
    market = SimulatedMarket(SimulatorConfig(seed=7, start=START))
    listing = time.perf_counter() - t0
    n = len(market.snapshot())
    for _ in range(20):  # warm up (numba kernels, caches)
        market.advance(1.0)
    report.add(GROUP, "naive Python loop pricing, full chain", _naive_chain_seconds(n) * 1e3, "ms",
               note=f"{n} quotes, scaled from 1,000")
    snap = market.snapshot()
    replace = best_of(lambda: snap.replace_quotes(time=snap.time_ns + 1, underlying_price=snap.underlying_price,
                                                  bid=snap.bid, ask=snap.ask), repeat=20)
    report.add(GROUP, "snapshot build (flags + sha256)", replace * 1e3, "ms", note=f"{n} quotes")
    ticks, changed = [], []
    for _ in range(300):
        t = time.perf_counter()
        batch = market.advance(1.0)
        ticks.append(time.perf_counter() - t)
        changed.append(len(batch.changed))
    report.add(GROUP, "tick, full chain (median)", statistics.median(ticks) * 1e3, "ms", target=20.0,
               reference="naive Python loop pricing, full chain",
               note=f"{n} quotes, median {int(statistics.median(changed))} changed rows per 1 s tick")
    report.add(GROUP, "tick, full chain (p95)", float(np.percentile(ticks, 95)) * 1e3, "ms", target=20.0,
               reference="snapshot build (flags + sha256)")
    report.add(GROUP, "listing a new chain (construction)", listing * 1e3, "ms",
               note="first run includes loading the exchange calendar")
    t = time.perf_counter()
    market.advance(6.5 * 3600)  # to the close (0DTE roll-off), then to the next open (relisting)
    market.advance(1.0)
    report.add(GROUP, "close + next-open relisting (2 ticks)", (time.perf_counter() - t) * 1e3, "ms")
