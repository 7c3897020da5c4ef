"""Exchange calendar and expiry clock for SPX options.

Holidays and early closes come from ``exchange_calendars`` (XNYS: Cboe index options follow the
NYSE holiday schedule); nothing here is a hand-written holiday list.

Time conventions:
    * instants are timezone-aware ``datetime`` (any zone) or ``int64`` nanoseconds since the Unix
      epoch (UTC) in vector APIs;
    * time to expiry is calendar time in years, ACT/365 with intraday (nanosecond) precision:
      ``(expiry_instant - now) / 365 days``.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import numpy as np

from spx_core.domain.contracts import Root, Settlement, settlement_for_root

__all__ = [
    "ET",
    "UTC",
    "YEAR_SECONDS",
    "MarketSession",
    "MarketCalendar",
    "default_calendar",
    "time_to_expiry",
    "year_fraction_ns",
]

ET = ZoneInfo("America/New_York")
UTC = ZoneInfo("UTC")
#: Seconds in the ACT/365 year used for every time-to-expiry in the project.
YEAR_SECONDS = 365.0 * 86400.0
_YEAR_NS = YEAR_SECONDS * 1e9

REGULAR_OPEN = time(9, 30)
REGULAR_CLOSE = time(16, 0)
PRE_MARKET_OPEN = time(4, 0)


class MarketSession(StrEnum):
    PRE_MARKET = "pre-market"
    OPEN = "open"
    EARLY_CLOSE = "early close"  # open, on a day that closes early
    AFTER_HOURS = "after hours"
    CLOSED = "closed"  # weekend or overnight
    HOLIDAY = "holiday"


def _as_et(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts!r}: pass a timezone-aware instant (e.g. tzinfo=ET)")
    return ts.astimezone(ET)


def to_ns(ts: datetime) -> int:
    """Nanoseconds since the Unix epoch of an aware datetime (exact to the microsecond)."""
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts!r}: pass a timezone-aware instant")
    delta = ts - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def from_ns(ns: int) -> datetime:
    """Aware UTC datetime from nanoseconds since the epoch (sub-microsecond part dropped)."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(ns) // 1000)


def year_fraction_ns(start_ns: np.ndarray | int, end_ns: np.ndarray | int) -> np.ndarray:
    """ACT/365 years between int64 nanosecond instants, vectorized; negative when end < start."""
    return (np.asarray(end_ns, dtype=np.int64) - np.asarray(start_ns, dtype=np.int64)) / _YEAR_NS


def time_to_expiry(now: datetime, expiry_instant: datetime) -> float:
    """Calendar time in years (ACT/365) from ``now`` to ``expiry_instant``; negative once expired."""
    return (to_ns(expiry_instant) - to_ns(now)) / _YEAR_NS


#: exchange_calendars computes sessions inside pandas' nanosecond range (1677-2262); beyond it the
#: calendar falls back to a rule: every weekday trades, regular hours (no holiday is knowable there).
_XC_FIRST = date(1678, 1, 1)
_XC_LAST = date(2261, 12, 31)
#: How far past a requested date a load reaches, so that walking forward (a simulator, listed
#: expiries five years out) does not reload the calendar at every step.
_GROW_YEARS = 10


@dataclass(frozen=True, slots=True)
class _Window:
    """Sessions and early closes loaded for ``start..end`` (both inclusive)."""

    start: date
    end: date
    sessions: np.ndarray  # datetime64[D], sorted
    early: dict[date, datetime]  # early-close day -> its close (ET)


