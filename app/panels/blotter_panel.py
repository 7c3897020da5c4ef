"""Blotter panel: the session's orders (working / today / all) with their fills per leg; modify and cancel.

Orders come from the window's :class:`~app.trading.TradingSession` (``AppContext.trading``): the stored orders
when it starts, then every ``order_changed`` (one row repainted, inserted or removed). The detail pane under the
table lists the selected order's fills per leg. A working order is modified (limit and/or quantity: a dialog
that goes through the session, so through the pre-trade gate) or cancelled from its row: the buttons, the
context menu, the Del key (cancel) and a double-click (modify).

Feeding (:class:`~app.panels.base.LivePanel`): the worker prices the working orders' packages at the natural
price on the latest snapshots (the "Market" column), so a resting limit is read against the market.

Events: none of its own (it calls the session; the session's ``order_changed`` comes back to the table).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.models.blotter_model import (
    ORDER_COLUMNS,
    BlotterFilter,
    FillsModel,
    OrdersModel,
    contract_text,
    working_prices,
)
from app.panels.base import Job
from app.panels.session_panel import NO_SESSION, SessionPanel
from app.trading import day_start_ns
from app.widgets.row_views import line_label, popup_row_menu, row_view, shortcut_action
from spx_core.execution.orders import OrderState, OrderType
from spx_core.marketdata.source import QuoteBatch

if TYPE_CHECKING:
    from app.trading import TradingSession

__all__ = ["NO_SESSION", "BlotterPanel", "ModifyDialog"]

_FILTERS = ((BlotterFilter.TODAY, "Today"), (BlotterFilter.WORKING, "Working"), (BlotterFilter.ALL, "All"))


class ModifyDialog(QDialog):
    """New limit and quantity of a working order (quantity never below what is filled)."""

    def __init__(self, state: OrderState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Modify {state.request.name or state.ref}")
        self.setObjectName("modify_dialog")
        form = QFormLayout(self)
        self.limit = QDoubleSpinBox()
        self.limit.setDecimals(2)
        self.limit.setSingleStep(0.05)  # SPX combo tick; the gate and the broker refuse an off-tick price
        self.limit.setRange(-100_000.0, 100_000.0)
        has_limit = state.request.order_type is OrderType.LMT and state.limit is not None
        self.limit.setValue(state.limit if has_limit else 0.0)
        self.limit.setEnabled(has_limit)
        self.limit.setSuffix(" pts")
        form.addRow(f"Limit ({state.request.side.value.upper()})", self.limit)
        self.quantity = QSpinBox()
        self.quantity.setRange(max(state.filled, 1), 100_000)
        self.quantity.setValue(state.quantity)
        form.addRow(f"Quantity ({state.filled} filled)", self.quantity)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._state = state

    def changes(self) -> dict[str, Any]:
        """The keyword arguments of ``TradingSession.modify`` for what changed (empty: nothing)."""
        out: dict[str, Any] = {}
        if self.limit.isEnabled() and round(self.limit.value(), 2) != round(self._state.limit or 0.0, 2):
            out["limit"] = round(self.limit.value(), 2)
        if self.quantity.value() != self._state.quantity:
            out["quantity"] = self.quantity.value()
        return out


class BlotterPanel(SessionPanel):
    """See the module docstring."""

    def __init__(self, parent: QWidget | None = None, *, refresh_seconds: float = 0.5) -> None:
        super().__init__(parent, job_name="blotter prices", refresh_seconds=refresh_seconds)
        self.setObjectName("blotter_panel")
        self._snapshots: dict[str, Any] = {}
        #: opens the modify dialog and returns its changes (tests replace it)
        self.ask_changes = self._ask_changes
        self._build_ui()

    # --- layout ---------------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.model = OrdersModel(self)
        self.table = row_view(QTableView(), self.model, "blotter_orders")
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._on_selection())
        self.table.doubleClicked.connect(lambda _i: self.modify_selected())
        self.fills_model = FillsModel(self)
        self.fills = row_view(QTableView(), self.fills_model, "blotter_fills", select_rows=False)
        self.detail_label = line_label("select an order to see its fills per leg")
        detail = QWidget()
        detail_layout = QVBoxLayout(detail)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.addWidget(self.detail_label)
        detail_layout.addWidget(self.fills, 1)
        # the orders above, the selected order's fills per leg under them (a few rows: an order has 1-4 legs)
        row = self.table.verticalHeader().defaultSectionSize()
        self.table.setMinimumHeight(3 * row + 4)
        self.fills.setMinimumHeight(2 * row + 4)
        split = QSplitter(Qt.Orientation.Vertical)
        split.setObjectName("blotter_split")
        split.addWidget(self.table)
        split.addWidget(detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([700, 300])  # proportions until the first layout
        self.filter_combo = QComboBox()
        self.filter_combo.setObjectName("blotter_filter")
        for mode, text in _FILTERS:
            self.filter_combo.addItem(text, mode.value)
        self.filter_combo.setToolTip("Working orders only, today's orders, or every stored order")
        self.filter_combo.currentIndexChanged.connect(lambda _i: self.set_filter(self.filter_combo.currentData()))
        self.modify_button = QPushButton("Modify…")
        self.modify_button.setToolTip("Change the selected working order's limit or quantity (double-click)")
        self.modify_button.clicked.connect(self.modify_selected)
        self.cancel_button = QPushButton("Cancel order")
        self.cancel_button.setToolTip("Cancel the selected working order (Del)")
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.cancel_action = shortcut_action(self, "Cancel order", [QKeySequence(Qt.Key.Key_Delete)],
                                             self.cancel_selected)
        self.status_label = line_label(NO_SESSION)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Show"))
        bar.addWidget(self.filter_combo)
        bar.addWidget(self.status_label, 1)
        bar.addWidget(self.modify_button)
        bar.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        self._update_buttons()

    # --- session --------------------------------------------------------------------------------------------
    def session_slots(self) -> dict[str, Any]:
        return {"order_changed": self.on_order}

    def session_changed(self, session: TradingSession | None) -> None:
        """This session's orders (None: no order service; the table empties)."""
        if session is None:
            self.model.set_orders([])
            self.status_label.setText(NO_SESSION)
        else:
            self.model.set_orders(session.orders())
            self._update_day(session.market.now_ns())
            self.status_label.setText(f"{len(self.model.states())} orders · {session.describe()}")
        self._on_selection()
        self.refresh(full=True)

    def on_order(self, state: OrderState) -> None:
        row = self.model.row_of(state.ref)
        before = self.model.state(row).reason if row >= 0 else ""
        self.model.upsert(state)
        if (selected := self.selected_state()) is not None and selected.ref == state.ref:
            self._show_detail(state)
        # a done order's why, and a working order's new word from the broker (e.g. IB refused a modify)
        if state.reason and (state.status.is_done or state.reason != before):
            text = f"{state.request.name or state.ref}: {state.status.value} ({state.reason})"
            self.status_label.setText(text)
            self.status_label.setToolTip(text)  # a long refusal is cut in a narrow dock: all of it on hover
        self._update_buttons()

    def set_filter(self, mode: BlotterFilter | str) -> None:
        self.model.set_filter(mode)
        i = self.filter_combo.findData(BlotterFilter(mode).value)
        if i != self.filter_combo.currentIndex():
            self.filter_combo.setCurrentIndex(i)
        self._on_selection()

    def _update_day(self, now_ns: int) -> None:
        if now_ns:
            self.model.set_day_start(day_start_ns(now_ns))

    # --- selection and actions -----------------------------------------------------------------------------
    def selected_state(self) -> OrderState | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.state(rows[0].row()) if rows else None

    def select_ref(self, ref: str) -> bool:
        row = self.model.row_of(ref)
        if row >= 0:
            self.table.selectRow(row)
        return row >= 0

    def _on_selection(self) -> None:
        self._show_detail(self.selected_state())
        self._update_buttons()

    def _show_detail(self, state: OrderState | None) -> None:
        self.fills_model.set_order(state)
        if state is None:
            self.detail_label.setText("select an order to see its fills per leg")
            return
        legs = ", ".join(f"{leg.ratio:+d} {contract_text(leg.contract)}" for leg in state.request.legs)
        why = f" · {state.reason}" if state.reason else ""
        text = f"{state.request.name or 'order'} {state.ref}: {legs} · {len(state.fills)} fills{why}"
        self.detail_label.setText(text)
        self.detail_label.setToolTip(text)  # the pane beside the orders is narrow: the whole line on hover

    def _update_buttons(self) -> None:
        state = self.selected_state()
        working = self.session is not None and state is not None and state.is_working
        self.modify_button.setEnabled(working)
        self.cancel_button.setEnabled(working)
        self.cancel_action.setEnabled(working)

    def _context_menu(self, pos: QPoint) -> None:
        popup_row_menu(self, self.table, pos, [("Modify…", self.modify_selected), ("Cancel order", self.cancel_selected)],
                       enabled=self.cancel_button.isEnabled)

    def cancel_selected(self) -> bool:
        """Ask the broker to cancel the selected working order (its CANCELLED state comes back as an event)."""
        state = self.selected_state()
        if state is None or self.session is None or not state.is_working:
            return False
        try:
            self.session.cancel(state.ref)
        except (ValueError, RuntimeError) as exc:  # OrderError, BrokerError: one line, no traceback
            self.status_label.setText(f"cancel {state.ref}: {exc}")
            return False
        self.status_label.setText(f"cancel sent: {state.request.name or state.ref}")
        return True

    def modify_selected(self) -> bool:
        """Modify the selected working order through the session (the gate checks the new terms)."""
        state = self.selected_state()
        if state is None or self.session is None or not state.is_working:
            return False
        changes = self.ask_changes(state)
        if not changes:
            return False
        try:
            verdict = self.session.modify(state.ref, **changes)
        except (ValueError, RuntimeError) as exc:  # e.g. the order filled meanwhile: one line
            self.status_label.setText(f"modify {state.ref}: {exc}")
            return False
        ok = bool(getattr(verdict, "ok", True))
        self.status_label.setText(f"modify sent: {state.request.name or state.ref}" if ok
                                  else f"modify refused: {verdict.message}")
        return ok

    def _ask_changes(self, state: OrderState) -> dict[str, Any]:
        dialog = ModifyDialog(state, self)
        return dialog.changes() if dialog.exec() else {}

    # --- LivePanel hooks -------------------------------------------------------------------------------------
    def on_batch(self, batch: QuoteBatch) -> None:
        super().on_batch(batch)
        for b in (batch, *batch.companions):
            self._snapshots[b.snapshot.underlying] = b.snapshot

    def job(self, batch: QuoteBatch) -> Job | None:
        self._update_day(batch.snapshot.time_ns)
        working = [s for s in self.model.states() if s.is_working]
        return Job(working_prices, (working, dict(self._snapshots)))

    def show_result(self, result: dict[str, float]) -> None:
        self.model.set_market(result)

    def status_message(self, text: str) -> None:
        self.status_label.setText(text)

    def health(self) -> tuple[bool, str]:
        if self.session is None:
            return False, f"blotter: {NO_SESSION}"
        working = sum(1 for s in self.model.states() if s.is_working)
        return self.results > 0, f"blotter: {len(self.model.states())} orders, {working} working"


#: Column titles (for tests and screenshots).
ORDER_TITLES = tuple(c.title for c in ORDER_COLUMNS)
