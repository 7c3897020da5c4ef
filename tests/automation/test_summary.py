"""The daily summary against hand counts, strategy ownership of trades, the CSV round trip and the stored rows."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from spx_core.automation.summary import (
    DailySummary,
    SummaryError,
    daily_summary,
    day_summaries,
    strategy_of,
    summaries_csv,
    summaries_from_csv,
)
from spx_core.execution.orders import Intent
from spx_core.portfolio.decisions import TradeDecision
from spx_core.storage.store import Store
from spx_core.storage.summary_repo import SummaryRepository
from tests.automation.exit_market import LONG, SHORT, at
from tests.portfolio.helpers import Desk

DAY = date(2024, 1, 4)
YESTERDAY = DAY - timedelta(days=1)
VERTICAL = [(SHORT, 1), (LONG, -1)]


def _round_trip(desk, open_t, close_t=None, *, close=(1.0, 0.0), commission=0.0):
    """A vertical SOLD at 2.00 (3.00 / 1.00) at ``open_t``, bought back at ``close`` leg prices at ``close_t``."""
    ref = desk.order(VERTICAL, "sell", 1, limit=2.0)
    trade = desk.fill(ref, [3.0, 1.0], 1, open_t, commission=commission)
    if close_t is None:
        return trade, ref, None
    cref = desk.order(VERTICAL, "buy", 1, limit=1.0, intent=Intent.CLOSE, trade_id=trade.id)
    return desk.fill(cref, list(close), 1, close_t, commission=commission), ref, cref


@pytest.fixture
def book():
    """Five trades and the decisions of two strategies (figures by hand in each test)."""
    desk = Desk()
    a, a_ref, a_close = _round_trip(desk, at(DAY, 10, 0), at(DAY, 14, 0), close=(1.5, 0.5), commission=1.0)
    b, b_ref, b_close = _round_trip(desk, at(YESTERDAY, 10, 0), at(DAY, 11, 0), close=(4.5, 0.5), commission=1.0)
    c, c_ref, _ = _round_trip(desk, at(DAY, 10, 30))
    d, d_ref, _ = _round_trip(desk, at(DAY, 12, 0), at(DAY, 13, 0), close=(2.5, 0.5))
    e, _, _ = _round_trip(desk, at(DAY, 9, 45), at(DAY, 15, 0), close=(0.75, 0.25))  # manual: no decision
    decisions = [
        TradeDecision(at(YESTERDAY, 10, 0), "pcs", "TRADE", ("entry: ...",), order_ref=b_ref),
        TradeDecision(at(YESTERDAY, 11, 0), "pcs", "SKIP", ("iv rank 12 below 30",)),
        TradeDecision(at(DAY, 10, 0), "pcs", "TRADE", ("entry: ...",), order_ref=a_ref),
        TradeDecision(at(DAY, 10, 30), "ic", "TRADE", ("entry: ...",), order_ref=c_ref),
        TradeDecision(at(DAY, 11, 0), "breaker", "TRADE", ("breaker: daily loss",), order_ref=b_close),
        TradeDecision(at(DAY, 11, 30), "pcs", "SKIP", ("limits: max new trades per day 1: post-trade 2",)),
        TradeDecision(at(DAY, 11, 45), "ic", "SKIP", ("vix 31 above 30",)),
        TradeDecision(at(DAY, 12, 0), "pcs", "TRADE", ("entry: ...",), order_ref=d_ref),
        TradeDecision(at(DAY, 12, 30), "pcs", "SKIP", ("no candidate",)),
        TradeDecision(at(DAY, 14, 0), "pcs", "TRADE", ("take_profit: ...",), order_ref=a_close),
    ]
    return {"a": a, "b": b, "c": c, "d": d, "e": e}, decisions


def test_strategy_of_follows_the_opening_decision(book):
    trades, decisions = book
    owners = strategy_of(trades.values(), decisions)
    ids = {k: t.id for k, t in trades.items()}
    # b was closed by the breaker: still pcs's trade; e has no decision: nobody's
    assert owners == {ids["a"]: "pcs", ids["b"]: "pcs", ids["c"]: "ic", ids["d"]: "pcs"}


def test_daily_summary_of_one_strategy_against_hand_counts(book):
    trades, decisions = book
    # a: +0.00 - (1.50 - 0.50) ... credit 2.00, cost 1.00: +$100 - 4 fills x $1 = +$96 (win)
    # b: credit 2.00, cost 4.00: -$200 - $4 = -$204 (loss; opened yesterday)   d: 2.00 back at 2.00, no fees: $0
    assert trades["a"].realized_pnl == pytest.approx(96.0) and trades["b"].realized_pnl == pytest.approx(-204.0)
    s = daily_summary(DAY, trades.values(), decisions, "pcs")
    assert (s.day, s.strategy) == (DAY, "pcs")
    assert (s.trades_opened, s.trades_closed, s.wins, s.losses, s.skips) == (2, 3, 1, 1, 2)
    assert s.realized_pnl == pytest.approx(-108.0) and s.fees == pytest.approx(8.0)
    assert s.win_rate == pytest.approx(1 / 3)
    assert s.time_ns == at(DAY, 14, 0)  # the last event counted


def test_daily_summary_of_a_strategy_with_nothing_closed(book):
    trades, decisions = book
    s = daily_summary(DAY, trades.values(), decisions, "ic")
    assert (s.trades_opened, s.trades_closed, s.wins, s.losses, s.skips) == (1, 0, 0, 0, 1)
    assert s.realized_pnl == 0.0 and math.isnan(s.win_rate)


def test_daily_summary_of_the_whole_account(book):
    trades, decisions = book
    # e (manual): credit 2.00, cost 0.50: +$150, no fees
    s = daily_summary(DAY, trades.values(), decisions)
    assert (s.trades_opened, s.trades_closed, s.wins, s.losses, s.skips) == (4, 4, 2, 1, 3)
    assert s.realized_pnl == pytest.approx(42.0) and s.fees == pytest.approx(8.0)
    assert s.win_rate == pytest.approx(0.5)


def test_day_summaries_cover_the_account_and_every_active_strategy(book):
    trades, decisions = book
    rows = day_summaries(DAY, trades.values(), decisions)
    assert [r.strategy for r in rows] == ["", "ic", "pcs"]  # the breaker closes but owns nothing
    assert rows[2] == daily_summary(DAY, trades.values(), decisions, "pcs")
    assert [r.strategy for r in day_summaries(YESTERDAY, trades.values(), decisions)] == ["", "pcs"]


def test_a_quiet_day_is_all_zero_and_stamped_at_midnight(book):
    trades, decisions = book
    s = daily_summary(date(2024, 1, 8), trades.values(), decisions, "pcs")
    assert (s.trades_opened, s.trades_closed, s.skips) == (0, 0, 0) and s.time_ns == at(date(2024, 1, 8), 0, 0)


def test_csv_round_trip(book):
    trades, decisions = book
    rows = [daily_summary(DAY, trades.values(), decisions, name) for name in ("", "ic", "pcs")]
    text = summaries_csv(rows)
    assert text.splitlines()[0] == ("day,strategy,trades_opened,trades_closed,wins,losses,win_rate,realized_pnl,"
                                    "fees,skips,time_ns")
    assert text.splitlines()[2].startswith("2024-01-04,ic,1,0,0,0,,")  # no win rate without a closed trade
    assert summaries_from_csv(text) == rows


def test_csv_errors_name_the_line():
    with pytest.raises(SummaryError, match="lacks the columns"):
        summaries_from_csv("day,strategy\n2024-01-04,pcs\n")
    good = summaries_csv([DailySummary(DAY, "pcs", trades_closed=1, wins=1, time_ns=1)])
    with pytest.raises(SummaryError, match="line 2"):
        summaries_from_csv(good.replace("2024-01-04", "2024-13-04"))


def test_a_summary_with_more_wins_than_closes_is_refused():
    with pytest.raises(SummaryError, match="more than the 1 trades closed"):
        DailySummary(DAY, "pcs", trades_closed=1, wins=1, losses=1)


def test_repository_upserts_per_day_and_strategy(tmp_path, book):
    trades, decisions = book
    store = Store.open(tmp_path / "s.sqlite")
    try:
        repo = SummaryRepository(store)
        first = daily_summary(DAY, trades.values(), decisions, "pcs", time_ns=at(DAY, 15, 0))
        assert repo.save([first, daily_summary(DAY, trades.values(), decisions, "ic"),
                          daily_summary(YESTERDAY, trades.values(), decisions, "pcs")]) == 3
        again = DailySummary(DAY, "pcs", trades_opened=9, time_ns=at(DAY, 16, 0))
        repo.save(again)
        assert repo.list(since=DAY, strategy="pcs") == [again]
        assert [(r.day, r.strategy) for r in repo.list()] == [(YESTERDAY, "pcs"), (DAY, "ic"), (DAY, "pcs")]
        assert [r.day for r in repo.list(until=YESTERDAY)] == [YESTERDAY]
        assert repo.save([]) == 0
    finally:
        store.close()