class MarketCalendar:
    """Trading days, session times and SPX expiry rules.

    Backed by the exchange_calendars XNYS calendar. It is loaded lazily for a window of years and
    widened whenever a date outside it is asked for, so there is no fixed range: SPX lists about five
    years out, backtests reach back decades. Beyond exchange_calendars' own range (1678-2261) every
    weekday is a regular session. ``start``/``end`` only choose the first window loaded. Thread-safe:
    a wider window replaces the old one whole, and the answer for a date never changes.
    """

    def __init__(self, start: date | None = None, end: date | None = None) -> None:
        today = date.today()
        self._first = (start or date(2000, 1, 3), end or date(today.year + 3, 12, 31))
        self._window: _Window | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """True once the exchange calendar is loaded (the first query loads it: ~0.3 s, pandas-heavy)."""
        return self._window is not None

    def load(self) -> MarketCalendar:
        """Load the exchange calendar now (e.g. in a worker thread at app start); returns self."""
        self._cover(*self._first)
        return self

    def _cover(self, first: date, last: date | None = None) -> _Window:
        """The loaded window, widened first when it does not cover ``first..last``."""
        last = last or first
        window = self._window
        if window is not None and window.start <= first and last <= window.end:
            return window
        with self._lock:
            window = self._window
            if window is not None and window.start <= first and last <= window.end:
                return window  # another thread widened it meanwhile
            start, end = (window.start, window.end) if window is not None else self._first
            if first < start:
                start = date(max(first.year - _GROW_YEARS, 1), 1, 1)
            if last > end:
                end = date(min(last.year + _GROW_YEARS, 9998), 12, 31)
            self._window = _load_window(start, end)
            return self._window

    def is_trading_day(self, d: date) -> bool:
        sessions = self._cover(d).sessions
        i = np.searchsorted(sessions, np.datetime64(d, "D"))
        return bool(i < len(sessions) and sessions[i] == np.datetime64(d, "D"))

    def is_holiday(self, d: date) -> bool:
        """A weekday on which the exchange is closed."""
        return d.weekday() < 5 and not self.is_trading_day(d)

    def is_early_close(self, d: date) -> bool:
        return d in self._cover(d).early

    def session_open(self, d: date) -> datetime:
        """Regular-session open (09:30 ET) of trading day ``d``."""
        if not self.is_trading_day(d):
            raise ValueError(f"{d} is not a trading day")
        return datetime.combine(d, REGULAR_OPEN, tzinfo=ET)

    def session_close(self, d: date) -> datetime:
        """Regular-session close of trading day ``d`` (16:00 ET, or 13:00 ET on early-close days)."""
        if not self.is_trading_day(d):
            raise ValueError(f"{d} is not a trading day")
        early = self._cover(d).early
        if d in early:
            return early[d]
        return datetime.combine(d, REGULAR_CLOSE, tzinfo=ET)

    def trading_days(self, start: date, end: date) -> list[date]:
        """Trading days ``d`` with ``start <= d <= end``."""
        if end < start:
            return []
        sessions = self._cover(start, end).sessions
        lo = np.searchsorted(sessions, np.datetime64(start, "D"), side="left")
        hi = np.searchsorted(sessions, np.datetime64(end, "D"), side="right")
        return [d.astype(object) for d in sessions[lo:hi]]

    def trading_days_between(self, start: date, end: date) -> int:
        """Number of trading days in ``(start, end]`` (0DTE is 0, next day is 1)."""
        if end <= start:
            return 0
        sessions = self._cover(start, end).sessions
        lo = np.searchsorted(sessions, np.datetime64(start, "D"), side="right")
        hi = np.searchsorted(sessions, np.datetime64(end, "D"), side="right")
        return int(hi - lo)

    def previous_trading_day(self, d: date) -> date:
        # the window reaches years before any date it was widened for, so "none before" is real
        sessions = self._cover(d - timedelta(days=14), d).sessions
        i = np.searchsorted(sessions, np.datetime64(d, "D"), side="left") - 1
        if i < 0:
            raise ValueError(f"no trading day before {d}")
        return sessions[i].astype(object)

    def next_trading_day(self, d: date) -> date:
        sessions = self._cover(d, d + timedelta(days=14)).sessions
        i = np.searchsorted(sessions, np.datetime64(d, "D"), side="right")
        if i >= len(sessions):
            raise ValueError(f"no trading day after {d}")
        return sessions[i].astype(object)

    # --- expiry clock --------------------------------------------------------------------------
    def expiry_instant(self, expiry: date, settlement: Settlement | Root | str) -> datetime:
        """The instant the option's value is fixed.

        PM-settled: the close on expiry day (16:00 ET; 13:00 ET on early-close days).
        AM-settled: the opening settlement (09:30 ET) on expiry day; trading stops the day before.
        """
        style = _style(settlement)
        if style is Settlement.AM:
            return datetime.combine(expiry, REGULAR_OPEN, tzinfo=ET)
        if self.is_trading_day(expiry):
            return self.session_close(expiry)
        return datetime.combine(expiry, REGULAR_CLOSE, tzinfo=ET)

    def last_trade_instant(self, expiry: date, settlement: Settlement | Root | str) -> datetime:
        """When trading in the option stops: the expiry close (PM) or the prior day's close (AM)."""
        if _style(settlement) is Settlement.AM:
            return self.session_close(self.previous_trading_day(expiry))
        return self.expiry_instant(expiry, Settlement.PM)

    def time_to_expiry(self, now: datetime, expiry: date, settlement: Settlement | Root | str) -> float:
        """ACT/365 years from ``now`` to the expiry instant (intraday precise; < 0 once fixed)."""
        return time_to_expiry(now, self.expiry_instant(expiry, settlement))

    def expiry_instants_ns(self, expiries: np.ndarray, am: np.ndarray) -> np.ndarray:
        """Vector form: int64 ns expiry instants for ``datetime64[D]`` expiries and a bool AM mask."""
        expiries = np.asarray(expiries, dtype="datetime64[D]")
        am = np.broadcast_to(np.asarray(am, dtype=bool), expiries.shape)
        out = np.empty(expiries.shape, dtype=np.int64)
        pairs, inverse = np.unique(np.stack([expiries.astype(np.int64), am.astype(np.int64)]), axis=1,
                                   return_inverse=True)
        values = np.array([_cached_instant_ns(self, int(d), bool(a)) for d, a in pairs.T], dtype=np.int64)
        out[...] = values[inverse.reshape(expiries.shape)]
        return out

    # --- listing rules -------------------------------------------------------------------------
    def monthly_expiry(self, year: int, month: int) -> date:
        """SPX AM monthly expiry: the third Friday, or the trading day before when it is a holiday."""
        first = date(year, month, 1)
        third_friday = first + timedelta(days=(4 - first.weekday()) % 7 + 14)
        if self.is_trading_day(third_friday):
            return third_friday
        return self.previous_trading_day(third_friday)

    def quarterly_expiry(self, year: int, quarter: int) -> date:
        """SPXW quarterly (PM) expiry: the last trading day of the quarter."""
        month_end = date(year + (quarter == 4), 1 if quarter == 4 else 3 * quarter + 1, 1) - timedelta(days=1)
        return month_end if self.is_trading_day(month_end) else self.previous_trading_day(month_end)

    def listed_expiries(self, asof: date, *, daily_days: int = 45, weekly_days: int = 400,
                        monthly_months: int = 14) -> list[tuple[Root, date]]:
        """What Cboe lists on ``asof``: (root, expiry) sorted by expiry then root.

        SPXW dailies for ``daily_days`` calendar days (0DTE included when ``asof`` trades), SPXW Friday
        weeklies and quarter-ends out to ``weekly_days``, SPX AM monthlies for ``monthly_months`` months
        plus the following Junes and Decembers out to two years.
        """
        out: set[tuple[Root, date]] = set()
        for d in self.trading_days(asof, asof + timedelta(days=daily_days)):
            out.add((Root.SPXW, d))
        for d in self.trading_days(asof, asof + timedelta(days=weekly_days)):
            if d.weekday() == 4 or (d.weekday() == 3 and self.is_holiday(d + timedelta(days=1))):
                out.add((Root.SPXW, d))
        for k in range(1, 5):
            for y in (asof.year, asof.year + 1):
                q = self.quarterly_expiry(y, k)
                if asof <= q <= asof + timedelta(days=weekly_days):
                    out.add((Root.SPXW, q))
        y, m = asof.year, asof.month
        for i in range(monthly_months + 12):
            yy, mm = y + (m - 1 + i) // 12, (m - 1 + i) % 12 + 1
            if i >= monthly_months and mm not in (6, 12):
                continue
            e = self.monthly_expiry(yy, mm)
            if e > asof:  # AM monthlies stop trading the day before expiry
                out.add((Root.SPX, e))
        return sorted(out, key=lambda re: (re[1], re[0].value))

    def session_at(self, ts: datetime) -> MarketSession:
        """Market session at an instant: pre-market, open, early close, after hours, closed, holiday."""
        et = _as_et(ts)
        d = et.date()
        if not self.is_trading_day(d):
            return MarketSession.HOLIDAY if d.weekday() < 5 else MarketSession.CLOSED
        t = et.timetz().replace(tzinfo=None)
        close = self.session_close(d).time()
        if t < PRE_MARKET_OPEN:
            return MarketSession.CLOSED
        if t < REGULAR_OPEN:
            return MarketSession.PRE_MARKET
        if t < close:
            return MarketSession.EARLY_CLOSE if close < REGULAR_CLOSE else MarketSession.OPEN
        if t < time(20, 0):
            return MarketSession.AFTER_HOURS
        return MarketSession.CLOSED


