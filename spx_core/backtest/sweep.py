"""Parameter sweeps: one backtest per point of a grid of config overrides, in worker processes or on Dask.

    grid = parse_grid("strategy.short_delta=0.10,0.20;strategy.width=10,25")    # 4 points
    result = Sweep(db_path, spec, grid, workers=2, metric="sharpe").run(progress=..., cancel=...)
    result.table()                                   # one row per point: params, run id, metrics, error
    result.heat_map("sharpe", "strategy.width", "strategy.short_delta")

Each point is the base spec with its overrides (``spec.with_overrides``, validated: a bad value is that point's
error, the others still run). Workers get ``(db path, spec dict, overrides)``, only READ the database and send
back the :class:`BacktestResult` and its metrics; the PARENT stores every run (one row per point with the
sweep's id and its params) as it arrives, so a worker never writes and SQLite sees one writer. A stored run's
``config_toml`` is the point's own spec, so ``spx-backtest run`` on it alone gives the same result checksum.

A point that fails (no data in its range, a bad value, a crashed worker) is a row whose ``error`` is one line;
points never run because of ``cancel`` are rows with ``error == "cancelled"``.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from spx_core.backtest.metrics import Metrics
from spx_core.backtest.pool import Pool, one_line
from spx_core.backtest.run import BacktestResult

__all__ = [
    "KEY_METRICS",
    "LOWER_IS_BETTER",
    "GridError",
    "PointOutcome",
    "PointTask",
    "Sweep",
    "SweepResult",
    "SweepRow",
    "best_row",
    "check_metric",
    "format_grid",
    "grid_points",
    "parse_grid",
    "prepare",
    "run_point",
    "run_points",
]

#: figures where less is better (a drawdown, a loss quantile, costs, volatility); every other one: more is better
LOWER_IS_BETTER = frozenset({"volatility", "max_drawdown", "max_drawdown_usd", "max_drawdown_days", "var95", "es95",
                             "var95_usd", "es95_usd", "fees_paid", "peak_margin", "peak_margin_use", "exposure"})
#: the figures a sweep table shows by default (every figure stays in ``SweepRow.metrics``)
KEY_METRICS = ("total_return", "sharpe", "sortino", "max_drawdown", "win_rate", "profit_factor", "n_trades")
_NOT_RANKABLE = frozenset({"max_drawdown_recovered", "starting_cash", "risk_free", "periods_per_year"})
RANKABLE = tuple(f.name for f in fields(Metrics) if f.name not in _NOT_RANKABLE)
CANCELLED = "cancelled"


class GridError(ValueError):
    """A grid or metric the sweep cannot use; one line saying what is wrong and how to write it."""


# --- the grid ---------------------------------------------------------------------------------------------------
def _value(text: str, key: str) -> Any:
    """A grid value as TOML reads it (10 -> int, 0.1 -> float, true -> bool, "a" or a bare word -> str)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if any(c in text for c in "\"'[]{}=#"):
            raise GridError(f"grid value {text!r} of {key} is not a number, true/false or a plain word") from None
        return text  # a bare word: a structure name, a preset name


def parse_grid(text: str) -> dict[str, list[Any]]:
    """``"key=v1,v2;key2=v3"`` -> ``{"key": [v1, v2], "key2": [v3]}`` (dotted config keys, values in order).

    Raises:
        GridError: an empty grid, a part without ``=``, an empty key or value, a key or value given twice.
    """
    grid: dict[str, list[Any]] = {}
    parts = [p.strip() for p in text.split(";") if p.strip()]
    if not parts:
        raise GridError('the grid is empty: give KEY=V1,V2[;KEY2=V3,...], e.g. "strategy.width=10,25"')
    for part in parts:
        key, eq, values = part.partition("=")
        key = key.strip()
        if not eq or not key:
            raise GridError(f"grid part {part!r} is not KEY=V1,V2 (e.g. strategy.short_delta=0.10,0.20)")
        if key in grid:
            raise GridError(f"grid key {key} is given twice; list all its values once: {key}=V1,V2")
        items = [v.strip() for v in values.split(",")]
        if not values.strip() or any(not v for v in items):
            raise GridError(f"grid key {key} has an empty value in {values.strip()!r}; separate values by commas")
        parsed = [_value(v, key) for v in items]
        seen = [v for i, v in enumerate(parsed) if any(_same(v, w) for w in parsed[:i])]
        if seen:
            raise GridError(f"grid key {key} lists {seen[0]!r} twice")
        grid[key] = parsed
    return grid


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def format_grid(grid: Mapping[str, Sequence[Any]]) -> str:
    """The text :func:`parse_grid` reads back into ``grid`` (stored with the sweep)."""
    return ";".join(f"{k}=" + ",".join(_format_value(v) for v in values) for k, values in grid.items())


