"""The summary keeper on a real store: the real runner trades a day on the simulated market; the day's rows are
stored at the close and rewritten after it only when a figure moved, or on the next day when the clock skipped the close; unchanged rows are not rewritten;
an empty day is not stored; a stale view of a finished day does not overwrite its final rows."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import pytest

from spx_core.automation.config import StrategyMode
from spx_core.automation.summary import daily_summary, day_summaries
from spx_core.automation.summary_keeper import (
    SummaryKeeper,
    decisions_start_ns,
    midnight_ns,
)
from spx_core.domain.calendar import ET, to_ns
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.portfolio.decisions import TradeDecision
from spx_core.storage.summary_repo import SummaryRepository
from tests.automation.test_runner import (
    DAY,
    PCS,
    SimView,
    World,
    at,
    take_profit_market,
)

NEXT = date(2024, 3, 14)


def next_day(hh: int, mm: int) -> int:
    return to_ns(datetime(NEXT.year, NEXT.month, NEXT.day, hh, mm, tzinfo=ET))


@pytest.fixture
def traded(tmp_path):
    """A store where "pcs auto" entered at 10:00 and closed at take profit at 10:01 (a win), plus a skip."""
    view = SimView(SimulatedMarket(SimulatorConfig(seed=5, start=datetime(2024, 3, 13, 9, 59, 0, tzinfo=ET))))
    w = World(tmp_path / "k.sqlite", view)
    w.strategies.save(PCS, enabled=True, mode=StrategyMode.AUTO, now_ns=at(9, 0))
    w.step(at(10, 0, 1))
    (held,) = w.repo.trades(open_only=True)
    take_profit_market(view, held, at(10, 1))
    w.step(at(10, 1))
    view.override.clear()  # the live chain again
    w.strategies.save(dataclasses.replace(PCS, name="ic", filters=dataclasses.replace(PCS.filters,
                      regimes=("calm",))), enabled=True, mode=StrategyMode.AUTO, now_ns=at(9, 0))
    w.step(at(11, 0, 1))  # "ic" skips on the regime; "pcs auto" enters again at 11:00
    yield w
    w.close()


def stored(w: World) -> list:
    return SummaryRepository(w.store).list()


def test_the_day_is_stored_at_the_close_and_again_only_when_it_changes(traded):
    keeper = SummaryKeeper(SummaryRepository(traded.store), traded.repo)
    assert keeper.tick(at(15, 59, 59)) == 0 and stored(traded) == []
    assert keeper.tick(at(16, 0)) == 3  # the account, "ic", "pcs auto"
    rows = stored(traded)
    assert [(r.day, r.strategy) for r in rows] == [(DAY, ""), (DAY, "ic"), (DAY, "pcs auto")]
    pcs = rows[2]
    assert (pcs.trades_opened, pcs.trades_closed, pcs.wins, pcs.skips) == (2, 1, 1, 0)
    assert pcs == daily_summary(DAY, traded.repo.trades(), traded.repo.decisions(), "pcs auto")
    assert rows[1].skips == 1 and rows[0].realized_pnl == pcs.realized_pnl > 0
    assert keeper.tick(at(16, 5)) == 0  # nothing moved: nothing rewritten
    # what the store learns after the tick that reached the close (a fill of the closing batch processed after the
    # refresh, a late execution) reaches the day's rows on the next tick: here a skip of "ic" stored at 16:00
    traded.repo.record_decision(TradeDecision(time_ns=at(16, 0), strategy="ic", action="SKIP",
                                              reasons=("late: stored after the close's first tick",),
                                              snapshot_id=None, snapshot_checksum="0" * 64, config_hash="0" * 64))
    assert keeper.tick(at(16, 6)) == 2  # the account's row and "ic"'s; "pcs auto" did not move
    after = stored(traded)
    assert after[1].skips == 2 and after[0].skips == 2 and after[2] == pcs


def test_a_skipped_close_is_made_up_on_the_next_day_and_an_empty_day_is_not_stored(traded):
    keeper = SummaryKeeper(SummaryRepository(traded.store), traded.repo)
    keeper.tick(at(12, 0))
    assert keeper.tick(next_day(9, 31)) == 3  # the clock jumped over the close: the final rows of the 13th
    assert {r.day for r in stored(traded)} == {DAY}
    assert keeper.tick(next_day(16, 0)) == 0  # nothing happened on the 14th: no row for it
    assert {r.day for r in stored(traded)} == {DAY} and keeper.day == NEXT


def test_kept_rows_are_written_only_when_they_change_and_a_stale_view_of_a_past_day_is_ignored(traded):
    keeper = SummaryKeeper(SummaryRepository(traded.store), traded.repo)
    keeper.tick(at(12, 0))
    trades, decisions = traded.repo.trades(), traded.repo.decisions()
    rows = day_summaries(DAY, trades, decisions)
    assert keeper.keep(rows) == 3 and keeper.keep(rows) == 0
    moved = [dataclasses.replace(r, skips=r.skips + 1) if r.strategy == "ic" else r for r in rows]
    assert keeper.keep(moved) == 1 and next(r for r in stored(traded) if r.strategy == "ic").skips == 2
    keeper.tick(next_day(9, 31))  # the day's final rows rebuilt from the store replace the moved one
    assert next(r for r in stored(traded) if r.strategy == "ic").skips == 1
    assert keeper.keep(moved) == 0  # a view of the 13th computed late: ignored, the final rows stay
    assert stored(traded) == rows


def test_the_decisions_a_day_needs_reach_back_to_the_opening_of_a_trade_closed_that_day(traded):
    (first, *_) = traded.repo.trades()
    assert decisions_start_ns(DAY, [first]) == midnight_ns(DAY)
    reopened = dataclasses.replace(first, opened_ns=at(10, 0) - 2 * 86_400 * 10**9)  # opened on the 11th
    assert decisions_start_ns(DAY, [reopened]) == midnight_ns(date(2024, 3, 11))
    assert decisions_start_ns(NEXT, [reopened]) == midnight_ns(NEXT)  # not touched on the 14th
