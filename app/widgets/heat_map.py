"""Heat map of a P&L matrix as a table of coloured cells: losses red, flat white, gains green, the number in each.

A table rather than an image: every cell keeps its dollar figure readable at any zoom, and a test reads the
same figures the trader does. Colours are scaled by the largest absolute P&L shown, so the worst cell is the
deepest red (or green) whatever the book's size; the text turns white on the deep end so it stays legible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHeaderView, QLabel, QTableView, QVBoxLayout, QWidget

__all__ = ["HeatMap", "HeatMapModel", "pnl_color"]

_LOSS = np.array([215, 48, 39], dtype=np.float64)   # ColorBrewer RdYlGn ends: distinct for most colour vision
_GAIN = np.array([26, 152, 80], dtype=np.float64)
_WHITE = np.array([255, 255, 255], dtype=np.float64)
_NAN = QColor(160, 160, 160)


def pnl_color(value: float, scale: float) -> QColor:
    """Red (loss) -> white (0) -> green (gain), full colour at ``|value| >= scale``; grey when unknown."""
    if not (math.isfinite(value) and math.isfinite(scale)):
        return QColor(_NAN)
    f = 0.0 if scale <= 0 else min(abs(value) / scale, 1.0)
    end = _LOSS if value < 0 else _GAIN
    rgb = _WHITE + (end - _WHITE) * f
    return QColor(*(round(float(c)) for c in rgb))


class HeatMapModel(QAbstractTableModel):
    """``values[row, col]`` (dollars) with row and column labels; the cell colour from :func:`pnl_color`."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._values = np.zeros((0, 0))
        self._rows: tuple[str, ...] = ()
        self._cols: tuple[str, ...] = ()
        self._scale = math.nan

    def set_matrix(self, values: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str]) -> None:
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(row_labels), len(col_labels)):
            raise ValueError(f"heat map values {values.shape} do not match {len(row_labels)} row and "
                             f"{len(col_labels)} column labels")
        self.beginResetModel()
        self._values = values
        self._rows, self._cols = tuple(row_labels), tuple(col_labels)
        finite = np.abs(values[np.isfinite(values)])
        self._scale = float(finite.max()) if finite.size else math.nan
        self.endResetModel()

    def clear(self) -> None:
        self.set_matrix(np.zeros((0, 0)), (), ())

    def value(self, row: int, col: int) -> float:
        return float(self._values[row, col])

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._cols)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        return self._cols[section] if orientation == Qt.Orientation.Horizontal else self._rows[section]

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        v = float(self._values[index.row(), index.column()])
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{round(v) + 0.0:+,.0f}" if math.isfinite(v) else "—"
        if role == Qt.ItemDataRole.BackgroundRole:
            return pnl_color(v, self._scale)
        if role == Qt.ItemDataRole.ForegroundRole:
            deep = math.isfinite(v) and self._scale > 0 and abs(v) / self._scale > 0.55
            return QColor(Qt.GlobalColor.white if deep else Qt.GlobalColor.black)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{self._rows[index.row()]}, {self._cols[index.column()]}: P&L {self.data(index)} $"
        return None


class HeatMap(QWidget):
    """A titled heat-map table; the title names both axes (the headers carry the values)."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = HeatMapModel(self)
        self.title = QLabel(title)
        self.title.setWordWrap(True)
        self.view = QTableView()
        self.view.setObjectName("heat_map")
        self.view.setModel(self.model)
        self.view.setWordWrap(False)
        self.view.setSelectionMode(QTableView.SelectionMode.NoSelection)
        self.view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 4)
        self.view.verticalHeader().setMinimumSectionSize(self.fontMetrics().height() + 2)
        self.view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.view.horizontalHeader().setMinimumSectionSize(self.fontMetrics().horizontalAdvance("-88,888") + 8)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.view, 1)