def _format_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination, the last key varying fastest (the order the rows are listed in)."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def check_metric(metric: str) -> str:
    if metric not in RANKABLE:
        raise GridError(f"metric {metric!r} is not one of: {', '.join(RANKABLE)}")
    return metric


# --- one point (runs in a worker process) -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PointTask:
    """What a worker needs: the database (read only), the base spec as a dict, this point's overrides."""

    db_path: str
    spec: dict[str, Any]
    params: dict[str, Any]


@dataclass(frozen=True)
class PointOutcome:
    """What a worker sends back (pickled): the whole result, so the parent can store it, and its metrics."""

    result: BacktestResult | None
    metrics: Metrics | None
    error: str | None = None


def run_point(task: PointTask) -> PointOutcome:
    """Run one grid point; a failure comes back as ``error`` (one line): a storage error need not pickle."""
    from spx_core.backtest.config import load_spec
    from spx_core.storage.store import Store

    try:
        spec = load_spec(task.spec).with_overrides(task.params)
        store = Store.open(task.db_path, create=False)
        try:
            result = spec.backtest(store).run()
        finally:
            store.close()
        return PointOutcome(result, result.metrics())
    except Exception as exc:  # noqa: BLE001 - the point's row reports it; the sweep goes on
        return PointOutcome(None, None, one_line(exc))


# --- rows and the result ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepRow:
    """One grid point: its overrides, the stored run (None when it failed), its figures, or its error."""

    params: dict[str, Any]
    run_id: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    result_checksum: str | None = None
    error: str | None = None

    def value(self, metric: str) -> float:
        v = self.metrics.get(metric)
        return math.nan if v is None else float(v)


def best_row(rows: Sequence[SweepRow], metric: str) -> SweepRow | None:
    """The row with the best ``metric`` (lower for :data:`LOWER_IS_BETTER`); NaN never wins; ties: the first."""
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    ranked = [r for r in rows if r.error is None and not math.isnan(r.value(metric))]
    return max(ranked, key=lambda r: sign * r.value(metric), default=None)


@dataclass(frozen=True)
class SweepResult:
    sweep_id: int
    metric: str
    grid: dict[str, list[Any]]
    rows: list[SweepRow]
    cancelled: bool = False

    def best(self, metric: str | None = None) -> SweepRow | None:
        return best_row(self.rows, metric or self.metric)

    def table(self, metrics: Sequence[str] | None = None) -> pd.DataFrame:
        """One row per point: a column per grid key, ``run_id``, each metric (all by default), checksum, error."""
        names = list(metrics) if metrics is not None else list(RANKABLE)
        records = [{**r.params, "run_id": r.run_id, **{m: r.value(m) for m in names},
                    "result_checksum": r.result_checksum, "error": r.error} for r in self.rows]
        return pd.DataFrame.from_records(records, columns=[*self.grid, "run_id", *names, "result_checksum", "error"])

    def heat_map(self, metric: str, x_key: str, y_key: str, *, fixed: Mapping[str, Any] | None = None
                 ) -> pd.DataFrame:
        """``metric`` over two grid keys: index the ``y_key`` values, columns the ``x_key`` values (grid order),
        NaN where a point failed. With more keys, ``fixed`` picks the value of each other key."""
        check_metric(metric)
        for key in (x_key, y_key, *(fixed or {})):
            if key not in self.grid:
                raise GridError(f"{key} is not a key of this sweep's grid ({', '.join(self.grid)})")
        other = [k for k in self.grid if k not in (x_key, y_key) and k not in (fixed or {})]
        if other:
            raise GridError(f"a heat map over {x_key} and {y_key} needs a value for {', '.join(other)} "
                            f"(pass fixed={{...}})")
        frame = pd.DataFrame(math.nan, index=pd.Index(self.grid[y_key], name=y_key),
                             columns=pd.Index(self.grid[x_key], name=x_key), dtype="float64")
        for r in self.rows:
            if all(_same(r.params[k], v) for k, v in (fixed or {}).items()):
                frame.loc[r.params[y_key], r.params[x_key]] = r.value(metric)
        return frame


