"""The risk panel's worker job and its table models: greeks by expiry and by trade, VaR/ES, named stresses.

Worker side (:func:`compute_risk`, a pure function of a :class:`RiskInputs`): the book of the open positions is
valued on the latest snapshots the way the positions' greeks are (``market_caches``: chain IVs plus the window's
shared surface fit), then ``spx_core.risk.report.risk_report`` gives the greeks, the spot x vol stress matrix,
the named stresses, VaR/ES (historical and parametric) and the P&L-vs-spot curve; the greeks per trade come from
``portfolio_greeks`` with each leg named by its trade. The return history VaR needs is read from the window's
store once per market day (:class:`HistoryCache`, in the worker: a store read never runs on the GUI thread); on the
simulated market a store short of SPX daily bars gives way to the simulation's simulated past
(:mod:`app.sim_history`), which the report's history note names.

GUI side: :class:`GreeksModel` (rows: each expiry, each trade, the total) and :class:`FiguresModel` (labelled
rows of dollar figures: VaR/ES side by side, the named stresses). A figure that is not available is shown as
"—" with the reason in the panel's notes, never as a zero.
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont

from app.models.history_cache import HistoryCache
from app.shared_fits import SharedFits
from spx_core.domain.contracts import OptionContract
from spx_core.domain.snapshot import ChainSnapshot

__all__ = [
    "EMPTY_BOOK",
    "GREEK_HEADERS",
    "FiguresModel",
    "GreeksModel",
    "HistoryCache",
    "RiskInputs",
    "RiskResult",
    "book_inputs",
    "compute_risk",
    "money",
    "trade_label",
    "var_rows",
]

#: What the panel says instead of zeros when nothing is held.
EMPTY_BOOK = "no open positions: the book is empty (risk figures appear after a fill)"
#: GreekTotals fields and their column titles (units as ``spx_core.risk.greeks`` defines them).
GREEK_COLUMNS = (("delta", "Δ (SPX)"), ("delta_usd_pt", "Δ $/pt"), ("delta_usd_1pct", "Δ $/1%"),
                 ("gamma_usd_1pct", "Γ $/1%"), ("vega_usd_volpt", "Vega $/pt"), ("theta_usd_day", "Θ $/day"))
#: What each column means (header tooltips): the units of ``spx_core.risk.greeks``.
GREEK_TIPS = ("", "Delta in SPX-contract equivalents (SPY beta-weighted)", "Dollars per SPX point",
              "Dollars for a 1% SPX move", "Gamma dollars for a 1% SPX move", "Dollars per vol point",
              "Dollars per calendar day")
GREEK_HEADERS = ("", *(title for _, title in GREEK_COLUMNS))

Book = tuple[tuple[OptionContract, int], ...]


# --- worker ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, eq=False)
class RiskInputs:
    """What one job reads (immutable snapshots taken on the GUI thread)."""

    book: Book  # netted positions: (contract, signed quantity)
    trade_legs: Book  # the open trades' legs, one entry per leg ...
    trade_names: tuple[str, ...]  # ... and the trade each belongs to ("#12 put credit vertical")
    snapshots: dict[str, ChainSnapshot]
    caches: dict[str, Any]
    fits: SharedFits
    store: Any | None
    history: HistoryCache
    day: date  # the market day of the snapshots (ET) ...
    now_ns: int  # ... and their time: the history is read up to it
    past: Any | None = None  # the window's SimulatedPast (app.sim_history): the simulator's past for VaR


@dataclass(frozen=True, slots=True, eq=False)
class RiskResult:
    """A job's outcome: ``report`` (a RiskReport) or None with ``reason``; ``by_trade`` greeks per trade name."""

    report: Any | None
    by_trade: dict[Hashable, Any] = field(default_factory=dict)
    spot: float = math.nan
    reason: str = ""
    notes: tuple[str, ...] = ()
    caches: dict[str, Any] = field(default_factory=dict)
    seconds: float = math.nan


def book_inputs(portfolio: Any | None) -> tuple[Book, Book, tuple[str, ...]]:
    """(netted book, trade legs, trade names) of ``portfolio``'s open positions and trades (GUI thread)."""
    if portfolio is None:
        return (), (), ()
    book = tuple((p.contract, int(p.quantity)) for p in portfolio.positions if int(p.quantity) != 0)
    legs: list[tuple[OptionContract, int]] = []
    names: list[str] = []
    for trade in portfolio.open_trades:
        for leg in trade.legs:  # held ratios per unit (side applied) x units held
            legs.append((leg.contract, int(leg.ratio * trade.quantity)))
            names.append(trade_label(trade))
    return book, tuple(legs), tuple(names)


def trade_label(trade: Any) -> str:
    """"#12 5685/5660 put credit vertical (25 wide)": the trade's name without the root and the expiry its legs
    share (the rows above already group by expiry), so the strikes and the kind survive a narrow column."""
    name = trade.name
    expiries = {leg.contract.expiry for leg in trade.legs}
    roots = {leg.contract.root.value for leg in trade.legs}
    prefix = f"{next(iter(roots))} {next(iter(expiries)):%Y-%m-%d} "
    if len(expiries) == 1 and len(roots) == 1 and name.startswith(prefix):
        name = name[len(prefix):]
    return f"#{trade.id} {name}"


