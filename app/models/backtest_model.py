"""Table models of the Backtest panel: summary metrics, trades, decisions, the runs to compare, and a trade's payoff.

Each model holds a tuple of plain rows and ``data()`` only looks up and formats (principle 6). Units: prices in
index points per unit (credits positive), P&L and fees in dollars, fractions shown as percent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from spx_core.domain.calendar import ET

__all__ = ["METRIC_ROWS", "CompareModel", "DecisionsModel", "MetricsModel", "RunsModel", "SweepModel", "TradesModel",
           "et_time", "legs_text"]

GOOD, BAD = QColor("#2fb36d"), QColor("#f0524f")
MULTIPLIER = 100.0  # dollars per index point per contract (SPX, SPXW, SPY)
_INDEX = QModelIndex()


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def pct(v: Any) -> str:
    v = _num(v)
    return f"{v * 100:+.2f}%" if math.isfinite(v) else "—"


def usd(v: Any, *, sign: bool = True) -> str:
    """Dollars and cents: "+$88.77", "-$1,419.90" (``sign=False``: "$99,934.57" for a level, not a change)."""
    v = _num(v)
    if not math.isfinite(v):
        return "—"
    v = round(v, 2) + 0.0
    return f"{'-' if v < 0 else '+' if sign and v > 0 else ''}${abs(v):,.2f}"


def level(v: Any) -> str:
    return usd(v, sign=False)


def plain(v: Any, digits: int = 2) -> str:
    v = _num(v)
    if math.isinf(v):
        return "∞"
    return f"{v:,.{digits}f}" if math.isfinite(v) else "—"


def et_time(ns: int | None) -> str:
    """An instant as "2024-03-13 10:00 ET" ("—" for None: still open)."""
    if ns is None:
        return "—"
    return datetime.fromtimestamp(ns / 1e9, ET).strftime("%Y-%m-%d %H:%M ET")


def _sign(v: Any) -> int:
    v = _num(v)
    return 0 if not math.isfinite(v) or v == 0 else (1 if v > 0 else -1)


@dataclass(frozen=True, slots=True)
class MetricRow:
    """One summary line: the metric key, its label with the unit, how to format it, and whether a value is good
    (+1), bad (-1) or neither (0)."""

    key: str
    label: str
    fmt: Callable[[Any], str]
    judge: Callable[[Any], int] = lambda v: 0


def _above(level: float) -> Callable[[Any], int]:
    return lambda v: 0 if not math.isfinite(_num(v)) else (1 if _num(v) > level else -1)


def _below(level: float) -> Callable[[Any], int]:
    return lambda v: 0 if not math.isfinite(_num(v)) else (1 if _num(v) <= level else -1)


METRIC_ROWS: tuple[MetricRow, ...] = (
    MetricRow("total_return", "Total return (%)", pct, _sign),
    MetricRow("cagr", "CAGR (%/year)", pct, _sign),
    MetricRow("ending_equity", "Ending equity ($)", level),
    MetricRow("volatility", "Volatility (%/year)", lambda v: pct(v).lstrip("+")),
    MetricRow("sharpe", "Sharpe (annualised)", plain, _above(1.0)),
    MetricRow("sortino", "Sortino (annualised)", plain, _above(1.0)),
    MetricRow("calmar", "Calmar", plain, _above(1.0)),
    MetricRow("max_drawdown", "Max drawdown (% below peak)", lambda v: pct(-_num(v)), _below(0.10)),
    MetricRow("max_drawdown_usd", "Max drawdown ($)", lambda v: usd(-_num(v))),
    MetricRow("max_drawdown_days", "Max drawdown duration (days)", lambda v: plain(v, 1)),
    MetricRow("win_rate", "Win rate (%)", lambda v: pct(v).lstrip("+"), _above(0.5)),
    MetricRow("profit_factor", "Profit factor", plain, _above(1.0)),
    MetricRow("expectancy", "Expectancy ($/trade)", usd, _sign),
    MetricRow("average_win", "Average win ($)", usd),
    MetricRow("average_loss", "Average loss ($)", usd),
    MetricRow("largest_loss", "Largest loss ($)", usd),
    MetricRow("var95_usd", "VaR 95%, 1 day ($ loss)", level),
    MetricRow("es95_usd", "ES 95%, 1 day ($ loss)", level),
    MetricRow("exposure", "Exposure (% of time in a trade)", lambda v: pct(v).lstrip("+")),
    MetricRow("peak_margin", "Peak margin ($)", level),
    MetricRow("peak_margin_use", "Peak margin use (% of equity)", lambda v: pct(v).lstrip("+"), _below(0.5)),
    MetricRow("n_trades", "Trades closed (wins / losses)", lambda v: plain(v, 0)),
    MetricRow("open_trades", "Trades open at the end", lambda v: plain(v, 0)),
    MetricRow("fees_paid", "Fees paid ($)", level),
    MetricRow("n_days", "Days", lambda v: plain(v, 0)),
)


class _Rows(QAbstractTableModel):
    """A read-only table over a tuple of rows; subclasses name the columns and format a cell."""

    columns: tuple[str, ...] = ()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: tuple[Any, ...] = ()

    def set_rows(self, rows: Sequence[Any]) -> None:
        self.beginResetModel()
        self.rows = tuple(rows)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _INDEX) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _INDEX) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal \
                and 0 <= section < len(self.columns):
            return self.columns[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        return self.cell(self.rows[index.row()], index.column(), role)

    def cell(self, row: Any, column: int, role: int) -> Any:
        raise NotImplementedError


class MetricsModel(_Rows):
    """The summary: one metric per row, its value formatted in its unit, green when good and red when bad."""

    columns = ("Metric", "Value")

    def set_metrics(self, metrics: Mapping[str, Any] | None) -> None:
        values = dict(metrics or {})
        self.set_rows([(spec, values.get(spec.key, math.nan), values) for spec in METRIC_ROWS] if values else [])

    def cell(self, row: Any, column: int, role: int) -> Any:
        spec, value, values = row
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return spec.label
            if spec.key == "n_trades":
                return f"{plain(value, 0)} ({plain(values.get('n_wins'), 0)} / {plain(values.get('n_losses'), 0)})"
            return spec.fmt(value)
        if role == Qt.ItemDataRole.ForegroundRole and column == 1:
            verdict = spec.judge(value)
            return GOOD if verdict > 0 else BAD if verdict < 0 else None
        if role == Qt.ItemDataRole.TextAlignmentRole and column == 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def text(self, key: str) -> str:
        """The shown value of metric ``key`` ("" when not shown)."""
        for i, (spec, _, _) in enumerate(self.rows):
            if spec.key == key:
                return str(self.data(self.index(i, 1)))
        return ""


def legs_text(legs: Sequence[tuple[str, str, float, str, int]]) -> str:
    """"-1 SPXW 2024-03-20 5600P, +1 ... 5575P"."""
    return ", ".join(f"{ratio:+d} {root} {expiry} {strike:g}{right}" for root, expiry, strike, right, ratio in legs)


class TradesModel(_Rows):
    """Every trade of the run, in opening order; P&L green / red."""

    # the legs last: the longest text, it must not push the P&L off a narrow dock
    columns = ("#", "Entry", "Exit", "Exit reason", "Side", "Entry px", "Exit px", "Qty", "P&L ($)", "Fees ($)",
               "Legs")
    PNL = 8

    def cell(self, row: Any, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return (str(row.trade_id), et_time(row.entry_ns), et_time(row.exit_ns), row.exit_reason, row.side,
                    f"{row.entry_price:.2f}", f"{row.exit_price:.2f}", str(row.quantity), usd(row.pnl),
                    f"{row.fees:,.2f}", legs_text(row.legs))[column]
        if role == Qt.ItemDataRole.ForegroundRole and column == self.PNL:
            return GOOD if row.pnl > 0 else BAD if row.pnl < 0 else None
        if role == Qt.ItemDataRole.TextAlignmentRole and 5 <= column <= 9:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and column == 10:
            return legs_text(row.legs)
        return None


class DecisionsModel(_Rows):
    """The run's decisions (TRADE, SKIP with its reasons, ...), filtered by action and by text."""

    columns = ("Time", "Strategy", "Action", "Reason")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.all: tuple[Any, ...] = ()
        self.action = ""
        self.needle = ""

    def set_decisions(self, decisions: Sequence[Any]) -> None:
        self.all = tuple(decisions)
        self._apply()

    def set_filter(self, action: str = "", text: str = "") -> None:
        """Only ``action`` ("" = every action) and reasons containing ``text`` (case-insensitive)."""
        self.action, self.needle = action, text.strip().lower()
        self._apply()

    def actions(self) -> list[str]:
        return sorted({str(d.action) for d in self.all})

    def _apply(self) -> None:
        self.set_rows([d for d in self.all if (not self.action or str(d.action) == self.action)
                       and (not self.needle or self.needle in " ".join(d.reasons).lower())])

    def cell(self, row: Any, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            reason = "; ".join(row.reasons)
            return (et_time(row.time_ns), row.strategy, str(row.action), reason)[column]
        if role == Qt.ItemDataRole.ToolTipRole and column == 3:
            return "\n".join(row.reasons)
        if role == Qt.ItemDataRole.ForegroundRole and column == 2:
            return GOOD if str(row.action) == "TRADE" else QColor("#ff9f0a") if str(row.action) == "SKIP" else None
        return None


@dataclass(frozen=True)
class RunRow:
    """A run that can be compared: its id, name, when, its metrics, and how to get its equity."""

    run_id: int
    name: str
    created_ns: int
    metrics: Mapping[str, Any]
    load_equity: Callable[[], Any]


class RunsModel(_Rows):
    """The stored runs with a check box each (the checked ones are overlaid)."""

    columns = ("Run", "Return", "Sharpe", "Max DD", "Trades", "Name", "Created")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.checked: set[int] = set()

    def set_runs(self, runs: Sequence[RunRow]) -> None:
        self.checked &= {r.run_id for r in runs}
        self.set_rows(runs)

    def checked_runs(self) -> list[RunRow]:
        return [r for r in self.rows if r.run_id in self.checked]

    def set_checked(self, run_id: int, on: bool) -> None:
        for i, r in enumerate(self.rows):
            if r.run_id == run_id:
                self.setData(self.index(i, 0), Qt.CheckState.Checked if on else Qt.CheckState.Unchecked,
                             Qt.ItemDataRole.CheckStateRole)

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsUserCheckable if index.isValid() and index.column() == 0 else base

    def setData(self, index: QModelIndex | QPersistentModelIndex, value: Any,
                role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or index.column() != 0 or role != Qt.ItemDataRole.CheckStateRole:
            return False
        run_id = self.rows[index.row()].run_id
        on = Qt.CheckState(value) == Qt.CheckState.Checked if not isinstance(value, bool) else value
        (self.checked.add if on else self.checked.discard)(run_id)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.CheckStateRole])
        return True

    def cell(self, row: Any, column: int, role: int) -> Any:
        m = row.metrics
        if role == Qt.ItemDataRole.CheckStateRole and column == 0:
            return Qt.CheckState.Checked if row.run_id in self.checked else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.DisplayRole:
            return (str(row.run_id), pct(m.get("total_return")), plain(m.get("sharpe")),
                    pct(-_num(m.get("max_drawdown"))), plain(m.get("n_trades"), 0), row.name,
                    et_time(row.created_ns))[column]
        if role == Qt.ItemDataRole.TextAlignmentRole and 1 <= column <= 4:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class CompareModel(_Rows):
    """Metrics (rows) of the checked runs (columns)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.runs: tuple[RunRow, ...] = ()

    def set_runs(self, runs: Sequence[RunRow]) -> None:
        self.beginResetModel()
        self.runs = tuple(runs)
        # short headers ("Run #2"): a long run name would push the figures out of sight (the tooltip has it)
        self.columns = ("Metric", *(f"Run #{r.run_id}" for r in self.runs))
        self.rows = METRIC_ROWS if self.runs else ()
        self.endResetModel()

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.ToolTipRole and orientation == Qt.Orientation.Horizontal \
                and 1 <= section <= len(self.runs):
            return self.runs[section - 1].name
        return super().headerData(section, orientation, role)

    def cell(self, row: Any, column: int, role: int) -> Any:
        if column == 0:
            return row.label if role == Qt.ItemDataRole.DisplayRole else None
        value = self.runs[column - 1].metrics.get(row.key, math.nan)
        if role == Qt.ItemDataRole.DisplayRole:
            return row.fmt(value)
        if role == Qt.ItemDataRole.ForegroundRole:
            verdict = row.judge(value)
            return GOOD if verdict > 0 else BAD if verdict < 0 else None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class SweepModel(_Rows):
    """A sweep's points: the grid keys' values, the chosen metrics, the stored run id, the error if any."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.keys: tuple[str, ...] = ()
        self.metrics: tuple[str, ...] = ()

    def set_result(self, result: Any, metrics: Sequence[str]) -> None:
        self.beginResetModel()
        self.keys = tuple(result.grid)
        self.metrics = tuple(metrics)
        self.columns = (*(k.rpartition(".")[2] for k in self.keys), *self.metrics, "run", "error")
        self.rows = tuple(result.rows)
        self.endResetModel()

    def cell(self, row: Any, column: int, role: int) -> Any:
        keys, metrics = self.keys, self.metrics
        if role == Qt.ItemDataRole.DisplayRole:
            if column < len(keys):
                return str(row.params.get(keys[column]))
            column -= len(keys)
            if column < len(metrics):
                return _metric_text(metrics[column], row.value(metrics[column])) if row.error is None else ""
            return (str(row.run_id) if row.run_id is not None else "—", row.error or "")[column - len(metrics)]
        if role == Qt.ItemDataRole.TextAlignmentRole and len(keys) <= column < len(keys) + len(metrics) + 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def _metric_text(key: str, value: float) -> str:
    spec = next((m for m in METRIC_ROWS if m.key == key), None)
    return spec.fmt(value) if spec is not None else plain(value, 3)
