"""The order service: the one path from an order request to a broker, through the gate and the store.

    service = OrderService(OrderRepository(store), PaperBroker(market), PreTradeGate(), market)
    result = service.place(request)        # gate -> store PENDING -> broker.submit(approval)
    service.subscribe(show)                # show(OrderState) after every committed change

Sequence of :meth:`OrderService.place`: the gate checks the request on the current market; a refused request
is stored REJECTED with the gate's one-line reason ("refused by <check>: <why>") and nothing is sent; an
approved one is stored PENDING (one transaction) and only then handed to the broker with its single-use
approval. Placing a request whose ref is already stored sends nothing again (idempotent on the ref).

Everything the broker reports arrives at :meth:`OrderService.on_event` (the sink bound to the broker): the
event is written to the store in ONE transaction (event, order, fill, position, trade) and only then are
the listeners told; an event the store refuses (an illegal transition, an unknown order) is logged and never
shown, so the screen never shows what a restart would not find again.

Events (plain callbacks, :meth:`OrderService.subscribe`):
    order changed (OrderState): an order's state after a change was committed (placed, rejected, every
        broker event). A failing listener is logged and the others are still told.

Thread model: one thread. Every call (place, modify, cancel, on_event, restore, expire_day) happens on the
thread that built the service: the GUI's qasync loop thread in the terminal (async brokers deliver their
events on that loop), the backtest's own thread in the backtester. A call from another thread raises
:class:`RuntimeError` instead of racing; hand work over with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from spx_core.domain.calendar import ET, MarketCalendar, from_ns
from spx_core.execution import hours, ticks
from spx_core.execution.broker import Broker, BrokerError, MarketView
from spx_core.execution.checks import CloseContext, package_quote
from spx_core.execution.gate import PreTradeGate, Verdict
from spx_core.execution.orders import (
    EventKind,
    IllegalTransition,
    Intent,
    OrderError,
    OrderEvent,
    OrderRequest,
    OrderState,
    OrderStatus,
    TimeInForce,
    apply,
)
from spx_core.portfolio.trades import closing_request

__all__ = ["ExpiresDayOrders", "OrderListener", "OrderService", "PlaceResult"]

log = logging.getLogger(__name__)

OrderListener = Callable[[OrderState], None]


@runtime_checkable
class ExpiresDayOrders(Protocol):
    """A broker that expires its own DAY orders at the session close (events through its sink)."""

    def expire(self, now_ns: int) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class PlaceResult:
    """What :meth:`OrderService.place` did: the order's state now and the gate's verdict.

    ``sent`` is True when the broker was handed the order in this call.
    """

    state: OrderState
    verdict: Verdict
    sent: bool = False


class OrderService:
    """Gate, store and broker tied together (see the module docstring for the sequence and thread model)."""

    def __init__(self, repo: Any, broker: Broker, gate: PreTradeGate, market: MarketView, *,
                 calendar: MarketCalendar | None = None) -> None:
        self.repo = repo
        self.gate = gate
        self.market = market
        self.calendar = calendar or gate.calendar
        self._owner = threading.get_ident()
        self._listeners: list[OrderListener] = []
        self.broker = broker
        broker.bind(self.on_event)

    # --- events --------------------------------------------------------------------------------------------
    def subscribe(self, listener: OrderListener) -> Callable[[], None]:
        """Call ``listener(state)`` after every committed order change; returns the unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def on_event(self, event: OrderEvent) -> OrderState | None:
        """The broker's sink: store ``event`` (one transaction), then tell the listeners. None if refused."""
        self._check_thread()
        try:
            state = self.repo.append(event)
        except IllegalTransition as exc:
            stored = self.repo.order(event.ref)
            if event.kind is EventKind.STATUS and stored is not None and stored.status.is_done:
                # a broker echoing a final status after ours (a CANCELLED confirming our EXPIRED) changes nothing
                log.info("order %s: %s from %s ignored, the order is already %s", event.ref, event.status,
                         self.broker.name, stored.status)
            else:
                log.error("order %s: %s event from %s not stored, not shown: %s", event.ref, event.kind,
                          self.broker.name, exc)
            return None
        except Exception as exc:
            log.error("order %s: %s event from %s not stored, not shown: %s: %s", event.ref, event.kind,
                      self.broker.name, type(exc).__name__, exc)
            return None
        self._notify(state)
        return state

    def _notify(self, state: OrderState) -> None:
        for listener in list(self._listeners):
            try:
                listener(state)
            except Exception:  # one failing view must not starve the others of a committed change
                log.exception("order listener %r failed on order %s", listener, state.ref)

    def _check_thread(self) -> None:
        if threading.get_ident() != self._owner:
            raise RuntimeError(f"OrderService called from thread {threading.current_thread().name}; it runs on the "
                               f"thread that built it: hand the call over with loop.call_soon_threadsafe")

    def _reject(self, request: OrderRequest, reason: str) -> OrderState:
        """Store ``request`` REJECTED with ``reason`` (kept in memory only when the store refuses the request)."""
        event = OrderEvent(request.ref, EventKind.STATUS, int(self.market.now_ns()), status=OrderStatus.REJECTED,
                           reason=reason)
        try:
            self.repo.add_order(request)
        except OrderError as exc:  # e.g. a close of a trade the store does not know: nothing to store it under
            log.warning("order %s: refused and not stored (%s)", request.ref, exc)
            state = apply(OrderState.new(request), event)
            self._notify(state)
            return state
        return self.on_event(event) or self.repo.order(request.ref)

    # --- orders --------------------------------------------------------------------------------------------
    def preview(self, request: OrderRequest) -> Verdict:
        """The gate's verdict on ``request`` now, for the ticket (mints nothing, sends nothing)."""
        return self.gate.preview(request, self.market, self.broker, close=self._close_context(request))

    def place(self, request: OrderRequest) -> PlaceResult:
        """Gate, store, send. Refused: stored REJECTED with the gate's reason and nothing sent."""
        self._check_thread()
        stored = self.repo.order(request.ref)
        if stored is not None:
            if stored.request != request:
                raise OrderError(f"order ref {request.ref} is already used by a different order; "
                                 f"give the new order new_ref()")
            return PlaceResult(stored, Verdict.refused(
                "duplicate", f"order {request.ref} is already stored ({stored.status}); nothing sent again"))
        verdict = self.gate.check(request, self.market, self.broker, close=self._close_context(request))
        if not verdict.ok:
            log.info("order %s %s", request.ref, verdict.message)
            return PlaceResult(self._reject(request, verdict.message), verdict)
        state = self.repo.add_order(request)
        self._notify(state)
        sent = self._send(request.ref, lambda: self.broker.submit(verdict.approved, int(self.market.now_ns())))
        return PlaceResult(self.repo.order(request.ref) or state, verdict, sent)

    def _send(self, ref: str, call: Callable[[], None]) -> bool:
        """Hand an approved order to the broker; a broker that cannot take it leaves it REJECTED, not PENDING."""
        try:
            call()
        except Exception as exc:
            if not isinstance(exc, BrokerError):
                log.exception("order %s: %s broker failed on submit", ref, self.broker.name)
            stored = self.repo.order(ref)
            if stored is not None and stored.status is OrderStatus.PENDING:
                self.on_event(OrderEvent(ref, EventKind.STATUS, int(self.market.now_ns()), status=OrderStatus.REJECTED,
                                         reason=f"not sent: {self.broker.name}: {exc}"))
            return False
        return True

    def modify(self, ref: str, *, limit: float | None = None, quantity: int | None = None) -> Verdict:
        """New limit and/or quantity for a working order, through the gate; refused: the order is unchanged."""
        self._check_thread()
        state = self._stored(ref)
        if not state.status.is_working:
            why = "not acknowledged by the broker yet" if state.status is OrderStatus.PENDING else str(state.status)
            return Verdict.refused("modify", f"order {ref} is {why}; nothing to modify")
        new_limit = state.limit if limit is None else float(limit)
        new_quantity = state.quantity if quantity is None else quantity
        if new_limit == state.limit and new_quantity == state.quantity:
            return Verdict.refused("modify", f"order {ref} already works {new_quantity} at {new_limit}; nothing "
                                             f"to change")
        if new_quantity < max(state.filled, 1):
            return Verdict.refused("modify", f"new quantity {new_quantity} is below the {max(state.filled, 1)} "
                                             f"already filled or the minimum of 1")
        amended = state.request.with_terms(limit=new_limit, quantity=new_quantity)
        verdict = self.gate.check(amended, self.market, self.broker,
                                  close=self._close_context(amended, exclude_ref=ref, filled=state.filled))
        if not verdict.ok:
            log.info("modify of order %s %s", ref, verdict.message)
            return verdict
        try:
            self.broker.modify(verdict.approved, int(self.market.now_ns()))
        except BrokerError as exc:
            return Verdict.refused("broker", f"{self.broker.name} did not take the modify: {exc}")
        return verdict

    def cancel(self, ref: str) -> None:
        """Ask the broker to cancel a working order (its CANCELLED event confirms it). A done order: no-op."""
        self._check_thread()
        state = self._stored(ref)
        if state.is_working:
            self.broker.cancel(ref)

    def _stored(self, ref: str) -> OrderState:
        state = self.repo.order(ref)
        if state is None:
            raise OrderError(f"no order {ref} in the store; pick an order from the blotter")
        return state

    def _close_context(self, request: OrderRequest, *, exclude_ref: str | None = None,
                       filled: int = 0) -> CloseContext | None:
        if request.intent is not Intent.CLOSE:
            return None
        others = sum(s.remaining for s in self.repo.orders(working_only=True)
                     if s.request.intent is Intent.CLOSE and s.request.trade_id == request.trade_id
                     and s.ref != (exclude_ref or request.ref))
        return CloseContext(self.repo.trade(request.trade_id), others, filled)

    # --- lifecycle -----------------------------------------------------------------------------------------
    def restore(self) -> list[OrderState]:
        """After a restart: this broker's working orders from the store, handed to ``broker.adopt``."""
        self._check_thread()
        working = [s for s in self.repo.orders(working_only=True) if s.request.broker == self.broker.name]
        self.broker.adopt(working)
        return working

    def expire_day(self, now_ns: int) -> list[OrderState]:
        """Expire every working DAY order whose session closed at or before ``now_ns``; the expired states.

        A broker that expires its own DAY orders (:class:`ExpiresDayOrders`, the paper broker) does it first and
        its EXPIRED events arrive through :meth:`on_event`; what is still working after that (a broker that
        lost the order, a broker without the capability) is stored EXPIRED here, then dropped at the broker
        (its CANCELLED echo is ignored, see :meth:`on_event`).
        """
        self._check_thread()
        expired = set(self.broker.expire(now_ns)) if isinstance(self.broker, ExpiresDayOrders) else set()
        for state in self.repo.orders(working_only=True):
            req = state.request
            if req.tif is not TimeInForce.DAY or req.broker != self.broker.name:
                continue
            close = self._session_close_ns(req, req.created_ns or self._first_event_ns(state))
            if close > now_ns:
                continue
            done = self.on_event(OrderEvent(req.ref, EventKind.STATUS, int(now_ns), status=OrderStatus.EXPIRED,
                                            reason=f"DAY order expired at the {from_ns(close).astimezone(ET):%H:%M} "
                                                   f"ET close"))
            if done is not None:
                expired.add(req.ref)
                self._drop_at_broker(req.ref)
        return [s for s in (self.repo.order(ref) for ref in sorted(expired)) if s is not None]

    def _first_event_ns(self, state: OrderState) -> int:
        """When the order reached the broker (its first event), for requests that carry no ``created_ns``."""
        events = self.repo.events(state.ref)
        return events[0].time_ns if events else state.updated_ns

    def _drop_at_broker(self, ref: str) -> None:
        try:
            self.broker.cancel(ref)
        except BrokerError as exc:  # the broker already forgot it: exactly what we want
            log.info("order %s: expired; %s had nothing to cancel (%s)", ref, self.broker.name, exc)

    def _session_close_ns(self, request: OrderRequest, start_ns: int) -> int:
        """When a DAY order sent at ``start_ns`` expires: its session's close, the earliest of its legs'."""
        return min(hours.session_close_ns(leg.contract, start_ns, self.calendar) for leg in request.legs)

    def switch_broker(self, broker: Broker) -> list[OrderState]:
        """Send future orders to ``broker`` (no working orders may be left at the current one)."""
        self._check_thread()
        working = [s for s in self.repo.orders(working_only=True) if s.request.broker == self.broker.name]
        if working:
            raise BrokerError(f"{len(working)} orders are still working at {self.broker.name}; cancel them "
                              f"before switching to {broker.name}")
        self.broker = broker
        broker.bind(self.on_event)
        return self.restore()

    def close_request(self, trade_id: int, *, quantity: int | None = None) -> OrderRequest:
        """The order that closes trade ``trade_id`` (all open units by default), for the ticket to show.

        A limit order at the current natural price (on the tick grid) when the legs are quoted, else a market
        order (which the gate refuses until quotes return).
        """
        trade = self.repo.trade(trade_id)
        if trade is None:
            raise OrderError(f"no trade #{trade_id} in the store; pick a trade from the positions panel")
        side = trade.side.opposite
        natural = package_quote(trade.order_legs, self.market, self.gate.settings.refuse_flags, side).natural(side)
        limit = None
        if math.isfinite(natural):
            roots = {leg.contract.root for leg in trade.legs}
            tick = ticks.order_tick_size(natural, roots, combo=len(trade.legs) > 1)
            limit = round(round(natural / tick) * tick, 10)
        return closing_request(trade, quantity=quantity, limit=limit, now_ns=int(self.market.now_ns()),
                               broker=self.broker.name, account=self.broker.account)

    # --- reading -------------------------------------------------------------------------------------------
    def orders(self, **kwargs: Any) -> list[OrderState]:
        return self.repo.orders(**kwargs)

    def positions(self, **kwargs: Any) -> list[Any]:
        return self.repo.positions(**kwargs)

    def trades(self, **kwargs: Any) -> list[Any]:
        return self.repo.trades(**kwargs)
