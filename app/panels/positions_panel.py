"""Positions panel: trades (structures) with their legs underneath, live marks, P&L, greeks; close a trade.

What it shows comes from the window's :class:`~app.trading.TradingSession`: each ``portfolio_changed``
(coalesced by the session, a few a second) re-marks the tree in place and refreshes the account line (net
liquidation, buying power, day P&L, unrealized and realized P&L, margin: ``spx_core.portfolio.account``).

Feeding (:class:`~app.panels.base.LivePanel`): the worker computes the dollar greeks of every contract held
(``value_structure`` on the live market, the window's shared surface fit), at most once a second; nothing is
fitted while nothing is held.

"Close trade" (button, context menu, Ctrl+W) asks the session for the trade's closing order and publishes it
with ``AppContext.request_order``: the order ticket opens with it (nothing is sent from here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QItemSelectionModel, QPoint, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QSizePolicy,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from app.models.positions_model import (
    POSITION_HEADERS,
    PositionsModel,
    account_text,
    contract_greeks,
)
from app.panels.base import Job, LivePanel
from spx_core.marketdata.source import QuoteBatch

if TYPE_CHECKING:
    from app.context import AppContext
    from app.trading import Portfolio, TradingSession

__all__ = ["PositionsPanel"]

NO_SESSION = "no order service: the database is not open yet"


class PositionsPanel(LivePanel):
    """See the module docstring."""

    def __init__(self, parent: QWidget | None = None, *, refresh_seconds: float = 1.0) -> None:
        super().__init__(parent, job_name="position greeks", refresh_seconds=refresh_seconds)
        self.setObjectName("positions_panel")
        self.session: TradingSession | None = None
        self.portfolio: Portfolio | None = None
        self._caches: dict[str, Any] = {}
        self._refresh_seconds = refresh_seconds
        self._build_ui()

    def _build_ui(self) -> None:
        self.model = PositionsModel(self)
        self.tree = QTreeView()
        self.tree.setObjectName("positions_tree")
        self.tree.setModel(self.model)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setUniformRowHeights(True)
        self.tree.setMinimumHeight(3 * (self.fontMetrics().height() + 6))  # a short strip still shows a trade
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(False)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.tree.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        self.model.modelReset.connect(self._after_reset)
        self.account_label = QLabel(NO_SESSION)
        self.account_label.setObjectName("account_line")
        self.account_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.account_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label = QLabel("")
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.close_button = QPushButton("Close trade…")
        self.close_button.setToolTip("Open the order ticket with the selected trade's closing order (Ctrl+W)")
        self.close_button.clicked.connect(self.close_selected)
        self.close_action = QAction("Close trade…", self)
        self.close_action.setShortcut(QKeySequence("Ctrl+W"))
        self.close_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.close_action.triggered.connect(self.close_selected)
        self.addAction(self.close_action)
        self.account_label.setWordWrap(True)  # a 760 px tab at 1280x720 wraps it rather than cut it
        self._greeks_beside_pnl()
        bar = QHBoxLayout()
        bar.addWidget(self.status_label, 1)
        bar.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.account_label)
        layout.addLayout(bar)
        layout.addWidget(self.tree, 1)
        self._selected_trade: int | None = None
        self._update_buttons()

    def _greeks_beside_pnl(self) -> None:
        # what a trader watches (marks, P&L, delta, theta) before what scrolls on a 1280 px screen (realized,
        # gamma, vega): a view order only, the model's columns stay put
        header = self.tree.header()
        for title, after in (("Theta ($/day)", "Delta ($/pt)"), ("Realized ($)", "Vega ($/vol pt)")):
            header.moveSection(header.visualIndex(POSITION_HEADERS.index(title)),
                               header.visualIndex(POSITION_HEADERS.index(after)) + 1)

    # --- session -------------------------------------------------------------------------------------------
    def bind(self, context: AppContext) -> None:
        super().bind(context)
        context.trading_changed.connect(self.set_session)
        self.set_session(context.trading)

    def set_session(self, session: TradingSession | None) -> None:
        if self.session is not None:
            self.session.portfolio_changed.disconnect(self.set_portfolio)
        self.session = session
        if session is None:
            self.account_label.setText(NO_SESSION)
            return
        session.portfolio_changed.connect(self.set_portfolio)
        if session.portfolio is not None:
            self.set_portfolio(session.portfolio)

    def set_portfolio(self, portfolio: Portfolio) -> None:
        self._remember_selection()
        self.portfolio = portfolio
        self.model.set_portfolio(portfolio)
        self.account_label.setText(account_text(portfolio.account, portfolio.reason))
        n = len(portfolio.open_trades)
        self.status_label.setText(f"{n} open trade{'s' * (n != 1)}, {len(portfolio.trades) - n} closed today")
        self._update_buttons()

    # --- selection and close ---------------------------------------------------------------------------------
    def selected_trade(self) -> Any | None:
        rows = self.tree.selectionModel().selectedRows()
        return self.model.trade(rows[0]) if rows else None

    def select_trade(self, trade_id: int) -> bool:
        row = self.model.trade_row(trade_id)
        if row >= 0:
            flags = QItemSelectionModel.SelectionFlag
            self.tree.selectionModel().setCurrentIndex(self.model.index(row, 0),
                                                       flags.ClearAndSelect | flags.Rows)
        return row >= 0

    def _remember_selection(self) -> None:
        trade = self.selected_trade()
        self._selected_trade = trade.id if trade is not None else self._selected_trade

    def _after_reset(self) -> None:
        self.tree.expandAll()  # legs visible: a trader reads the structure and its legs together
        if self._selected_trade is not None:
            self.select_trade(self._selected_trade)

    def _update_buttons(self) -> None:
        trade = self.selected_trade()
        ok = self.session is not None and trade is not None and trade.status == "open"
        self.close_button.setEnabled(ok)
        self.close_action.setEnabled(ok)

    def _context_menu(self, pos: QPoint) -> None:
        index = self.tree.indexAt(pos)
        if not index.isValid():
            return
        self.tree.setCurrentIndex(index)
        menu = QMenu(self)
        act = menu.addAction("Close trade…", self.close_selected)
        act.setEnabled(self.close_button.isEnabled())
        menu.popup(self.tree.viewport().mapToGlobal(pos))

    def close_selected(self) -> bool:
        """Publish the selected open trade's closing order (``AppContext.request_order``: the ticket opens)."""
        trade = self.selected_trade()
        if trade is None or trade.status != "open" or self.session is None or self.context is None:
            return False
        try:
            request = self.session.close_request(trade.id)
        except (ValueError, RuntimeError, KeyError) as exc:  # e.g. closed meanwhile: one line, no traceback
            self.status_label.setText(f"cannot close {trade.name}: {exc}")
            return False
        self.context.request_order(request)
        self.status_label.setText(f"closing order for {trade.name} sent to the ticket")
        return True

    # --- LivePanel hooks -------------------------------------------------------------------------------------
    def job_spacing(self) -> float:
        return self._refresh_seconds  # greeks once a second are plenty; marks come with every portfolio

    def job(self, batch: QuoteBatch) -> Job | None:
        p = self.portfolio
        contracts = sorted({leg.contract for t in p.open_trades for leg in t.legs} if p is not None else set(),
                           key=lambda c: (c.root.value, c.expiry, c.strike, c.right.value))
        snapshots = {b.snapshot.underlying: b.snapshot for b in (batch, *batch.companions)}
        return Job(contract_greeks, (contracts, snapshots, dict(self._caches), self.shared_fits))

    def show_result(self, result: Any) -> None:
        self._caches = result.caches
        self.model.set_greeks(result.greeks)
        if result.reason:
            self.status_label.setText(f"greeks: {result.reason}")

    def status_message(self, text: str) -> None:
        self.status_label.setText(text)

    def health(self) -> tuple[bool, str]:
        if self.session is None:
            return False, f"positions: {NO_SESSION}"
        n = len(self.portfolio.open_trades) if self.portfolio is not None else 0
        return self.results > 0, f"positions: {n} open trades; {self.account_label.text()}"
