"""The trading session's risk glue: the :class:`~spx_core.risk.guard.RiskGuard` (the gate's ``limits`` hook) fed
after every portfolio refresh, and what the app does when the circuit breaker trips.

On a trip (once per market day; the guard stores it first):
    1. every working order is cancelled through the order service (the broker confirms each);
    2. when the setting "close all positions when the breaker trips" is on (risk_state ``close_all_on_breaker``
       = "1"), every open trade gets a closing order at the natural price, ``source="breaker"``, through the
       gate (closing orders always pass the breaker), each recorded as a TradeDecision of strategy "breaker";
    3. what was done is stored with the trip, logged at CRITICAL, and ``risk_changed`` carries the trip to the
       status bar's red BREAKER label.
Kept apart from :mod:`app.trading` so that module stays about orders and the portfolio.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: app.trading loads this module before the first paint (no SQLAlchemy)
    from app.trading import TradingSession
    from spx_core.risk.breaker import BreakerTrip
    from spx_core.risk.guard import RiskGuard

__all__ = ["BREAKER_SOURCE", "after_refresh", "attach_guard", "on_breaker_trip", "set_profile"]

log = logging.getLogger(__name__)

#: the ``source`` of the breaker's closing orders and the ``strategy`` of their decisions
BREAKER_SOURCE = "breaker"


def attach_guard(session: TradingSession, guard: RiskGuard) -> None:
    """Give ``session`` its guard (the one its gate calls) and act on the guard's trips."""
    session.guard = guard
    guard.on_trip(lambda trip: on_breaker_trip(session, trip))


#: Least wall seconds between two IV solves for the greek limits' use (a full SPX chain takes tens of ms on the
#: GUI thread; the gauges read well at once a second, and the gate always checks an order on the current chain).
REVALUE_SECONDS = 1.0


def after_refresh(session: TradingSession, portfolio: Any) -> None:
    """The guard's update after a portfolio refresh, then ``risk_changed(GuardStatus)``."""
    guard = session.guard
    if guard is None or portfolio is None:
        return
    now = time.monotonic()
    revalue = now - getattr(session, "_risk_valued_at", -math.inf) >= REVALUE_SECONDS
    if revalue:
        session._risk_valued_at = now
    try:
        status = guard.update(portfolio, revalue=revalue)
    except Exception:  # the gauges stop updating; orders are still gated (the hook fails closed)
        log.exception("risk: the guard could not update after the portfolio refresh")
        return
    session.risk_changed.emit(status)


def set_profile(session: TradingSession, name: str) -> None:
    """Make ``name`` the active limit profile (stored) and show its use at once."""
    if session.guard is None:
        raise RuntimeError("no risk guard on this trading session")
    session.guard.set_profile(name)
    session.refresh_portfolio()


def on_breaker_trip(session: TradingSession, trip: BreakerTrip) -> None:
    """Cancel every working order; send closing orders for every open trade when the setting says so."""
    guard = session.guard
    cancelled = 0
    for state in session.service.orders(working_only=True):
        try:
            session.service.cancel(state.ref)
            cancelled += 1
        except Exception:  # one order the broker cannot cancel must not keep the others working
            log.exception("BREAKER: cancelling order %s failed", state.ref)
    closed = 0
    if guard is not None and guard.close_all_on_trip:
        closed = _close_all(session, guard, trip)
    if guard is not None:
        guard.record_action(cancelled, closed)
    log.critical("BREAKER: %s; %d working orders cancelled, %d trades sent closing orders; new entries refused "
                 "until the next session", trip.reason, cancelled, closed)


def _close_all(session: TradingSession, guard: RiskGuard, trip: BreakerTrip) -> int:
    """Closing orders at the natural price for every open trade; returns how many the gate let through."""
    from spx_core.portfolio.decisions import TradeDecision

    sent = 0
    for trade in session.repo.trades(open_only=True):
        try:
            request = replace(session.service.close_request(trade.id), source=BREAKER_SOURCE)
            result = session.place(request)
        except Exception:
            log.exception("BREAKER: closing trade %d failed", trade.id)
            continue
        if not result.verdict.ok:
            log.error("BREAKER: closing trade %d refused: %s", trade.id, result.verdict.message)
            continue
        sent += 1
        session.repo.record_decision(TradeDecision(
            time_ns=int(session.market.now_ns()), strategy=BREAKER_SOURCE, action="TRADE",
            reasons=(f"breaker: {trip.reason}",), limit_profile=guard.profile.name, order_ref=request.ref))
    return sent


def store_close_all(risk_repo: Any, on: bool) -> None:
    """The settings' checkbox written where the guard reads it (risk_state ``close_all_on_breaker``)."""
    from spx_core.storage.risk_repo import CLOSE_ALL_KEY

    risk_repo.put(CLOSE_ALL_KEY, "1" if on else "0", time.time_ns())  # updated_ns is bookkeeping, not logic
