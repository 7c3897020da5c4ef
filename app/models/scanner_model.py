"""Table model of the scanner's candidates: one row per candidate, every column with its unit.

The model holds the candidates of the last scan and, per column, one numpy array of sort keys built
when the candidates are set, so sorting is one ``argsort`` and ``data()`` only looks up and formats
(principle 6). Rows keep their candidate through a sort: :meth:`ScannerTableModel.candidate` maps a
view row to it and :meth:`row_of` finds a structure again after a re-scan.

Dollars are per 1 unit of the structure (index points x the 100 multiplier); credits are positive,
debits negative.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

__all__ = ["COLUMNS", "Column", "ScannerTableModel", "strikes_text"]



@dataclass(frozen=True, slots=True)
class Column:
    """A result column: header (with its unit), tooltip, numeric sort key, display text."""

    title: str
    tip: str
    key: Callable[[Any, date], float]
    text: Callable[[Any, date], str]


def strikes_text(structure: Any) -> str:
    """Strikes of the legs, short legs marked: "4975/-5000 P" (one right) or "4900P/-4950P/-5100C/5150C"."""
    legs = sorted(structure.legs, key=lambda leg: (leg.contract.strike, leg.contract.right.value))
    rights = {leg.contract.right.value for leg in legs}
    def one(leg: Any) -> str:
        sign = "-" if leg.ratio < 0 else ""
        ratio = f"{abs(leg.ratio)}x" if abs(leg.ratio) != 1 else ""
        strike = f"{leg.contract.strike:g}"
        return f"{sign}{ratio}{strike}" + ("" if len(rights) == 1 else leg.contract.right.value[0].upper())
    text = "/".join(one(leg) for leg in legs)
    return text + (f" {next(iter(rights))[0].upper()}" if len(rights) == 1 else "")


def _usd(c: Any, points: float) -> float:
    """Index points per unit -> dollars per unit (the primary leg's multiplier: 100 for SPX)."""
    return float(points) * c.structure.legs[0].contract.multiplier


def _money(v: float) -> str:
    if np.isinf(v):
        return "unlimited" if v > 0 else "-unlimited"
    return "" if np.isnan(v) else f"{v:,.0f}"


def _pct(v: float) -> str:
    return "" if not np.isfinite(v) else f"{v * 100:.1f}"


def _num(digits: int) -> Callable[[float], str]:
    return lambda v: "" if not np.isfinite(v) else f"{v:,.{digits}f}"


def _col(title: str, tip: str, key: Callable[[Any, date], float], fmt: Callable[[float], str]) -> Column:
    return Column(title, tip, key, lambda c, today: fmt(key(c, today)))


#: The columns, left to right: what a trader decides on (expiry, strikes, credit, POP, EV, score) first, so
#: they stay on screen in a 1280 px window; the detail scrolls. Headers are two lines: name, then unit.
COLUMNS: tuple[Column, ...] = (
    Column("Expiry", "Expiration date (SPXW: PM-settled)",
           lambda c, today: float(c.expiry.toordinal()), lambda c, today: f"{c.expiry:%d %b %y}"),
    _col("DTE\n(d)", "Calendar days to expiry (from the snapshot's date)", lambda c, today: float(c.dte), _num(0)),
    Column("Strikes\n(pts)", "Leg strikes; '-' marks a short leg",
           lambda c, today: float(min(leg.contract.strike for leg in c.structure.legs)),
           lambda c, today: strikes_text(c.structure)),
    _col("Width\n(pts)", "Distance between the strikes of the widest wing",
         lambda c, today: float(c.width), _num(0)),
    _col("Credit\nmid ($)", "Net mid price per unit; positive = credit, negative = debit",
         lambda c, today: _usd(c, c.credit_mid), _money),
    _col("POP\n(%)", "Probability of profit at expiry under the fitted surface's risk-neutral density",
         lambda c, today: float(c.pop), _pct),
    _col("EV\n($)", "Expected P&L per unit at expiry under the fitted density",
         lambda c, today: _usd(c, c.ev), _money),
    _col("Score", "Weighted total score (the weights are in the parameters); higher is better",
         lambda c, today: float(c.score), _num(3)),
    _col("Max loss\n($)", "Worst loss per unit at expiry (at the mid credit)",
         lambda c, today: _usd(c, c.max_loss), _money),
    _col("Credit\nnat ($)", "Net natural price per unit (sell at bid, buy at ask)",
         lambda c, today: _usd(c, c.credit_natural), _money),
    _col("Cr/width\n(%)", "Mid credit as a share of the width",
         lambda c, today: float(c.credit_per_width), _pct),
    _col("EV/max\nloss (%)", "Expected value per dollar at risk", lambda c, today: float(c.ev_per_max_loss), _pct),
    _col("Edge\n($)", "Market mid against the surface's fair value per unit; positive favours this trade",
         lambda c, today: float(c.edge_usd), _money),
    _col("Edge\n(vol pts)", "The edge in implied-volatility points (market IV rich to the fit when selling)",
         lambda c, today: float(c.edge_volpts), _num(2)),
    _col("Pkg spread\n(pts)", "Natural bid/ask width of the whole package (sum of |ratio| x leg spread)",
         lambda c, today: float(c.package_spread), _num(2)),
)


class ScannerTableModel(QAbstractTableModel):
    """Candidates of the last scan (see the module docstring)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._candidates: list[Any] = []
        self._order = np.zeros(0, np.int64)  # view row -> candidate index
        self._keys: list[np.ndarray] = []
        self._sort: tuple[int, Qt.SortOrder] | None = None
        self._today = date.today()

    # --- content ------------------------------------------------------------------------------------
    def set_candidates(self, candidates: Sequence[Any], today: date) -> None:
        """Show these candidates (kept in the current sort; scanner order = score, best first)."""
        self.beginResetModel()
        self._candidates = list(candidates)
        self._today = today
        self._keys = [np.array([col.key(c, today) for c in self._candidates], dtype=float) for col in COLUMNS]
        self._order = np.arange(len(self._candidates))
        if self._sort is not None:
            self._order = self._sorted(*self._sort)
        self.endResetModel()

    def candidate(self, row: int) -> Any | None:
        """The candidate shown at view row ``row`` (None out of range)."""
        if 0 <= row < len(self._order):
            return self._candidates[int(self._order[row])]
        return None

    def row_of(self, structure: Any) -> int:
        """The view row of the candidate with this structure (-1 when it is not listed)."""
        for row, i in enumerate(self._order):
            if self._candidates[int(i)].structure == structure:
                return row
        return -1

    def column_values(self, column: int) -> np.ndarray:
        """The numeric values of a column in view order (what sorting compares)."""
        return self._keys[column][self._order] if self._candidates else np.zeros(0)

    # --- Qt model API -------------------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._order)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        col = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return col.text(self._candidates[int(self._order[index.row()])], self._today)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            left = index.column() in (0, 2)
            return int((Qt.AlignmentFlag.AlignLeft if left else Qt.AlignmentFlag.AlignRight)
                       | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 2:
            return self._candidates[int(self._order[index.row()])].structure.name
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section].title
        if role == Qt.ItemDataRole.ToolTipRole:
            return COLUMNS[section].tip
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(COLUMNS):  # -1: no sort column, back to the scanner's order (best first)
            self._sort = None
            if self._candidates:
                self._reorder(np.arange(len(self._candidates)))
            return
        self._sort = (column, order)
        if self._candidates:
            self._reorder(self._sorted(column, order))

    def _reorder(self, order: np.ndarray) -> None:
        self.layoutAboutToBeChanged.emit()
        before = self._order.copy()
        self._order = order
        # keep selections and the current row on their candidate
        where = np.empty_like(self._order)
        where[self._order] = np.arange(len(self._order))
        old = self.persistentIndexList()
        self.changePersistentIndexList(old, [self.index(int(where[before[i.row()]]), i.column()) for i in old])
        self.layoutChanged.emit()

    def _sorted(self, column: int, order: Qt.SortOrder) -> np.ndarray:
        keys = self._keys[column]
        # NaN (no figure) sorts last either way; ties keep the scanner's (score) order: stable sort
        finite = np.isfinite(keys)
        signed = np.where(finite, keys if order == Qt.SortOrder.AscendingOrder else -keys, 0.0)
        return np.lexsort((np.arange(len(keys)), signed, ~finite))
