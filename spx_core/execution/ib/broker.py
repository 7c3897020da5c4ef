"""The Interactive Brokers broker: our orders as BAG (or single-option) orders at TWS / IB Gateway.

``submit`` / ``modify`` / ``cancel`` return at once; the work runs on the connection's loop and everything TWS
reports comes back as :class:`~spx_core.execution.orders.OrderEvent` through the bound sink (see
:mod:`spx_core.execution.ib.tracking` for how reports become events, and why the library's own order status is
never read).

Idempotency: our order reference travels as IB's ``orderRef``. A ref is sent at most once per process; after
every (re)connect the reconciliation lists TWS's open and completed orders and today's executions, matches them
to our orders by ``orderRef``, and re-sends only an order that TWS does not know at all.

Modify (ib_insync issue 464): the order is re-sent under its TWS order id with the contract exactly as TWS echoed
it in ``openOrder``; if TWS still refuses (error 105) the order is cancelled and, on the cancel's confirmation
(202), replaced by a new TWS order under the same ref for the remaining quantity.

Positions: after the orders' reconciliation (so the executions it brought are booked), ``position_watch``
(:class:`~spx_core.execution.ib.position_watch.PositionWatch`) compares TWS's positions of our account with the
book and reports the result; the book is never rewritten from IB's numbers. While connected the comparison runs
again every ``position_check_interval`` seconds (a trade entered in TWS by hand, an assignment overnight).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import time
from collections.abc import Callable, Sequence

from spx_core.execution.broker import Broker, BrokerError, WhatIf
from spx_core.execution.ib.account import IbAccount, account_figures, watch_pnl
from spx_core.execution.ib.compat import ib_module, unset_to_nan
from spx_core.execution.ib.connection import IbConnection, NotConnected
from spx_core.execution.ib.contracts import (
    ContractError,
    QualifiedCache,
    bag_for,
    qualify,
)
from spx_core.execution.ib.pacing import TokenBucket
from spx_core.execution.ib.position_watch import BookReader, PositionWatch
from spx_core.execution.ib.tracking import Modify, OrderTracker, Tracked, tap
from spx_core.execution.orders import OrderRequest, OrderState, OrderStatus, OrderType

__all__ = ["IbBroker", "ib_terms"]

log = logging.getLogger(__name__)

#: An order lost in a drop (sent, yet unknown to TWS after the reconnect) is re-sent only this soon after it was
#: sent (seconds; the gate's approval lives as long): later, the market it was priced on is gone.
RESEND_WINDOW_S = 30.0
#: What-if answers kept (by terms): a ticket priced at the mid asks for new terms whenever the mid moves.
WHAT_IF_KEPT = 64


def ib_terms(request: OrderRequest, quantity: int | None = None) -> tuple[str, int, float | None]:
    """IB's ``(action, totalQuantity, lmtPrice)`` for ``request`` (``quantity`` units, default all).

    A package goes as a BAG whose legs carry the ratios: BUY/SELL and the package limit map directly (our price
    convention is IB's). A single leg goes as the option itself: its own side, contracts = |ratio| x units, and
    the per-contract price ``limit / ratio`` (package price = ratio x price)."""
    units = request.quantity if quantity is None else quantity
    if len(request.legs) > 1:
        return request.side.value.upper(), units, request.limit
    ratio = request.legs[0].ratio
    limit = None if request.limit is None else abs(request.limit / ratio)
    return request.leg_side(0).value.upper(), abs(ratio) * units, limit


class IbBroker(Broker):
    """Orders at TWS / IB Gateway over one :class:`IbConnection` (which it reconciles after every connect)."""

    name = "ib"

    def __init__(self, connection: IbConnection, *, clock: Callable[[], int] = time.time_ns,
                 exchange: str = "SMART", book: BookReader | None = None) -> None:
        super().__init__()
        self.connection = connection
        self.ib = connection.ib
        s = connection.settings
        self._settings = s
        self._exchange = exchange
        self._order_rate = TokenBucket.per_minute(s.orders_per_minute)
        # burst of a tenth of a second: no 1-s window ever holds more than 1.1 x the rate (TWS's limit is 50/s)
        self._messages = TokenBucket(s.messages_per_second, max(1.0, s.messages_per_second / 10))
        self._qualified = QualifiedCache()
        self._tasks: set[asyncio.Task] = set()
        self._what_ifs: dict[tuple, WhatIf] = {}  # answers by terms (newest last, at most WHAT_IF_KEPT)
        self._what_ifs_asked: set[tuple] = set()  # terms asked and not answered yet: never asked twice at once
        self.tracker = OrderTracker(self._emit, clock, self._call_later, commission_wait=s.commission_wait,
                                    client_id=lambda: s.client_id, cancel_for_replace=self._cancel_for_replace,
                                    on_replace=self._on_replace)
        self.position_watch = PositionWatch(self.ib, account=lambda: self.account, timeout=s.request_timeout,
                                            settle_wait=s.commission_wait + 0.1, book=book,
                                            executions_pending=lambda: any(map(self.tracker.has_pending_exec,
                                                                               self.tracker.orders)))
        wrapper = self.ib.wrapper
        tap(wrapper, "openOrder", self.tracker.on_open_order)
        tap(wrapper, "orderStatus", self.tracker.on_order_status)
        tap(wrapper, "execDetails", self._on_exec)
        tap(wrapper, "commissionReport", self.tracker.on_commission)
        tap(wrapper, "completedOrder", self.tracker.on_completed_order)
        self.ib.errorEvent += self._on_error
        connection.on_ready(self._reconcile)
        connection.on_ready(lambda _data_lost: self.position_watch.every(s.position_check_interval,
                                                                         connected=lambda: self.connected))
        connection.on_ready(lambda _data_lost: watch_pnl(self.ib, self.account))  # the account line's day P&L

    # --- identity ------------------------------------------------------------------------------------------
    @property
    def account(self) -> str:
        return self.connection.account or self._settings.account

    @property
    def is_live(self) -> bool:
        return not self.connection.is_paper

    @property
    def connected(self) -> bool:
        return self.connection.connected

    def account_figures(self) -> IbAccount | None:
        """IB's own net liquidation, buying power, margin and day P&L of the account (None before TWS sent them)."""
        return account_figures(self.ib, self.account)

    def working_refs(self) -> list[str]:
        return [ref for ref, t in self.tracker.orders.items() if t.state.is_working]

    # --- orders --------------------------------------------------------------------------------------------
    def _submit(self, request: OrderRequest) -> None:
        if request.ref in self.tracker.orders:
            log.warning("order %s was sent before; a ref goes to TWS once (not re-sent)", request.ref)
            return
        t = Tracked(OrderState.new(request))
        self.tracker.add(t)
        if not self.connected:  # never queued for later: a minute-old order is not the order the user meant
            self.tracker.status(t, OrderStatus.REJECTED, f"not connected to TWS ({self.connection.status.text}); "
                                                         f"nothing was sent: send it again once connected")
            return
        if not self._order_rate.try_take():
            self.tracker.status(t, OrderStatus.REJECTED, self._rate_message())
            return
        t.send_started = time.monotonic()
        self._spawn(self._send(t))

    def _rate_message(self) -> str:
        return (f"IB order rate limit of {self._settings.orders_per_minute} orders/minute reached; "
                f"wait {self._order_rate.wait_time():.0f} s and send again")

    async def _send(self, t: Tracked) -> None:
        """Send a PENDING order (unless disconnected: the reconciliation after the reconnect sends it)."""
        if t.sending or t.state.status is not OrderStatus.PENDING or not self.connected:
            return
        t.sending = True
        try:
            contract, order = await self._build(t.request)
            await self._messages.take()
            if t.state.status is not OrderStatus.PENDING or not self.connected:
                return  # cancelled or disconnected while the legs were qualified
            self.ib.placeOrder(contract, order)
            t.contract, t.ib_order = contract, order
            self.tracker.bind_id(t, int(order.orderId))
        except ContractError as exc:
            self.tracker.status(t, OrderStatus.REJECTED, str(exc))
        except (ConnectionError, TimeoutError) as exc:
            log.warning("order %s not sent (%s); it is sent after the reconnect", t.ref, exc)
        finally:
            t.sending = False

    async def _build(self, request: OrderRequest, quantity: int | None = None):
        """The IB contract (qualified option or BAG of qualified legs) and a new IB order for ``request``."""
        await self._messages.take(len(request.legs))
        options = await qualify(self.ib, request.contracts, exchange=self._exchange,
                                timeout=self._settings.request_timeout, cache=self._qualified)
        if len(options) == 1:
            contract = options[0]
        else:
            contract = bag_for(list(zip(options, request.ratios)), exchange=self._exchange,
                               currency=request.legs[0].contract.currency)
        return contract, self._new_order(request, quantity)

    def _new_order(self, request: OrderRequest, quantity: int | None = None):
        action, total, limit = ib_terms(request, quantity)
        order = ib_module().Order(action=action, totalQuantity=total, orderType=request.order_type.value,
                                  tif=request.tif.value, orderRef=request.ref, account=self.account, transmit=True)
        if request.order_type is OrderType.LMT and limit is not None:
            order.lmtPrice = limit
        return order

    def _modify(self, request: OrderRequest) -> None:
        t = self.tracker.orders.get(request.ref)
        if t is None or not t.state.is_working:
            raise BrokerError(f"order {request.ref} is not working at IB; nothing to modify")
        if not self.connected:
            raise NotConnected(f"not connected to TWS; modify order {request.ref} when the connection is back")
        if t.order_id is None or t.state.status is OrderStatus.PENDING:
            raise BrokerError(f"order {request.ref} is not acknowledged by TWS yet; modify it once it is working")
        if t.modify is not None or t.replace is not None:
            raise BrokerError(f"a modify of order {request.ref} is under way; wait for it to finish")
        if not self._order_rate.try_take():
            raise BrokerError(self._rate_message())
        _, total, limit = ib_terms(request)
        t.modify = Modify(request.limit, request.quantity, limit, total)
        self._spawn(self._send_modify(t))

    async def _send_modify(self, t: Tracked) -> None:
        m = t.modify
        if m is None or t.order_id is None:
            return
        order = copy.copy(t.ib_order) if t.ib_order is not None else self._new_order(t.request)
        order.orderId = t.order_id
        order.totalQuantity = m.ib_quantity
        if m.ib_limit is not None:
            order.lmtPrice = m.ib_limit
        try:
            contract = t.echoed or t.contract
            if contract is None:  # adopted and not echoed yet: the legs' conIds make the same BAG
                contract, _ = await self._build(t.request)
            await self._messages.take()
            self.ib.client.placeOrder(t.order_id, contract, order)  # not ib.placeOrder: it asserts on local status
        except (BrokerError, ConnectionError, TimeoutError) as exc:
            log.warning("order %s: the modify was not sent (%s); the order works on unchanged", t.ref, exc)
            t.modify = None
            return
        t.ib_order = order
        self._call_later(self._settings.request_timeout, lambda: self._modify_timed_out(t, m))

    def _modify_timed_out(self, t: Tracked, m: Modify) -> None:
        """TWS neither confirmed nor refused the modify: stop waiting so the order can be modified again."""
        if t.modify is m and t.replace is None:
            log.warning("order %s: TWS did not confirm the modify within %g s; the order shows its last confirmed "
                        "terms", t.ref, self._settings.request_timeout)
            t.modify = None

    def _cancel_for_replace(self, t: Tracked) -> None:
        assert t.replace is not None
        self.ib.client.cancelOrder(t.replace.old_id)

    def _on_replace(self, t: Tracked) -> None:
        """The old TWS order of a cancel-and-replace is cancelled: send the replacement (once)."""
        r = t.replace
        if r is None or r.sent:
            return
        r.sent = True
        if r.cancel_requested or t.modify is None:
            t.replace, t.modify = None, None
            self.tracker.status(t, OrderStatus.CANCELLED, "cancelled (during a modify)")
            return
        self._spawn(self._send_replacement(t))

    async def _send_replacement(self, t: Tracked) -> None:
        m = t.modify
        assert m is not None
        remaining = m.quantity - t.state.filled
        if remaining <= 0:
            t.replace, t.modify = None, None
            return
        request = t.request.with_terms(limit=m.limit, quantity=remaining)
        try:
            contract, order = await self._build(request)
            await self._messages.take()
            if not self.connected:
                raise ConnectionError("not connected")
        except (BrokerError, ConnectionError, TimeoutError) as exc:
            # the old order is gone at TWS: say so rather than show a working order that is not there
            t.replace, t.modify = None, None
            self.tracker.status(t, OrderStatus.CANCELLED, f"cancelled to be replaced by the modify, but the "
                                                          f"replacement could not be sent ({exc}); place it again")
            return
        m.ib_quantity = int(order.totalQuantity)
        t.replace = None
        self.ib.placeOrder(contract, order)
        t.contract, t.ib_order, t.echoed = contract, order, None
        self.tracker.bind_id(t, int(order.orderId))

    def _cancel(self, ref: str) -> None:
        t = self.tracker.orders.get(ref)
        if t is None:
            raise BrokerError(f"order {ref} is unknown to the IB broker; nothing to cancel")
        if t.state.status.is_done:
            return
        if t.replace is not None and not t.replace.sent:
            t.replace.cancel_requested = True
            return
        if t.order_id is None:
            self.tracker.status(t, OrderStatus.CANCELLED, "cancelled before it reached TWS")
            return
        if not self.connected:
            raise NotConnected(f"not connected to TWS; order {ref} was not cancelled: cancel it again once the "
                               f"connection is back (or in TWS)")
        t.cancel_requested = True
        self.ib.client.cancelOrder(t.order_id)

    # --- what-if -------------------------------------------------------------------------------------------
    def what_if(self, request: OrderRequest) -> WhatIf | None:
        """The last IB what-if of these terms; None (and one is requested in the background) if none yet.

        The ticket calls this on every refresh: terms already asked wait for their answer (one request per set
        of terms in flight), and a what-if that failed is not asked again (its terms are remembered as asked)."""
        key = _what_if_key(request)
        if key in self._what_ifs:
            return self._what_ifs[key]
        if self.connected and key not in self._what_ifs_asked:
            if len(self._what_ifs_asked) >= WHAT_IF_KEPT:  # failures pile up here: forget the oldest half
                self._what_ifs_asked = set(list(self._what_ifs_asked)[WHAT_IF_KEPT // 2:])
            self._what_ifs_asked.add(key)
            self._spawn(self._what_if_quietly(request))
        return None

    async def _what_if_quietly(self, request: OrderRequest) -> None:
        try:
            await self.what_if_async(request)
        except (BrokerError, TimeoutError, ConnectionError) as exc:
            log.warning("IB what-if of order %s failed: %s", request.ref, exc)

    async def what_if_async(self, request: OrderRequest) -> WhatIf:
        """IB's margin and commission for ``request`` if it were sent (TWS's what-if; nothing is sent)."""
        if not self.connected:
            raise NotConnected("not connected to TWS; the IB what-if needs the connection")
        contract, order = await self._build(request)
        order.orderRef = ""  # never mistaken for one of our orders
        timeout = self._settings.request_timeout
        try:
            result = await asyncio.wait_for(self.ib.whatIfOrderAsync(contract, order), timeout)
        except TimeoutError:
            raise TimeoutError(f"IB what-if of order {request.ref}: no answer within {timeout:g} s") from None
        if not hasattr(result, "initMarginChange"):  # the libraries answer a refusal with an empty list
            out = WhatIf(math.nan, math.nan, math.nan, "IB what-if",
                         warning="TWS refused the what-if (see the TWS message log)")
        else:
            out = WhatIf(unset_to_nan(result.initMarginChange), unset_to_nan(result.maintMarginChange),
                         unset_to_nan(result.commission), "IB what-if", warning=result.warningText or "")
        key = _what_if_key(request)
        self._what_ifs[key] = out  # a refusal is an answer too: asking again on every refresh gets the same
        self._what_ifs_asked.discard(key)
        while len(self._what_ifs) > WHAT_IF_KEPT:  # a mid-priced ticket makes new terms as the market moves
            del self._what_ifs[next(iter(self._what_ifs))]
        return out

    # --- reconnects ----------------------------------------------------------------------------------------
    def adopt(self, states: Sequence[OrderState]) -> None:
        for state in states:
            if state.ref in self.tracker.orders or not state.is_working:
                continue
            t = Tracked(state, adopted=True)
            self.tracker.add(t)
            if state.broker_order_id and state.broker_order_id.isdigit():
                self.tracker.bind_id(t, int(state.broker_order_id))
        if self.connected:
            self._spawn(self._reconcile(False))

    async def _reconcile(self, data_lost: bool) -> None:
        """Match TWS's open orders, completed orders and executions to ours by orderRef; send what it lacks."""
        tracker = self.tracker
        for t in tracker.orders.values():
            t.known = False
        tracker.completed.clear()
        timeout = self._settings.request_timeout
        try:
            await asyncio.wait_for(self.ib.reqOpenOrdersAsync(), timeout)
            await asyncio.wait_for(self.ib.reqCompletedOrdersAsync(False), timeout)
            await asyncio.wait_for(self.ib.reqExecutionsAsync(), timeout)
        except (TimeoutError, ConnectionError) as exc:
            log.warning("IB order reconciliation incomplete (%s); it and the position check run again after the "
                        "next reconnect", str(exc) or f"no answer within {timeout:g} s")
            return
        await self._match_orders()
        await self.position_watch.check()  # after the orders: the executions this reconnect brought are booked

    async def _match_orders(self) -> None:
        """Settle each of our orders TWS did not list as open: filled, done at TWS, lost in the drop (re-sent
        within the window) or gone."""
        tracker = self.tracker
        for t in list(tracker.orders.values()):
            if t.state.status.is_done or t.sending or t.known or tracker.has_pending_exec(t.ref):
                continue
            done = tracker.completed.get(t.ref, [])
            if any(status == "Filled" for status, _ in done):
                continue  # its executions say what filled
            if done:
                cancelled = all(status in ("Cancelled", "ApiCancelled") for status, _ in done)
                tracker.status(t, OrderStatus.CANCELLED if cancelled or t.state.status.is_working
                               else OrderStatus.REJECTED, done[-1][1] or done[-1][0])
            elif t.state.status is OrderStatus.PENDING and not t.adopted:
                age = time.monotonic() - t.send_started
                if age <= RESEND_WINDOW_S:
                    t.order_id = None
                    await self._send(t)  # lost in the drop, TWS never got it: send it once more
                else:
                    tracker.status(t, OrderStatus.CANCELLED, f"lost in a disconnect {age:.0f} s ago, never "
                                                             f"reached TWS; not re-sent: place it again")
            elif t.state.status is OrderStatus.PENDING:
                tracker.status(t, OrderStatus.CANCELLED, "never reached TWS before the restart; not re-sent: "
                                                         "place it again")
            else:
                tracker.status(t, OrderStatus.CANCELLED, "TWS no longer lists this order (not open, not "
                                                         "completed); check TWS")

    # --- plumbing ------------------------------------------------------------------------------------------
    def _on_exec(self, *args, **kwargs) -> None:
        self.position_watch.execution_seen()  # a check under way reads the positions again
        self.tracker.on_exec(*args, **kwargs)

    def _on_error(self, req_id: int, code: int, text: str, *_rest: object) -> None:
        try:
            self.tracker.on_error(int(req_id), int(code), str(text))
        except Exception:
            log.exception("handling IB error %s for request %s failed", code, req_id)

    def _loop(self) -> asyncio.AbstractEventLoop:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            if self.connection.loop is None:
                raise NotConnected("the IB broker needs its event loop; connect first") from None
            return self.connection.loop

    def _spawn(self, coro) -> asyncio.Task:
        task = self._loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("IB broker task failed: %s", task.exception(), exc_info=task.exception())

    def _call_later(self, delay: float, fn: Callable[[], None]) -> object:
        return self._loop().call_later(delay, fn)

    async def drain(self) -> None:
        """Wait for the sends/modifies under way (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.position_watch.stop()


def _what_if_key(request: OrderRequest) -> tuple:
    return (request.legs, request.side, request.quantity, request.order_type, request.limit)

