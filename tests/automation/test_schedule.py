"""Entry slots in US/Eastern on trading days: weekends, holidays, early closes, DST, windows, grace."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from spx_core.automation.config import EntrySchedule, StrategyConfig
from spx_core.automation.presets import PRESETS
from spx_core.automation.schedule import due_entries, entry_slots_ns, next_entry_ns
from spx_core.domain.calendar import ET, UTC, default_calendar, to_ns

CAL = default_calendar()
TIMES = EntrySchedule(times=("10:00", "11:00", "12:00", "14:00"))


def et(*args) -> int:
    return to_ns(datetime(*args, tzinfo=ET))


def test_the_calendar_has_the_days_these_tests_rely_on():
    assert CAL.is_early_close(date(2025, 7, 3)) and CAL.is_holiday(date(2025, 7, 4))
    assert CAL.is_holiday(date(2025, 11, 27)) and CAL.is_early_close(date(2025, 11, 28))


def test_fixed_times_become_et_instants_across_daylight_saving():
    before, after = entry_slots_ns(TIMES, date(2025, 3, 7)), entry_slots_ns(TIMES, date(2025, 3, 10))
    assert datetime.fromtimestamp(before[0] / 1e9, UTC).hour == 15  # 10:00 EST = 15:00 UTC
    assert datetime.fromtimestamp(after[0] / 1e9, UTC).hour == 14  # 10:00 EDT = 14:00 UTC
    assert before == [et(2025, 3, 7, h) for h in (10, 11, 12, 14)]


def test_weekend_has_no_slot_and_friday_afternoon_points_to_monday():
    assert entry_slots_ns(TIMES, date(2025, 3, 15)) == [] and entry_slots_ns(TIMES, date(2025, 3, 16)) == []
    assert next_entry_ns(TIMES, et(2025, 3, 14, 14, 0, 1)) == et(2025, 3, 17, 10)


def test_a_slot_at_now_is_the_next_entry():
    assert next_entry_ns(TIMES, et(2025, 3, 14, 11)) == et(2025, 3, 14, 11)


def test_early_close_drops_slots_after_it_and_the_holiday_has_none():
    assert entry_slots_ns(TIMES, date(2025, 7, 3)) == [et(2025, 7, 3, h) for h in (10, 11, 12)]  # closes 13:00
    assert entry_slots_ns(TIMES, date(2025, 7, 4)) == []
    # after Thursday's early close: Friday is the holiday, then the weekend -> Monday 10:00
    assert next_entry_ns(TIMES, et(2025, 7, 3, 12, 30)) == et(2025, 7, 7, 10)
    assert next_entry_ns(TIMES, et(2025, 11, 28, 12, 30)) == et(2025, 12, 1, 10)  # day after Thanksgiving


def test_window_slots_every_interval_through_its_end():
    window = EntrySchedule(times=(), window=("09:35", "10:00"), every_s=300)
    assert entry_slots_ns(window, date(2025, 3, 12)) == [et(2025, 3, 12, 9, 35) + i * 300_000_000_000 for i in range(6)]
    assert entry_slots_ns(window, date(2025, 3, 12))[-1] == et(2025, 3, 12, 10)


def test_a_runner_stepping_through_the_day_gets_each_slot_exactly_once():
    config = PRESETS["credit verticals 3/5/7 DTE"]
    now, last, got = et(2025, 3, 12, 9, 30), None, []
    while now <= et(2025, 3, 12, 16):
        got += due_entries(config, last, now)
        last, now = now, now + 7_000_000_000  # every 7 s: never on a slot's own second
    assert got == [et(2025, 3, 12, h) for h in (10, 11, 12)]


def test_a_slot_missed_by_more_than_the_grace_is_not_run_late():
    config = StrategyConfig(name="x", structure="put-credit-vertical", entry=EntrySchedule(times=("10:00",),
                                                                                        grace_s=120))
    assert due_entries(config, None, et(2025, 3, 12, 10, 2)) == [et(2025, 3, 12, 10)]
    assert due_entries(config, None, et(2025, 3, 12, 10, 2, 1)) == []
    assert due_entries(config, et(2025, 3, 12, 10), et(2025, 3, 12, 10, 1)) == []  # already seen at 10:00


def test_due_entries_on_a_holiday_and_a_weekend_are_empty():
    assert due_entries(TIMES, None, et(2025, 7, 4, 10, 1)) == []
    assert due_entries(TIMES, None, et(2025, 3, 15, 10, 1)) == []


@pytest.mark.parametrize("start", [et(2025, 3, 12, 12, 1), et(2025, 12, 24, 14)])
def test_next_entry_is_on_a_trading_day_within_its_session(start):
    slot = next_entry_ns(TIMES, start)
    day = datetime.fromtimestamp(slot / 1e9, UTC).astimezone(ET)
    assert CAL.is_trading_day(day.date()) and slot < to_ns(CAL.session_close(day.date()))
    assert slot >= start and slot - start < timedelta(days=7).total_seconds() * 1e9
