"""Table models of the blotter: orders (one row per order, newest first) and the fills of one order per leg.

:class:`OrdersModel` holds the stored :class:`~spx_core.execution.orders.OrderState` of every order the session
reported, keyed by reference, and shows those the filter admits (working / today / all). An update of one order
is one ``dataChanged`` of its row, or one row inserted or removed when the filter's answer changed; ``data()``
only looks up and formats (principle 6). The "Market" column is the package's natural price now (computed in
the blotter's worker job, :func:`working_prices`), next to the limit so a trader sees how far a resting order is.

Prices are points per unit in the order's own convention (a SELL receives its limit); money in dollars.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from spx_core.domain.calendar import ET
from spx_core.domain.contracts import OptionContract
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.execution.orders import Fill, OrderRequest, OrderState, OrderStatus, Side
from spx_core.strategies.structure import Leg

__all__ = [
    "ORDER_COLUMNS",
    "STATUS_COLOURS",
    "BlotterFilter",
    "FillsModel",
    "OrdersModel",
    "contract_text",
    "working_prices",
]

_INDEX = QModelIndex | QPersistentModelIndex

#: Status -> text colour; readable on the dark and the light theme and told apart at a glance.
STATUS_COLOURS: Mapping[OrderStatus, str] = {
    OrderStatus.PENDING: "#9b8cff",
    OrderStatus.SUBMITTED: "#3d9df5",
    OrderStatus.PARTIALLY_FILLED: "#e8a33d",
    OrderStatus.FILLED: "#2fb36d",
    OrderStatus.CANCELLED: "#8c8c8c",
    OrderStatus.REJECTED: "#f0524f",
    OrderStatus.EXPIRED: "#b07f4f",
}


class BlotterFilter(StrEnum):
    WORKING = "working"
    TODAY = "today"
    ALL = "all"


def contract_text(c: OptionContract) -> str:
    """"SPXW 20 Mar 26 5800 P"."""
    return f"{c.root.value} {c.expiry:%d %b %y} {c.strike:g} {c.right.value[0].upper()}"


def _time(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, ET).strftime("%d %b %H:%M:%S") if ns else ""


def _clock(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, ET).strftime("%H:%M:%S") if ns else ""


def _price(v: float | None) -> str:
    return "" if v is None or not math.isfinite(v) else f"{v:.2f}"


def _money(v: float) -> str:
    return f"{v:,.2f}" if math.isfinite(v) else ""


def _placed_ns(s: OrderState) -> int:
    return s.request.created_ns or s.updated_ns


def _structure(s: OrderState) -> str:
    req = s.request
    return req.name or " / ".join(f"{leg.ratio:+d} {contract_text(leg.contract)}" for leg in req.legs)


@lru_cache(maxsize=4096)
def order_label(request: OrderRequest) -> str:
    """"25-wide put credit vertical · 04 Dec": what the order trades, short enough for a 1280 px strip (the
    structure as held after a fill, so a SELL of (+P1, -P2) reads as the credit vertical it opens)."""
    from spx_core.portfolio.trades import short_label
    from spx_core.strategies.recognize import recognize

    held = [Leg(leg.contract, leg.ratio * request.side.sign) for leg in request.legs]
    front = min(leg.contract.expiry for leg in request.legs)
    return f"{short_label(recognize(held))} · {front:%d %b}"


@dataclass(frozen=True, slots=True)
class _Col:
    title: str
    tip: str
    text: Callable[[OrderState, float], str]
    right: bool = True


#: Columns, left to right: what a trader scans first (time, structure, side, fill, prices, status) stays on a
#: 1280 px screen; the reason, ref and broker id scroll.
ORDER_COLUMNS: tuple[_Col, ...] = (
    _Col("Time (ET)", "When the order was placed (market clock, US/Eastern)",
         lambda s, m: _time(_placed_ns(s)), right=False),
    _Col("Structure", "What the order trades, as held after a fill (the full name in the tooltip)",
         lambda s, m: order_label(s.request), right=False),
    _Col("Side", "BUY pays the limit per unit, SELL receives it", lambda s, m: s.request.side.value.upper(),
         right=False),
    _Col("Filled", "Units filled / units ordered", lambda s, m: f"{s.filled}/{s.quantity}"),
    _Col("Limit", "Working limit, points per unit (MKT: market order)",
         lambda s, m: _price(s.limit) if s.request.order_type.value == "LMT" else "MKT"),
    _Col("Avg fill", "Average fill price per unit, points", lambda s, m: _price(s.avg_fill_price)),
    _Col("Market", "The package's natural price now (what crossing gets), points; working orders only",
         lambda s, m: _price(m)),
    _Col("Status", "Order status (the reason of a rejection in the Reason column)",
         lambda s, m: s.status.value.replace("_", " "), right=False),
    _Col("Comm+fees ($)", "Commission plus exchange, clearing and regulatory fees, dollars",
         lambda s, m: _money(s.commission + s.fees)),
    _Col("Reason", "Why the order was rejected, cancelled or expired", lambda s, m: s.reason, right=False),
    _Col("Ref", "Our order reference (the idempotency key at the broker)", lambda s, m: s.ref, right=False),
    _Col("Broker id", "The broker's order id", lambda s, m: s.broker_order_id or "", right=False),
)
TIME_COLUMN = 0
STATUS_COLUMN = next(i for i, c in enumerate(ORDER_COLUMNS) if c.title == "Status")
MARKET_COLUMN = next(i for i, c in enumerate(ORDER_COLUMNS) if c.title == "Market")


def _newest_first(s: OrderState) -> tuple[int, int]:
    return -(s.request.created_ns or s.updated_ns), -(s.id or 0)


class OrdersModel(QAbstractTableModel):
    """Orders the filter admits, newest first (see the module docstring)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._states: dict[str, OrderState] = {}
        self._rows: list[str] = []  # refs shown, in row order
        self._filter = BlotterFilter.TODAY  # a fill must not make the order vanish from sight
        self._day_start_ns = 0
        self._market: dict[str, float] = {}

    # --- content ------------------------------------------------------------------------------------------
    def set_orders(self, states: Sequence[OrderState]) -> None:
        self.beginResetModel()
        self._states = {s.ref: s for s in states}
        self._rows = self._visible()
        self.endResetModel()

    def upsert(self, state: OrderState) -> None:
        """One order's new state: its row repainted, or inserted / removed when the filter's answer changed."""
        self._states[state.ref] = state
        self._sync()

    def set_filter(self, mode: BlotterFilter | str, *, day_start_ns: int | None = None) -> None:
        self._filter = BlotterFilter(mode)
        if day_start_ns is not None:
            self._day_start_ns = day_start_ns
        self._sync()

    @property
    def filter(self) -> BlotterFilter:
        return self._filter

    def set_day_start(self, day_start_ns: int) -> None:
        if day_start_ns != self._day_start_ns:
            self._day_start_ns = day_start_ns
            if self._filter is BlotterFilter.TODAY:
                self._sync()

    def set_market(self, prices: Mapping[str, float]) -> None:
        """Ref -> the package's natural price now (working orders); repaints the Market column."""
        self._market = dict(prices)
        if self._rows:
            self.dataChanged.emit(self.index(0, MARKET_COLUMN), self.index(len(self._rows) - 1, MARKET_COLUMN))

    def state(self, row: int) -> OrderState | None:
        return self._states[self._rows[row]] if 0 <= row < len(self._rows) else None

    def row_of(self, ref: str) -> int:
        try:
            return self._rows.index(ref)
        except ValueError:
            return -1

    def states(self) -> list[OrderState]:
        """Every order held (shown or not)."""
        return list(self._states.values())

    def _admits(self, s: OrderState) -> bool:
        if self._filter is BlotterFilter.WORKING:
            return s.is_working
        if self._filter is BlotterFilter.TODAY:
            return s.is_working or max(s.request.created_ns, s.updated_ns) >= self._day_start_ns
        return True

    def _visible(self) -> list[str]:
        return [s.ref for s in sorted((s for s in self._states.values() if self._admits(s)), key=_newest_first)]

    def _sync(self) -> None:
        new = self._visible()
        old = self._rows
        if new == old:
            if old:
                self.dataChanged.emit(self.index(0, 0), self.index(len(old) - 1, len(ORDER_COLUMNS) - 1))
            return
        added = [r for r in new if r not in set(old)]
        removed = [r for r in old if r not in set(new)]
        if len(added) == 1 and not removed and [r for r in new if r != added[0]] == old:
            at = new.index(added[0])
            self.beginInsertRows(QModelIndex(), at, at)
            self._rows = new
            self.endInsertRows()
        elif len(removed) == 1 and not added and [r for r in old if r != removed[0]] == new:
            at = old.index(removed[0])
            self.beginRemoveRows(QModelIndex(), at, at)
            self._rows = new
            self.endRemoveRows()
        else:  # a re-sort or several at once (a filter switch): rebuild
            self.beginResetModel()
            self._rows = new
            self.endResetModel()

    # --- Qt model API -------------------------------------------------------------------------------------
    def rowCount(self, parent: _INDEX = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _INDEX = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(ORDER_COLUMNS)

    def data(self, index: _INDEX, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        s = self._states[self._rows[index.row()]]
        col = ORDER_COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            if index.column() == TIME_COLUMN and self._day_start_ns and _placed_ns(s) >= self._day_start_ns:
                return _clock(_placed_ns(s))  # today's: the clock alone (the date is the tooltip)
            market = self._market.get(s.ref, math.nan) if s.is_working else math.nan
            return col.text(s, market)
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == STATUS_COLUMN:
            return QColor(STATUS_COLOURS[s.status])
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int((Qt.AlignmentFlag.AlignRight if col.right else Qt.AlignmentFlag.AlignLeft)
                       | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            head = f"{_time(_placed_ns(s))} ET · {_structure(s)}"
            return f"{head}\n{s.reason}" if s.reason else head
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(ORDER_COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:  # name over unit: narrower columns
            return ORDER_COLUMNS[section].title.replace(" (", "\n(")
        if role == Qt.ItemDataRole.ToolTipRole:
            return ORDER_COLUMNS[section].tip
        return None


#: Fill columns (the execution id is the row's tooltip: the pane sits beside the orders in a short strip).
FILL_HEADERS = ("Leg", "Contract", "Side", "Qty", "Price", "Time (ET)", "Comm ($)", "Fees ($)")


class FillsModel(QAbstractTableModel):
    """The fills of one order, grouped by leg (leg order, then time)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._fills: list[Fill] = []

    def set_order(self, state: OrderState | None) -> None:
        self.beginResetModel()
        self._fills = sorted(state.fills, key=lambda f: (f.leg, f.time_ns)) if state is not None else []
        self.endResetModel()

    def rowCount(self, parent: _INDEX = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._fills)

    def columnCount(self, parent: _INDEX = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(FILL_HEADERS)

    def data(self, index: _INDEX, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._fills):
            return None
        f = self._fills[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return (str(f.leg + 1), contract_text(f.contract), f.side.value.upper(), str(f.quantity),
                    f"{f.price:.2f}", _clock(f.time_ns), f"{f.commission:.2f}", f"{f.fees:.2f}")[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"execution {f.exec_id} at {_time(f.time_ns)} ET"
        if role == Qt.ItemDataRole.TextAlignmentRole:
            left = index.column() in (1, 2)
            return int((Qt.AlignmentFlag.AlignLeft if left else Qt.AlignmentFlag.AlignRight)
                       | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
                and 0 <= section < len(FILL_HEADERS):
            return FILL_HEADERS[section]
        return None


def natural_price(legs: Sequence[Leg], side: Side, snapshots: Mapping[str, ChainSnapshot]) -> float:
    """What crossing the market gets for one unit of ``legs`` traded as ``side``, in the order convention
    (a BUY's cost, a SELL's proceeds; points): a leg bought at its ask, one sold at its bid. NaN when a leg is
    not listed or has no two-sided quote."""
    from spx_core.strategies.market import locate
    from spx_core.strategies.structure import underlying_of

    price = 0.0  # sum(ratio * leg price): a BUY pays it, a SELL receives it (orders module's convention)
    for leg in legs:
        snap = snapshots.get(underlying_of(leg.contract.root))
        r = int(locate(snap, [leg.contract])[0]) if snap is not None else -1
        if r < 0 or not (snap.bid[r] > 0 and snap.ask[r] >= snap.bid[r]):
            return math.nan
        bought = leg.ratio * side.sign > 0
        price += leg.ratio * float(snap.ask[r] if bought else snap.bid[r])
    return price


def working_prices(states: Sequence[OrderState], snapshots: Mapping[str, ChainSnapshot]) -> dict[str, float]:
    """Worker job: ref -> :func:`natural_price` of each order's package now."""
    return {s.ref: natural_price(s.request.legs, s.request.side, snapshots) for s in states}
