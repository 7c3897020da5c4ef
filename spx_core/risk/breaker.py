"""The circuit breaker (issue 10 §4): when the day's loss reaches the profile's daily loss limit, trip once for
the market day, store the trip, and hold until the next session.

What a trip *does* is the caller's (the app's :class:`~spx_core.risk.guard.RiskGuard` callbacks): cancel every
working order, optionally send closing orders for every open trade, refuse new entries until the next day
(the guard refuses OPEN orders while :meth:`CircuitBreaker.tripped` answers a trip). The trip is stored
(``breaker_trips``) before anyone acts on it, so a restart the same day is still tripped.

Daily loss is the profile's ``max_daily_loss`` (dollars) and/or ``max_daily_loss_pct`` (% of net
liquidation), on ``PortfolioState.day_pnl`` (realized today + the change in unrealized since the day start);
the breaker trips at the limit (``>=``, as the limits refuse). A day P&L that is unknown (NaN: an open leg
without a mark) never trips it; a known one always can. No clock in here: times are passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from spx_core.risk.limits import PortfolioState
from spx_core.risk.profiles import LimitProfile

if TYPE_CHECKING:
    from spx_core.storage.risk_repo import RiskRepository

__all__ = ["BreakerTrip", "CircuitBreaker", "daily_loss_breach"]

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class BreakerTrip:
    """One trip of the breaker.

    Attributes:
        day_ns: midnight US/Eastern of the market day it holds for (UTC ns).
        time_ns: when it tripped (market clock, UTC ns).
        reason: one line: which limit, its value and the day's loss ("max_daily_loss $1,000: day loss $1,250.00").
        cancelled: working orders it cancelled (0 until the app acted).
        closed: trades it sent closing orders for.
        id: the stored row's id (None before it is stored).
    """

    day_ns: int
    time_ns: int
    reason: str
    cancelled: int = 0
    closed: int = 0
    id: int | None = None


def daily_loss_breach(profile: LimitProfile, state: PortfolioState) -> str:
    """Why the day's loss reaches ``profile``'s daily loss limit ("" when it does not, or cannot be known)."""
    day_pnl = state.day_pnl
    if not math.isfinite(day_pnl):
        return ""
    loss = max(0.0, -day_pnl)
    if profile.max_daily_loss is not None and loss >= profile.max_daily_loss - _EPS:
        return f"max_daily_loss ${profile.max_daily_loss:,.0f}: day loss ${loss:,.2f}"
    pct_limit = profile.max_daily_loss_pct
    if pct_limit is not None and state.net_liq > 0:
        pct = 100.0 * loss / state.net_liq
        if pct >= pct_limit - _EPS:
            return (f"max_daily_loss_pct {pct_limit:g}%: day loss ${loss:,.2f} = {pct:.2f}% of net liq "
                    f"${state.net_liq:,.0f}")
    return ""


class CircuitBreaker:
    """Trips once per market day on the daily loss limit; the trip is stored through ``risk_repo``."""

    def __init__(self, risk_repo: RiskRepository) -> None:
        self.risk_repo = risk_repo
        self._day: int | None = None
        self._trip: BreakerTrip | None = None

    def tripped(self, day_start_ns: int) -> BreakerTrip | None:
        """The day's trip (read once per day from the store, so a restart the same day still holds), or None."""
        if self._day != day_start_ns:
            trips = self.risk_repo.trips(day_start_ns)
            self._day, self._trip = day_start_ns, (trips[0] if trips else None)
        return self._trip

    def check(self, profile: LimitProfile, state: PortfolioState, now_ns: int, day_start_ns: int
              ) -> BreakerTrip | None:
        """The new trip when the day's loss reaches the profile's daily loss limit now (stored before it is
        returned); None when it does not, or when the breaker already tripped today."""
        if self.tripped(day_start_ns) is not None:
            return None
        reason = daily_loss_breach(profile, state)
        if not reason:
            return None
        trip = BreakerTrip(day_ns=int(day_start_ns), time_ns=int(now_ns), reason=f"{profile.name}: {reason}")
        trip_id = self.risk_repo.record_trip(trip)
        self._trip = BreakerTrip(trip.day_ns, trip.time_ns, trip.reason, id=trip_id)
        return self._trip

    def acted(self, cancelled: int, closed: int) -> BreakerTrip | None:
        """Store what the app did about today's trip (orders cancelled, trades sent closing)."""
        trip = self._trip
        if trip is None or trip.id is None:
            return trip
        self.risk_repo.update_trip(trip.id, cancelled=cancelled, closed=closed)
        self._trip = BreakerTrip(trip.day_ns, trip.time_ns, trip.reason, cancelled, closed, trip.id)
        return self._trip
