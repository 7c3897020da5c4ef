"""The risk guard in a real TradingSession (paper broker, simulated market, SQLite file): a paper order a limit
refuses names the limit; risk_changed carries the limit use; the circuit breaker trips on the day's loss,
cancels working orders, refuses new entries (closing ones still pass), with close-all sends closing orders
recorded as the breaker's decisions, and shows a red BREAKER label in the status bar."""

from __future__ import annotations

import dataclasses

import pytest

from app.self_test_trading import sample_vertical
from app.status_bar import TerminalStatusBar
from app.trading_risk import BREAKER_SOURCE
from spx_core.execution.orders import Intent, OrderStatus
from spx_core.risk.guard import GuardStatus
from spx_core.risk.profiles import LimitProfile
from tests.app.trading_factory import drive, session_on, sim_market


@pytest.fixture
def market():
    return sim_market()


def _status(session, ref):
    return next(s.status for s in session.orders() if s.ref == ref)


def _use_profile(session, profile: LimitProfile) -> None:
    session.guard.risk_repo.save_profile(profile, 0)
    session.set_profile(profile.name)


def test_a_limit_refuses_a_paper_order_naming_itself(qapp, tmp_path, market):
    session, store = session_on(tmp_path / "limits.sqlite")
    try:
        assert session.guard.profile.name == "standard"  # the default
        session.set_profile("credit verticals")  # one trade a day: the second vertical must be refused
        statuses = []
        session.risk_changed.connect(statuses.append)
        drive(session, market)
        first = sample_vertical(session.market)
        assert session.place(first).verdict.ok
        drive(session, market, steps=3)
        assert _status(session, first.ref) is OrderStatus.FILLED
        second = sample_vertical(session.market)
        result = session.place(second)
        assert not result.verdict.ok
        assert result.verdict.message == ("refused by limits: max_open_trades 1: post-trade 2 open trades; "
                                          "max_new_trades_per_day 1: post-trade 2 trades opened today")
        assert result.state.status is OrderStatus.REJECTED and "max_open_trades 1" in result.state.reason
        session.refresh_portfolio()
        status = statuses[-1]
        assert isinstance(status, GuardStatus) and status.profile.name == "credit verticals"
        assert [(u.name, u.value, u.pct) for u in status.usage] == [
            ("max_open_trades", 1.0, 100.0), ("max_new_trades_per_day", 1.0, 100.0),
            ("stop_after_stop_loss", 0.0, 0.0)]
        _use_profile(session, LimitProfile("tiny vega", max_trade_vega=0.01))
        refused = session.place(sample_vertical(session.market))
        assert refused.verdict.message.startswith("refused by limits: max_trade_vega 0.01: post-trade order $")
    finally:
        session.close()
        store.close()


@pytest.mark.parametrize("close_all", [True, False])
def test_the_breaker_cancels_refuses_entries_and_closes_all(qapp, tmp_path, market, close_all):
    session, store = session_on(tmp_path / "breaker.sqlite", close_all_on_breaker=close_all)
    bar = TerminalStatusBar()
    session.risk_changed.connect(bar.set_risk)
    try:
        _use_profile(session, LimitProfile("two trades", max_open_trades=2))
        drive(session, market)
        resting = sample_vertical(session.market)
        resting = dataclasses.replace(resting, limit=resting.limit + 0.50)  # asks more than the bid: it rests
        assert session.place(resting).verdict.ok
        filled = sample_vertical(session.market)
        assert session.place(filled).verdict.ok
        drive(session, market, steps=3)  # the fill at the natural + charges: the day is more than $1 down
        assert session.refresh_portfolio().account.day_pnl < -1.0 and session.guard.status.trip is None
        _use_profile(session, LimitProfile("one dollar", max_daily_loss=1.0))  # the refresh after it trips
        portfolio = session.portfolio
        trip = session.guard.status.trip
        assert trip is not None and trip.reason.startswith("one dollar: max_daily_loss $1: day loss $")
        assert _status(session, resting.ref) is OrderStatus.CANCELLED
        (trade,) = [t for t in portfolio.trades if filled.ref in t.order_refs]
        closing = [s for s in session.orders() if s.request.source == BREAKER_SOURCE]
        stored = session.guard.risk_repo.trips()
        if close_all:
            (close,) = closing
            assert close.request.intent is Intent.CLOSE and close.request.trade_id == trade.id
            (decision,) = [d for d in session.repo.decisions() if d.strategy == BREAKER_SOURCE]
            assert decision.order_ref == close.ref and decision.reasons[0] == f"breaker: {trip.reason}"
            assert decision.limit_profile == "one dollar"
            assert (stored[0].cancelled, stored[0].closed) == (1, 1)
        else:
            assert closing == [] and (stored[0].cancelled, stored[0].closed) == (1, 0)
        assert bar.breaker_label.isVisibleTo(bar) and bar.breaker_label.text() == f"BREAKER: {trip.reason}"
        again = session.place(sample_vertical(session.market))
        assert not again.verdict.ok and "circuit breaker: tripped at" in again.verdict.message
        assert "new entries refused until the next session" in again.verdict.message
        if not close_all:  # the user's own close still goes through
            assert session.place(session.close_request(trade.id)).verdict.ok
    finally:
        session.close()
        store.close()


def test_a_working_entry_counts_so_a_second_one_cannot_slip_through_before_it_fills(qapp, tmp_path, market):
    session, store = session_on(tmp_path / "pending.sqlite")
    try:
        session.set_profile("credit verticals")
        drive(session, market)
        first = sample_vertical(session.market)
        first = dataclasses.replace(first, limit=first.limit + 0.50)  # rests: nothing fills yet
        assert session.place(first).verdict.ok and _status(session, first.ref) is OrderStatus.SUBMITTED
        second = session.place(sample_vertical(session.market))
        assert second.verdict.message == ("refused by limits: max_open_trades 1: post-trade 2 open trades; "
                                          "max_new_trades_per_day 1: post-trade 2 trades opened today")
        assert session.modify(first.ref, limit=first.limit - 0.05).ok  # the working order itself is not doubled
        session.cancel(first.ref)
        assert session.place(sample_vertical(session.market)).verdict.ok  # cancelled: the slot is free again
    finally:
        session.close()
        store.close()
