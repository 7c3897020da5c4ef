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


def last_trade_instant(contract: OptionContract, calendar: MarketCalendar | None = None) -> datetime:
    """When ``contract`` stops trading for good (ET): the PM expiry close, or the AM series' prior-day close."""
    cal = _calendar(calendar)
    if contract.settlement is Settlement.AM:
        return cal.session_close(cal.previous_trading_day(contract.expiry)) + OPTION_CLOSE_DELAY
    return cal.expiry_instant(contract.expiry, Settlement.PM).astimezone(ET)


def is_expired(contract: OptionContract, now_ns: int, calendar: MarketCalendar | None = None) -> bool:
    """True once ``contract`` has stopped trading for good (its last trading instant has passed)."""
    return now_ns >= to_ns(last_trade_instant(contract, calendar))


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
    day = from_ns(now_ns).astimezone(ET).date()
    if not cal.is_trading_day(day):
        day = cal.next_trading_day(day)
    close = session_close(contract, day, cal)
    if to_ns(close) <= now_ns and cal.is_trading_day(day):  # after today's close: the next session's
        close = session_close(contract, cal.next_trading_day(day), cal)
    return to_ns(close)


def market_open(contract: OptionContract, now_ns: int, calendar: MarketCalendar | None = None) -> tuple[bool, str]:
    """``(True, "")`` when ``contract`` trades at ``now_ns``; otherwise ``(False, reason)``, one line saying why."""
    cal = _calendar(calendar)
    now = from_ns(now_ns).astimezone(ET)
    stop = last_trade_instant(contract, cal)
    if now >= stop:
        return False, (f"{contract} has expired for trading: it stopped at {stop:%Y-%m-%d %H:%M} ET; "
                       f"pick a later expiry")
    day = now.date()
    if not cal.is_trading_day(day):
        what = "a holiday" if cal.is_holiday(day) else "a weekend"
        return False, (f"market closed for {contract}: {day:%a %Y-%m-%d} is {what}; "
                       f"it opens {cal.session_open(cal.next_trading_day(day)):%a %Y-%m-%d %H:%M} ET")
    opens = cal.session_open(day)
    if now < opens:
        return False, f"market closed for {contract}: it opens at {opens:%H:%M} ET today ({now:%H:%M} ET now)"
    close = session_close(contract, day, cal)
    if now >= close:
        early = " (early close)" if cal.is_early_close(day) else ""
        return False, (f"market closed for {contract}: it closed at {close:%H:%M} ET{early} "
                       f"({now:%H:%M} ET now); send it in the next session")
    return True, ""
