"""Heat maps of a backtest: monthly returns (year x month + the year's total) and a sweep's metric over two
parameters. Both are tables of coloured, labelled cells on :class:`~app.widgets.heat_map.HeatMap` (its view
and sizing) with its red -> white -> green scale (:func:`~app.widgets.heat_map.pnl_color`):

* :class:`MonthlyHeatMap` - each month's return in percent, coloured around 0 (losses red, gains green) on the
  largest absolute month; the "Year" column compounds the year's months and has its own scale (a year's total
  would otherwise wash every month out to white).
* :class:`SweepHeatMap` - one metric per grid point; colours run from the grid's worst (red) to its best
  (green) value, centred at 0 when the values straddle it (a negative Sharpe is red whatever the grid);
  a colour bar gives the scale; the best cell is outlined; a point without a value (a failed run) is grey "n/a".

The cell texts and colours are computed once per update; the model's ``data()`` only looks them up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    Qt,
)
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from app.widgets.backtest_common import NO_DATA, PngExport, fmt_money, fmt_pct
from app.widgets.color_bar import ColorBar
from app.widgets.heat_map import HeatMap, pnl_color
from spx_core.backtest.sweep import (
    LOWER_IS_BETTER,  # the sweep's ranking: the outlined cell is its best row
)

__all__ = ["LOWER_IS_BETTER", "OUTLINE_ROLE", "CellGridModel", "MonthlyHeatMap", "SweepHeatMap", "metric_format"]

OUTLINE_ROLE = int(Qt.ItemDataRole.UserRole) + 1
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_PERCENT = frozenset({"total_return", "cagr", "volatility", "max_drawdown", "win_rate", "var95", "es95", "exposure",
                      "peak_margin_use"})
_DOLLARS = frozenset({"max_drawdown_usd", "expectancy", "average_win", "average_loss", "largest_loss", "var95_usd",
                      "es95_usd", "peak_margin", "fees_paid", "starting_cash", "ending_equity"})
_COUNTS = frozenset({"n_trades", "n_wins", "n_losses", "open_trades", "n_days"})
DIVERGING = pg.ColorMap([0.0, 0.5, 1.0], [pnl_color(-1.0, 1.0), pnl_color(0.0, 1.0), pnl_color(1.0, 1.0)])


def metric_format(metric: str) -> Callable[[float], str]:
    """How a :class:`~spx_core.backtest.metrics.Metrics` field reads: fractions in percent, dollars, days,
    counts, ratios to two decimals; NaN "n/a", inf "∞"."""
    if metric in _PERCENT:
        return lambda v: fmt_pct(v, sign=metric in ("total_return", "cagr"))
    if metric in _DOLLARS:
        return lambda v: fmt_money(v) if math.isfinite(v) or math.isnan(v) else _inf(v)
    if metric in _COUNTS:
        return lambda v: f"{v:.0f}" if math.isfinite(v) else ("n/a" if math.isnan(v) else _inf(v))
    suffix = " d" if metric.endswith("_days") else ""
    return lambda v: f"{v + 0.0:.2f}{suffix}" if math.isfinite(v) else ("n/a" if math.isnan(v) else _inf(v))


def _inf(v: float) -> str:
    return "\u221e" if v > 0 else "-\u221e"


def _text_colour(background: QColor) -> QColor:
    """Black on light cells, white on deep ones (relative luminance)."""
    lum = 0.2126 * background.redF() + 0.7152 * background.greenF() + 0.0722 * background.blueF()
    return QColor(Qt.GlobalColor.black if lum > 0.45 else Qt.GlobalColor.white)


class CellGridModel(QAbstractTableModel):
    """A grid of ready-made cells: value, text, background, tooltip; one cell may be outlined (:data:`OUTLINE_ROLE`)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._values = np.zeros((0, 0))
        self._rows: tuple[str, ...] = ()
        self._cols: tuple[str, ...] = ()
        self._texts: list[list[str]] = []
        self._colours: list[list[QColor]] = []
        self._tips: list[list[str]] = []
        self._outline: tuple[int, int] | None = None

    def set_cells(self, values: np.ndarray, rows: Sequence[str], cols: Sequence[str], texts: list[list[str]],
                  colours: list[list[QColor]], tips: list[list[str]], outline: tuple[int, int] | None = None) -> None:
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(rows), len(cols)):
            raise ValueError(f"heat map values {values.shape} do not match {len(rows)} rows and {len(cols)} columns")
        self.beginResetModel()
        self._values, self._rows, self._cols = values, tuple(rows), tuple(cols)
        self._texts, self._colours, self._tips, self._outline = texts, colours, tips, outline
        self.endResetModel()

    def clear(self) -> None:
        self.set_cells(np.zeros((0, 0)), (), (), [], [], [])

    def value(self, row: int, col: int) -> float:
        return float(self._values[row, col])

    def text(self, row: int, col: int) -> str:
        return self._texts[row][col]

    def colour(self, row: int, col: int) -> QColor:
        return QColor(self._colours[row][col])

    @property
    def outline(self) -> tuple[int, int] | None:
        return self._outline

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._cols)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        return self._cols[section] if orientation == Qt.Orientation.Horizontal else self._rows[section]

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._texts[r][c]
        if role == Qt.ItemDataRole.BackgroundRole:
            return self._colours[r][c]
        if role == Qt.ItemDataRole.ForegroundRole:
            return _text_colour(self._colours[r][c])
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tips[r][c]
        if role == OUTLINE_ROLE:
            return self._outline == (r, c)
        return None


