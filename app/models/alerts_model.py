"""The Alerts panel's table: one row per stored alert (a repeat of an open one bumps its count, not a new row).

Severity is said three ways, so colour is never the only cue: a symbol and the word ("✖ CRITICAL",
"▲ WARNING", "● INFO") and its colour; an unacknowledged row is bold. Times are the market clock in US/Eastern.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from spx_core.domain.calendar import ET, UTC

__all__ = ["ALERT_COLUMNS", "SEVERITY_COLORS", "AlertsModel", "et_time", "severity_rank", "severity_text",
           "worst_severity"]

ALERT_COLUMNS = ("Severity", "Time (ET)", "Rule", "Message", "Count", "Acknowledged")
#: Severity -> colour (readable on the dark and the light theme).
SEVERITY_COLORS = {"critical": "#ff453a", "warning": "#ff9f0a", "info": "#64a8ff"}
_SYMBOLS = {"critical": "✖", "warning": "▲", "info": "●"}
_RANK = {"info": 0, "warning": 1, "critical": 2}


def severity_rank(severity: object) -> int:
    return _RANK.get(str(getattr(severity, "value", severity)), 0)


def severity_text(severity: object) -> str:
    """"✖ CRITICAL", "▲ WARNING", "● INFO"."""
    name = str(getattr(severity, "value", severity))
    return f"{_SYMBOLS.get(name, '●')} {name.upper()}"


def worst_severity(alerts: Sequence[Any]) -> str | None:
    """The most severe of ``alerts`` ("critical" / "warning" / "info"), None when empty."""
    if not alerts:
        return None
    return str(getattr(s := max((a.severity for a in alerts), key=severity_rank), "value", s))


def et_time(time_ns: int | None, *, with_day: bool = False) -> str:
    if not time_ns:
        return ""
    when = datetime.fromtimestamp(time_ns / 1e9, UTC).astimezone(ET)
    return when.strftime("%a %d %b %H:%M:%S" if with_day else "%H:%M:%S")


class AlertsModel(QAbstractTableModel):
    """Rows: alerts newest first (as the repository's ``recent`` returns them)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._alerts: list[Any] = []

    def set_alerts(self, alerts: Sequence[Any]) -> None:
        self.beginResetModel()
        self._alerts = list(alerts)
        self.endResetModel()

    def alert_at(self, row: int) -> Any | None:
        return self._alerts[row] if 0 <= row < len(self._alerts) else None

    def row_of(self, alert_id: int) -> int:
        return next((i for i, a in enumerate(self._alerts) if a.id == alert_id), -1)

    @property
    def alerts(self) -> tuple[Any, ...]:
        return tuple(self._alerts)

    def open_count(self) -> int:
        return sum(1 for a in self._alerts if not a.acknowledged_ns)

    # --- Qt ------------------------------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._alerts)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(ALERT_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return ALERT_COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        alert = self.alert_at(index.row()) if index.isValid() else None
        if alert is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(alert, col)
        if role == Qt.ItemDataRole.ForegroundRole and col == 0:
            return QBrush(QColor(SEVERITY_COLORS.get(str(getattr(alert.severity, "value", alert.severity)),
                                                     "#64a8ff")))
        if role == Qt.ItemDataRole.FontRole and not alert.acknowledged_ns:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"{severity_text(alert.severity)} {alert.rule}: {alert.message}\nfirst {et_time(alert.first_ns, with_day=True)}"
                    f" ET, last {et_time(alert.last_ns, with_day=True)} ET, {alert.count}x")
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 4:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    @staticmethod
    def _text(alert: Any, col: int) -> str:
        if col == 0:
            return severity_text(alert.severity)
        if col == 1:
            return et_time(alert.last_ns)
        if col == 2:
            return str(alert.rule)
        if col == 3:
            return str(alert.message)
        if col == 4:
            return str(alert.count)
        return et_time(alert.acknowledged_ns) if alert.acknowledged_ns else "open"
