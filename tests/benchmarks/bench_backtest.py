"""Backtest benchmark (issue 11 §6): a credit-vertical strategy over stored simulated chains, against a plain
pandas loop over the same snapshots in the same process.

Data (recorded once into a temporary store by :func:`~spx_core.marketdata.simulator.recorder.record_history`, seed
7, full simulated SPXW/SPX chains of ~16k quotes with their SPY companions):

* ``1m``: one trading day of one-minute chains (2024-01-02, 391 SPX snapshots, 09:30-16:00 ET). Strategy: the
  "credit verticals 3/5/7 DTE, 0.20 delta" preset (0.20-delta short put, 25 wide, entries from 10:00, 50% take
  profit, 100% stop loss, the "credit verticals" limit profile; paper fills at the mid, as the example TOML
  config), so a position is held and marked every minute.
  Target: at least one trading day per second (<= 1 s per day).
* ``eod``: two months of end-of-day chains (42 trading days from 2024-01-02: the 15:45 ET chain and the 16:00
  settlement print, ~86 SPX snapshots); the same preset entering at 15:45. Target: well under a second
  (<= 0.5 s) once started (one warm-up run first: imports, numba kernels).

Reference (same process, same snapshots): decode each snapshot (``Store.load_snapshot``) into a pandas frame; at
the entry snapshot pick the put nearest 0.20 delta on the 7 DTE expiry (forward from put-call parity, Black-76
implied vols by vectorized bisection) and the put 25 points below; mark the vertical at its mid on every
snapshot. It is the floor any backtest over these chains pays (decoding) plus the least strategy work.

When a target is missed, the top costs of the engine run (cProfile, cumulative) are printed on stderr.
"""

from __future__ import annotations

import cProfile
import dataclasses
import io
import math
import pstats
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from tests.benchmarks.report import Report, best_of

GROUP = "backtest"
START = (2024, 1, 2)
EOD_DAYS = 42
REF_DAY = "pandas loop, 1 day of 1-min chains"
REF_EOD = "pandas loop, 2 months of eod chains"


def _record(store, session: str, days: int, interval: str) -> None:
    from spx_core.domain.calendar import ET
    from spx_core.marketdata.simulator import SimulatorConfig
    from spx_core.marketdata.simulator.recorder import record_history

    record_history(store, SimulatorConfig(seed=7, start=datetime(*START, tzinfo=ET)), session, days=days,
                   interval=interval)


# --- the reference -------------------------------------------------------------------------------------------
def _put_deltas(puts: pd.DataFrame, calls: pd.DataFrame, t: float) -> pd.Series:
    """Black-76 deltas of ``puts`` (one expiry; strike-indexed, with a ``mid``): forward by put-call parity near
    the money, implied vols by 60 bisection steps on all strikes at once."""
    both = puts.index.intersection(calls.index)
    parity = both + calls.loc[both, "mid"].to_numpy() - puts.loc[both, "mid"].to_numpy()
    forward = float(np.median(parity[np.argsort(np.abs(calls.loc[both, "mid"].to_numpy()
                                                         - puts.loc[both, "mid"].to_numpy()))[:6]]))
    k, price = puts.index.to_numpy(dtype=float), puts["mid"].to_numpy()
    lo, hi = np.full(k.size, 1e-4), np.full(k.size, 5.0)
    sq = math.sqrt(t)
    for _ in range(60):
        vol = 0.5 * (lo + hi)
        d1 = np.log(forward / k) / (vol * sq) + 0.5 * vol * sq
        model = k * norm.cdf(-(d1 - vol * sq)) - forward * norm.cdf(-d1)
        high = model > price
        hi, lo = np.where(high, vol, hi), np.where(high, lo, vol)
    d1 = np.log(forward / k) / (vol * sq) + 0.5 * vol * sq
    return pd.Series(-norm.cdf(-d1), index=puts.index)


def _pick(frame: pd.DataFrame, now: pd.Timestamp) -> tuple[pd.Timestamp, float, float] | None:
    """(expiry, short strike, long strike) of the 0.20-delta 25-wide put vertical on the 7 DTE expiry."""
    expiry = (now.tz_convert("America/New_York").normalize().tz_localize(None) + pd.Timedelta(days=7))
    chain = frame[(frame.expiry == expiry) & (frame.bid > 0)]
    if chain.empty:
        return None
    calls = chain[chain.is_call].set_index("strike")
    puts = chain[~chain.is_call].set_index("strike")
    t = ((expiry + pd.Timedelta(hours=16)).tz_localize("America/New_York") - now).total_seconds() / 31_557_600
    deltas = _put_deltas(puts, calls, t)
    short = float((deltas + 0.20).abs().idxmin())
    return (expiry, short, short - 25.0) if short - 25.0 in puts.index else None


