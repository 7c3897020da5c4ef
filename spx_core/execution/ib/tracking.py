"""What the adapter knows of each of our orders, and the translation of TWS's reports into order events.

TWS's own pushes are the only source of order state: ``openOrder`` / ``orderStatus`` (working, cancelled),
``execDetails`` of each LEG (fills; the BAG summary execution is skipped) joined with its ``commissionReport``
(IB's figure includes exchange and regulatory fees: it is recorded as the fill's commission, fees 0),
``completedOrder`` (what finished while we were away) and error codes (201 rejected, 202 cancelled). The client
library's local ``Trade.orderStatus`` is never read: ib_insync marks a still-working order Cancelled after a
failed modify (error 105).

They are read by tapping the library's wrapper methods (called by its decoder for every message, live or in
answer to a request), after the library has done its own bookkeeping. Every event goes through
:func:`~spx_core.execution.orders.apply` on our copy of the state first, so an event the order service would
refuse (or a repeat) is never emitted.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from spx_core.domain.contracts import OptionContract
from spx_core.execution.ib.compat import unset_to_nan
from spx_core.execution.ib.contracts import from_ib
from spx_core.execution.orders import (
    EventKind,
    Fill,
    IllegalTransition,
    OrderEvent,
    OrderRequest,
    OrderState,
    OrderStatus,
    Side,
    apply,
)

__all__ = ["Modify", "OrderTracker", "Replace", "Tracked", "tap"]

log = logging.getLogger(__name__)

_WORKING = {"PreSubmitted", "Submitted"}
_CANCELLED = {"Cancelled", "ApiCancelled"}
#: Error codes that reject an order TWS has not accepted yet; other codes reject it only while it is unacknowledged.
REJECTED_CODES = frozenset({201, 203})
CANCELLED_CODE = 202
#: Seconds an unasked-for "Cancelled" status waits for the error that says why (201 rejected / 202 cancelled).
REASON_WAIT_S = 0.5
#: A modify TWS refused because the order it got does not match the working one (ib_insync issue 464).
MODIFY_MISMATCH = 105
#: Informational codes for an order: the order goes on (e.g. 399 "will be placed at the open").
ORDER_WARNINGS = frozenset({161, 399, 404, 10148, 10167})


@dataclass
class Modify:
    """A modify in flight: the terms asked for (ours) and as IB sees them (price per BAG, total quantity)."""

    limit: float | None
    quantity: int
    ib_limit: float | None
    ib_quantity: int


@dataclass
class Replace:
    """A cancel-and-replace in flight: ``old_id`` was cancelled for it; the replacement goes out on its 202."""

    old_id: int
    sent: bool = False  # the replacement went out (202 and orderStatus Cancelled both confirm the cancel)
    cancel_requested: bool = False  # the user cancelled the order while the replace was under way


@dataclass
class Tracked:
    state: OrderState
    adopted: bool = False  # restored from the store (not sent by this process)
    order_id: int | None = None  # the TWS order id working for our ref now
    contract: object | None = None  # what we sent (BAG or option)
    echoed: object | None = None  # the contract as TWS echoed it in openOrder: a modify must re-send exactly this
    ib_order: object | None = None
    sending: bool = False
    cancel_requested: bool = False  # we asked TWS to cancel it
    send_started: float = 0.0  # monotonic seconds of the first send attempt (bounds a re-send after a drop)
    known: bool = False  # TWS listed it (open order) since the last reconciliation began
    modify: Modify | None = None
    replace: Replace | None = None
    superseded: set[int] = field(default_factory=set)  # order ids cancelled for a replace: not our status

    @property
    def ref(self) -> str:
        return self.state.ref

    @property
    def request(self) -> OrderRequest:
        return self.state.request


@dataclass
class _Execution:
    ref: str
    leg: int
    side: Side
    quantity: int
    price: float
    time_ns: int
    order_id: int
    perm_id: int
    timer: object | None = None


def tap(wrapper: object, name: str, after: Callable[..., None]) -> None:
    """Call ``after(*args)`` after the library's own handler of wrapper method ``name`` (its decoder looks the
    method up on the instance for every message). A failure in ``after`` is logged under our logger, never
    passed to the library's decoder (which would drop the rest of the message)."""
    original = getattr(wrapper, name)

    def tapped(*args, **kwargs):
        original(*args, **kwargs)
        try:
            after(*args, **kwargs)
        except Exception:
            log.exception("handling TWS %s failed", name)

    setattr(wrapper, name, tapped)


