"""Tree model of the positions panel: one row per trade (structure), its legs underneath.

Built from the session's :class:`~app.trading.Portfolio` (trades, per-contract positions with their marks and
day baselines) and the dollar greeks per contract the panel's worker computes (:func:`contract_greeks`).
A new portfolio with the same trades and legs repaints in place (one ``dataChanged`` per parent); a trade
opened or closed rebuilds the tree (rare: a fill).

Units: prices in points per unit (a trade's in its opening order's convention: a vertical sold at 1.45 opens at
1.45), money in dollars; greeks in dollars (delta per SPX point, gamma for a 1% move, vega per vol point, theta
per calendar day) for the quantity held.

Legs come from the trade's own per-leg accounting (``Trade.leg_states``), so two trades on one contract
never mix. P&L today is shown for trades opened today (their whole P&L); for older trades the start-of-day
mark is not stored per trade, and the account line's day P&L (per position) covers them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from app.models.blotter_model import contract_text
from spx_core.domain.calendar import ET
from spx_core.domain.contracts import OptionContract
from spx_core.domain.snapshot import ChainSnapshot

if TYPE_CHECKING:
    from app.shared_fits import SharedFits
    from app.trading import Portfolio

__all__ = ["GREEK_NAMES", "POSITION_HEADERS", "GreeksResult", "PositionsModel", "account_text", "contract_greeks"]

_INDEX = QModelIndex | QPersistentModelIndex
GREEK_NAMES = ("delta_usd", "gamma_usd_1pct", "vega_usd_volpt", "theta_usd_day")
POSITION_HEADERS = ("Trade / leg", "Qty", "Open", "Mark", "P&L open ($)", "P&L today ($)", "Realized ($)",
                    "Delta ($/pt)", "Gamma ($/1%)", "Vega ($/vol pt)", "Theta ($/day)", "DTE")
POSITION_TIPS = ("The trade's structure (legs underneath)", "Units held (legs: contracts; - = short)",
                 "Opening price, points per unit (legs: average cost per contract)",
                 "Mid mark now, points (blank: no usable quote)",
                 "Unrealized P&L at the mark, dollars", "Realized today + change of unrealized since the day start",
                 "Realized P&L net of commissions and fees, dollars",
                 "Dollars per 1 SPX point", "Dollars of gamma P&L for a 1% move", "Dollars per vol point",
                 "Dollars per calendar day", "Calendar days to expiry")
_GREEK_COL = POSITION_HEADERS.index("Delta ($/pt)")
PNL_COLUMNS = (4, 5, 6)
PROFIT, LOSS, CLOSED = QColor("#2fb36d"), QColor("#f0524f"), QColor("#8c8c8c")


@dataclass(frozen=True, slots=True, eq=False)
class GreeksResult:
    """Dollar greeks of one long contract (:data:`GREEK_NAMES` order; NaN where unknown), the markets used."""

    greeks: dict[OptionContract, tuple[float, float, float, float]]
    caches: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    seconds: float = 0.0


def contract_greeks(contracts: Sequence[OptionContract], snapshots: Mapping[str, ChainSnapshot],
                    caches: dict[str, Any], fits: SharedFits) -> GreeksResult:
    """Worker job: each contract's dollar greeks (one long contract) from ``value_structure`` on the live market
    (chain IVs and the window's shared surface fit, as the builder values its legs)."""
    t0 = time.perf_counter()
    if not contracts:
        return GreeksResult({}, caches)
    from app.models.builder_data import _caches
    from spx_core.strategies.builders import single
    from spx_core.strategies.market import Market, MarketError
    from spx_core.strategies.valuation import value_structure

    legs = tuple(single(c).legs[0] for c in contracts)
    new = _caches(dict(snapshots), legs, caches, fits)
    market = Market({u: c.chain for u, c in new.items()})
    out: dict[OptionContract, tuple[float, float, float, float]] = {}
    reasons = []
    for c in contracts:
        try:
            v = value_structure(single(c), market)
            out[c] = tuple(float(getattr(v, name)) for name in GREEK_NAMES)  # type: ignore[assignment]
        except MarketError as exc:  # an underlying the feed does not carry
            out[c] = (math.nan,) * 4
            reasons.append(str(exc))
    return GreeksResult(out, {**caches, **new}, "; ".join(dict.fromkeys(reasons)), time.perf_counter() - t0)


def _money(v: float) -> str:
    if not math.isfinite(v):
        return ""
    return f"{v + 0.0 if abs(v) >= 0.005 else 0.0:+,.2f}"  # no "-0.00" for a rounding crumb


def _points(v: float) -> str:
    return f"{v:.2f}" if math.isfinite(v) else ""


def account_text(account: Any | None, reason: str = "") -> str:
    """The account line: net liquidation, buying power, day P&L, unrealized and realized P&L, margin."""
    if account is None:
        return reason or "account: no data yet"
    return (f"Net liq ${account.net_liquidation:,.2f} · Buying power ${account.buying_power:,.2f} · "
            f"Day P&L {_money(account.day_pnl)} · Unrealized {_money(account.unrealized_pnl)} · "
            f"Realized {_money(account.realized_pnl)} · Margin ${account.maintenance_margin:,.2f} · "
            f"Commissions ${account.commissions:,.2f}")


@dataclass(frozen=True, slots=True)
class _Row:
    """One line of the tree, its figures computed once per portfolio (``data()`` only formats)."""

    text: str
    qty: int
    open: float
    mark: float
    pnl_open: float
    pnl_today: float
    realized: float
    greeks: tuple[float, float, float, float]
    dte: int | None
    closed: bool
    tip: str = ""

    def cell(self, col: int) -> str:
        if col == 0:
            return self.text
        if col == 1:
            return f"{self.qty:+d}"
        if col in (2, 3):
            return _points(self.open if col == 2 else self.mark)
        if col in PNL_COLUMNS:
            return _money((self.pnl_open, self.pnl_today, self.realized)[col - 4])
        if _GREEK_COL <= col < _GREEK_COL + 4:
            return "" if self.closed else _money(self.greeks[col - _GREEK_COL])
        return "" if self.dte is None else str(self.dte)

    def number(self, col: int) -> float:
        return (math.nan, self.qty, self.open, self.mark, self.pnl_open, self.pnl_today, self.realized,
                *self.greeks, math.nan)[col]


_NO_GREEKS = (math.nan,) * 4


def _trade_label(trade: Any) -> str:
    """"25-wide put credit vertical · 04 Dec" (the full name is the tooltip): short enough for a 1280 px strip."""
    from spx_core.portfolio.trades import short_label

    front = min(leg.contract.expiry for leg in trade.legs)
    return f"{short_label(trade.structure)} · {front:%d %b}"


class PositionsModel(QAbstractItemModel):
    """Trades with their legs (see the module docstring). Top rows: internalId 0; a leg: its trade's row + 1."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._trades: list[Any] = []
        self._rows: list[_Row] = []
        self._legs: list[list[_Row]] = []
        self._greeks: dict[OptionContract, tuple[float, float, float, float]] = {}
        self._portfolio: Portfolio | None = None

    # --- content ------------------------------------------------------------------------------------------
    def set_portfolio(self, portfolio: Portfolio) -> None:
        self._portfolio = portfolio
        self._rebuild()

    def set_greeks(self, greeks: Mapping[OptionContract, tuple[float, float, float, float]]) -> None:
        self._greeks = dict(greeks)
        if self._portfolio is not None:
            self._rebuild()

    def trade(self, index: _INDEX) -> Any | None:
        """The trade of a row (a leg row: its trade)."""
        if not index.isValid():
            return None
        row = index.internalId() - 1 if index.internalId() else index.row()
        return self._trades[row] if 0 <= row < len(self._trades) else None

    def trade_row(self, trade_id: int) -> int:
        return next((i for i, t in enumerate(self._trades) if t.id == trade_id), -1)

    @property
    def trades(self) -> list[Any]:
        return list(self._trades)

    def row_values(self, row: int, leg: int | None = None) -> _Row:
        return self._rows[row] if leg is None else self._legs[row][leg]

    def _rebuild(self) -> None:
        p = self._portfolio
        assert p is not None
        today = datetime.fromtimestamp(p.time_ns / 1e9, ET).date() if p.time_ns else date.today()
        trades = list(p.trades)
        rows, legs = [], []
        for t in trades:
            opened_today = t.opened_ns >= p.day_start_ns
            leg_rows = [self._leg_row(t, ls, p.marks, today, opened_today) for ls in t.leg_states]
            rows.append(self._trade_row(t, leg_rows, p.marks, opened_today))
            legs.append(leg_rows)
        shape = [(t.id, len(t.legs)) for t in trades]
        if shape == [(t.id, len(t.legs)) for t in self._trades]:
            self._rows, self._legs = rows, legs
            self._trades = trades
            self._repaint()
            return
        self.beginResetModel()
        self._trades, self._rows, self._legs = trades, rows, legs
        self.endResetModel()

    def _repaint(self) -> None:
        last = len(POSITION_HEADERS) - 1
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, last))
        for r, leg_rows in enumerate(self._legs):
            if leg_rows:
                parent = self.index(r, 0)
                self.dataChanged.emit(self.index(0, 0, parent), self.index(len(leg_rows) - 1, last, parent))

    def _leg_row(self, t: Any, ls: Any, marks: Mapping[OptionContract, float], today: date,
                 opened_today: bool) -> _Row:
        """A leg from the trade's own per-leg accounting (``TradeLeg``: held, average cost, realized)."""
        c = ls.contract
        mark = marks.get(c, math.nan)
        pnl_open = ls.position().with_mark(mark).unrealized_pnl
        today_pnl = ls.realized_pnl + pnl_open if opened_today else math.nan
        g = self._greeks.get(c, _NO_GREEKS)
        return _Row(contract_text(c), ls.held, ls.avg_cost if ls.held else ls.open_price, mark, pnl_open,
                    today_pnl, ls.realized_pnl, tuple(x * ls.held for x in g),  # type: ignore[arg-type]
                    (c.expiry - today).days, not t.is_open, tip=c.occ_symbol)

    def _trade_row(self, t: Any, legs: list[_Row], marks: Mapping[OptionContract, float], opened_today: bool) -> _Row:
        """The trade: package prices in its opening convention; P&L today only for a trade opened today (an
        older trade's start-of-day mark is not stored: the account line's day P&L covers it)."""
        mark = float(t.mark_price(marks)) if t.is_open else math.nan
        pnl_open = float(t.unrealized_pnl(mark))
        today_pnl = t.total_pnl(mark) if opened_today else math.nan
        greeks = tuple(math.fsum(r.greeks[i] for r in legs) for i in range(4))
        tip = f"{t.name}\n{t.describe(mark)}"
        return _Row(_trade_label(t), t.side.sign * t.quantity, float(t.open_price), mark, pnl_open, today_pnl,
                    float(t.realized_pnl), greeks,  # type: ignore[arg-type]
                    min((r.dte for r in legs if r.dte is not None), default=None), not t.is_open, tip)

    # --- Qt model API -------------------------------------------------------------------------------------
    def index(self, row: int, column: int, parent: _INDEX = QModelIndex()) -> QModelIndex:  # noqa: B008
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, 0)
        if parent.internalId() == 0:
            return self.createIndex(row, column, parent.row() + 1)
        return QModelIndex()

    def parent(self, index: _INDEX = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not index.isValid() or index.internalId() == 0:
            return QModelIndex()
        return self.createIndex(index.internalId() - 1, 0, 0)

    def rowCount(self, parent: _INDEX = QModelIndex()) -> int:  # noqa: B008
        if not parent.isValid():
            return len(self._rows)
        if parent.internalId() == 0 and parent.column() == 0 and 0 <= parent.row() < len(self._legs):
            return len(self._legs[parent.row()])
        return 0

    def columnCount(self, parent: _INDEX = QModelIndex()) -> int:  # noqa: B008
        return len(POSITION_HEADERS)

    def _row_at(self, index: _INDEX) -> _Row | None:
        if index.internalId() == 0:
            return self._rows[index.row()] if index.row() < len(self._rows) else None
        legs = self._legs[index.internalId() - 1] if index.internalId() - 1 < len(self._legs) else []
        return legs[index.row()] if index.row() < len(legs) else None

    def data(self, index: _INDEX, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._row_at(index)
        if row is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return row.cell(col)
        if role == Qt.ItemDataRole.ForegroundRole:
            if row.closed:
                return CLOSED
            v = row.number(col)
            if col in PNL_COLUMNS and math.isfinite(v) and v != 0:
                return PROFIT if v > 0 else LOSS
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int((Qt.AlignmentFlag.AlignLeft if col == 0 else Qt.AlignmentFlag.AlignRight)
                       | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and col == 0:
            return row.tip or None
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(POSITION_HEADERS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:  # name over unit: the columns stay as narrow as their numbers
            return POSITION_HEADERS[section].replace(" (", "\n(")
        if role == Qt.ItemDataRole.ToolTipRole:
            return POSITION_TIPS[section]
        return None
