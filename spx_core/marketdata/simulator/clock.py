"""The simulator's clock: regular sessions from the exchange calendar, or always open (demo mode).

Process time (what the variance process integrates over) differs from calendar time in market-hours
mode: a trading day carries ``1/252`` of a year of variance, ``1 - overnight_share`` of it during the
session and the rest in the overnight gap, so realized and implied vols agree the way they do for
the real index. In demo mode process time is calendar time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from spx_core.domain.calendar import ET, YEAR_SECONDS, MarketCalendar, from_ns, to_ns

__all__ = ["Session", "session_containing", "next_session", "calendar_process_years", "wall_start",
           "TRADING_DAYS_PER_YEAR"]

TRADING_DAYS_PER_YEAR = 252.0


@dataclass(frozen=True, slots=True)
class Session:
    """One regular session: ``[open_ns, close_ns)`` in int64 ns since the epoch."""

    day: date
    open_ns: int
    close_ns: int

    @property
    def seconds(self) -> float:
        return (self.close_ns - self.open_ns) / 1e9

    def process_years(self, seconds: float, *, overnight_share: float) -> float:
        """Process time (years) of ``seconds`` of this session."""
        return seconds / self.seconds * (1.0 - overnight_share) / TRADING_DAYS_PER_YEAR


def session_containing(calendar: MarketCalendar, now_ns: int) -> Session | None:
    """The regular session that contains ``now_ns``, or None when the market is closed."""
    day = from_ns(now_ns).astimezone(ET).date()
    if not calendar.is_trading_day(day):
        return None
    s = _session(calendar, day)
    return s if s.open_ns <= now_ns < s.close_ns else None


def next_session(calendar: MarketCalendar, now_ns: int) -> Session:
    """The first regular session opening at or after ``now_ns``."""
    day = from_ns(now_ns).astimezone(ET).date()
    if calendar.is_trading_day(day):
        s = _session(calendar, day)
        if now_ns <= s.open_ns:
            return s
    return _session(calendar, calendar.next_trading_day(day))


def _session(calendar: MarketCalendar, day: date) -> Session:
    return Session(day, to_ns(calendar.session_open(day)), to_ns(calendar.session_close(day)))


def calendar_process_years(seconds: float) -> float:
    """Demo mode: process time is calendar time (ACT/365 years)."""
    return seconds / YEAR_SECONDS


def wall_start(now: datetime | None) -> datetime:
    """``now`` or the wall clock truncated to the second (ET)."""
    if now is not None:
        return now
    return datetime.now(ET).replace(microsecond=0)
