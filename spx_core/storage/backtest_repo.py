"""Stored backtest runs and sweeps (migration 6): a run's config, provenance, metrics, trades, decisions and equity.

    repo = BacktestRepository(store)
    run_id = repo.save_run(result, config_toml=spec.source_toml, name="pcs 2018")   # one transaction
    for info in repo.list_runs(): ...          # RunInfo rows, oldest first (metrics decoded)
    run = repo.load_run(run_id)                # StoredRun: trades, decisions, equity, margin, factors, ...
    sweep_id = repo.create_sweep(config_toml=text, grid="strategy.width=10,25", metric="sharpe")
    repo.save_run(result, config_toml=point_toml, sweep_id=sweep_id, params={"strategy.width": 10})
    repo.sweep_runs(sweep_id)                  # the sweep's runs, in the order they were stored
    repo.delete_run(run_id)                    # its trades, decisions and equity go with it

A run is written in ONE write transaction (run row, trades, decisions, equity): a crash or an error mid-save
leaves nothing behind. ``config_sha256`` is the result's ``config_hash`` (the SHA-256 of the effective
configuration the engine ran), so two runs of the same config compare equal however their TOML was laid out.

Non-finite numbers: JSON has no NaN or infinity, so in the JSON columns (metrics, factors, params) NaN, +inf and
-inf are written as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (JavaScript's names, which
``float()`` also reads) and read back as floats; those three exact strings are therefore reserved in these
columns (a string parameter spelled so would come back as a float). REAL columns (prices, pnl, equity, margin)
hold NaN as NULL (SQLite's own rule) and infinities as themselves.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, select

from spx_core.backtest.metrics import Metrics, compute_metrics
from spx_core.backtest.run import BacktestResult, TradeRecord
from spx_core.portfolio.decisions import TradeDecision
from spx_core.storage import schema as t

__all__ = ["BacktestRepository", "RunInfo", "StoredRun", "SweepInfo", "from_json", "to_json"]

DEFAULT_STARTING_CASH = 100_000.0  # the engine's default, for results that do not carry it
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


# --- JSON with non-finite numbers ---------------------------------------------------------------------------
def _encode(value: Any) -> Any:
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, np.generic):  # numpy scalars (a metric computed with numpy) as plain Python values
        return value.item()
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        return _NON_FINITE.get(value, value)
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def to_json(value: Any) -> str:
    """Canonical JSON (sorted keys) with NaN / +inf / -inf as "NaN" / "Infinity" / "-Infinity"."""
    return json.dumps(_encode(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def from_json(text: str | None) -> Any:
    """The value :func:`to_json` wrote (None for SQL NULL)."""
    return None if text is None else _decode(json.loads(text))


def _real(x: float | None) -> float | None:
    """A float for a REAL column: NaN is NULL (SQLite would store NULL anyway; this says so)."""
    return None if x is None or math.isnan(x) else float(x)


def _float(x: float | None) -> float:
    return math.nan if x is None else float(x)


# --- records ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RunInfo:
    """A stored run's row: provenance and metrics (no trades or equity)."""

    id: int
    name: str
    created_ns: int
    config_sha256: str
    data_checksum: str
    result_checksum: str
    code_version: str
    starting_cash: float
    metrics: dict[str, Any]
    cancelled: bool
    steps: tuple[int, int]
    sweep_id: int | None = None
    params: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SweepInfo:
    id: int
    created_ns: int
    config_toml: str
    grid: str
    metric: str


@dataclass(frozen=True)
class StoredRun:
    """A stored run, whole: ``equity`` / ``margin`` are dollar series on a UTC index, as the result had them;
    ``factors`` maps a trade's position in ``trades`` to its entry factors."""

    info: RunInfo
    config_toml: str
    trades: tuple[TradeRecord, ...]
    factors: dict[int, dict[str, float]]
    equity: pd.Series
    margin: pd.Series
    decisions: tuple[TradeDecision, ...]
    marks: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


