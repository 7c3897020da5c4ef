"""Order ticket: set up one order on a structure or a contract, see what it would do, send it with one click.

Opened (its dock shown and raised) from four places through :class:`~app.context.AppContext`:
the chain (double-click a quote: ``contract_traded``, buy on the ask, sell on the bid), the scanner's and
the strategy builder's "Trade" (``trade_requested(Structure)``) and ``order_requested(OrderRequest)``
(a trade's closing order from the positions). The logic is in :mod:`app.models.ticket_model` (order,
quotes, tick-rounded limits), :mod:`app.models.ticket_value` (worker job, figures) and
:mod:`app.models.ticket_text`; this file is the widgets and the wiring.

Shown: the legs with live bid/ask/mid, the package's bid/ask/mid/natural, side, quantity, type LMT/MKT,
TIF DAY/GTC, the price mode (mid / natural / custom; on the tick grid; -/+ one tick), and before sending:
max profit and loss at the limit, margin, commission and fees, the broker's what-if, the greeks of the
positions now and after the fill, and the pre-trade gate's verdict (``TradingSession.preview``, again on
every change of the inputs or the market). Send (Ctrl+Enter) hands the request to
``TradingSession.place``; a live session asks for a confirmation first. Until the broker acknowledges
the order sent (it leaves "pending") a second send is refused, so a double press cannot duplicate it.
The order's status line follows ``TradingSession.order_changed``.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QFont, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QButtonGroup, QComboBox, QDockWidget, QDoubleSpinBox, QGridLayout,
                               QHBoxLayout, QHeaderView, QLabel, QMessageBox, QPushButton, QSizePolicy, QSpinBox,
                               QTableView, QToolButton, QVBoxLayout, QWidget)

from app.models.ticket_legs import TicketColumn, TicketLegsModel
from app.models.ticket_model import (MAX_QUANTITY, PackageQuote, PriceMode, TicketOrder, held_legs, limit_for,
                                     quote_order, step_limit)
from app.models.ticket_text import (FIGURES, figure_texts, order_line, package_texts, premium_text, status_text,
                                    verdict_text)
from app.models.ticket_value import TicketValue, compute_ticket, order_figures, position_legs
from app.panels.base import Job, LivePanel
from spx_core.domain import ChainSnapshot, OptionContract
from spx_core.execution.fees import DEFAULT_FEES
from spx_core.execution.orders import (OrderError, OrderRequest, OrderState, OrderStatus, OrderType, Side,
                                       TimeInForce, new_ref)
from spx_core.marketdata.source import QuoteBatch

if TYPE_CHECKING:
    from app.context import AppContext
    from spx_core.strategies.structure import Structure

__all__ = ["TicketPanel"]

log = logging.getLogger(__name__)

_COLOURS = {"ok": "#2eaa5c", "warn": "#e6a117", "bad": "#e14b4b", "idle": "#888888"}


class TicketPanel(LivePanel):
    """See the module docstring.

    Events (Qt signals):
        sent(OrderRequest): an order was handed to the trading session (after the confirmation, if live).
    """

    sent = Signal(object)

    def __init__(self, parent: QWidget | None = None, *, refresh_seconds: float = 0.5) -> None:
        super().__init__(parent, job_name="order ticket", refresh_seconds=refresh_seconds)
        self.setObjectName("ticket_panel")
        self.order: TicketOrder | None = None
        self.quote: PackageQuote | None = None
        self.value: TicketValue | None = None
        self.limit = math.nan  # the limit shown (points per unit, on tick)
        self.mode = PriceMode.MID
        self._custom = math.nan
        self.verdict: Any = None  # the gate's last preview
        self.what_if: Any = None  # the broker's last what-if (None when it cannot say)
        self.session: Any = None  # app.trading.TradingSession
        self.fees = DEFAULT_FEES
        self._snapshots: dict[str, ChainSnapshot] = {}
        self._caches: dict[str, Any] = {}
        self._positions: tuple = ()  # open positions as legs (for the post-trade greeks)
        self._ref = new_ref()  # the next order's reference
        self.sent_state: OrderState | None = None  # the last order sent, as the broker last described it
        self._placing = False
        self._build_ui()
        self._show_empty()

    # --- UI ------------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.title_label = QLabel()
        font = QFont(self.title_label.font())
        font.setBold(True)
        self.title_label.setFont(font)
        self.title_label.setWordWrap(True)
        self.title_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.legs_model = TicketLegsModel(self)
        self.table = QTableView()
        self.table.setModel(self.legs_model)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 6)
        self.table.setShowGrid(False)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(TicketColumn.CONTRACT, QHeaderView.ResizeMode.Stretch)
        self.legs_model.modelReset.connect(self._fit_table)
        self.package = {k: QLabel("–") for k in ("bid", "ask", "mid", "natural")}
        package = QHBoxLayout()
        package.addWidget(QLabel("Package"))
        for key, label in self.package.items():
            label.setToolTip("Points per unit: what one unit of the legs as written costs to buy (natural: what "
                             "crossing every leg's spread pays for a buy or receives for a sell)")
            package.addWidget(QLabel(key))
            package.addWidget(label)
        package.addStretch(1)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.setSpacing(4)
        outer.addWidget(self.title_label)
        outer.addWidget(self.table)
        outer.addLayout(package)
        outer.addLayout(self._build_terms())
        outer.addLayout(self._build_price())
        outer.addLayout(self._build_figures())
        outer.addWidget(self._build_send())
        outer.addStretch(1)

    def _build_terms(self) -> QHBoxLayout:
        self.side_combo = QComboBox()
        self.side_combo.addItems(["Buy", "Sell"])
        self.side_combo.setToolTip("BUY pays the limit per unit, SELL receives it (legs as written above)")
        self.quantity_spin = QSpinBox()
        self.quantity_spin.setRange(1, MAX_QUANTITY)
        self.quantity_spin.setPrefix("Qty ")
        self.quantity_spin.setToolTip("Units of the structure")
        self.type_combo = QComboBox()
        self.type_combo.addItems([t.value for t in OrderType])
        self.tif_combo = QComboBox()
        self.tif_combo.addItems([t.value for t in TimeInForce])
        self.tif_combo.setToolTip("DAY expires at the session close; GTC works until cancelled")
        self.side_combo.currentIndexChanged.connect(self._on_terms)
        self.quantity_spin.valueChanged.connect(self._on_terms)
        self.type_combo.currentIndexChanged.connect(self._on_terms)
        self.tif_combo.currentIndexChanged.connect(self._on_terms)
        row = QHBoxLayout()
        for w in (self.side_combo, self.quantity_spin, self.type_combo, self.tif_combo):
            row.addWidget(w)
        row.addStretch(1)
        return row

    def _build_price(self) -> QHBoxLayout:
        self.mode_group = QButtonGroup(self)
        self.mode_buttons: dict[PriceMode, QToolButton] = {}
        row = QHBoxLayout()
        for mode in PriceMode:
            button = QToolButton()
            button.setText(mode.value.title())
            button.setCheckable(True)
            self.mode_group.addButton(button)
            button.clicked.connect(lambda _=False, m=mode: self.set_mode(m))
            self.mode_buttons[mode] = button
            row.addWidget(button)
        self.down_button, self.up_button = QToolButton(), QToolButton()
        for button, text, ticks in ((self.down_button, "−", -1), (self.up_button, "+", 1)):
            button.setText(text)
            button.setToolTip(f"{'Lower' if ticks < 0 else 'Raise'} the limit by one tick")
            button.clicked.connect(lambda _=False, t=ticks: self.step(t))
        self.limit_spin = QDoubleSpinBox()
        self.limit_spin.setDecimals(2)
        self.limit_spin.setRange(-99_999.0, 99_999.0)
        self.limit_spin.setButtonSymbols(QDoubleSpinBox.ButtonSymbols.NoButtons)
        self.limit_spin.setKeyboardTracking(False)
        self.limit_spin.setToolTip("Limit per unit (points; rounded to the tick: combos 0.05, SPX singles 0.05 "
                                   "below 3.00 and 0.10 from 3.00)")
        self.limit_spin.valueChanged.connect(self._on_limit_typed)
        self.premium_label = QLabel()
        row.addSpacing(6)
        row.addWidget(self.down_button)
        row.addWidget(self.limit_spin)
        row.addWidget(self.up_button)
        row.addWidget(self.premium_label, 1)
        return row

    def _build_figures(self) -> QGridLayout:
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(1)
        self.figures: dict[str, QLabel] = {}
        for i, (key, name, tip) in enumerate(FIGURES):
            title, value = QLabel(name), QLabel("–")
            for label in (title, value):
                label.setToolTip(tip)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            grid.addWidget(title, i, 0)
            grid.addWidget(value, i, 1)
            self.figures[key] = value
        grid.setColumnStretch(1, 1)
        return grid

    def _build_send(self) -> QWidget:
        self.verdict_label = QLabel()
        self.verdict_label.setWordWrap(True)
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("ticket_send")
        self.send_button.setToolTip("Send the order (Ctrl+Enter)")
        self.send_button.clicked.connect(self.send)
        self.send_action = QAction("Send order", self)
        self.send_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self.send_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.send_action.triggered.connect(self.send)
        self.addAction(self.send_action)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box = QWidget()
        layout = QGridLayout(box)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(self.verdict_label, 0, 0)
        layout.addWidget(self.send_button, 0, 1)
        layout.addWidget(self.status_label, 1, 0, 1, 2)
        layout.setColumnStretch(0, 1)
        return box

    def _fit_table(self) -> None:
        rows = max(self.legs_model.rowCount(), 1)
        self.table.setFixedHeight(self.table.horizontalHeader().sizeHint().height()
                                  + rows * self.table.verticalHeader().defaultSectionSize()
                                  + 2 * self.table.frameWidth())

    # --- opening ----------------------------------------------------------------------------------------
    def open_order(self, order: TicketOrder, *, ref: str | None = None) -> None:
        """Show ``order`` (its limit, if any, as a custom price; else the mid) and bring the ticket forward."""
        self.order = order
        self.value = None
        self.mode = PriceMode.CUSTOM if order.limit is not None else PriceMode.MID
        self._custom = order.limit if order.limit is not None else math.nan
        if ref is not None and not self.pending:
            self._ref = ref
        self._set_controls(order)
        self.title_label.setText(self._title(order))
        self.status_label.setText("")
        self._bring_forward()
        self.update_order()
        self.refresh(full=True)

    def open_contract(self, contract: OptionContract, side: Side | str = Side.BUY) -> None:
        self.open_order(TicketOrder.from_contract(contract, Side(side)))

    def open_structure(self, structure: Structure) -> None:
        self.open_order(TicketOrder.from_structure(structure, source="ticket"))

    def open_request(self, request: OrderRequest) -> None:
        """A prepared request (e.g. a trade's closing order): its terms, limit and reference."""
        self.open_order(TicketOrder.from_request(request), ref=request.ref)

    def _bring_forward(self) -> None:
        dock = self.parentWidget()
        if isinstance(dock, QDockWidget):  # a closed dock is shown again; a tab behind another comes to the front
            dock.show()
            dock.raise_()
        self.quantity_spin.setFocus()  # Ctrl+Enter sends from here; typing a number sets the quantity

    @staticmethod
    def _title(order: TicketOrder) -> str:
        close = f"Close trade #{order.trade_id}: " if order.trade_id is not None and order.intent.value == "close" \
            else ""
        return close + (order.name or " / ".join(str(leg) for leg in order.legs))

    def _set_controls(self, order: TicketOrder) -> None:
        widgets = (self.side_combo, self.quantity_spin, self.type_combo, self.tif_combo)
        for w in widgets:
            w.blockSignals(True)
        self.side_combo.setCurrentIndex(0 if order.side is Side.BUY else 1)
        self.quantity_spin.setValue(order.quantity)
        self.type_combo.setCurrentText(order.order_type.value)
        self.tif_combo.setCurrentText(order.tif.value)
        for w in widgets:
            w.blockSignals(False)

    # --- inputs ------------------------------------------------------------------------------------------
    def _on_terms(self, *_: Any) -> None:
        if self.order is None:
            return
        self.order = self.order.with_changes(
            side=Side.BUY if self.side_combo.currentIndex() == 0 else Side.SELL,
            quantity=self.quantity_spin.value(), order_type=OrderType(self.type_combo.currentText()),
            tif=TimeInForce(self.tif_combo.currentText()))
        self.update_order()
        self.refresh(full=True)  # the figures of the order as held change with the side

    def set_mode(self, mode: PriceMode) -> None:
        if mode is PriceMode.CUSTOM and math.isfinite(self.limit):
            self._custom = self.limit  # "custom" starts from the price shown
        self.mode = mode
        self.update_order()

    def step(self, ticks: int) -> None:
        """Move the limit ``ticks`` ticks (the price becomes custom)."""
        if self.order is None or not math.isfinite(self.limit):
            return
        self._custom = step_limit(self.limit, self.order, ticks)
        self.mode = PriceMode.CUSTOM
        self.update_order()

    def set_custom_limit(self, price: float) -> None:
        self._custom = price
        self.mode = PriceMode.CUSTOM
        self.update_order()

    def _on_limit_typed(self, value: float) -> None:
        if self.order is not None:
            self.set_custom_limit(value)

    # --- the order and its verdict --------------------------------------------------------------------
    def update_order(self) -> None:
        """Re-read the legs' quotes and re-price, re-preview and re-show the order (GUI thread, cheap)."""
        order = self.order
        if order is None:
            return
        self.quote = quote_order(order, self._snapshots)
        self.limit = limit_for(order, self.quote, self.mode, self._custom)
        if self.mode is PriceMode.CUSTOM and math.isfinite(self.limit):
            self._custom = self.limit  # what is shown is what is sent
        self.legs_model.set_lines(self.quote.legs)
        for key, text in package_texts(self.quote).items():
            self.package[key].setText(text)
        self._show_price(order)
        request, problem = self._request()
        self.what_if = None
        if request is not None and self.session is not None:
            self.verdict = self.session.preview(request)
            ok, text = verdict_text(self.verdict)
            self.what_if = self.session.what_if(request)
        else:
            self.verdict = None
            ok, text = False, problem
        self._set_verdict("ok" if ok else "bad", text)
        self._show_figures()
        self.send_button.setEnabled(ok and not self.pending)

    def _show_price(self, order: TicketOrder) -> None:
        market = order.order_type is OrderType.MKT
        for w in (*self.mode_buttons.values(), self.limit_spin, self.down_button, self.up_button):
            w.setEnabled(not market)
        self.mode_buttons[self.mode].setChecked(True)
        self.limit_spin.blockSignals(True)
        self.limit_spin.setValue(self.limit if math.isfinite(self.limit) else 0.0)
        self.limit_spin.setSpecialValueText("")
        self.limit_spin.blockSignals(False)
        self.premium_label.setText(premium_text(order, self.limit))

    def _show_figures(self) -> None:
        if self.order is None or self.quote is None:
            return
        figures = order_figures(self.order, self.quote, self.limit, self.value, self.fees)
        for key, text in figure_texts(figures, self.what_if).items():
            self.figures[key].setText(text)

    def _request(self) -> tuple[OrderRequest | None, str]:
        """(the request the ticket would send now, "") or (None, why it cannot be built)."""
        order, quote = self.order, self.quote
        if order is None or quote is None:
            return None, "no order: open the ticket from the chain, the scanner or the builder"
        if self.session is None:
            return None, "no order service is running: orders cannot be sent yet"
        if order.order_type is OrderType.LMT and not math.isfinite(self.limit):
            return None, quote.reason or "no limit price: type one or pick Mid / Natural once the legs are quoted"
        try:
            return order.request(limit=self.limit, ref=self._ref, snapshot=quote.snapshot,
                                 account=self.session.account, broker=self.session.broker_name), ""
        except OrderError as exc:
            return None, str(exc)

    def _set_verdict(self, colour: str, text: str) -> None:
        self.verdict_label.setText(text)
        self.verdict_label.setStyleSheet(f"color: {_COLOURS[colour]};")

    def _set_status(self, colour: str, text: str) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet(f"color: {_COLOURS[colour]};")

    # --- sending -----------------------------------------------------------------------------------------
    @property
    def pending(self) -> bool:
        """An order was sent and the broker has not acknowledged it yet (a second send is refused)."""
        return self._placing or (self.sent_state is not None and self.sent_state.status is OrderStatus.PENDING)

    def send(self) -> OrderState | None:
        """Send the order as shown (the Send button, Ctrl+Enter); the state the session returned, or None
        when nothing was sent (the status line says why)."""
        if self.pending:
            self._set_status("warn", "not sent: the last order is still pending at the broker; wait for it")
            return None
        self.update_order()  # on the latest market: the verdict shown is the one sent on
        request, problem = self._request()
        if request is None:
            self._set_status("bad", f"not sent: {problem}")
            return None
        if self.verdict is not None and not self.verdict.ok:
            self._set_status("bad", f"not sent: {self.verdict.message}")
            return None
        if self.session.is_live and not self.confirm_live(request):
            self._set_status("warn", "not sent: the live order was not confirmed")
            return None
        self._placing = True
        try:
            result = self.session.place(request)
        except Exception as exc:  # a broker or store failure is one line here; the log has the traceback
            log.exception("ticket: placing %s failed", request.ref)
            self._set_status("bad", f"not sent: {type(exc).__name__}: {exc}")
            return None
        finally:
            self._placing = False
        self._ref = new_ref()  # the next order is a new one; this one keeps its ref at the broker
        self.sent.emit(request)
        state = result.state
        if self.sent_state is None or self.sent_state.ref != state.ref or state.updated_ns >= self.sent_state.updated_ns:
            self.sent_state = state
        self._show_state(self.sent_state)
        return self.sent_state

    def confirm_live(self, request: OrderRequest) -> bool:
        """Ask before a live order (real money); the default button is Cancel."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Send a LIVE order",
                          f"Send this order to the LIVE account {self.session.account or '(default)'} at "
                          f"{self.session.broker_name}?\n\n{order_line(request)}", parent=self)
        box.setObjectName("ticket_live_confirm")
        send = box.addButton("Send live order", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Cancel))
        box.exec()
        return box.clickedButton() is send

    def _on_order_changed(self, state: OrderState) -> None:
        if self.sent_state is not None and state.ref == self.sent_state.ref:
            self.sent_state = state
            self._show_state(state)

    def _show_state(self, state: OrderState) -> None:
        colour, text = status_text(state)
        self._set_status(colour, text)
        self.send_button.setEnabled(not self.pending and self.verdict is not None and self.verdict.ok)

    # --- session and context --------------------------------------------------------------------------
    def set_session(self, session: Any) -> None:
        """Follow this TradingSession (None: no order service; sending is off)."""
        if self.session is not None:
            self.session.order_changed.disconnect(self._on_order_changed)
            self.session.portfolio_changed.disconnect(self._on_portfolio)
        self.session = session
        if session is not None:
            session.order_changed.connect(self._on_order_changed)
            session.portfolio_changed.connect(self._on_portfolio)
        self._on_portfolio()
        self.update_order()

    def _on_portfolio(self, portfolio: Any = None) -> None:
        """The open positions (for the greeks after the fill) from the session's ``Portfolio``."""
        if portfolio is None and self.session is not None:
            portfolio = self.session.portfolio
        legs = position_legs(portfolio.positions) if portfolio is not None else ()
        if legs != self._positions:
            self._positions = legs
            self.refresh(full=True)

    @classmethod
    def create(cls, context: AppContext) -> TicketPanel:
        return cls()

    def bind(self, context: AppContext) -> None:
        super().bind(context)
        context.trade_requested.connect(self.open_structure)
        context.contract_traded.connect(self.open_contract)
        context.order_requested.connect(self.open_request)
        context.trading_changed.connect(self.set_session)
        self.set_session(context.trading)
        context.set_ticket_available(True)

    def shutdown(self) -> None:
        if self.context is not None:
            self.context.set_ticket_available(False)
        super().shutdown()

    # --- LivePanel hooks ---------------------------------------------------------------------------------
    def on_batch(self, batch: QuoteBatch) -> None:
        super().on_batch(batch)
        for b in (batch, *batch.companions):
            self._snapshots[b.snapshot.underlying] = b.snapshot

    def job(self, batch: QuoteBatch) -> Job | None:
        self._snapshots.setdefault(batch.snapshot.underlying, batch.snapshot)
        if self.order is None:
            return None
        self.update_order()  # live quotes and verdict at the refresh rate; the greeks in the worker
        return Job(compute_ticket, (dict(self._snapshots), held_legs(self.order), self._positions,
                                    dict(self._caches), self.shared_fits))

    def show_result(self, result: TicketValue) -> None:
        self._caches = {**self._caches, **result.caches}
        self.value = result
        self._show_figures()

    def status_message(self, text: str) -> None:
        self._set_status("bad", text)

    def _show_empty(self) -> None:
        self.title_label.setText("No order: double-click a bid (sell) or an ask (buy) in the option chain, or "
                                 "Trade a structure from the scanner or the builder")
        self._set_verdict("idle", "")
        self.send_button.setEnabled(False)
        for label in self.figures.values():
            label.setText("–")

    def health(self) -> tuple[bool, str]:
        if self.order is None:
            return True, "ticket: no order"
        state = self.sent_state.status.value if self.sent_state is not None else "not sent"
        return True, f"ticket: {self.order.name or 'order'} ({state})"

