"""Keeps the stored daily summaries (``daily_summaries``) current while a market clock moves.

    keeper = SummaryKeeper(SummaryRepository(store), OrderRepository(store))
    keeper.keep(rows)          # rows computed elsewhere (the Automation view's): written when they changed
    keeper.tick(now_ns)        # each refresh: the day's rows from its close on, the previous day's final rows on a new day
    keeper.save_day(day)       # the rows of ``day`` rebuilt from the stored trades and decisions, written now

Why both: the live view recomputes today's rows every few seconds (cheap: upserted only when a figure moved), but
a day must also be stored when no view runs, and its last figures (a fill at 15:59, a settlement) must survive the
day change that drops its closed trades from the session's book. So from the close on (the exchange calendar's close
of the clock's day, 13:00 on early-close days; every tick after it, since the closing batch's fills can be stored
after the refresh that first reached the close) and again when the clock reaches a new day, the day's rows are
rebuilt from the store (:meth:`rows_for`) and upserted when they moved: past days remain, each row replaced by its
final figures.

A day on which nothing happened (no decision, no trade opened or closed) is not stored. Rows of a day before the
clock's day handed to :meth:`keep` (a view computed just before midnight) are ignored: that day's final rows are
written by :meth:`tick`. No wall clock and no Qt: the app and the backtester drive it with the market clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from typing import Any, Protocol

from spx_core.automation.summary import DailySummary, day_summaries, et_day
from spx_core.domain.calendar import ET, MarketCalendar, default_calendar, to_ns
from spx_core.portfolio.decisions import TradeDecision
from spx_core.portfolio.trades import Trade

__all__ = ["SummaryKeeper", "decisions_start_ns", "midnight_ns"]


class _Orders(Protocol):
    """What the keeper reads of :class:`~spx_core.storage.orders_repo.OrderRepository`."""

    def trades(self, *, open_only: bool = False, since_ns: int | None = None) -> list[Trade]: ...

    def decisions(self, *, since_ns: int | None = None) -> list[TradeDecision]: ...


def midnight_ns(day: date) -> int:
    """UTC ns of midnight US/Eastern starting ``day``."""
    return to_ns(datetime.combine(day, time(0), tzinfo=ET))


def decisions_start_ns(day: date, trades: Iterable[Any]) -> int:
    """The earliest decision the summary of ``day`` needs: the day's midnight, or that of the opening day of a
    trade opened or closed on ``day`` (its entry decision names the strategy that owns it)."""
    start = midnight_ns(day)
    for t in trades:
        opened = getattr(t, "opened_ns", 0)
        closed = getattr(t, "closed_ns", None)
        if opened and (et_day(opened) == day or (closed is not None and et_day(closed) == day)):
            start = min(start, midnight_ns(et_day(opened)))
    return start


def _empty_day(rows: Sequence[DailySummary]) -> bool:
    """Only the account's row, counting nothing: a day with no decision and no trade."""
    if len(rows) != 1:
        return False
    r = rows[0]
    return not (r.strategy or r.trades_opened or r.trades_closed or r.skips or r.realized_pnl or r.fees)


class SummaryKeeper:
    """See the module docstring.

    Args:
        summaries: where rows go (``SummaryRepository``: ``save(rows)``).
        orders: where trades and decisions are read (``OrderRepository``).
        calendar: the exchange calendar of the close (None: the default).
    """

    def __init__(self, summaries: Any, orders: _Orders, *, calendar: MarketCalendar | None = None) -> None:
        self.summaries = summaries
        self.orders = orders
        self.calendar = calendar if calendar is not None else default_calendar()
        self._saved: dict[tuple[date, str], DailySummary] = {}
        self._day: date | None = None  # the latest day of the clock seen

    @property
    def day(self) -> date | None:
        """The latest market day the clock reached (None before the first tick)."""
        return self._day

    def keep(self, rows: Iterable[DailySummary], *, final: bool = False) -> int:
        """Upsert the rows that differ from those last written; returns how many were written.

        Rows of a day before the clock's are ignored unless ``final`` (the keeper's own rebuild of that day)."""
        by_day: dict[date, list[DailySummary]] = {}
        for r in rows:
            if final or self._day is None or r.day >= self._day:
                by_day.setdefault(r.day, []).append(r)
        changed = [r for day_rows in by_day.values() if not _empty_day(day_rows)
                   for r in day_rows if self._saved.get((r.day, r.strategy)) != r]
        if changed:
            self.summaries.save(changed)
            self._saved.update({(r.day, r.strategy): r for r in changed})
        return len(changed)

    def rows_for(self, day: date) -> list[DailySummary]:
        """The summary rows of ``day`` from the stored trades and decisions (the account's, then each strategy's)."""
        trades = self.orders.trades(since_ns=midnight_ns(day))  # open ones and those closed since the day began
        decisions = self.orders.decisions(since_ns=decisions_start_ns(day, trades))
        return day_summaries(day, trades, decisions)

    def save_day(self, day: date) -> int:
        """Rebuild ``day``'s rows from the store and upsert them (the final figures of that day so far)."""
        return self.keep(self.rows_for(day), final=True)

    def tick(self, now_ns: int) -> int:
        """The market clock is ``now_ns``: store the previous day's final rows when a new day began, and today's from
        its close on (rebuilt each tick, written when a figure moved); returns how many rows were written."""
        day = et_day(int(now_ns))
        written = 0
        if self._day is not None and day > self._day:
            written += self.save_day(self._day)
        if self._day is None or day > self._day:
            self._day = day
        if day == self._day and self._after_close(day, int(now_ns)):
            # at the close and on every tick after it (rows written only when a figure moved): the fills of the
            # closing batch can be stored after the refresh that first reached the close, and a settlement or a
            # late IB execution lands after it too; the day's store reads are small and the market is shut
            written += self.save_day(day)
        return written

    def _after_close(self, day: date, now_ns: int) -> bool:
        return self.calendar.is_trading_day(day) and now_ns >= to_ns(self.calendar.session_close(day))
