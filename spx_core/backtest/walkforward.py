"""Walk-forward: pick the best grid point on a training window, run it on the following test window, roll on.

    wf = walk_forward(db_path, spec, grid, train_days=20, test_days=5, metric="sharpe", workers=2)
    for w in wf.windows: w.train, w.test, w.best, w.test_run_id, w.test_metrics
    wf.equity, wf.metrics                       # the stitched out-of-sample curve and its figures

Windows are counted in the **trading days that hold stored snapshots** of the spec's range (US/Eastern dates of
the snapshots ``spec.range_ns`` covers; a day with no data is not a day): window k trains on days
``[k*test, k*test + train)`` and tests on the ``test`` days after them (step = ``test_days``, so the test windows
tile the range without overlap); only whole windows are run. Each run is the spec with the point's overrides and
``data.start`` / ``data.end`` set to the window's first and last day (a session spec's windows therefore read
every snapshot stored on those days, as a date range does).

All training runs go to the pool at once (every window, every point), then the test runs: the windows are
independent until the test phase. The best point of a window maximises ``metric`` (minimises it for
:data:`~spx_core.backtest.sweep.LOWER_IS_BETTER`); NaN never wins (a window where no point has a finite figure
gets no test run and says so in ``error``). Everything is stored under ONE sweep id: each run's ``params`` are
the overrides it ran with, window dates included, so any of them reproduces alone.

The stitched out-of-sample equity adds the test runs' dollar P&L end to end: each window's curve minus the
starting cash, on top of where the previous window ended (fixed-size trading, as the strategies size).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from spx_core.backtest.metrics import compute_metrics
from spx_core.backtest.pool import Pool
from spx_core.backtest.sweep import (
    CANCELLED,
    GridError,
    SweepRow,
    best_row,
    check_metric,
    format_grid,
    grid_points,
    run_points,
)

__all__ = ["WalkForwardError", "WalkForwardResult", "Window", "plan_windows", "trading_days", "walk_forward"]


class WalkForwardError(ValueError):
    """The walk-forward cannot run (windows, range); one line saying what is wrong and how to fix it."""


@dataclass(frozen=True)
class Window:
    """One train/test window: ET dates inclusive, every training row, the best point and its test run."""

    index: int
    train: tuple[date, date]
    test: tuple[date, date]
    train_rows: list[SweepRow]
    best: dict[str, Any] | None = None
    test_run_id: int | None = None
    test_metrics: dict[str, Any] = field(default_factory=dict)
    test_checksum: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class WalkForwardResult:
    sweep_id: int
    metric: str
    grid: dict[str, list[Any]]
    windows: list[Window]
    equity: pd.Series  # stitched out-of-sample net liquidation (dollars, UTC index); empty when no test ran
    metrics: dict[str, Any]  # compute_metrics of ``equity`` and the test trades ({} when no test ran)
    cancelled: bool = False

    def table(self) -> pd.DataFrame:
        """One row per window: its dates, best params, the test run and its ``metric``, or its error."""
        return pd.DataFrame.from_records([
            {"window": w.index, "train_start": w.train[0], "train_end": w.train[1], "test_start": w.test[0],
             "test_end": w.test[1], **{k: (w.best or {}).get(k) for k in self.grid}, "test_run_id": w.test_run_id,
             self.metric: w.test_metrics.get(self.metric), "error": w.error} for w in self.windows])


def trading_days(store: Any, spec: Any) -> list[date]:
    """The distinct US/Eastern dates of the stored snapshots the spec's range covers, in order."""
    from spx_core.domain.calendar import ET

    start, end = spec.range_ns(store)
    infos = store.list_snapshots(session=spec.data.session, start=start, end=end)
    return sorted({i.time.astimezone(ET).date() for i in infos})


def plan_windows(days: Sequence[date], train_days: int, test_days: int, *, where: str = "the range"
                 ) -> list[tuple[list[date], list[date]]]:
    """``(train days, test days)`` of every whole window (module docstring)."""
    if train_days < 1 or test_days < 1:
        raise WalkForwardError(f"walk-forward windows need at least 1 day each, got train {train_days} and "
                               f"test {test_days}; write TRAIN_DAYS:TEST_DAYS, e.g. 20:5")
    need = train_days + test_days
    if len(days) < need:
        held = f"{len(days)} ({days[0]} to {days[-1]})" if days else "none"
        raise WalkForwardError(f"walk-forward {train_days}:{test_days} needs at least {need} trading days with "
                               f"stored snapshots; {where} has {held}: shorten the windows or widen [data]")
    return [(list(days[k:k + train_days]), list(days[k + train_days:k + need]))
            for k in range(0, len(days) - need + 1, test_days)]


def _dated(params: Mapping[str, Any], days: Sequence[date]) -> dict[str, Any]:
    return {**params, "data.start": days[0].isoformat(), "data.end": days[-1].isoformat()}


