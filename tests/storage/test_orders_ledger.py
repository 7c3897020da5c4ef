"""Fills booked to positions and trades in the same transaction as the order event; restored after a restart."""

from __future__ import annotations

import math
import sqlite3

import pytest

from spx_core.execution.orders import OrderStatus, Side
from spx_core.portfolio.decisions import TradeDecision
from spx_core.portfolio.trades import closing_request
from spx_core.storage import Store
from spx_core.storage.orders_repo import OrderRepository, et_day_start_ns
from tests.storage.orders_factory import (
    SEC,
    T0,
    fill_event,
    filled_events,
    put,
    status,
    vertical,
)

DAY = et_day_start_ns(T0)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "ledger.sqlite"


@pytest.fixture
def store(path):
    with Store.open(path) as s:
        yield s


@pytest.fixture
def repo(store):
    return OrderRepository(store)


def _open_vertical(repo, ref="open1", quantity=2, prices=(2.10, 0.60), t=T0):
    request = vertical(ref, quantity=quantity, created_ns=t)
    repo.add_order(request)
    for e in filled_events(request, prices, t):
        state = repo.append(e)
    return state


def _close(repo, trade, prices=(0.70, 0.20), t=T0 + 3600 * SEC, ref="close1", quantity=None):
    request = closing_request(trade, limit=0.50, ref=ref, now_ns=t, quantity=quantity)
    repo.add_order(request)
    for e in filled_events(request, prices, t):
        state = repo.append(e)
    return state


def test_an_opening_fill_books_the_positions_and_opens_the_trade(repo):
    state = _open_vertical(repo)

    short, long_ = repo.positions()[::-1]  # contract order: 4975P, 5000P
    assert (short.contract, short.quantity, short.avg_cost) == (put(5000), -2, 2.10)
    assert (long_.contract, long_.quantity, long_.avg_cost) == (put(4975), 2, 0.60)
    charges = state.commission + state.fees
    assert short.realized_pnl + long_.realized_pnl == pytest.approx(-charges, abs=1e-9)
    [trade] = repo.trades()
    assert (trade.id, trade.status, trade.quantity, trade.side.value) == (1, "open", 2, "sell")
    assert trade.open_price == pytest.approx(1.50)
    assert [(leg.contract.strike, leg.ratio) for leg in trade.legs] == [(5000, -1), (4975, 1)]
    assert trade.order_refs == ("open1",)
    assert repr(repo.trade(1)) == repr(trade) and repo.trade(2) is None  # repr: NaN close price equals itself


def test_closing_the_trade_realizes_the_fills_minus_commissions_and_fees_to_the_cent(repo):
    opened = _open_vertical(repo)
    closed = _close(repo, repo.trade(1))

    [trade] = repo.trades()
    assert (trade.status, trade.quantity, trade.order_refs) == ("closed", 0, ("open1", "close1"))
    assert trade.close_price == pytest.approx(0.50)
    fills = opened.fills + closed.fills
    expected = sum(f.cash for f in fills) - sum(f.commission + f.fees for f in fills)
    assert round(trade.realized_pnl, 2) == round(expected, 2) == round(2 * 100 * (1.50 - 0.50) - sum(
        f.commission + f.fees for f in fills), 2)
    assert repo.positions() == []  # flat
    flat = repo.positions(closed_since_ns=DAY)
    assert [p.quantity for p in flat] == [0, 0]
    assert round(sum(p.realized_pnl for p in flat), 2) == round(expected, 2)
    assert repo.trades(open_only=True) == [] and repo.trades(since_ns=DAY) == [trade]
    assert repo.trades(since_ns=T0 + 7200 * SEC) == []


def test_a_failing_trade_write_rolls_back_the_position_fill_and_event(repo, store, monkeypatch):
    request = vertical("r1")
    repo.add_order(request)
    repo.append(status("r1", OrderStatus.SUBMITTED, T0))

    def boom(*_args, **_kw):
        raise RuntimeError("trade write failed")

    monkeypatch.setattr(OrderRepository, "_save_trade", boom)
    with pytest.raises(RuntimeError, match="trade write failed"):
        repo.append(fill_event(request, 0, 1, 2.0, T0 + SEC, "e1"))

    with sqlite3.connect(store.path) as con:
        counts = [con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                  for name in ("fills", "order_events", "positions", "trades", "trade_legs")]
    assert counts == [0, 1, 0, 0, 0]


def test_a_repeated_execution_is_booked_once(repo):
    request = vertical("r1", quantity=2)
    repo.add_order(request)
    repo.append(status("r1", OrderStatus.SUBMITTED, T0))
    repo.append(fill_event(request, 0, 1, 2.0, T0 + SEC, "e1"))
    repo.append(fill_event(request, 0, 1, 2.0, T0 + 2 * SEC, "e1"))

    [position] = repo.positions()
    assert position.quantity == -1
    assert repo.trade(1).leg_states[0].held == -1