# --- the repository -----------------------------------------------------------------------------------------
class BacktestRepository:
    """Backtest runs and sweeps in a :class:`~spx_core.storage.store.Store`'s database."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def save_run(self, result: BacktestResult, *, config_toml: str, name: str = "",
                 metrics: Metrics | Mapping[str, Any] | None = None,
                 sweep_id: int | None = None, params: Mapping[str, Any] | None = None) -> int:
        """Store ``result`` (its trades, decisions, equity and factors) in one transaction; returns the run id.

        ``metrics``: a :class:`~spx_core.backtest.metrics.Metrics` or its ``as_dict()``; computed from the result
        when None (empty for a run with no equity stamp, e.g. cancelled before its first step).

        Raises:
            KeyError: ``sweep_id`` names no stored sweep.
            ValueError: the result is inconsistent (margin on other stamps than equity, factors of no trade).
        """
        starting_cash = float(getattr(result, "starting_cash", DEFAULT_STARTING_CASH))
        figures = _metrics_dict(result, metrics, starting_cash)
        trades = _trade_rows(result)
        decisions = [_decision_row(i, d) for i, d in enumerate(result.decisions)]
        equity = _equity_rows(result)
        run = {"name": str(name), "created_ns": time.time_ns(), "config_toml": str(config_toml),
               "config_sha256": result.config_hash, "data_checksum": result.data_checksum,
               "result_checksum": result.result_checksum, "code_version": result.code_version,
               "starting_cash": starting_cash, "metrics": to_json(figures), "marks": to_json(dict(result.marks)),
               "notes": to_json(list(result.notes)), "cancelled": int(bool(result.cancelled)),
               "steps_done": int(result.steps[0]), "steps_total": int(result.steps[1]),
               "sweep_id": None if sweep_id is None else int(sweep_id),
               "params": None if params is None else to_json(dict(params))}
        with self._store._write() as conn:
            if sweep_id is not None and conn.execute(
                    select(t.backtest_sweeps.c.id).where(t.backtest_sweeps.c.id == int(sweep_id))).first() is None:
                raise KeyError(f"no backtest sweep {sweep_id}; create it first")
            run_id = int(conn.execute(t.backtest_runs.insert(), run).inserted_primary_key[0])
            for table, rows in ((t.backtest_trades, trades), (t.backtest_decisions, decisions),
                                (t.backtest_equity, equity)):
                if rows:
                    conn.execute(table.insert(), [{"run_id": run_id, **row} for row in rows])
        return run_id

    def list_runs(self, *, sweep_id: int | None = None) -> list[RunInfo]:
        """Every stored run (or only those of sweep ``sweep_id``), in the order they were stored."""
        c = t.backtest_runs.c
        query = select(*_INFO_COLUMNS).order_by(c.id)
        if sweep_id is not None:
            query = query.where(c.sweep_id == int(sweep_id))
        with self._store._read() as conn:
            return [_run_info(row) for row in conn.execute(query)]

    def load_run(self, run_id: int) -> StoredRun:
        """The whole stored run ``run_id``.

        Raises:
            KeyError: there is no such run.
        """
        r = t.backtest_runs.c
        with self._store._read() as conn:
            row = conn.execute(select(*_INFO_COLUMNS, r.config_toml, r.marks, r.notes)
                               .where(r.id == int(run_id))).first()
            if row is None:
                raise KeyError(_no_run(run_id))
            trades = conn.execute(select(t.backtest_trades).where(t.backtest_trades.c.run_id == row.id)
                                  .order_by(t.backtest_trades.c.seq)).all()
            decisions = conn.execute(select(t.backtest_decisions).where(t.backtest_decisions.c.run_id == row.id)
                                     .order_by(t.backtest_decisions.c.seq)).all()
            e = t.backtest_equity.c
            curve = conn.execute(select(e.time_ns, e.equity, e.margin).where(e.run_id == row.id)
                                 .order_by(e.time_ns)).all()
        equity, margin = _series(curve)
        return StoredRun(info=_run_info(row), config_toml=row.config_toml,
                         trades=tuple(_trade(x) for x in trades),
                         factors={x.seq: from_json(x.factors) for x in trades if x.factors is not None},
                         equity=equity, margin=margin, decisions=tuple(_decision(x) for x in decisions),
                         marks=from_json(row.marks), notes=tuple(from_json(row.notes)))

    def delete_run(self, run_id: int) -> None:
        """Delete run ``run_id`` and its trades, decisions and equity (one transaction).

        Raises:
            KeyError: there is no such run.
        """
        with self._store._write() as conn:
            gone = conn.execute(delete(t.backtest_runs).where(t.backtest_runs.c.id == int(run_id))).rowcount
        if not gone:
            raise KeyError(_no_run(run_id))

    def create_sweep(self, *, config_toml: str, grid: str, metric: str) -> int:
        """Record a sweep (its base config, grid and ranking metric); its runs are saved with its id."""
        with self._store._write() as conn:
            return int(conn.execute(t.backtest_sweeps.insert(), {
                "created_ns": time.time_ns(), "config_toml": str(config_toml), "grid": str(grid),
                "metric": str(metric)}).inserted_primary_key[0])

    def sweeps(self) -> list[SweepInfo]:
        """Every stored sweep, oldest first."""
        with self._store._read() as conn:
            rows = conn.execute(select(t.backtest_sweeps).order_by(t.backtest_sweeps.c.id)).all()
        return [SweepInfo(r.id, r.created_ns, r.config_toml, r.grid, r.metric) for r in rows]

    def sweep_runs(self, sweep_id: int) -> list[RunInfo]:
        """The runs of sweep ``sweep_id``, in the order they were stored.

        Raises:
            KeyError: there is no such sweep.
        """
        with self._store._read() as conn:
            known = conn.execute(select(t.backtest_sweeps.c.id).where(t.backtest_sweeps.c.id == int(sweep_id))).first()
            rows = conn.execute(select(*_INFO_COLUMNS).where(_R.sweep_id == int(sweep_id)).order_by(_R.id)).all()
        if known is None:
            raise KeyError(f"no backtest sweep {sweep_id}; list them with spx-backtest runs")
        return [_run_info(row) for row in rows]


# --- rows <-> records ---------------------------------------------------------------------------------------
_R = t.backtest_runs.c
_INFO_COLUMNS = (_R.id, _R.name, _R.created_ns, _R.config_sha256, _R.data_checksum, _R.result_checksum,
                 _R.code_version, _R.starting_cash, _R.metrics, _R.cancelled, _R.steps_done, _R.steps_total,
                 _R.sweep_id, _R.params)


def _no_run(run_id: Any) -> str:
    return f"no backtest run {run_id}; list them with spx-backtest runs"


def _run_info(row: Any) -> RunInfo:
    return RunInfo(id=row.id, name=row.name, created_ns=row.created_ns, config_sha256=row.config_sha256,
                   data_checksum=row.data_checksum, result_checksum=row.result_checksum,
                   code_version=row.code_version, starting_cash=row.starting_cash, metrics=from_json(row.metrics),
                   cancelled=bool(row.cancelled), steps=(row.steps_done, row.steps_total), sweep_id=row.sweep_id,
                   params=from_json(row.params))


def _metrics_dict(result: BacktestResult, metrics: Any, starting_cash: float) -> dict[str, Any]:
    if metrics is not None:
        return dict(metrics.as_dict() if hasattr(metrics, "as_dict") else metrics)
    if len(result.equity) == 0:
        return {}  # nothing ran: there is no figure to compute
    if hasattr(result, "metrics"):
        return result.metrics().as_dict()
    return compute_metrics(result.equity, result.trades, starting_cash=starting_cash,
                           margin=result.margin).as_dict()


def _trade_rows(result: BacktestResult) -> list[dict[str, Any]]:
    factors = getattr(result, "factors", None) or {}
    stray = sorted(k for k in factors if not 0 <= int(k) < len(result.trades))
    if stray:
        raise ValueError(f"the result has entry factors for trade position {stray[0]} but only "
                         f"{len(result.trades)} trades; factors are keyed by position in result.trades")
    return [{"seq": i, "trade_id": int(tr.trade_id), "strategy": tr.strategy, "entry_ns": int(tr.entry_ns),
             "exit_ns": None if tr.exit_ns is None else int(tr.exit_ns), "exit_reason": tr.exit_reason,
             "side": tr.side, "legs": to_json([list(leg) for leg in tr.legs]), "entry_price": _real(tr.entry_price),
             "exit_price": _real(tr.exit_price), "quantity": int(tr.quantity), "pnl": _real(tr.pnl),
             "fees": _real(tr.fees), "factors": to_json(factors[i]) if i in factors else None}
            for i, tr in enumerate(result.trades)]


def _trade(row: Any) -> TradeRecord:
    legs = tuple((str(root), str(expiry), float(strike), str(right), int(ratio))
                 for root, expiry, strike, right, ratio in from_json(row.legs))
    return TradeRecord(trade_id=row.trade_id, strategy=row.strategy, entry_ns=row.entry_ns, exit_ns=row.exit_ns,
                       exit_reason=row.exit_reason, legs=legs, side=row.side, entry_price=_float(row.entry_price),
                       exit_price=_float(row.exit_price), quantity=row.quantity, pnl=_float(row.pnl),
                       fees=_float(row.fees))


def _decision_row(seq: int, d: TradeDecision) -> dict[str, Any]:
    return {"seq": seq, "time_ns": int(d.time_ns), "strategy": d.strategy, "action": str(d.action),
            "reasons": json.dumps(list(d.reasons)), "order_ref": d.order_ref, "snapshot_id": d.snapshot_id,
            "snapshot_checksum": d.snapshot_checksum, "config_hash": d.config_hash, "limit_profile": d.limit_profile}


def _decision(row: Any) -> TradeDecision:
    return TradeDecision(time_ns=row.time_ns, strategy=row.strategy, action=row.action,
                         reasons=tuple(json.loads(row.reasons)), snapshot_id=row.snapshot_id,
                         snapshot_checksum=row.snapshot_checksum, config_hash=row.config_hash,
                         limit_profile=row.limit_profile, order_ref=row.order_ref)


_EQUITY_NAME, _MARGIN_NAME = "net_liquidation", "maintenance_margin"  # the engine's series names


def _equity_rows(result: BacktestResult) -> list[dict[str, Any]]:
    equity, margin = result.equity, result.margin
    if len(margin) and not margin.index.equals(equity.index):
        raise ValueError("the result's margin series is not on the equity's stamps; one row per stamp holds both")
    stamps = pd.DatetimeIndex(equity.index)
    stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
    values = equity.to_numpy(dtype=np.float64)
    margins = margin.to_numpy(dtype=np.float64) if len(margin) else np.full(len(values), np.nan)
    return [{"time_ns": int(ns), "equity": _real(float(v)), "margin": _real(float(m))}
            for ns, v, m in zip(stamps.as_unit("ns").asi8, values, margins, strict=True)]


def _series(rows: list[Any]) -> tuple[pd.Series, pd.Series]:
    index = pd.to_datetime([r.time_ns for r in rows], unit="ns", utc=True)
    equity = pd.Series([_float(r.equity) for r in rows], index=index, name=_EQUITY_NAME, dtype="float64")
    margin = pd.Series([_float(r.margin) for r in rows], index=index, name=_MARGIN_NAME, dtype="float64")
    return equity, margin