def walk_forward(db_path: str | Path, spec: Any, grid: Mapping[str, Sequence[Any]], *, train_days: int,
                 test_days: int, metric: str = "sharpe", workers: int | None = None, scheduler: str | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 cancel: Callable[[], bool] | None = None) -> WalkForwardResult:
    """Run the walk-forward (module docstring); ``progress(done, total)`` counts training and test runs."""
    from spx_core.storage.backtest_repo import BacktestRepository
    from spx_core.storage.store import Store

    check_metric(metric)
    grid = {k: list(v) for k, v in grid.items()}
    if any(k.startswith("data.") for k in grid):
        raise GridError("a walk-forward grid cannot vary [data]: the windows set data.start and data.end")
    points = grid_points(grid)
    store = Store.open(str(db_path), create=False)
    try:
        plan = plan_windows(trading_days(store, spec), train_days, test_days, where=spec.data.describe())
        repo = BacktestRepository(store)
        total = len(plan) * (len(points) + 1)
        with Pool(workers=workers, scheduler=scheduler, size_hint=len(plan) * len(points)) as pool:
            sweep_id = repo.create_sweep(config_toml=spec.source_toml, grid=format_grid(grid), metric=metric)
            train = [_dated(p, tr) for tr, _ in plan for p in points]
            names = [f"{spec.name or 'walk-forward'} w{k + 1} train [{_label(p)}]"
                     for k in range(len(plan)) for p in points]
            report = None if progress is None else (lambda d, _t: progress(d, total))
            rows = run_points(repo, pool, str(db_path), spec, train, sweep_id=sweep_id, names=names,
                              progress=report, cancel=cancel)
            windows = _test_phase(repo, pool, str(db_path), spec, plan, rows, len(points), metric, sweep_id,
                                  progress=None if progress is None else (lambda d, _t: progress(len(train) + d,
                                                                                                  total)),
                                  cancel=cancel)
        equity, figures = _stitch(repo, spec.starting_cash, windows)
    finally:
        store.close()
    cancelled = any(r.error == CANCELLED for r in rows) or any(w.error == CANCELLED for w in windows)
    return WalkForwardResult(sweep_id, metric, grid, windows, equity, figures, cancelled)


def _label(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in params.items())


def _test_phase(repo: Any, pool: Pool, db_path: str, spec: Any, plan: Sequence[tuple[list[date], list[date]]],
                rows: Sequence[SweepRow], n_points: int, metric: str, sweep_id: int, *,
                progress: Callable[[int, int], None] | None, cancel: Callable[[], bool] | None) -> list[Window]:
    """The best point of each window (training rows) run on its test days; the windows in order."""
    bests: list[dict[str, Any] | None] = []
    errors: list[str | None] = []
    for k in range(len(plan)):
        window_rows = rows[k * n_points:(k + 1) * n_points]
        best = best_row(window_rows, metric)
        bests.append(None if best is None else {p: v for p, v in best.params.items() if not p.startswith("data.")})
        errors.append(None if best is not None else
                      CANCELLED if any(r.error == CANCELLED for r in window_rows) else
                      f"no training run had a finite {metric}; nothing to test")
    runnable = [k for k in range(len(plan)) if bests[k] is not None]
    tests = [_dated(bests[k], plan[k][1]) for k in runnable]
    names = [f"{spec.name or 'walk-forward'} w{k + 1} test [{_label(bests[k])}]" for k in runnable]
    done = run_points(repo, pool, db_path, spec, tests, sweep_id=sweep_id, names=names, progress=progress,
                      cancel=cancel)
    tested = dict(zip(runnable, done, strict=True))
    windows = []
    for k, (train, test) in enumerate(plan):
        row = tested.get(k)
        windows.append(Window(k + 1, (train[0], train[-1]), (test[0], test[-1]),
                              [_undated(r) for r in rows[k * n_points:(k + 1) * n_points]], bests[k],
                              None if row is None else row.run_id, {} if row is None else row.metrics,
                              None if row is None else row.result_checksum,
                              errors[k] if row is None else row.error))
    return windows


def _undated(row: SweepRow) -> SweepRow:
    """A training row with the grid's params only (its window's dates are the window's)."""
    params = {k: v for k, v in row.params.items() if not k.startswith("data.")}
    return SweepRow(params, row.run_id, row.metrics, row.result_checksum, row.error)


def _stitch(repo: Any, starting_cash: float, windows: Sequence[Window]) -> tuple[pd.Series, dict[str, Any]]:
    parts: list[pd.Series] = []
    trades: list[Any] = []
    level = float(starting_cash)
    for w in windows:
        if w.test_run_id is None:
            continue
        run = repo.load_run(w.test_run_id)
        if run.equity.empty:
            continue
        parts.append(run.equity - starting_cash + level)
        level = float(parts[-1].iloc[-1])
        trades.extend(run.trades)
    if not parts:
        return pd.Series([], dtype="float64", index=pd.DatetimeIndex([], tz="UTC"), name="net_liquidation"), {}
    equity = pd.concat(parts).rename("net_liquidation")
    return equity, compute_metrics(equity, trades, starting_cash=starting_cash).as_dict()