def compute_risk(inputs: RiskInputs) -> RiskResult:
    """Worker job: the risk report of ``inputs.book`` on the latest snapshots (see the module docstring)."""
    t0 = time.perf_counter()
    if not inputs.book:
        return RiskResult(None, reason=EMPTY_BOOK, caches=inputs.caches, seconds=time.perf_counter() - t0)
    from app.models.builder_data import market_caches
    from spx_core.risk.greeks import portfolio_greeks
    from spx_core.risk.report import risk_report
    from spx_core.strategies.market import Market
    from spx_core.strategies.structure import Leg

    legs = tuple(Leg(c, q) for c, q in inputs.book)
    missing = sorted({leg.underlying for leg in legs} - set(inputs.snapshots))
    if missing:
        return RiskResult(None, reason=f"no {', '.join(missing)} chain from the feed yet: the book cannot be valued",
                          caches=inputs.caches, seconds=time.perf_counter() - t0)
    caches = market_caches(dict(inputs.snapshots), legs, inputs.caches, inputs.fits)
    market = Market({u: c.chain for u, c in caches.items()})
    history, why = inputs.history.get(inputs.store, inputs.day, inputs.now_ns, inputs.past)
    report = risk_report(list(inputs.book), market, history)
    by_trade = {}
    if inputs.trade_legs:
        by_trade = portfolio_greeks(list(inputs.trade_legs), market, trades=list(inputs.trade_names)).by_trade
    spot = market["SPX"].snapshot.underlying_price if "SPX" in market.chains else math.nan
    notes = tuple(dict.fromkeys((*((why,) if why else ()), *report.notes)))
    return RiskResult(report, by_trade, float(spot), "", notes, {**inputs.caches, **caches},
                      time.perf_counter() - t0)


# --- formatting ----------------------------------------------------------------------------------------------
def money(v: float, *, signed: bool = True) -> str:
    """Whole dollars with separators ("+1,234"); "—" for a figure that is not available (NaN)."""
    if not math.isfinite(v):
        return "—"
    v = round(v) + 0.0  # no "-0"
    return f"{v:+,.0f}" if signed else f"{v:,.0f}"


def _greek_text(name: str, v: float) -> str:
    if not math.isfinite(v):
        return "—"
    return f"{v:+.2f}" if name == "delta" else money(v)


def var_rows(historical: Any | None, parametric: Any | None) -> list[tuple[str, tuple[float, ...]]]:
    """VaR/ES rows (loss in positive dollars) with the historical and the parametric figure side by side."""
    rows = []
    for attr, label in (("var95", "VaR 95%"), ("es95", "ES 95%"), ("var99", "VaR 99%"), ("es99", "ES 99%")):
        rows.append((label, tuple(float(getattr(f, attr)) if f is not None else math.nan
                                  for f in (historical, parametric))))
    return rows


# --- models --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _GreekRow:
    label: str
    totals: Any | None  # GreekTotals; None for a section title
    bold: bool = False


class GreeksModel(QAbstractTableModel):
    """Greeks by expiry, then by trade, then the book's total (bold); section titles are rows without figures."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[_GreekRow] = []

    def set_greeks(self, report: Any | None, by_trade: dict[Hashable, Any] | None = None) -> None:
        """Show ``report`` (a GreekReport; None clears) and the per-trade totals."""
        self.beginResetModel()
        self._rows = []
        if report is not None:
            self._rows.append(_GreekRow("By expiry", None, True))
            self._rows += [_GreekRow(f"{expiry:%Y-%m-%d}", t) for expiry, t in report.by_expiry.items()]
            if by_trade:
                self._rows.append(_GreekRow("By trade", None, True))
                self._rows += [_GreekRow(str(name), t) for name, t in by_trade.items()]
            self._rows.append(_GreekRow("Total", report.total, True))
        self.endResetModel()

    def total_row(self) -> int:
        return len(self._rows) - 1 if self._rows else -1

    def value(self, row: int, name: str) -> float:
        totals = self._rows[row].totals
        return float(getattr(totals, name)) if totals is not None else math.nan

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(GREEK_HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return GREEK_HEADERS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return GREEK_TIPS[section] or None
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return row.label
            if row.totals is None:
                return ""
            name = GREEK_COLUMNS[col - 1][0]
            return _greek_text(name, float(getattr(row.totals, name)))
        if role == Qt.ItemDataRole.ToolTipRole and col == 0:
            return row.label  # a long trade name is elided in the cell
        if role == Qt.ItemDataRole.TextAlignmentRole and col > 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.FontRole and row.bold:
            font = QFont()
            font.setBold(True)
            return font
        return None


class FiguresModel(QAbstractTableModel):
    """Labelled rows of dollar figures under column ``headers`` (the first column is the label)."""

    def __init__(self, headers: Sequence[str], *, signed: bool = True, parent: Any = None) -> None:
        super().__init__(parent)
        self._headers = tuple(headers)
        self._signed = signed
        self._rows: list[tuple[str, tuple[float, ...]]] = []

    def set_rows(self, rows: Sequence[tuple[str, Sequence[float]]]) -> None:
        self.beginResetModel()
        self._rows = [(label, tuple(float(v) for v in values)) for label, values in rows]
        self.endResetModel()

    def rows(self) -> list[tuple[str, tuple[float, ...]]]:
        return list(self._rows)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._headers)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self._headers[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        label, values = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return label if col == 0 else money(values[col - 1], signed=self._signed)
        if role == Qt.ItemDataRole.TextAlignmentRole and col > 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