class OrderTracker:
    """Our orders by ref and by TWS order id; turns TWS reports into events for ``emit``."""

    def __init__(self, emit: Callable[[OrderEvent], None], clock: Callable[[], int],
                 call_later: Callable[[float, Callable[[], None]], object], *, commission_wait: float,
                 client_id: Callable[[], int], cancel_for_replace: Callable[[Tracked], None],
                 on_replace: Callable[[Tracked], None]) -> None:
        self.orders: dict[str, Tracked] = {}
        self.by_id: dict[int, str] = {}
        self.completed: dict[str, list[tuple[str, str]]] = {}  # ref -> (status, text) since reconciliation began
        self._emit = emit
        self._clock = clock
        self._call_later = call_later
        self._commission_wait = commission_wait
        self._client_id = client_id
        self._cancel_for_replace = cancel_for_replace
        self._on_replace = on_replace
        self._execs: dict[str, _Execution] = {}  # leg executions waiting for their commission report
        self._commissions: dict[str, float] = {}  # commission reports that came before their execution

    # --- registry ------------------------------------------------------------------------------------------
    def add(self, tracked: Tracked) -> None:
        self.orders[tracked.ref] = tracked

    def bind_id(self, tracked: Tracked, order_id: int) -> None:
        tracked.order_id = order_id
        self.by_id[order_id] = tracked.ref

    def for_id(self, order_id: int) -> Tracked | None:
        ref = self.by_id.get(order_id)
        return self.orders.get(ref) if ref else None

    def has_pending_exec(self, ref: str) -> bool:
        return any(e.ref == ref for e in self._execs.values())

    # --- emitting (through our copy of the state machine) --------------------------------------------------
    def event(self, t: Tracked, kind: EventKind, **fields) -> bool:
        ids = {"broker_order_id": str(t.order_id) if t.order_id is not None else None,
               "perm_id": str(t.state.perm_id or "") or None}
        perm_id = fields.pop("perm_id", None)
        if perm_id:
            ids["perm_id"] = perm_id
        event = OrderEvent(ref=t.ref, kind=kind, time_ns=fields.pop("time_ns", None) or self._clock(),
                           **ids, **fields)
        try:
            state = apply(t.state, event)
        except IllegalTransition as exc:
            log.info("IB report not applied: %s", exc)
            return False
        t.state = state
        self._emit(event)
        return True

    def status(self, t: Tracked, status: OrderStatus, reason: str = "", perm_id: int = 0) -> None:
        if t.state.status is status or t.state.status.is_done:
            return
        self.event(t, EventKind.STATUS, status=status, reason=reason, perm_id=str(perm_id) if perm_id else None)

    # --- TWS reports ---------------------------------------------------------------------------------------
    def on_open_order(self, order_id: int, contract, order, order_state) -> None:
        if getattr(order, "whatIf", False):
            return
        t = self.orders.get(order.orderRef or "")
        if t is None or order_id in t.superseded:
            return
        if t.order_id != order_id:
            self.bind_id(t, order_id)
        t.known = True
        t.echoed = copy.deepcopy(contract)
        perm_id = int(order.permId or 0)
        self._tws_status(t, order_state.status, perm_id)
        m = t.modify
        if m is not None and t.replace is None and _same_terms(order, m):
            t.modify = None
            self.event(t, EventKind.AMEND, limit=m.limit, quantity=m.quantity,
                       perm_id=str(perm_id) if perm_id else None)

    def on_order_status(self, order_id: int, status: str, *args) -> None:
        client_id = args[6] if len(args) > 6 else None  # filled, remaining, avg, permId, parentId, last, clientId
        if client_id is not None and int(client_id) != self._client_id():
            return
        t = self.for_id(order_id)
        if t is None or order_id in t.superseded:
            if t is not None and t.replace is not None and order_id == t.replace.old_id and status in _CANCELLED:
                self._on_replace(t)
            return
        self._tws_status(t, status, int(args[3] or 0) if len(args) > 3 else 0)

    def _tws_status(self, t: Tracked, tws_status: str, perm_id: int) -> None:
        if tws_status in _WORKING and t.state.status is OrderStatus.PENDING:
            self.status(t, OrderStatus.SUBMITTED, perm_id=perm_id)
        elif tws_status in _CANCELLED and not t.state.status.is_done:
            if t.cancel_requested:
                self.status(t, OrderStatus.CANCELLED, "cancelled as asked", perm_id=perm_id)
            else:  # TWS's own cancel or a rejection: its error (202 / 201 with the reason) follows; wait for it
                self._call_later(REASON_WAIT_S, lambda: self.status(t, OrderStatus.CANCELLED, "cancelled at TWS",
                                                                    perm_id=perm_id))

    def on_completed_order(self, contract, order, order_state) -> None:
        if order.orderRef in self.orders:
            text = order_state.completedStatus or order_state.warningText or order_state.status
            self.completed.setdefault(order.orderRef, []).append((order_state.status, text))

    def on_error(self, req_id: int, code: int, text: str) -> bool:
        """Handle an order error; False when ``req_id`` is none of our orders."""
        t = self.for_id(req_id)
        if t is None:
            return False
        if t.replace is not None and req_id == t.replace.old_id:
            if code == CANCELLED_CODE:
                self._on_replace(t)
            return True
        if code == CANCELLED_CODE:
            self.status(t, OrderStatus.CANCELLED, text)
        elif t.modify is not None and t.state.is_working and t.state.status is not OrderStatus.PENDING:
            self._modify_failed(t, code, text)
        elif code in REJECTED_CODES or (t.state.status is OrderStatus.PENDING and code not in ORDER_WARNINGS
                                        and code < 2100):
            self.status(t, OrderStatus.REJECTED, f"IB error {code}: {text}")
        return True

    def _modify_failed(self, t: Tracked, code: int, text: str) -> None:
        if code == MODIFY_MISMATCH and t.order_id is not None:
            log.info("order %s: TWS refused the modify (105); cancelling and replacing it", t.ref)
            t.replace = Replace(old_id=t.order_id)
            t.superseded.add(t.order_id)
            self._cancel_for_replace(t)
            return
        log.warning("order %s: TWS refused the modify (error %s: %s); the order works on unchanged",
                    t.ref, code, text)
        m, t.modify = t.modify, None
        # said on the order itself (same status, new reason: stored, shown in the blotter), not only in the log
        was = f"{t.state.limit:g} x {t.state.quantity}" if t.state.limit is not None else f"x {t.state.quantity}"
        asked = f"{m.limit:g} x {m.quantity}" if m.limit is not None else f"x {m.quantity}"
        self.event(t, EventKind.STATUS, status=t.state.status,
                   reason=f"modify to {asked} refused by TWS (error {code}: {text}); works on at {was}")

    def on_exec(self, req_id: int, contract, execution) -> None:
        if getattr(contract, "secType", "") == "BAG":
            return  # the combo's summary execution; its legs come as their own executions
        t = self.orders.get(execution.orderRef or "")
        if t is None and int(execution.clientId) == self._client_id():
            t = self.for_id(int(execution.orderId))
        exec_id = execution.execId
        if t is None or exec_id in self._execs or any(f.exec_id == exec_id for f in t.state.fills):
            return
        ours = from_ib(contract)
        leg = next((i for i, lg in enumerate(t.request.legs) if ours is not None and _same_listing(lg.contract, ours)),
                   None)
        if leg is None:
            log.warning("order %s: execution %s of %s is none of its legs; ignored", t.ref, exec_id, ours)
            return
        self._execs[exec_id] = _Execution(
            ref=t.ref, leg=leg, side=Side.BUY if execution.side == "BOT" else Side.SELL,
            quantity=round(float(execution.shares)), price=float(execution.price),
            time_ns=_ns(execution.time) or self._clock(), order_id=int(execution.orderId),
            perm_id=int(execution.permId or 0))
        if exec_id in self._commissions:
            self._fill(exec_id, self._commissions.pop(exec_id))
        else:
            self._execs[exec_id].timer = self._call_later(self._commission_wait, lambda: self._late(exec_id))

    def on_commission(self, report) -> None:
        commission = unset_to_nan(report.commission)
        commission = 0.0 if math.isnan(commission) else commission
        if report.execId in self._execs:
            self._fill(report.execId, commission)
        elif len(self._commissions) < 10_000:
            self._commissions[report.execId] = commission

    def _late(self, exec_id: str) -> None:
        if exec_id in self._execs:
            log.warning("no commission report for execution %s within %g s; recorded without commission",
                        exec_id, self._commission_wait)
            self._fill(exec_id, 0.0)

    def _fill(self, exec_id: str, commission: float) -> None:
        e = self._execs.pop(exec_id)
        cancel = getattr(e.timer, "cancel", None)
        if cancel is not None:
            cancel()
        t = self.orders.get(e.ref)
        if t is None:
            return
        fill = Fill(exec_id=exec_id, leg=e.leg, contract=t.request.legs[e.leg].contract, side=e.side,
                    quantity=e.quantity, price=e.price, time_ns=e.time_ns, commission=commission)
        self.event(t, EventKind.FILL, fill=fill, time_ns=e.time_ns, perm_id=str(e.perm_id) if e.perm_id else None)


def _same_listing(a: OptionContract, b: OptionContract) -> bool:
    """The same listed option, whatever exchange/currency label each side carries (TWS reports SMART or CBOE)."""
    return (a.root, a.expiry, a.strike, a.right) == (b.root, b.expiry, b.strike, b.right)


def _same_terms(order, m: Modify) -> bool:
    price_ok = m.ib_limit is None or abs(unset_to_nan(order.lmtPrice) - m.ib_limit) < 1e-9
    return price_ok and round(float(order.totalQuantity)) == m.ib_quantity


def _ns(when: object) -> int:
    if isinstance(when, datetime) and when.tzinfo is not None and when.year > 1971:
        return int(when.timestamp() * 1_000_000_000)
    return 0
