"""What a backtest run writes: the ``--json`` document of ``spx-backtest run`` and the files of ``--out DIR``.

JSON shape (issue 11 §4; scripts depend on it)::

    {"run_id", "config_sha256", "data_checksum", "result_checksum", "metrics": {...},
     "trades": [{"entry_time", "exit_time", "exit_reason", "legs": [{"root", "expiry", "strike", "right", "ratio"}],
                 "entry_price", "exit_price", "quantity", "pnl", "fees"}],
     "decisions": [{"time", "strategy", "action", "reasons", "order_ref", "snapshot_checksum"}]}

Times are ISO 8601 UTC (``...Z``); prices are index points per unit in the opening convention (credits positive);
``pnl`` and ``fees`` are dollars. ``config_sha256`` is the engine's hash of the run's whole configuration
(:attr:`~spx_core.backtest.engine.Backtest.config_hash`: strategy, fills, fees, limits, range). JSON has no NaN:
a figure that does not exist (a Sharpe over one day) is ``null``.

``--out DIR`` files: ``trades.csv`` (with each trade's entry factors), ``equity.csv`` (time, equity, margin,
drawdown), ``decisions.csv``, ``metrics.json`` (with the factor attribution and the circuit breaker's trips),
``config.toml`` (the canonical config, which ``spx-backtest run --config`` reruns) and ``summary.txt``. Each file
is written to a temporary name and renamed: a file there is complete.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spx_core.backtest.metrics import Metrics, drawdown
from spx_core.backtest.run import BacktestResult, TradeRecord
from spx_core.cli.helpers import (
    iso_utc,  # one UTC time format for every command's output
)
from spx_core.portfolio.decisions import TradeDecision

__all__ = ["decision_json", "json_safe", "run_json", "summary_text", "trade_json", "write_outputs"]


def json_safe(value: Any) -> Any:
    """NaN and infinities as null (JSON has neither); containers walked."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def trade_json(t: TradeRecord) -> dict[str, Any]:
    return {"entry_time": iso_utc(t.entry_ns), "exit_time": iso_utc(t.exit_ns) if t.exit_ns is not None else None,
            "exit_reason": t.exit_reason,
            "legs": [{"root": root, "expiry": expiry, "strike": float(strike), "right": right, "ratio": int(ratio)}
                     for root, expiry, strike, right, ratio in t.legs],
            "entry_price": json_safe(float(t.entry_price)), "exit_price": json_safe(float(t.exit_price)),
            "quantity": int(t.quantity), "pnl": json_safe(float(t.pnl)), "fees": json_safe(float(t.fees))}


def decision_json(d: TradeDecision) -> dict[str, Any]:
    return {"time": iso_utc(d.time_ns), "strategy": d.strategy, "action": str(d.action), "reasons": list(d.reasons),
            "order_ref": d.order_ref, "snapshot_checksum": d.snapshot_checksum}


def run_json(result: BacktestResult, metrics: Metrics, run_id: int | None) -> dict[str, Any]:
    """The ``--json`` document (module docstring); ``run_id`` None when the run was not stored."""
    return {"run_id": run_id, "config_sha256": result.config_hash, "data_checksum": result.data_checksum,
            "result_checksum": result.result_checksum, "metrics": json_safe(metrics.as_dict()),
            "trades": [trade_json(t) for t in result.trades],
            "decisions": [decision_json(d) for d in result.decisions]}


# --- files ------------------------------------------------------------------------------------------------------
_TRADE_COLUMNS = ("trade_id", "strategy", "entry_time", "exit_time", "exit_reason", "side", "legs", "entry_price",
                  "exit_price", "quantity", "pnl", "fees")


def _legs_text(t: TradeRecord) -> str:
    """``+1 SPXW 2024-03-15 5100P; -1 SPXW 2024-03-15 5125P`` (ratio, root, expiry, strike and right)."""
    return "; ".join(f"{ratio:+d} {root} {expiry} {strike:g}{right}" for root, expiry, strike, right, ratio in t.legs)


