"""SkewTableModel: one row per fitted expiry (ATM IV, 25-delta RR/BF, skew, forward, fit quality, arbitrage).

The fitted surface arrives at most once a second; :meth:`SkewTableModel.set_surface` turns it into
plain numpy columns once, and ``data()`` only formats. Same expiries as before -> one
``dataChanged`` over the table; a different expiry list -> a model reset.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from spx_core.domain.contracts import settlement_for_root

__all__ = ["SkewTableModel", "SKEW_COLUMNS", "KEY_COLUMNS"]

#: (header, tooltip) per column. What a trader reads first comes first: in a narrow panel the table
#: scrolls sideways and these stay in view.
SKEW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Expiry", "expiry date and root (SPXW: PM-settled, SPX: AM-settled)"),
    ("DTE", "calendar days to expiry"),
    ("ATM IV", "fitted implied vol at the forward (%)"),
    ("RR25", "25-delta risk reversal: call IV - put IV (vol points)"),
    ("BF25", "25-delta butterfly: (call IV + put IV)/2 - ATM IV (vol points)"),
    ("Skew", "dIV/dk at the forward (vol points per 10% of log-moneyness)"),
    ("Forward", "forward implied from put-call parity (index points)"),
    ("RMSE", "fit RMSE against market mid IVs (vol points)"),
    ("In band", "share of two-sided quotes whose fitted IV lies within the bid/ask IV band"),
    ("Mkt arb", "static arbitrage found in the market quotes themselves"),
    ("Fit arb", "arbitrage left in the fitted slice (butterfly g(k) < 0, calendar)"),
)
#: The columns that must stay visible without scrolling (Expiry .. BF25).
KEY_COLUMNS = 5
_NUM = {1: "{:.0f}", 2: "{:.2f}%", 3: "{:+.2f}", 4: "{:+.2f}", 5: "{:+.2f}", 6: "{:,.2f}", 7: "{:.2f}",
        8: "{:.0%}"}
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


def _arb_text(report: Any) -> str:
    names = report.flags.names() if report is not None else []
    return ", ".join(names) if names else "–"


def _arb_tip(report: Any) -> str:
    if report is None:
        return ""
    return (f"vertical {report.vertical}, butterfly {report.butterfly}, calendar {report.calendar} violations; "
            f"worst {report.worst:.4g}; on mids {report.mid_violations}")


class SkewTableModel(QAbstractTableModel):
    """Rows of a :class:`spx_core.surface.VolSurface`: fitted expiries only, in time order."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._keys: list[tuple[Any, date]] = []
        self._labels: list[str] = []
        self._values = np.zeros((0, len(SKEW_COLUMNS)))
        self._arb: list[tuple[Any, Any]] = []
        self._status: list[str] = []
        self._warn = QBrush(QColor(230, 150, 20, 90))
        self._bad = QBrush(QColor(235, 64, 64, 90))

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._keys)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(SKEW_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(SKEW_COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return SKEW_COLUMNS[section][0]
        if role == Qt.ItemDataRole.ToolTipRole:
            return SKEW_COLUMNS[section][1]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if c == 0:
                return self._labels[r]
            if c >= 9:
                return _arb_text(self._arb[r][c - 9])
            v = float(self._values[r, c])
            return "–" if v != v else _NUM[c].format(v)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter if c == 0 else _RIGHT
        if role == Qt.ItemDataRole.BackgroundRole and c >= 9:
            report = self._arb[r][c - 9]
            if report is not None and report.flags:
                return self._warn if c == 9 else self._bad
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            if c >= 9:
                return _arb_tip(self._arb[r][c - 9])
            return self._status[r] if c == 0 else SKEW_COLUMNS[c][1]
        return None

    def set_surface(self, surface: Any, *, today: date) -> None:
        """Show the fitted expiries of ``surface`` (a ``VolSurface``); ``today`` is the ET trade date."""
        fits = sorted((f for f in surface.expiries if f.fitted), key=lambda f: (f.t, f.root.value))
        keys = [(f.root, f.expiry) for f in fits]
        values = np.array([[np.nan, (f.expiry - today).days, 100 * f.atm_iv, 100 * f.rr25, 100 * f.bf25,
                            10 * f.skew, f.forward, f.rmse_volpts, f.in_band_share, np.nan, np.nan]
                           for f in fits], dtype=np.float64).reshape(-1, len(SKEW_COLUMNS))
        # short enough that the key columns fit a narrow panel; settlement is in the tooltip
        labels = [f"{f.expiry:%d %b %y} {f.root.value}" for f in fits]
        arb = [(f.market_arb, f.fit_arb) for f in fits]
        status = [f"{f.expiry:%a %Y-%m-%d} {f.root.value}, {settlement_for_root(f.root).value}-settled" for f in fits]
        if keys == self._keys:
            self._values, self._labels, self._arb, self._status = values, labels, arb, status
            if keys:
                self.dataChanged.emit(self.index(0, 0), self.index(len(keys) - 1, len(SKEW_COLUMNS) - 1), [])
            return
        self.beginResetModel()
        self._keys, self._values, self._labels, self._arb, self._status = keys, values, labels, arb, status
        self.endResetModel()

    def key_at(self, row: int) -> tuple[Any, date] | None:
        return self._keys[row] if 0 <= row < len(self._keys) else None