def _load_window(start: date, end: date) -> _Window:
    """Sessions for ``start..end``: exchange_calendars inside its range, weekdays outside it."""
    parts, early = [], {}
    if start < _XC_FIRST:
        parts.append(_weekdays(start, min(end, _XC_FIRST - timedelta(days=1))))
    lo, hi = max(start, _XC_FIRST), min(end, _XC_LAST)
    if lo <= hi:
        sessions, early = _exchange_sessions(lo, hi)
        parts.append(sessions)
    if end > _XC_LAST:
        parts.append(_weekdays(max(start, _XC_LAST + timedelta(days=1)), end))
    return _Window(start, end, np.concatenate(parts), early)


def _weekdays(start: date, end: date) -> np.ndarray:
    days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)
    return days[np.is_busday(days)]


def _exchange_sessions(start: date, end: date) -> tuple[np.ndarray, dict[date, datetime]]:
    import warnings

    import exchange_calendars as xc  # imported lazily: pandas-heavy

    with warnings.catch_warnings():
        # exchange_calendars 4.x trips pandas 3's Pandas4Warning on its own internals.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        cal = xc.get_calendar("XNYS", start=start.isoformat(), end=end.isoformat())
        sessions = cal.sessions
        closes = cal.schedule["close"].dt.tz_convert(ET)
    short = ((closes.dt.hour * 60 + closes.dt.minute) < REGULAR_CLOSE.hour * 60).to_numpy()
    early = {d.date(): c.to_pydatetime() for d, c in zip(sessions[short], closes[short], strict=True)}
    return np.array(sessions.to_numpy().astype("datetime64[D]")), early


def _style(settlement: Settlement | Root | str) -> Settlement:
    if isinstance(settlement, Settlement):
        return settlement
    if isinstance(settlement, Root):
        return settlement_for_root(settlement)
    try:
        return Settlement(settlement)
    except ValueError:
        return settlement_for_root(Root(settlement))


@functools.lru_cache(maxsize=8192)
def _cached_instant_ns(cal: MarketCalendar, day: int, am: bool) -> int:
    d = date(1970, 1, 1) + timedelta(days=day)
    return to_ns(cal.expiry_instant(d, Settlement.AM if am else Settlement.PM))


@functools.lru_cache(maxsize=1)
def default_calendar() -> MarketCalendar:
    """The process-wide default calendar (immutable once loaded; safe to share)."""
    return MarketCalendar()
