"""The strategy builder's legs: editing functions and the legs table model.

Legs live in :class:`~app.context.AppContext` (``legs``, ``set_legs``, ``legs_changed``) so the chain
can mark them and the builder can show them without knowing each other. The functions here compute a
new leg tuple from an edit (the context only stores): :func:`toggled` (a Ctrl-click in the chain),
:func:`with_leg` (right-click "Add to builder"), :func:`without`, :func:`resized`.

:class:`LegsModel` is the builder's table: one row per leg, columns ``LEG_COLUMNS``. Side (Buy/Sell) and
Qty (signed contracts per unit: -2 = sell two) are editable; an edit is not applied to the model but emitted as
``legs_edited(tuple[Leg, ...])`` for the panel to publish to the context, which then calls
:meth:`LegsModel.set_legs` (one path for every change). The market columns come from the worker's
:class:`LegQuote` per leg (``set_quotes``): NaN prices and a note ("not listed", "flagged: zero bid")
when the contract's quote cannot be used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor

from spx_core.domain import OptionContract

if TYPE_CHECKING:  # spx_core.strategies' package init loads the valuation core (scipy): not at start-up
    from spx_core.strategies.structure import Leg

__all__ = ["LegColumn", "LegQuote", "LegsModel", "MAX_QTY", "contract_text", "resized", "toggled", "with_leg",
           "without"]

MAX_QTY = 999  # contracts of one leg per unit of the structure


# --- leg edits (pure) -------------------------------------------------------------------------------------
def with_leg(legs: tuple[Leg, ...], contract: OptionContract, ratio: int) -> tuple[Leg, ...]:
    """``legs`` with ``contract`` at ``ratio`` (negative = sell): replaced in place, else appended."""
    from spx_core.strategies.structure import Leg

    new = Leg(contract, ratio)
    if any(leg.contract == contract for leg in legs):
        return tuple(new if leg.contract == contract else leg for leg in legs)
    return (*legs, new)


def without(legs: tuple[Leg, ...], contract: OptionContract) -> tuple[Leg, ...]:
    return tuple(leg for leg in legs if leg.contract != contract)


def toggled(legs: tuple[Leg, ...], contract: OptionContract, ratio: int) -> tuple[Leg, ...]:
    """A Ctrl-click on a bid (``ratio`` < 0, sell) or ask (> 0, buy): adds the contract on that side;
    the same side again removes it; the other side flips the leg and keeps its size."""
    old = next((leg for leg in legs if leg.contract == contract), None)
    if old is None:
        return with_leg(legs, contract, ratio)
    if (old.ratio > 0) == (ratio > 0):
        return without(legs, contract)
    return with_leg(legs, contract, -old.ratio)


def resized(legs: tuple[Leg, ...], row: int, *, qty: int | None = None, buy: bool | None = None) -> tuple[Leg, ...]:
    """Leg ``row`` with a new size and/or side. ``qty`` is signed (negative = sell, 0 keeps the leg as it
    is, the size is capped at ``MAX_QTY``); ``buy`` sets the side and keeps the size."""
    leg = legs[row]
    ratio = leg.ratio
    if qty:
        ratio = max(-MAX_QTY, min(int(qty), MAX_QTY))
    if buy is not None:
        ratio = abs(ratio) if buy else -abs(ratio)
    return with_leg(legs, leg.contract, ratio)


def contract_text(contract: OptionContract) -> str:
    """``SPXW 15Mar24 5700 P`` (the broker's compact form; the full contract is in the tooltip)."""
    return f"{contract.root.value} {contract.expiry:%d%b%y} {contract.strike:g} {contract.right.value}"


# --- market data per leg ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LegQuote:
    """One leg's market in the snapshot: prices in index points per contract (NaN when unusable).

    Attributes:
        bid, ask, mid: the option's quote (NaN when not listed, or the side is missing).
        iv: mid implied vol (0.20 = 20%); NaN when unsolvable.
        delta: the option's delta per contract (1.0 = one point per index point), at the mid vol.
        note: "" or why the quote cannot be used as is ("not listed", "flagged: zero bid, wide").
    """

    bid: float = math.nan
    ask: float = math.nan
    mid: float = math.nan
    iv: float = math.nan
    delta: float = math.nan
    note: str = ""


NOT_LISTED = LegQuote(note="not listed")


class LegColumn(IntEnum):
    CONTRACT = 0
    SIDE = 1
    QTY = 2
    BID = 3
    ASK = 4
    MID = 5
    IV = 6
    DELTA = 7
    NOTE = 8
    REMOVE = 9


_HEADERS = {LegColumn.CONTRACT: "Contract", LegColumn.SIDE: "Side", LegColumn.QTY: "Qty", LegColumn.BID: "Bid",
            LegColumn.ASK: "Ask", LegColumn.MID: "Mid", LegColumn.IV: "IV %", LegColumn.DELTA: "Delta",
            LegColumn.NOTE: "Quote", LegColumn.REMOVE: ""}
_HEADER_TIPS = {LegColumn.SIDE: "Buy or sell (double-click to change)",
                LegColumn.QTY: "Contracts of this leg per unit of the structure, negative = sold (double-click to change)",
                LegColumn.BID: "Option bid (index points)", LegColumn.ASK: "Option ask (index points)",
                LegColumn.MID: "Option mid (index points)", LegColumn.IV: "Implied vol at the mid",
                LegColumn.DELTA: "Option delta per contract (not x quantity)",
                LegColumn.NOTE: "Why a leg's quote cannot be used (then the structure's prices are not shown)",
                LegColumn.REMOVE: "Remove the leg"}
_NUMERIC = {LegColumn.QTY, LegColumn.BID, LegColumn.ASK, LegColumn.MID, LegColumn.IV, LegColumn.DELTA}
_BUY, _SELL = QColor(40, 170, 90), QColor(225, 75, 75)
_WARN = QColor(230, 150, 20)


def _num(value: float, spec: str) -> str:
    return format(value, spec) if math.isfinite(value) else "–"


class LegsModel(QAbstractTableModel):
    """The builder's legs as a table (see the module docstring).

    Events (Qt signals):
        legs_edited(tuple[Leg, ...]): the user changed a side or quantity; the new legs, not yet applied.
    """

    legs_edited = Signal(object)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._legs: tuple[Leg, ...] = ()
        self._quotes: dict[OptionContract, LegQuote] = {}

    @property
    def legs(self) -> tuple[Leg, ...]:
        return self._legs

    def set_legs(self, legs: tuple[Leg, ...]) -> None:
        legs = tuple(legs)
        if [leg.contract for leg in legs] != [leg.contract for leg in self._legs]:
            self.beginResetModel()
            self._legs = legs
            self.endResetModel()
        elif legs != self._legs:
            self._legs = legs
            self.dataChanged.emit(self.index(0, 0), self.index(len(legs) - 1, len(LegColumn) - 1))

    def set_quotes(self, quotes: dict[OptionContract, LegQuote]) -> None:
        """The latest market per leg contract (a contract missing from ``quotes`` shows nothing yet)."""
        self._quotes = dict(quotes)
        if self._legs:
            self.dataChanged.emit(self.index(0, LegColumn.BID), self.index(len(self._legs) - 1, LegColumn.NOTE))

    def has_notes(self) -> bool:
        """Some leg's quote cannot be used (the Quote column is worth showing)."""
        return any(self._quotes.get(leg.contract, NOT_LISTED).note for leg in self._legs)

    def quote(self, row: int) -> LegQuote | None:
        return self._quotes.get(self._legs[row].contract)

    # --- Qt model interface ----------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._legs)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(LegColumn)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(LegColumn):
            return None
        col = LegColumn(section)
        if role == Qt.ItemDataRole.DisplayRole:
            common = self._common()
            return f"{common[1]:%d%b%y}" if col == LegColumn.CONTRACT and common else _HEADERS[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            common = self._common()
            if col == LegColumn.CONTRACT and common:
                return f"Every leg is {common[0].value} {common[1]:%Y-%m-%d}: the rows show strike and right"
            return _HEADER_TIPS.get(col)
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() in (LegColumn.SIDE, LegColumn.QTY):
            base |= Qt.ItemFlag.ItemIsEditable
        return base

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._legs):
            return None
        leg, col = self._legs[index.row()], LegColumn(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(leg, col)
        if role == Qt.ItemDataRole.EditRole:
            return leg.ratio if col == LegColumn.QTY else ("Buy" if leg.is_long else "Sell")
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if col in _NUMERIC:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return int(Qt.AlignmentFlag.AlignCenter if col == LegColumn.REMOVE else
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            if col in (LegColumn.SIDE, LegColumn.QTY):
                return QBrush(_BUY if leg.is_long else _SELL)
            if col == LegColumn.NOTE:
                return QBrush(_WARN)
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(leg, col)
        return None

    def _common(self) -> tuple | None:
        """(root, expiry) shared by every leg (then the header names it and cells show strike and right)."""
        keys = {(leg.contract.root, leg.contract.expiry) for leg in self._legs}
        return next(iter(keys)) if len(keys) == 1 else None

    def _display(self, leg: Leg, col: LegColumn) -> str:
        if col == LegColumn.CONTRACT:
            c = leg.contract
            return f"{c.strike:g} {c.right.value}" if self._common() else contract_text(c)
        if col == LegColumn.SIDE:
            return "Buy" if leg.is_long else "Sell"
        if col == LegColumn.QTY:
            return f"{leg.ratio:+d}"
        if col == LegColumn.REMOVE:
            return "✕"
        q = self._quotes.get(leg.contract)
        if q is None:
            return "…" if col == LegColumn.NOTE else ""
        if col == LegColumn.NOTE:
            return q.note or "ok"
        value = {LegColumn.BID: q.bid, LegColumn.ASK: q.ask, LegColumn.MID: q.mid, LegColumn.IV: q.iv * 100.0,
                 LegColumn.DELTA: q.delta}[col]
        return _num(value, ".3f" if col == LegColumn.DELTA else ".2f")

    def _tooltip(self, leg: Leg, col: LegColumn) -> str | None:
        if col == LegColumn.REMOVE:
            return "Remove this leg"
        if col == LegColumn.CONTRACT:
            return f"{leg.contract} (OCC {leg.contract.occ_symbol})"
        q = self._quotes.get(leg.contract)
        if col == LegColumn.NOTE and q is not None and q.note:
            return f"{contract_text(leg.contract)}: {q.note}; the structure's prices need every leg's quote"
        return _HEADER_TIPS.get(col)

    def setData(self, index: QModelIndex | QPersistentModelIndex, value: Any,
                role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid() or not 0 <= index.row() < len(self._legs):
            return False
        try:
            if index.column() == LegColumn.QTY:
                legs = resized(self._legs, index.row(), qty=int(value))
            elif index.column() == LegColumn.SIDE:
                legs = resized(self._legs, index.row(), buy=str(value).strip().lower().startswith("b"))
            else:
                return False
        except (TypeError, ValueError):
            return False
        if legs != self._legs:
            self.legs_edited.emit(legs)
        return True