class _OutlineDelegate(QStyledItemDelegate):
    """Paints the cell, then a dark frame with a white inner line round the outlined one (visible on any colour),
    its text bold."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        if not index.data(OUTLINE_ROLE):
            super().paint(painter, option, index)
            return
        option.font.setBold(True)
        super().paint(painter, option, index)
        painter.save()
        rect: QRect = option.rect
        painter.setPen(QPen(QColor("#111111"), 3))
        painter.drawRect(rect.adjusted(1, 1, -2, -2))
        painter.setPen(QPen(QColor("#ffffff"), 1))
        painter.drawRect(rect.adjusted(3, 3, -4, -4))
        painter.restore()


class _CellHeatMap(PngExport, HeatMap):
    """A :class:`HeatMap` on a :class:`CellGridModel`, with a "no data" line in place of an empty table."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.model = CellGridModel(self)
        self.view.setModel(self.model)
        self.view.setItemDelegate(_OutlineDelegate(self.view))
        self.view.horizontalHeader().setMinimumSectionSize(self.fontMetrics().horizontalAdvance("-88.8%") + 10)
        self.message = QLabel(NO_DATA)
        self.message.setObjectName("heat_map_message")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.layout().addWidget(self.message, 1)

    def _show_table(self, shown: bool, reason: str = NO_DATA) -> None:
        self.view.setVisible(shown)
        self.message.setVisible(not shown)
        self.message.setText(reason)

    @property
    def message_text(self) -> str:
        return self.message.text() if self.message.isVisibleTo(self) else ""


class MonthlyHeatMap(_CellHeatMap):
    """Monthly returns (see the module docstring); :meth:`set_returns` takes ``metrics.monthly_returns``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Monthly returns (% of the account at the month's start; Year compounds its months)",
                         parent)
        self.setObjectName("backtest_monthly_heat_map")
        self.clear()

    def set_returns(self, table: pd.DataFrame | None) -> None:
        """Years as rows, months 1..12 as columns, fractions (NaN: no data that month)."""
        if table is None or table.empty:
            self.clear()
            return
        months = table.reindex(columns=range(1, 13)).to_numpy(dtype=np.float64, na_value=np.nan)
        years = [str(y) for y in table.index]
        with np.errstate(invalid="ignore"):
            growth = np.where(np.isnan(months), 1.0, 1.0 + months)
            total = np.where(np.isnan(months).all(axis=1), np.nan, np.prod(growth, axis=1) - 1.0)
        values = np.column_stack([months, total])
        # a year's scale never below the months': one near-flat year must not glow as deep as a real loss
        month_scale = _abs_max(months)
        year_scale = _abs_max(np.array([_abs_max(total), month_scale]))
        texts, colours, tips = [], [], []
        for r, year in enumerate(years):
            texts.append([_cell_pct(v) for v in values[r]])
            colours.append([pnl_color(_clip(v, month_scale), month_scale) for v in months[r]]
                           + [pnl_color(_clip(total[r], year_scale), year_scale)])
            tips.append([f"{year} {m}: {fmt_pct(v, digits=2)}" for m, v in zip(MONTHS, months[r], strict=True)]
                        + [f"{year} total (compounded): {fmt_pct(total[r], digits=2)}"])
        self.model.set_cells(values, years, [*MONTHS, "Year"], texts, colours, tips)
        self._show_table(True)

    def clear(self, reason: str = NO_DATA) -> None:
        self.model.clear()
        self._show_table(False, reason)


def _cell_pct(value: float) -> str:
    """A cell's percent: one decimal, two when one would round a non-zero return to "0.0%" (never "-0.0%")."""
    if math.isfinite(value) and value != 0 and abs(value) < 0.0005:
        return fmt_pct(value, digits=2)
    return fmt_pct(value, digits=1)