def test_a_restart_restores_working_orders_positions_trades_and_todays_pnl(path):
    with Store.open(path) as store:
        repo = OrderRepository(store)
        _open_vertical(repo, quantity=3)
        _close(repo, repo.trade(1), quantity=1)  # one unit closed today
        repo.add_order(vertical("work", quantity=1, short=4950, long=4925, created_ns=T0 + 7200 * SEC))
        repo.append(status("work", OrderStatus.SUBMITTED, T0 + 7201 * SEC))
        before = (repo.orders(working_only=True), repo.positions(closed_since_ns=DAY), repo.trades())

    with Store.open(path) as store:
        repo = OrderRepository(store)
        after = (repo.orders(working_only=True), repo.positions(closed_since_ns=DAY), repo.trades())

    assert repr(after) == repr(before)  # repr: an open trade's NaN close price equals itself
    working, positions, [trade] = after
    assert [o.ref for o in working] == ["work"]
    assert (trade.quantity, trade.closed_quantity) == (2, 1)
    day_realized = sum(p.day_realized_pnl for p in positions)
    assert day_realized == pytest.approx(sum(p.realized_pnl for p in positions))
    assert day_realized == pytest.approx(100 * (1.50 - 0.50) - sum(
        f.commission + f.fees for o in ("open1", "close1") for f in repo.order(o).fills))


def test_a_new_day_rolls_the_baseline_and_start_day_persists_it(repo):
    _open_vertical(repo, quantity=1)
    next_day = DAY + 24 * 3600 * SEC
    marks = {put(5000): 1.80, put(4975): 0.50}

    rolled = repo.start_day(next_day, marks)

    assert all(p.day_start_ns == next_day and p.day_realized_pnl == 0 for p in rolled)
    assert repo.positions() == rolled
    short = next(p for p in rolled if p.contract == put(5000))
    assert short.day_start_unrealized == pytest.approx((1.80 - 2.10) * -1 * 100)
    assert math.isclose(short.with_mark(1.80).day_pnl, 0.0, abs_tol=1e-9)
    assert repo.start_day(next_day) == rolled  # already rolled: unchanged


def test_decisions_are_recorded_in_time_order(repo):
    skip = TradeDecision(time_ns=T0 + 2, strategy="pcs", action="SKIP", reasons=("IV rank 12 < 30",),
                         snapshot_id=3, snapshot_checksum="c" * 64, config_hash="h1", limit_profile="default")
    trade = TradeDecision(time_ns=T0 + 1, strategy="pcs", action="TRADE", reasons=("all checks passed", "x"),
                          snapshot_id=2, snapshot_checksum="d" * 64, config_hash="h1", order_ref="open1")

    ids = [repo.record_decision(skip), repo.record_decision(trade)]

    assert ids == [1, 2]
    assert repo.decisions() == [trade, skip]
    assert repo.decisions(since_ns=T0 + 2) == [skip]


def test_expiry_settles_positions_and_trades_once_and_spy_delivers_shares(repo):
    from spx_core.portfolio.settlement import settle, settlement_prices
    from tests.storage.orders_factory import call, single

    _open_vertical(repo, quantity=1)  # SELL +5000P / -4975P at 2.10 / 0.60
    spy_call = call(500, root="SPY")
    spy = single("spy1", spy_call, side=Side.BUY,
                 quantity=2, limit=1.0)
    repo.add_order(spy)
    for e in filled_events(spy, (1.0,), T0 + 60 * SEC):
        repo.append(e)
    after_close = T0 + 10 * 3600 * SEC
    result = settle(repo.positions(), underlying_prices=settlement_prices(spx_close=4990.0, spy_close=510.0),
                    now_ns=after_close)

    repo.apply_settlement(result.fills, result.deliveries)
    repo.apply_settlement(result.fills, result.deliveries)  # run twice: booked once

    assert repo.positions() == []
    vertical_trade, spy_trade = repo.trades()
    assert (vertical_trade.status, spy_trade.status) == ("closed", "closed")
    assert vertical_trade.close_price == pytest.approx(10.0)  # the short 5000P settled 10 in the money
    assert [(d.symbol, d.shares, d.price, d.exec_id) for d in repo.deliveries()] == [
        ("SPY", 200, 510.0, f"exercise:{spy_call.occ_symbol}")]
    assert repo.verify() == []


def test_verify_names_a_position_or_trade_row_that_disagrees_with_the_fills(repo, store):
    _open_vertical(repo, quantity=1)
    assert repo.verify() == []

    with sqlite3.connect(store.path) as con:
        con.execute("UPDATE positions SET quantity = quantity - 1 WHERE avg_cost = 2.1")
        con.execute("UPDATE trades SET realized_pnl = 0")

    assert repo.verify() == [
        "position SPXW 2024-03-04 5000P PM: stored quantity differ from the fold of its fills",
        "trade 1: the stored row differs from the replay of its fills"]


def test_an_opening_order_naming_a_trade_extends_it_and_a_restart_keeps_the_grouping(path):
    with Store.open(path) as store:
        repo = OrderRepository(store)
        _open_vertical(repo, quantity=1, prices=(2.10, 0.60))
        more = vertical("more", quantity=1, trade_id=1, created_ns=T0 + 600 * SEC)
        repo.add_order(more)
        for e in filled_events(more, (2.30, 0.70), T0 + 600 * SEC):
            repo.append(e)
        shown = repo.trades()

    with Store.open(path) as store:
        repo = OrderRepository(store)
        [trade] = repo.trades()
        assert repr([trade]) == repr(shown)
        assert (trade.quantity, trade.order_refs) == (2, ("open1", "more"))
        assert trade.open_price == pytest.approx(((2.10 - 0.60) + (2.30 - 0.70)) / 2)
        assert repo.verify() == []
