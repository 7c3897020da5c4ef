"""Daily summaries of the automation in the store (migration 5's ``daily_summaries``): one row per day and strategy.

    repo = SummaryRepository(store)
    repo.save(daily_summary(day, trades, decisions, "pcs"))   # upsert: a later save of the same day replaces it
    repo.list(since=date(2024, 1, 1), strategy="pcs")         # DailySummary rows, by day then strategy
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.sqlite import insert

from spx_core.automation.summary import DailySummary
from spx_core.storage import schema as t

__all__ = ["SummaryRepository"]

_VALUES = ("trades_opened", "trades_closed", "wins", "losses", "realized_pnl", "fees", "skips", "time_ns")


class SummaryRepository:
    """Daily summaries in a :class:`~spx_core.storage.store.Store`'s database (each save one transaction)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def save(self, summaries: DailySummary | Iterable[DailySummary]) -> int:
        """Insert or replace the rows of (day, strategy); returns how many were written."""
        rows = [summaries] if isinstance(summaries, DailySummary) else list(summaries)
        if not rows:
            return 0
        values = [{"day": s.day.isoformat(), "strategy": s.strategy, **{k: getattr(s, k) for k in _VALUES}}
                  for s in rows]
        stmt = insert(t.daily_summaries)
        stmt = stmt.on_conflict_do_update(index_elements=["day", "strategy"],
                                          set_={k: stmt.excluded[k] for k in _VALUES})
        with self._store._write() as conn:
            conn.execute(stmt, values)
        return len(rows)

    def list(self, *, since: date | None = None, until: date | None = None,
             strategy: str | None = None) -> list[DailySummary]:
        """Stored rows from ``since`` to ``until`` (inclusive ET dates), of one strategy ("" = the account) or all."""
        c = t.daily_summaries.c
        query = select(t.daily_summaries).order_by(c.day, c.strategy)
        if since is not None:
            query = query.where(c.day >= since.isoformat())
        if until is not None:
            query = query.where(c.day <= until.isoformat())
        if strategy is not None:
            query = query.where(c.strategy == strategy)
        with self._store._read() as conn:
            return [DailySummary(day=date.fromisoformat(r.day), strategy=r.strategy,
                                 **{k: getattr(r, k) for k in _VALUES}) for r in conn.execute(query)]
