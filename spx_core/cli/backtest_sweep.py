"""``spx-backtest sweep``: one stored backtest per grid point, on local processes or a Dask cluster (issue 11 §4).

    spx-backtest sweep --db PATH --config FILE.toml --grid "strategy.short_delta=0.10,0.20;strategy.width=10,25"
                       [--workers N | --scheduler tcp://HOST:PORT] [--metric NAME] [--json]
                       [--walk-forward TRAIN_DAYS:TEST_DAYS]

Prints a table of each point's params and key figures (and the heat map of ``--metric`` when the grid has two
keys), or with ``--json`` ``{"sweep_id", "metric", "rows": [{"params", "run_id", "result_checksum", "metrics",
"error"}]}`` (NaN and infinities as null). With ``--walk-forward`` the document is ``{"sweep_id", "metric",
"train_days", "test_days", "windows": [{"window", "train": [first, last], "test": [first, last], "best",
"run_id", "result_checksum", "metrics", "error", "rows": [...]}], "metrics": {...}}`` (the ``metrics`` of the
stitched out-of-sample equity); dates are US/Eastern ISO dates.

Every run is stored (``spx-backtest runs`` lists them with their sweep id). Progress on stderr; Ctrl-C stops
submitting (the points running finish and are stored, the rest are listed as cancelled; exit 130), a second one
stops at once. Exit codes: 0 at least one point ran; 1 none did, or the database / scheduler failed; 2 bad usage
(a bad grid, metric or config, one line naming it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from spx_core.cli.helpers import (
    CommandFailed,
    DbAccess,
    UsageError,
    add_db_option,
    command,
    dump_json,
    fmt_num,
    print_table,
)

__all__ = ["cmd_sweep", "register"]

PROG = "spx-backtest"
#: (header, metric, format) of the table's figures after the params
COLUMNS = (("trades", "n_trades", "d"), ("return", "total_return", ".2%"), ("sharpe", "sharpe", ".2f"),
           ("max dd", "max_drawdown", ".2%"), ("win rate", "win_rate", ".1%"), ("fees $", "fees_paid", ",.2f"))


def register(sub: Any) -> None:
    p = sub.add_parser("sweep", help="run a backtest per grid point (local processes or a Dask cluster) and "
                                     "store each run")
    add_db_option(p)
    p.add_argument("--config", required=True, metavar="FILE.toml", help="the base backtest config")
    p.add_argument("--grid", required=True, metavar="GRID",
                   help='dotted config keys and their values: "strategy.short_delta=0.10,0.20;strategy.width=10,25"')
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N", help="local worker processes (default: one per CPU, "
                                                                "at most one per point)")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="run on this Dask distributed cluster (its workers read --db at the same path)")
    p.add_argument("--metric", default="sharpe", metavar="NAME",
                   help="the figure that ranks the points and fills the heat map (default: sharpe)")
    p.add_argument("--walk-forward", metavar="TRAIN_DAYS:TEST_DAYS",
                   help="walk-forward: best point on TRAIN_DAYS trading days, run on the next TEST_DAYS, rolled on")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=command(cmd_sweep, db=DbAccess.READ, tool=PROG))


def _windows(text: str) -> tuple[int, int]:
    train, colon, test = text.partition(":")
    try:
        if not colon:
            raise ValueError
        return int(train), int(test)
    except ValueError:
        raise UsageError(f"--walk-forward {text!r} is not TRAIN_DAYS:TEST_DAYS (e.g. 20:5)") from None


def cmd_sweep(args: argparse.Namespace) -> int:
    from spx_core.backtest.config import BacktestConfigError
    from spx_core.backtest.pool import PoolError
    from spx_core.backtest.sweep import GridError, Sweep, check_metric, parse_grid
    from spx_core.backtest.walkforward import WalkForwardError, walk_forward
    from spx_core.cli.backtest_main import load_config

    spec = load_config(args.config)
    try:
        grid = parse_grid(args.grid)
        check_metric(args.metric)
    except GridError as exc:
        raise UsageError(f"--grid/--metric: {exc}") from None
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers {args.workers} must be at least 1")
    windows = _windows(args.walk_forward) if args.walk_forward is not None else None
    where = {"workers": args.workers, "scheduler": args.scheduler, "metric": args.metric}
    try:
        with _stoppable() as stop, _progress() as progress:
            if windows is None:
                result = Sweep(args.db_path, spec, grid, **where).run(progress=progress, cancel=stop)
            else:
                result = walk_forward(args.db_path, spec, grid, train_days=windows[0], test_days=windows[1],
                                      progress=progress, cancel=stop, **where)
    except GridError as exc:
        raise UsageError(str(exc)) from None
    except (PoolError, WalkForwardError, BacktestConfigError) as exc:
        raise CommandFailed(str(exc)) from None
    if windows is None:
        rows = result.rows
        _print_json(result) if args.json else _print_sweep(result)
    else:
        rows = [r for w in result.windows for r in w.train_rows]
        _print_wf_json(result, windows) if args.json else _print_walk_forward(result)
    if result.cancelled:
        print(f"{PROG} sweep: interrupted; the runs that finished are stored (sweep {result.sweep_id})",
              file=sys.stderr)
        return 130
    if all(r.run_id is None for r in rows):
        print(f"{PROG} sweep: no grid point ran: {rows[0].error}", file=sys.stderr)
        return 1
    return 0


@contextmanager
def _stoppable() -> Iterator[Callable[[], bool]]:
    # one Ctrl-C policy for run and sweep
    from spx_core.cli.backtest_main import interruptible

    with interruptible() as stop:
        yield stop


@contextmanager
def _progress() -> Iterator[Callable[[int, int], None]]:
    """A bar on stderr, shown from the first finished run (an error before that is one clean line)."""
    from tqdm import tqdm

    bars: list[Any] = []

    def update(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(desc="sweep", unit="run", total=total, file=sys.stderr, leave=False))
        bars[0].update(done - bars[0].n)

    try:
        yield update
    finally:
        for bar in bars:
            bar.close()


# --- output -------------------------------------------------------------------------------------------------------
def _row_json(row: Any) -> dict[str, Any]:
    from spx_core.backtest.outputs import json_safe

    return {"params": json_safe(row.params), "run_id": row.run_id, "result_checksum": row.result_checksum,
            "metrics": json_safe(row.metrics), "error": row.error}


def _print_json(result: Any) -> None:
    dump_json({"sweep_id": result.sweep_id, "metric": result.metric, "rows": [_row_json(r) for r in result.rows]})


def _figure(row: Any, key: str, spec: str) -> str:
    value = row.metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return str(int(value)) if spec == "d" else fmt_num(float(value), spec)


def _short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _rows_table(keys: Sequence[str], rows: Sequence[Any], metric: str) -> None:
    columns = list(COLUMNS)
    if metric not in {m for _, m, _ in COLUMNS}:
        columns.append((metric, metric, ".4g"))
    header = [_short(k) for k in keys] + ["run"] + [h for h, _, _ in columns] + ["error"]
    table = [[str(r.params.get(k)) for k in keys] + ["-" if r.run_id is None else str(r.run_id)]
             + [_figure(r, m, s) for _, m, s in columns] + [r.error or ""] for r in rows]
    print_table(header, table, right=set(range(len(keys), len(keys) + 1 + len(columns))))


def _print_sweep(result: Any) -> None:
    keys = list(result.grid)
    _rows_table(keys, result.rows, result.metric)
    stored = sum(r.run_id is not None for r in result.rows)
    best = result.best()
    line = f"sweep {result.sweep_id}: {stored} of {len(result.rows)} runs stored"
    if best is not None:
        line += f"; best {result.metric} {best.value(result.metric):.4g}: " + \
                ", ".join(f"{_short(k)}={v}" for k, v in best.params.items()) + f" (run {best.run_id})"
    print(line)
    if len(keys) == 2:
        heat = result.heat_map(result.metric, keys[1], keys[0])
        print(f"\n{result.metric}: {_short(keys[0])} down, {_short(keys[1])} across")
        print_table([""] + [str(c) for c in heat.columns],
                    [[str(i)] + [fmt_num(float(v), ".4g") for v in heat.loc[i]] for i in heat.index],
                    right=set(range(1, len(heat.columns) + 1)))


def _print_walk_forward(result: Any) -> None:
    keys = list(result.grid)
    header = ["window", "train", "test"] + [_short(k) for k in keys] + ["test run", result.metric, "error"]
    rows = [[str(w.index), f"{w.train[0]}..{w.train[1]}", f"{w.test[0]}..{w.test[1]}"]
            + [str((w.best or {}).get(k, "-")) for k in keys]
            + ["-" if w.test_run_id is None else str(w.test_run_id),
               fmt_num(_num(w.test_metrics.get(result.metric)), ".4g"), w.error or ""] for w in result.windows]
    print_table(header, rows, right={0, len(header) - 3, len(header) - 2})
    figures = result.metrics
    print(f"sweep {result.sweep_id}: out of sample over {len(result.equity)} stamps: "
          f"return {fmt_num(_num(figures.get('total_return')), '.2%')}, "
          f"sharpe {fmt_num(_num(figures.get('sharpe')), '.2f')}, "
          f"max dd {fmt_num(_num(figures.get('max_drawdown')), '.2%')}, trades {figures.get('n_trades', 0)}")


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _print_wf_json(result: Any, windows: tuple[int, int]) -> None:
    from spx_core.backtest.outputs import json_safe

    dump_json({"sweep_id": result.sweep_id, "metric": result.metric, "train_days": windows[0],
               "test_days": windows[1],
               "windows": [{"window": w.index, "train": [w.train[0].isoformat(), w.train[1].isoformat()],
                            "test": [w.test[0].isoformat(), w.test[1].isoformat()], "best": json_safe(w.best),
                            "run_id": w.test_run_id, "result_checksum": w.test_checksum,
                            "metrics": json_safe(w.test_metrics), "error": w.error,
                            "rows": [_row_json(r) for r in w.train_rows]} for w in result.windows],
               "metrics": json_safe(result.metrics)})