def pandas_loop(store, ids: list[int], entry_hhmm: str) -> list[float]:
    """The reference: decode, pick at the first snapshot at or after the entry time, mark the vertical each one."""
    marks: list[float] = []
    pick = None
    for snapshot_id in ids:
        snap = store.load_snapshot(snapshot_id)
        frame = pd.DataFrame({k: snap.columns[k] for k in ("expiry", "strike", "is_call", "bid", "ask")})
        frame["mid"] = 0.5 * (frame.bid + frame.ask)
        now = pd.Timestamp(snap.time_ns, tz="UTC")
        if pick is None or pick[0] < now.tz_convert("America/New_York").normalize().tz_localize(None):
            pick = _pick(frame, now) if now.tz_convert("America/New_York").strftime("%H:%M") >= entry_hhmm else None
        if pick is None:
            continue
        legs = frame[(frame.expiry == pick[0]) & ~frame.is_call & frame.strike.isin(pick[1:])].set_index("strike")
        if len(legs) == 2:
            marks.append(float(legs.loc[pick[1], "mid"] - legs.loc[pick[2], "mid"]))
    return marks


# --- the engine ----------------------------------------------------------------------------------------------
def _config(entry: tuple[str, ...] | None):
    from spx_core.automation.config import EntrySchedule
    from spx_core.automation.presets import PRESETS

    base = PRESETS["credit verticals 3/5/7 DTE, 0.20 delta"]
    return base if entry is None else dataclasses.replace(base, entry=EntrySchedule(times=entry))


def _engine(store, session: str, entry: tuple[str, ...] | None):
    from spx_core.backtest.engine import Backtest
    from spx_core.execution.fill_model import FillMode, FillModel

    return Backtest(store, [_config(entry)], session=session, profile="credit verticals",
                    fill=FillModel(mode=FillMode.MID))


def _top_costs(fn, n: int = 14) -> str:
    prof = cProfile.Profile()
    prof.runcall(fn)
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("cumulative").print_stats(r"spx_core", n)
    return out.getvalue()


def _timed(report: Report, name: str, bt, target: float, reference: str, unit: str, repeat: int) -> None:
    result = bt.run()  # warm-up (imports, numba kernels): the targets are after start-up
    seconds = best_of(bt.run, repeat=repeat)
    steps = result.steps[1]
    kinds = sorted({t.exit_reason for t in result.trades})
    fig = report.add(GROUP, name, seconds, unit, target=target,
                     reference=reference, note=f"{steps} steps, {len(result.trades)} trades ({', '.join(kinds)}), "
                                               f"marks {result.marks}")
    if fig.verdict == "MISS":
        print(f"\n[backtest] {name}: {fig.value:.3g} {fig.unit} misses <= {target:g}; top costs:\n"
              f"{_top_costs(bt.run)}", file=sys.stderr)


def run(report: Report) -> None:
    from spx_core.storage.store import Store

    with tempfile.TemporaryDirectory(prefix="spx_bench_bt_") as folder:
        store = Store.open(Path(folder) / "bench.sqlite")
        try:
            t0 = time.perf_counter()
            _record(store, "day", 1, "1m")
            _record(store, "eod", EOD_DAYS, "eod")
            setup = time.perf_counter() - t0
            day = [i.id for i in store.list_snapshots(session="day", underlying="SPX")]
            eod = [i.id for i in store.list_snapshots(session="eod", underlying="SPX")]
            report.add(GROUP, "recording the data (setup, not a figure)", setup, "s",
                       note=f"{len(day)} 1-min + {len(eod)} eod SPX chains ({EOD_DAYS} days) with SPY companions")

            ref = best_of(lambda: pandas_loop(store, day, "10:00"), repeat=2)
            report.add(GROUP, REF_DAY, ref, "s/day", note=f"{len(day)} snapshots decoded and marked")
            _timed(report, "engine, 1 day of 1-min chains", _engine(store, "day", None), 1.0, REF_DAY, "s/day", 2)
            per_day = report.get(GROUP, "engine, 1 day of 1-min chains").value
            report.add(GROUP, "engine, trading days per second (1-min chains)", 1.0 / per_day, "days/s",
                       note="target >= 1 (the row above: <= 1 s per day)")

            ref_eod = best_of(lambda: pandas_loop(store, eod, "15:45"), repeat=2)
            report.add(GROUP, REF_EOD, ref_eod, "s", note=f"{len(eod)} snapshots, {EOD_DAYS} trading days")
            _timed(report, "engine, 2 months of eod chains", _engine(store, "eod", ("15:45",)), 0.5, REF_EOD,
                   "s", 1)
        finally:
            store.close()
