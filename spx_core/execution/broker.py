"""The broker protocol: what the order service needs from the paper broker and the IB adapter alike.

A broker is driven, never polled by the GUI: the service calls ``submit`` / ``modify`` / ``cancel`` (all
non-blocking: an async broker schedules the work on its loop) and the broker reports everything that
happens as :class:`~spx_core.execution.orders.OrderEvent` through the sink the service bound. The service
writes each event to the store in one transaction before anything shows it.

``submit`` and ``modify`` are final here: they take an :class:`~spx_core.execution.approval.ApprovedOrder`,
consume it (single use, not expired) and only then call the subclass's ``_submit`` / ``_modify``. A broker
therefore cannot be reached with a request the gate did not approve (see :mod:`spx_core.execution.approval`).

Time and market are injected (:class:`MarketView`), never read from the wall clock, so the backtester can
drive the same paper broker synchronously on a simulated clock.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, final, runtime_checkable

from spx_core.domain.snapshot import ChainSnapshot
from spx_core.execution.approval import ApprovedOrder, GateBypassError
from spx_core.execution.orders import OrderEvent, OrderRequest, OrderState

__all__ = ["Broker", "BrokerError", "EventSink", "MarketView", "WhatIf"]

EventSink = Callable[[OrderEvent], None]


class BrokerError(RuntimeError):
    """The broker cannot take the call (not connected, unknown order, ...); one line saying why."""


@runtime_checkable
class MarketView(Protocol):
    """The market a broker or the gate sees: the current time and the latest chain per underlying."""

    def now_ns(self) -> int: ...

    def snapshot(self, underlying: str) -> ChainSnapshot | None: ...


@dataclass(frozen=True, slots=True)
class WhatIf:
    """What sending an order would do, before sending it (IB's what-if, or the paper broker's own rules).

    Dollar figures; NaN when the broker did not say. ``source`` names where the figures come from.
    """

    init_margin_change: float
    maint_margin_change: float
    commission: float
    source: str
    warning: str = ""


class Broker(ABC):
    """Base of every broker. Subclasses implement the underscored methods."""

    #: short name stored with every order ("paper", "ib")
    name: str = ""

    def __init__(self) -> None:
        self._sink: EventSink | None = None

    # --- identity ------------------------------------------------------------------------------------------
    @property
    @abstractmethod
    def account(self) -> str:
        """The account id orders go to ("" until known)."""

    @property
    @abstractmethod
    def is_live(self) -> bool:
        """True when orders reach a real market with real money (IB live port)."""

    @property
    def connected(self) -> bool:
        return True

    # --- wiring --------------------------------------------------------------------------------------------
    def bind(self, sink: EventSink) -> None:
        """Where events go (the order service). One sink per broker."""
        self._sink = sink

    def _emit(self, event: OrderEvent) -> None:
        if self._sink is None:
            raise BrokerError(f"{self.name} broker has no event sink; bind it to the order service first")
        self._sink(event)

    # --- orders (final: the approval is checked and consumed here) -----------------------------------------
    @final
    def submit(self, approved: ApprovedOrder, now_ns: int | None = None) -> None:
        """Send a new order. Events follow through the sink (submitted/rejected, fills, ...)."""
        self._submit(self._consume(approved, now_ns))

    @final
    def modify(self, approved: ApprovedOrder, now_ns: int | None = None) -> None:
        """Change a working order's limit and/or quantity (the approved request carries the new terms)."""
        self._modify(self._consume(approved, now_ns))

    def cancel(self, ref: str) -> None:
        """Ask to cancel a working order; a CANCELLED status event confirms it."""
        self._cancel(ref)

    def adopt(self, states: Sequence[OrderState]) -> None:
        """Take over working orders restored from the store after a restart (the paper broker keeps filling
        them; the IB adapter matches them to the open orders TWS reports by our order reference)."""

    def what_if(self, request: OrderRequest) -> WhatIf | None:
        """Margin and commission of ``request`` if sent (None when the broker cannot say synchronously)."""
        return None

    def close(self) -> None:
        """Release resources (sockets, timers)."""

    def _consume(self, approved: ApprovedOrder, now_ns: int | None) -> OrderRequest:
        if not isinstance(approved, ApprovedOrder):
            raise GateBypassError(f"a broker takes only orders approved by the pre-trade gate, "
                                  f"not {type(approved).__name__}")
        # the gate judged the order for one broker (live trading allowed or not, its account): an approval for
        # the paper broker must not be spendable at a live one
        if approved.request.broker != self.name:
            raise GateBypassError(f"order {approved.request.ref} was approved for the {approved.request.broker} "
                                  f"broker, not {self.name}; ask the gate again")
        return approved.consume(now_ns)

    @abstractmethod
    def _submit(self, request: OrderRequest) -> None: ...

    @abstractmethod
    def _modify(self, request: OrderRequest) -> None: ...

    @abstractmethod
    def _cancel(self, ref: str) -> None: ...
