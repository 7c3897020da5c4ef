"""When a strategy's entries are due: its :class:`EntrySchedule` in US/Eastern, on trading days only.

A schedule's *slots* on a trading day are its fixed times and, with a window, the window's start and every
``every_s`` seconds after it up to the window's end. Slots at or after the session close are dropped (an
early close at 13:00 drops a 14:00 entry; no slot exists on a weekend or an exchange holiday), using
:class:`~spx_core.domain.calendar.MarketCalendar`. Daylight saving is handled by building each slot as an
ET wall time on its own date.

Nothing reads the wall clock: ``now_ns`` (market clock, ns since epoch UTC) is always passed in, so the app and
the backtester run the same schedule.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

from spx_core.automation.config import EntrySchedule, StrategyConfig, parse_hhmm
from spx_core.domain.calendar import (
    ET,
    MarketCalendar,
    default_calendar,
    from_ns,
    to_ns,
)

__all__ = ["due_entries", "entry_slots_ns", "next_entry_ns"]

_NS = 1_000_000_000
_LOOKAHEAD_DAYS = 31  # next_entry_ns gives up after this many calendar days (no slot fits any session)


def _schedule(config: StrategyConfig | EntrySchedule) -> EntrySchedule:
    return config.entry if isinstance(config, StrategyConfig) else config


def _et_date(ns: int) -> date:
    return from_ns(ns).astimezone(ET).date()


def _at(day: date, minutes: int) -> int:
    return to_ns(datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=ET))


def entry_slots_ns(config: StrategyConfig | EntrySchedule, day: date,
                   calendar: MarketCalendar | None = None) -> list[int]:
    """The entry slots (ns UTC, ascending) on ``day``; [] when it is not a trading day."""
    schedule = _schedule(config)
    cal = calendar or default_calendar()
    if not cal.is_trading_day(day):
        return []
    close_ns = to_ns(cal.session_close(day))
    slots = {_at(day, m) for m in schedule.minutes}
    if schedule.window is not None:
        start, end = (_at(day, parse_hhmm(t, "entry.window")) for t in schedule.window)
        slots.update(range(start, end + 1, schedule.every_s * _NS))
    return sorted(s for s in slots if s < close_ns)


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def next_entry_ns(config: StrategyConfig | EntrySchedule, now_ns: int,
                  calendar: MarketCalendar | None = None) -> int | None:
    """The first entry slot at or after ``now_ns`` (ns UTC), or None when none falls in the next month."""
    today = _et_date(now_ns)
    for day in _days(today, today + timedelta(days=_LOOKAHEAD_DAYS)):
        for slot in entry_slots_ns(config, day, calendar):
            if slot >= now_ns:
                return slot
    return None


def due_entries(config: StrategyConfig | EntrySchedule, last_ns: int | None, now_ns: int,
                calendar: MarketCalendar | None = None) -> list[int]:
    """Slots in ``(last_ns, now_ns]`` that are still within their grace (``now_ns - slot <= grace_s``).

    ``last_ns`` is when the caller last asked (None: never). A slot missed by more than the grace is dropped,
    not run late; a caller stepping every few seconds gets each slot exactly once.
    """
    schedule = _schedule(config)
    earliest = now_ns - schedule.grace_s * _NS
    if last_ns is not None:
        earliest = max(earliest, last_ns + 1)
    if earliest > now_ns:
        return []
    return [s for day in _days(_et_date(earliest), _et_date(now_ns))
            for s in entry_slots_ns(schedule, day, calendar) if earliest <= s <= now_ns]
