"""The Automation panel's tables: the strategies (on/off, mode, next entry), today's decisions with their reasons,
and the day's summary per strategy.

The action says itself in words and colour ("TRADE" green, "SKIP" grey); times are the market clock in US/Eastern.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor

from app.models.alerts_model import et_time

__all__ = ["DECISION_COLUMNS", "STRATEGY_COLUMNS", "SUMMARY_COLUMNS", "DecisionsModel", "StrategiesModel",
           "SummaryModel"]

STRATEGY_COLUMNS = ("On", "Strategy", "Mode", "Next entry (ET)", "Limit profile", "Structure")
DECISION_COLUMNS = ("Time (ET)", "Strategy", "Action", "Reasons", "Order")
SUMMARY_COLUMNS = ("Strategy", "Opened", "Closed", "Wins", "Losses", "Realized P&L", "Fees", "Skips")
_ACTION_COLORS = {"TRADE": "#30d158", "SKIP": "#9a9a9a"}
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

Index = QModelIndex | QPersistentModelIndex


class _Table(QAbstractTableModel):
    columns: tuple[str, ...] = ()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []

    def set_rows(self, rows: Sequence[Any]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def row_at(self, row: int) -> Any | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    @property
    def rows(self) -> tuple[Any, ...]:
        return tuple(self._rows)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.columns[section]
        return None


class StrategiesModel(_Table):
    """Rows: ``StoredStrategy`` (config, enabled, mode) with its next entry; "On" is a checkbox.

    Events: toggled(str, bool): the user ticked / unticked a strategy (the panel stores it).
    """

    columns = STRATEGY_COLUMNS
    toggled = Signal(str, bool)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._next: dict[str, int | None] = {}

    def set_strategies(self, strategies: Sequence[Any], next_entry: dict[str, int | None]) -> None:
        self._next = dict(next_entry)
        self.set_rows(strategies)

    def row_of(self, name: str) -> int:
        return next((i for i, s in enumerate(self._rows) if s.config.name == name), -1)

    def flags(self, index: Index) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsUserCheckable if index.column() == 0 else base

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        stored = self.row_at(index.row()) if index.isValid() else None
        if stored is None:
            return None
        col, config = index.column(), stored.config
        if role == Qt.ItemDataRole.CheckStateRole and col == 0:
            return Qt.CheckState.Checked if stored.enabled else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return "on" if stored.enabled else "off"
            if col == 1:
                return config.name
            if col == 2:
                return str(getattr(stored.mode, "value", stored.mode))
            if col == 3:
                nxt = self._next.get(config.name)
                return et_time(nxt, with_day=True)[:-3] if nxt else "-"
            if col == 4:
                return config.limit_profile or "-"
            return str(getattr(config.structure, "value", config.structure))
        if role == Qt.ItemDataRole.ForegroundRole and col == 2 and str(stored.mode) == "auto":
            return QBrush(QColor("#ff9f0a"))  # auto sends orders by itself: it stands out
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"{config.name}: {'enabled' if stored.enabled else 'disabled'}, {stored.mode} mode "
                    f"(manual: the ticket opens with the order; auto: sent through the pre-trade gate)")
        return None

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        stored = self.row_at(index.row()) if index.isValid() else None
        if stored is None or index.column() != 0 or role != Qt.ItemDataRole.CheckStateRole:
            return False
        on = Qt.CheckState(value) == Qt.CheckState.Checked if not isinstance(value, bool) else value
        self.toggled.emit(stored.config.name, bool(on))
        return True


class DecisionsModel(_Table):
    """Rows: today's ``TradeDecision``s, newest first."""

    columns = DECISION_COLUMNS

    def set_decisions(self, decisions: Sequence[Any]) -> None:
        self.set_rows(list(reversed(list(decisions))))

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        d = self.row_at(index.row()) if index.isValid() else None
        if d is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (et_time(d.time_ns), d.strategy, d.action, "; ".join(d.reasons), d.order_ref or "-")[col]
        if role == Qt.ItemDataRole.ForegroundRole and col == 2:
            return QBrush(QColor(_ACTION_COLORS.get(d.action, "#9a9a9a")))
        if role == Qt.ItemDataRole.ToolTipRole:
            return "\n".join(d.reasons) or d.action
        return None


class SummaryModel(_Table):
    """Rows: ``DailySummary`` (the account first as "All strategies")."""

    columns = SUMMARY_COLUMNS

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        s = self.row_at(index.row()) if index.isValid() else None
        if s is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return s.strategy or "All strategies"
            values = (s.trades_opened, s.trades_closed, s.wins, s.losses, s.realized_pnl, s.fees, s.skips)
            value = values[col - 1]
            if isinstance(value, float):
                return "-" if not math.isfinite(value) else f"{value:,.2f}"
            return str(value)
        if role == Qt.ItemDataRole.TextAlignmentRole and col > 0:
            return _RIGHT
        return None
