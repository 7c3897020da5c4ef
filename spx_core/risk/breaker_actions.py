"""What a circuit-breaker trip does, for the app and the backtester alike (issue 10 §4, issue 11 §1).

    cancelled, closed = act_on_trip(trip, service, place=session.place, record=repo.record_decision,
                                    now_ns=market.now_ns(), close_all=guard.close_all_on_trip,
                                    profile_name=guard.profile.name)

1. every working order is cancelled through the order service (the broker confirms each; one order that cannot
   be cancelled does not keep the others working);
2. with ``close_all``, every open trade gets a closing order at the natural price (``source="breaker"``) through
   ``place`` (the gate: closing orders always pass the breaker), each recorded as a TradeDecision of strategy
   "breaker" with the trip's reason.

The caller stores the counts with the trip (``CircuitBreaker.acted``). No clock and no Qt in here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from spx_core.portfolio.decisions import TradeDecision
from spx_core.risk.breaker import BreakerTrip

__all__ = ["BREAKER_SOURCE", "act_on_trip"]

log = logging.getLogger(__name__)

#: the ``source`` of the breaker's closing orders and the ``strategy`` of their decisions
BREAKER_SOURCE = "breaker"


def act_on_trip(trip: BreakerTrip, service: Any, *, place: Callable[[Any], Any], record: Callable[[TradeDecision], Any],
                now_ns: int, close_all: bool, profile_name: str) -> tuple[int, int]:
    """Cancel the working orders, then (``close_all``) close every open trade; returns (cancelled, closed)."""
    cancelled = 0
    for state in service.orders(working_only=True):
        try:
            service.cancel(state.ref)
            cancelled += 1
        except Exception:  # one order the broker cannot cancel must not keep the others working
            log.exception("BREAKER: cancelling order %s failed", state.ref)
    closed = _close_all(trip, service, place, record, now_ns, profile_name) if close_all else 0
    return cancelled, closed


def _close_all(trip: BreakerTrip, service: Any, place: Callable[[Any], Any], record: Callable[[TradeDecision], Any],
               now_ns: int, profile_name: str) -> int:
    """Closing orders at the natural price for every open trade; returns how many the gate let through."""
    sent = 0
    for trade in service.repo.trades(open_only=True):
        try:
            request = replace(service.close_request(trade.id), source=BREAKER_SOURCE)
            result = place(request)
        except Exception:
            log.exception("BREAKER: closing trade %d failed", trade.id)
            continue
        if not result.verdict.ok:
            log.error("BREAKER: closing trade %d refused: %s", trade.id, result.verdict.message)
            continue
        sent += 1
        record(TradeDecision(time_ns=int(now_ns), strategy=BREAKER_SOURCE, action="TRADE",
                             reasons=(f"breaker: {trip.reason}",), limit_profile=profile_name,
                             order_ref=request.ref))
    return sent
