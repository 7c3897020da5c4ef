"""Order ticket: set up one order on a structure or a contract, see what it would do, send it with one click.

Opened (its dock shown and raised) from four places through :class:`~app.context.AppContext`:
the chain (double-click a quote: ``contract_traded``, buy on the ask, sell on the bid), the scanner's and
the strategy builder's "Trade" (``trade_requested(Structure)``) and ``order_requested(OrderRequest)``
(a trade's closing order from the positions). The logic is in :mod:`app.models.ticket_model` (order,
quotes, tick-rounded limits), :mod:`app.models.ticket_value` (worker job, figures) and
:mod:`app.models.ticket_text`, the widgets in :class:`~app.widgets.ticket_form.TicketForm`; this file is
the order's state and the wiring.

Shown: the legs with live bid/ask/mid, the package's bid/ask/mid/natural, side, quantity, type LMT/MKT,
TIF DAY/GTC, the price mode (mid / natural / custom; on the tick grid; -/+ one tick), and before sending:
max profit and loss at the limit, margin, commission and fees, the broker's what-if, the greeks of the
positions now and after the fill, the risk what-if (the book's VaR/ES 95% 1-day, worst named stress and worst
spot x IV cell before → after the fill, :mod:`app.models.ticket_risk`; the VaR history read from the window's
store once a day, shared with the risk panel), and the pre-trade gate's verdict (``TradingSession.preview``, again on
every change of the inputs or the market). Send (Ctrl+Enter) hands the request to
``TradingSession.place``; a live session asks for a confirmation first. Until the broker acknowledges
the order sent (it leaves "pending") a second send is refused, so a double press cannot duplicate it.
The order's status line follows ``TradingSession.order_changed``.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QMessageBox,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.models.history_cache import HistoryCache
from app.models.ticket_model import (
    PackageQuote,
    PriceMode,
    TicketOrder,
    held_legs,
    limit_for,
    quote_order,
    step_limit,
)
from app.models.ticket_risk import RiskRequest, RiskWhatIf, named_tooltip, what_if_lines
from app.models.ticket_text import figure_texts, order_line, status_text, verdict_text
from app.models.ticket_value import (
    TicketValue,
    compute_ticket,
    order_figures,
    position_legs,
)
from app.panels.base import Job
from app.panels.session_panel import SessionPanel
from app.widgets.row_views import shortcut_action
from app.widgets.ticket_form import TicketForm
from spx_core.domain import ET, ChainSnapshot, OptionContract
from spx_core.execution.fees import DEFAULT_FEES, FeeSchedule
from spx_core.execution.orders import (
    Intent,
    OrderError,
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    Side,
    new_ref,
)
from spx_core.marketdata.source import QuoteBatch

if TYPE_CHECKING:
    from app.context import AppContext
    from spx_core.strategies.structure import Structure

__all__ = ["RISK_SECONDS", "TicketPanel"]

log = logging.getLogger(__name__)

#: The risk what-if (a full revaluation per VaR day, twice) is recomputed at once when the book or the order
#: changes, else at most this often as the market moves (the quotes and greeks keep the refresh rate).
RISK_SECONDS = 2.0


#: The history of a ticket outside a window (no AppContext): no store, so it is only ever the reason.
_NO_CONTEXT_HISTORY = HistoryCache()


class TicketPanel(SessionPanel):
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
        self._snapshots: dict[str, ChainSnapshot] = {}
        self._caches: dict[str, Any] = {}
        self._positions: tuple = ()  # open positions as legs (for the post-trade greeks)
        self.risk: RiskWhatIf | None = None  # the last risk what-if shown
        self._risk_asked: tuple[Any, float] = (None, -math.inf)  # (what it was asked for, when: monotonic s)
        self._ref = new_ref()  # the next order's reference
        self.sent_state: OrderState | None = None  # the last order sent, as the broker last described it
        self._placing = False
        self._build_ui()
        self.form.show_empty()

    # --- UI ------------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.form = form = TicketForm()
        form.terms_changed.connect(self._on_terms)
        form.mode_chosen.connect(self.set_mode)
        form.step_requested.connect(self.step)
        form.limit_typed.connect(self._on_limit_typed)
        form.send_requested.connect(self.send)
        # what callers outside read (the self-test's round trip reads the status line)
        self.status_label, self.verdict_label, self.send_button = form.status_label, form.verdict_label, form.send_button
        self.send_action = shortcut_action(self, "Send order", [QKeySequence("Ctrl+Return"),
                                                                QKeySequence("Ctrl+Enter")], self.send)
        # scrolls rather than growing the window: on a 720 px screen the dock shares the height with the strip
        # of positions and orders below it
        scroll = QScrollArea()
        scroll.setWidget(form)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(scroll)

    # --- opening ----------------------------------------------------------------------------------------
    def open_order(self, order: TicketOrder, *, ref: str | None = None) -> None:
        """Show ``order`` (its limit, if any, as a custom price; else the mid) and bring the ticket forward."""
        self.order = order
        self.value = None
        self.risk = None
        self.mode = PriceMode.CUSTOM if order.limit is not None else PriceMode.MID
        self._custom = order.limit if order.limit is not None else math.nan
        if ref is not None and not self.pending:
            self._ref = ref
        self.form.set_order(order, self._title(order))
        self.form.set_status("idle", "")
        self._bring_forward()
        self.update_order()
        self.refresh(full=True)

    def open_contract(self, contract: OptionContract, side: Side | str = Side.BUY) -> None:
        self.open_order(TicketOrder.from_contract(contract, Side(side)))

    def open_structure(self, structure: Structure) -> None:
        # a hidden ticket buffers no batches: orient the package on the session's market then (a credit sold)
        snapshots = self._snapshots or (self.session.market.snapshots if self.session is not None else {})
        self.open_order(TicketOrder.from_structure(structure, source="ticket", snapshots=snapshots))

    def open_request(self, request: OrderRequest) -> None:
        """A prepared request (e.g. a trade's closing order): its terms, limit and reference."""
        self.open_order(TicketOrder.from_request(request), ref=request.ref)

    def _bring_forward(self) -> None:
        dock = self.parentWidget()
        if isinstance(dock, QDockWidget):  # a closed dock is shown again; a tab behind another comes to the front
            dock.show()
            dock.raise_()
        self.form.quantity_spin.setFocus()  # Ctrl+Enter sends from here; typing a number sets the quantity

    @staticmethod
    def _title(order: TicketOrder) -> str:
        close = f"Close trade #{order.trade_id}: " if order.intent is Intent.CLOSE else ""
        return close + (order.name or " / ".join(str(leg) for leg in order.legs))

    # --- inputs ------------------------------------------------------------------------------------------
    def _on_terms(self, *_: Any) -> None:
        if self.order is None:
            return
        self.order = self.order.with_changes(**self.form.terms())
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
    @property
    def fees(self) -> FeeSchedule:
        """The schedule of the commission estimate: the one the paper broker charges (IB's own commission is in
        its what-if), else the one of the settings (Settings > Costs), else the default IBKR schedule."""
        fees = getattr(self.session.broker, "fees", None) if self.session is not None else None
        if isinstance(fees, FeeSchedule):
            return fees
        return self.context.settings.fee_schedule() if self.context is not None else DEFAULT_FEES

    def update_order(self) -> None:
        """Re-read the legs' quotes and re-price, re-preview and re-show the order (GUI thread, cheap)."""
        order = self.order
        if order is None:
            return
        self.quote = quote_order(order, self._snapshots)
        self.limit = limit_for(order, self.quote, self.mode, self._custom)
        if self.mode is PriceMode.CUSTOM and math.isfinite(self.limit):
            self._custom = self.limit  # what is shown is what is sent
        self.form.show_quote(self.quote)
        self.form.show_price(order, self.limit, self.mode)
        request, problem = self._request()
        self.what_if = None
        if request is not None and self.session is not None:
            self.verdict = self.session.preview(request)
            ok, text = verdict_text(self.verdict)
            self.what_if = self.session.what_if(request)
        else:
            self.verdict = None
            ok, text = False, problem
        self.form.set_verdict("ok" if ok else "bad", text)
        self._show_figures()
        self.form.send_button.setEnabled(ok and not self.pending)

    def _show_figures(self) -> None:
        if self.order is None or self.quote is None:
            return
        figures = order_figures(self.order, self.quote, self.limit, self.value, self.fees)
        self.form.show_figures(figure_texts(figures, self.what_if))

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

    # --- sending -----------------------------------------------------------------------------------------
    @property
    def pending(self) -> bool:
        """An order was sent and the broker has not acknowledged it yet (a second send is refused)."""
        return self._placing or (self.sent_state is not None and self.sent_state.status is OrderStatus.PENDING)

    def send(self) -> OrderState | None:
        """Send the order as shown (the Send button, Ctrl+Enter); the state the session returned, or None
        when nothing was sent (the status line says why)."""
        if self.pending:
            self.form.set_status("warn", "not sent: the last order is still pending at the broker; wait for it")
            return None
        self.update_order()  # on the latest market: the verdict shown is the one sent on
        request, problem = self._request()
        if request is None:
            self.form.set_status("bad", f"not sent: {problem}")
            return None
        if self.verdict is not None and not self.verdict.ok:
            self.form.set_status("bad", f"not sent: {self.verdict.message}")
            return None
        if self.session.is_live and not self.confirm_live(request):
            self.form.set_status("warn", "not sent: the live order was not confirmed")
            return None
        self._placing = True
        try:
            result = self.session.place(request)
        except Exception as exc:  # a broker or store failure is one line here; the log has the traceback
            log.exception("ticket: placing %s failed", request.ref)
            self.form.set_status("bad", f"not sent: {type(exc).__name__}: {exc}")
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
        self.form.set_status(colour, text)
        self.form.send_button.setEnabled(not self.pending and self.verdict is not None and self.verdict.ok)

    # --- session and context --------------------------------------------------------------------------
    def session_slots(self) -> dict[str, Any]:
        return {"order_changed": self._on_order_changed, "portfolio_changed": self._on_portfolio}

    def session_changed(self, session: Any) -> None:
        """A TradingSession to follow (None: no order service; sending is off)."""
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
                                    dict(self._caches), self.shared_fits, self._risk_request(batch)))

    def _risk_request(self, batch: QuoteBatch) -> RiskRequest | None:
        """What the risk what-if reads, when it is due: at once for a new book, order or day, else every
        :data:`RISK_SECONDS` (None: not this job; the figures shown stay)."""
        # the order's signed contracts, all units (spx_core.risk.report.order_legs of the request it would send;
        # not imported here: the risk core loads in the worker)
        legs = tuple((leg.contract, leg.ratio * self.order.quantity) for leg in held_legs(self.order))
        book = tuple((leg.contract, int(leg.ratio)) for leg in self._positions)
        store = self.context.store if self.context is not None else None
        day = datetime.fromtimestamp(batch.snapshot.time_ns / 1e9, ET).date()
        key = (book, legs, id(store), day)
        asked, at = self._risk_asked
        now = time.monotonic()
        if key == asked and now - at < RISK_SECONDS:
            return None
        if key != asked:
            self._show_risk(None)  # the figures shown were another book's or order's
        self._risk_asked = (key, now)
        history = self.context.history_cache if self.context is not None else _NO_CONTEXT_HISTORY
        past = self.context.simulated_past if self.context is not None else None  # as the risk panel reads it
        return RiskRequest(book, legs, store, history, day, batch.snapshot.time_ns, past)

    def show_result(self, result: TicketValue) -> None:
        self._caches = {**self._caches, **result.caches}
        self.value = result
        self._show_figures()
        risk = result.risk
        if risk is not None and (risk.request.book, risk.request.order) == self._risk_asked[0][:2]:
            self._show_risk(risk)  # (not one of an order or book since replaced)

    def _show_risk(self, risk: RiskWhatIf | None) -> None:
        self.risk = risk
        texts, note = what_if_lines(risk)
        self.form.show_risk(texts, note, named_tooltip(risk))

    def status_message(self, text: str) -> None:
        self.form.set_status("bad", text)

    def health(self) -> tuple[bool, str]:
        if self.order is None:
            return True, "ticket: no order"
        state = self.sent_state.status.value if self.sent_state is not None else "not sent"
        return True, f"ticket: {self.order.name or 'order'} ({state})"

