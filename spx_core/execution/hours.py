"""When an option contract trades: regular hours per series, early closes, holidays and the last trading day.

Rules (``docs/market_rules.md``, "Settlement and hours"; Cboe SPX/XSP specifications; the options exchanges'
hours for SPY):
    - Regular session 09:30-16:15 ET for SPX, SPXW, XSP and SPY options (broad-based index and index-ETF
      options trade 15 minutes past the equity close). On an early-close day (13:00 ET equity close) they
      close at 13:15 ET.
    - PM-settled series (SPXW, XSP, SPY) stop at the equity close on their expiration day: 16:00 ET
      (13:00 ET on an early-close day). A 0DTE SPXW order at 16:05 is refused though SPX trades until 16:15.
    - AM-settled series (SPX monthlies) stop the business day before expiration, at that day's close
      (16:15 ET, or 13:15 ET on an early close); expiration morning settles on the opening quotation.
    - Holidays and early closes come from :class:`~spx_core.domain.calendar.MarketCalendar` (XNYS).
Curb (16:15-17:00 ET) and global trading hours (overnight) are not modelled: an order there is refused as
"market closed", which is what a paper account without GTH permissions sees.

Times are market-clock nanoseconds (UTC), never the wall clock, so the backtester replays them exactly.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta

from spx_core.domain.calendar import (
    ET,
    MarketCalendar,
    default_calendar,
    from_ns,
    to_ns,
)
from spx_core.domain.contracts import OptionContract, Settlement

__all__ = ["OPTION_CLOSE_DELAY", "is_expired", "last_trade_instant", "market_open", "session_close",
           "session_close_ns"]

#: Index and index-ETF options close this long after the equity close (16:15 vs 16:00 ET).
OPTION_CLOSE_DELAY = timedelta(minutes=15)


def _calendar(calendar: MarketCalendar | None) -> MarketCalendar:
    return calendar if calendar is not None else default_calendar()


# The calendar answers in datetimes (~20 us a question); the paper broker asks per leg at every market update,
# so the answers are cached here as nanoseconds (a calendar's answer for a date never changes).
@functools.lru_cache(maxsize=4096)
def _stop(cal: MarketCalendar, expiry: date, settlement: Settlement) -> tuple[datetime, int]:
    if settlement is Settlement.AM:
        stop = cal.session_close(cal.previous_trading_day(expiry)) + OPTION_CLOSE_DELAY
    else:
        stop = cal.expiry_instant(expiry, Settlement.PM).astimezone(ET)
    return stop, to_ns(stop)


@functools.lru_cache(maxsize=1024)
def _session(cal: MarketCalendar, day: date) -> tuple[int, int] | None:
    """(open ns, options close ns) of trading day ``day``; None when the exchange is shut that day."""
    if not cal.is_trading_day(day):
        return None
    return to_ns(cal.session_open(day)), to_ns(cal.session_close(day) + OPTION_CLOSE_DELAY)


@functools.lru_cache(maxsize=256)
def _et_day(second: int) -> date:
    return from_ns(second * 1_000_000_000).astimezone(ET).date()


def last_trade_instant(contract: OptionContract, calendar: MarketCalendar | None = None) -> datetime:
    """When ``contract`` stops trading for good (ET): the PM expiry close, or the AM series' prior-day close."""
    return _stop(_calendar(calendar), contract.expiry, contract.settlement)[0]


def is_expired(contract: OptionContract, now_ns: int, calendar: MarketCalendar | None = None) -> bool:
    """True once ``contract`` has stopped trading for good (its last trading instant has passed)."""
    return now_ns >= _stop(_calendar(calendar), contract.expiry, contract.settlement)[1]


def session_close(contract: OptionContract, day: date, calendar: MarketCalendar | None = None) -> datetime:
    """The close of ``contract``'s session on trading day ``day`` (its own stop on its last trading day)."""
    cal = _calendar(calendar)
    close = cal.session_close(day) + OPTION_CLOSE_DELAY
    return min(close, last_trade_instant(contract, cal))


def session_close_ns(contract: OptionContract, now_ns: int, calendar: MarketCalendar | None = None) -> int:
    """The close (ns) of the session ``now_ns`` falls in, or of the next session when the market is shut.

    A DAY order expires then. A contract's next session never ends after its last trading instant.
    """
    cal = _calendar(calendar)
    day = _et_day(now_ns // 1_000_000_000)
    if not cal.is_trading_day(day):
        day = cal.next_trading_day(day)
    close = session_close(contract, day, cal)
    if to_ns(close) <= now_ns and cal.is_trading_day(day):  # after today's close: the next session's
        close = session_close(contract, cal.next_trading_day(day), cal)
    return to_ns(close)


def market_open(contract: OptionContract, now_ns: int, calendar: MarketCalendar | None = None) -> tuple[bool, str]:
    """``(True, "")`` when ``contract`` trades at ``now_ns``; otherwise ``(False, reason)``, one line saying why."""
    cal = _calendar(calendar)
    stop, stop_ns = _stop(cal, contract.expiry, contract.settlement)
    day = _et_day(now_ns // 1_000_000_000)
    session = _session(cal, day) if now_ns < stop_ns else None
    if session is not None and session[0] <= now_ns < min(session[1], stop_ns):
        return True, ""
    # closed: say why (the slow path, datetimes only here)
    if now_ns >= stop_ns:
        return False, (f"{contract} has expired for trading: it stopped at {stop:%Y-%m-%d %H:%M} ET; "
                       f"pick a later expiry")
    now = from_ns(now_ns).astimezone(ET)
    if session is None:
        what = "a holiday" if cal.is_holiday(day) else "a weekend"
        return False, (f"market closed for {contract}: {day:%a %Y-%m-%d} is {what}; "
                       f"it opens {cal.session_open(cal.next_trading_day(day)):%a %Y-%m-%d %H:%M} ET")
    if now_ns < session[0]:
        return False, (f"market closed for {contract}: it opens at {cal.session_open(day):%H:%M} ET today "
                       f"({now:%H:%M} ET now)")
    close = session_close(contract, day, cal)
    early = " (early close)" if cal.is_early_close(day) else ""
    return False, (f"market closed for {contract}: it closed at {close:%H:%M} ET{early} "
                   f"({now:%H:%M} ET now); send it in the next session")