def _abs_max(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size else math.nan


def _clip(value: float, scale: float) -> float:
    """An infinite value drawn at full colour (pnl_color greys anything non-finite, which is for NaN only)."""
    if math.isinf(value) and math.isfinite(scale):
        return math.copysign(scale if scale > 0 else 1.0, value)
    return value


class SweepHeatMap(_CellHeatMap):
    """A metric over two swept parameters (see the module docstring)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Sweep", parent)
        self.setObjectName("backtest_sweep_heat_map")
        self.color_bar = ColorBar(DIVERGING, "")
        layout = self.layout()
        layout.removeWidget(self.view)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.view, 1)
        row.addWidget(self.color_bar)
        layout.insertLayout(1, row, 1)
        self.metric_name = ""
        self.best: tuple[Any, Any] | None = None  # (row value, column value) of the outlined cell
        self.clear()

    def set_table(self, table: pd.DataFrame | None, metric: str, *, higher_is_better: bool | None = None,
                  row_name: str | None = None, col_name: str | None = None) -> None:
        """``table``: the metric with one parameter's values as the index (rows) and the other's as columns
        (``SweepResult.heat_map``); names default to the index's and columns' names. ``higher_is_better``
        defaults to the metric's sense (``spx_core.backtest.sweep.LOWER_IS_BETTER``, as ``SweepResult.best``)."""
        self.metric_name = metric
        if table is None or table.empty:
            self.clear()
            return
        better = metric not in LOWER_IS_BETTER if higher_is_better is None else higher_is_better
        values = table.to_numpy(dtype=np.float64, na_value=np.nan)
        rows, cols = [_param(v) for v in table.index], [_param(v) for v in table.columns]
        row_name = row_name or str(table.index.name or "rows")
        col_name = col_name or str(table.columns.name or "columns")
        fmt = metric_format(metric)
        position = _positions(values, better)
        colours = [[DIVERGING.map(float(p), mode="qcolor") if np.isfinite(p) else pnl_color(math.nan, 1.0)
                    for p in row] for row in position]
        texts = [[fmt(float(v)) for v in row] for row in values]
        tips = [[f"{row_name} {rows[r]}, {col_name} {cols[c]}: {metric} {texts[r][c]}" for c in range(len(cols))]
                for r in range(len(rows))]
        best = _best(values, better)
        self.best = None if best is None else (table.index[best[0]], table.columns[best[1]])
        self.model.set_cells(values, rows, cols, texts, colours, tips, best)
        sense = "higher" if better else "lower"
        self.title.setText(f"{metric} by {row_name} (rows) and {col_name} (columns); {sense} is better, "
                           f"best outlined" + ("" if best is not None else "; no run has a value"))
        self.color_bar.title = metric
        self.color_bar.set_ticks(_bar_ticks(values, position, fmt))
        self.color_bar.setVisible(best is not None)
        self._show_table(True)

    def clear(self, reason: str = NO_DATA) -> None:
        self.model.clear()
        self.best = None
        self.title.setText(f"Sweep{': ' + self.metric_name if self.metric_name else ''}")
        self.color_bar.setVisible(False)
        self._show_table(False, reason)


def _param(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float | np.floating) else str(value)


def _positions(values: np.ndarray, better: bool) -> np.ndarray:
    """Each value's place on the diverging scale, 0 (worst, red) .. 1 (best, green); NaN stays NaN. The centre
    is 0 when the finite values straddle it, else their midpoint; infinities sit at the ends."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        out = np.full(values.shape, np.nan)
        out[np.isposinf(values)] = 1.0 if better else 0.0
        out[np.isneginf(values)] = 0.0 if better else 1.0
        return out
    lo, hi = float(finite.min()), float(finite.max())
    centre = 0.0 if lo <= 0.0 <= hi else (lo + hi) / 2.0
    scale = max(hi - centre, centre - lo)
    sign = 1.0 if better else -1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = (values - centre) / scale if scale > 0 else np.sign(values - centre)  # one value: white
    return np.clip(0.5 + 0.5 * sign * rel, 0.0, 1.0)


def _best(values: np.ndarray, better: bool) -> tuple[int, int] | None:
    """The best cell (first in row order on ties); None when every value is NaN."""
    ranked = np.where(np.isnan(values), -np.inf if better else np.inf, values)
    if np.isnan(values).all():
        return None
    flat = int(np.argmax(ranked) if better else np.argmin(ranked))
    return divmod(flat, values.shape[1])


def _bar_ticks(values: np.ndarray, position: np.ndarray, fmt: Callable[[float], str]) -> list[tuple[float, str]]:
    """Colour-bar ticks: the grid's lowest and highest finite values and 0 (when inside), where they sit."""
    finite = np.isfinite(values)
    if not finite.any():
        return []
    v, p = values[finite], position[finite]
    ticks = {float(p[np.argmin(v)]): fmt(float(v.min())), float(p[np.argmax(v)]): fmt(float(v.max()))}
    if v.min() < 0.0 < v.max():
        ticks[0.5] = fmt(0.0)
    return sorted(ticks.items())
