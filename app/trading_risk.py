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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: app.trading loads this module before the first paint (no SQLAlchemy)
    from app.trading import TradingSession
    from spx_core.risk.breaker import BreakerTrip
    from spx_core.risk.guard import RiskGuard

__all__ = ["BREAKER_SOURCE", "after_refresh", "attach_guard", "on_breaker_trip", "set_profile"]

log = logging.getLogger(__name__)

#: the ``source`` of the breaker's closing orders and the ``strategy`` of their decisions (the core's constant)
BREAKER_SOURCE = "breaker"  # == spx_core.risk.breaker_actions.BREAKER_SOURCE (not imported: no SQLAlchemy at paint)


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
    from spx_core.risk.breaker_actions import act_on_trip

    guard = session.guard
    cancelled, closed = act_on_trip(
        trip, session.service, place=session.place, record=session.repo.record_decision,
        now_ns=int(session.market.now_ns()), close_all=guard is not None and guard.close_all_on_trip,
        profile_name=guard.profile.name if guard is not None else "")
    if guard is not None:
        guard.record_action(cancelled, closed)
    log.critical("BREAKER: %s; %d working orders cancelled, %d trades sent closing orders; new entries refused "
                 "until the next session", trip.reason, cancelled, closed)


def store_close_all(risk_repo: Any, on: bool) -> None:
    """The settings' checkbox written where the guard reads it (risk_state ``close_all_on_breaker``)."""
    from spx_core.storage.risk_repo import CLOSE_ALL_KEY

    risk_repo.put(CLOSE_ALL_KEY, "1" if on else "0", time.time_ns())  # updated_ns is bookkeeping, not logic
