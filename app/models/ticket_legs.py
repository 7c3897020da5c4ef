"""The order ticket's legs table: one row per leg with what the order does with it and its live quote.

A read-only ``QAbstractTableModel`` over the ticket's :class:`~app.models.ticket_model.LegLine` tuple:
``set_lines`` resets the model when the legs change and emits one ``dataChanged`` over the quote columns
when only the quotes moved. Prices are index points per contract; "–" where absent.
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from app.models.builder_model import contract_text
from app.models.ticket_model import LegLine
from spx_core.execution.orders import Side

__all__ = ["TicketColumn", "TicketLegsModel"]


class TicketColumn(IntEnum):
    SIDE = 0
    RATIO = 1
    CONTRACT = 2
    BID = 3
    ASK = 4
    MID = 5
    NOTE = 6


_HEADERS = ("Side", "Ratio", "Contract", "Bid", "Ask", "Mid", "Quote")
_TIPS = ("What the order does with this leg", "Contracts of this leg per unit of the order",
         "The option (root, expiry, strike, right)", "Option bid (index points)", "Option ask (index points)",
         "Option mid (index points)", "Why a leg's quote is doubtful or unusable")
_NUMERIC = {TicketColumn.RATIO, TicketColumn.BID, TicketColumn.ASK, TicketColumn.MID}
_BUY, _SELL, _WARN = QColor(40, 170, 90), QColor(225, 75, 75), QColor(230, 150, 20)


class TicketLegsModel(QAbstractTableModel):
    """The ticket's legs (read-only)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._lines: tuple[LegLine, ...] = ()

    @property
    def lines(self) -> tuple[LegLine, ...]:
        return self._lines

    def set_lines(self, lines: tuple[LegLine, ...]) -> None:
        lines = tuple(lines)
        if [(x.contract, x.ratio, x.side) for x in lines] != [(x.contract, x.ratio, x.side) for x in self._lines]:
            self.beginResetModel()
            self._lines = lines
            self.endResetModel()
        elif lines != self._lines:
            self._lines = lines
            self.dataChanged.emit(self.index(0, TicketColumn.BID), self.index(len(lines) - 1, TicketColumn.NOTE))

    def has_notes(self) -> bool:
        return any(line.note for line in self._lines)

    # --- Qt model interface ----------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._lines)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(TicketColumn)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(TicketColumn):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return _HEADERS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return _TIPS[section]
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._lines):
            return None
        line, col = self._lines[index.row()], TicketColumn(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return _display(line, col)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            horizontal = Qt.AlignmentFlag.AlignRight if col in _NUMERIC else Qt.AlignmentFlag.AlignLeft
            return int(horizontal | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == TicketColumn.SIDE:
                return QBrush(_BUY if line.side is Side.BUY else _SELL)
            return QBrush(_WARN) if col == TicketColumn.NOTE else None
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == TicketColumn.CONTRACT:
                return f"{line.contract} (OCC {line.contract.occ_symbol})"
            return line.note or None if col == TicketColumn.NOTE else _TIPS[col]
        return None


def _display(line: LegLine, col: TicketColumn) -> str:
    if col == TicketColumn.SIDE:
        return "Buy" if line.side is Side.BUY else "Sell"
    if col == TicketColumn.RATIO:
        return f"{abs(line.ratio)}"
    if col == TicketColumn.CONTRACT:
        return contract_text(line.contract)
    if col == TicketColumn.NOTE:
        return line.note or "ok"
    value = {TicketColumn.BID: line.bid, TicketColumn.ASK: line.ask, TicketColumn.MID: line.mid}[col]
    return f"{value:.2f}" if math.isfinite(value) else "–"