# --- the sweep ----------------------------------------------------------------------------------------------
class Sweep:
    """A grid of overrides over ``spec``, run on a local pool (``workers``) or a Dask cluster (``scheduler``)
    against the database at ``db_path``; ``metric`` ranks the rows (:meth:`SweepResult.best`)."""

    def __init__(self, db_path: str | Path, spec: Any, grid: Mapping[str, Sequence[Any]], *,
                 workers: int | None = None, scheduler: str | None = None, metric: str = "sharpe") -> None:
        if not grid:
            raise GridError("the grid is empty: give at least one KEY=V1,V2")
        self.db_path = str(db_path)
        self.spec = spec
        self.grid = {k: list(v) for k, v in grid.items()}
        self.workers, self.scheduler = workers, scheduler
        self.metric = check_metric(metric)

    def run(self, progress: Callable[[int, int], None] | None = None,
            cancel: Callable[[], bool] | None = None) -> SweepResult:
        """Run every point (see the module docstring); ``progress(done, total)`` after each point."""
        from spx_core.storage.backtest_repo import BacktestRepository
        from spx_core.storage.store import Store

        points = grid_points(self.grid)
        prepared = prepare(self.spec, points)
        refused = [p for p in prepared if isinstance(p, str)]
        if len(refused) == len(points):  # a mistyped key, say: one error, not a sweep of failed rows
            raise GridError(f"no grid point is a valid config: {refused[0]}")
        store = Store.open(self.db_path, create=False)  # migrated here, before any worker reads it
        try:
            repo = BacktestRepository(store)
            with Pool(workers=self.workers, scheduler=self.scheduler, size_hint=len(points) - len(refused)) as pool:
                sweep_id = repo.create_sweep(config_toml=self.spec.source_toml, grid=format_grid(self.grid),
                                             metric=self.metric)
                rows = run_points(repo, pool, self.db_path, self.spec, points, sweep_id=sweep_id,
                                  prepared=prepared, progress=progress, cancel=cancel)
        finally:
            store.close()
        cancelled = any(r.error == CANCELLED for r in rows)
        return SweepResult(sweep_id, self.metric, self.grid, rows, cancelled)


def prepare(spec: Any, points: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Each point's spec (``spec.with_overrides``), or the one-line reason the spec refuses its overrides."""
    out: list[Any] = []
    for params in points:
        try:
            out.append(spec.with_overrides(dict(params)))
        except ValueError as exc:
            out.append(str(exc).splitlines()[0])
    return out


def run_points(repo: Any, pool: Pool, db_path: str, spec: Any, points: Sequence[Mapping[str, Any]], *,
               sweep_id: int | None, names: Sequence[str] | None = None, prepared: Sequence[Any] | None = None,
               progress: Callable[[int, int], None] | None = None,
               cancel: Callable[[], bool] | None = None) -> list[SweepRow]:
    """Run ``spec`` with each of ``points``' overrides on ``pool`` and store each run; rows in ``points``' order.

    A point whose overrides the spec refuses is a row with that error (nothing submitted for it);
    ``prepared``: :func:`prepare`'s answer when the caller has it already."""
    specs = list(prepared) if prepared is not None else prepare(spec, points)
    rows: list[SweepRow | None] = [SweepRow(dict(p), error=s) if isinstance(s, str) else None
                                   for p, s in zip(points, specs, strict=True)]
    order = [i for i, s in enumerate(specs) if not isinstance(s, str)]
    refused = len(points) - len(order)
    tasks = [PointTask(db_path, spec.to_dict(), dict(points[i])) for i in order]
    report = None if progress is None else (lambda done, total: progress(done + refused, total + refused))
    for done in pool.map_unordered(run_point, tasks, progress=report, cancel=cancel):
        i = order[done.index]
        rows[i] = _store(repo, done.value, done.error, specs[i], points[i], sweep_id,
                         names[i] if names is not None else _name(spec, points[i]))
    return [r if r is not None else SweepRow(dict(p), error=CANCELLED) for r, p in zip(rows, points, strict=True)]


def _store(repo: Any, outcome: PointOutcome | None, error: str | None, spec: Any, params: Mapping[str, Any],
           sweep_id: int | None, name: str) -> SweepRow:
    if error is None and outcome is not None:
        error = outcome.error
    if error is not None or outcome is None or outcome.result is None:
        return SweepRow(dict(params), error=error or "the worker returned no result")
    from spx_core.storage.errors import StorageError

    metrics = outcome.metrics.as_dict() if outcome.metrics is not None else {}
    try:
        run_id = repo.save_run(outcome.result, config_toml=spec.source_toml, name=name, metrics=outcome.metrics,
                               sweep_id=sweep_id, params=dict(params))
    except StorageError as exc:  # a busy or full database: this run's row says so, the sweep goes on
        return SweepRow(dict(params), None, metrics, outcome.result.result_checksum, f"not stored: {one_line(exc)}")
    return SweepRow(dict(params), run_id, metrics, outcome.result.result_checksum)


def _name(spec: Any, params: Mapping[str, Any]) -> str:
    label = ", ".join(f"{k.rsplit('.', 1)[-1]}={_format_value(v)}" for k, v in params.items())
    base = spec.name or "sweep"
    return f"{base} [{label}]"