def _csv(header: tuple[str, ...], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _trades_csv(result: BacktestResult) -> str:
    """One row per trade; its entry factors (``result.factors``) as ``factor_<name>`` columns."""
    names = sorted({name for figures in result.factors.values() for name in figures})
    rows = []
    for i, t in enumerate(result.trades):
        figures = result.factors.get(i, {})
        rows.append([t.trade_id, t.strategy, iso_utc(t.entry_ns), iso_utc(t.exit_ns) if t.exit_ns is not None else "",
                     t.exit_reason, t.side, _legs_text(t), t.entry_price, t.exit_price, t.quantity, t.pnl, t.fees,
                     *(figures.get(name, "") for name in names)])
    return _csv((*_TRADE_COLUMNS, *(f"factor_{name}" for name in names)), rows)


def _equity_csv(result: BacktestResult, starting_cash: float) -> str:
    # drawdown() sorts and de-duplicates the stamps: look each one up rather than zip by position
    dd: dict[int, float] = {}
    if len(result.equity):
        series = drawdown(result.equity, starting_cash=starting_cash)
        dd = dict(zip(series.index.asi8.tolist(), series.tolist(), strict=True))
    rows = [[iso_utc(ns), eq, mg, dd.get(ns, math.nan)] for ns, eq, mg in
            zip(result.equity.index.asi8.tolist(), result.equity.tolist(), result.margin.tolist(), strict=True)]
    return _csv(("time", "equity", "margin", "drawdown"), rows)


def _decisions_csv(result: BacktestResult) -> str:
    return _csv(("time", "strategy", "action", "reasons", "order_ref", "snapshot_checksum"),
                [[iso_utc(d.time_ns), d.strategy, d.action, " | ".join(d.reasons), d.order_ref or "",
                  d.snapshot_checksum or ""] for d in result.decisions])


def _metrics_json(result: BacktestResult, metrics: Metrics, spec: Any) -> str:
    doc = {"name": spec.name, "config_sha256": result.config_hash, "config_toml_sha256": spec.config_sha256,
           "data_checksum": result.data_checksum, "result_checksum": result.result_checksum,
           "code_version": result.code_version, "cancelled": result.cancelled, "steps": list(result.steps),
           "marks": dict(result.marks), "notes": list(result.notes), "metrics": json_safe(metrics.as_dict()),
           "factor_attribution": json_safe(result.factor_attribution()),
           "breaker_trips": [{"time": iso_utc(trip.time_ns), "reason": trip.reason, "cancelled": trip.cancelled,
                              "closed": trip.closed} for trip in result.breaker_trips]}
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _fmt(x: float, spec: str) -> str:
    return format(x, spec) if isinstance(x, (int, float)) and math.isfinite(x) else "-"


def summary_text(result: BacktestResult, metrics: Metrics, spec: Any, run_id: int | None = None) -> str:
    """A short human summary (the ``summary.txt`` file and the plain ``spx-backtest run`` output)."""
    m = metrics
    lines = [f"backtest {spec.name or spec.strategy.name!r} over {spec.data.describe()}"
             + (f": run {run_id}" if run_id is not None else ""),
             (f"  steps {result.steps[0]}/{result.steps[1]}{' (cancelled)' if result.cancelled else ''}, "
             f"trades {m.n_trades} ({m.n_wins} won, {m.n_losses} lost, {m.open_trades} open)"),
             (f"  total return {_fmt(100 * m.total_return, '.2f')}%, ending equity ${_fmt(m.ending_equity, ',.2f')}, "
             f"fees ${_fmt(m.fees_paid, ',.2f')}"),
             (f"  Sharpe {_fmt(m.sharpe, '.2f')}, Sortino {_fmt(m.sortino, '.2f')}, max drawdown "
             f"{_fmt(100 * m.max_drawdown, '.2f')}% (${_fmt(m.max_drawdown_usd, ',.2f')}), win rate "
             f"{_fmt(100 * m.win_rate, '.1f')}%"),
             f"  marks: {', '.join(f'{k} {v}' for k, v in result.marks.items())}",
             f"  result checksum {result.result_checksum}"]
    lines += [f"  circuit breaker {iso_utc(trip.time_ns)}: {trip.reason}" for trip in result.breaker_trips]
    lines += [f"  note: {n}" for n in result.notes]
    return "\n".join(lines) + "\n"


def write_outputs(out_dir: str | Path, result: BacktestResult, metrics: Metrics, spec: Any) -> list[Path]:
    """Write the run's files into ``out_dir`` (created if missing); returns their paths (module docstring)."""
    folder = Path(out_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Callable[[], str]] = {
        "trades.csv": lambda: _trades_csv(result),
        "equity.csv": lambda: _equity_csv(result, spec.starting_cash),
        "decisions.csv": lambda: _decisions_csv(result),
        "metrics.json": lambda: _metrics_json(result, metrics, spec),
        "config.toml": lambda: spec.source_toml,
        "summary.txt": lambda: summary_text(result, metrics, spec),
    }
    return [_write_atomic(folder / name, make()) for name, make in files.items()]


def _write_atomic(path: Path, text: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
