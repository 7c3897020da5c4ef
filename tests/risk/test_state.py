"""portfolio_state from a real order store: trades opened today, stop losses today from exit decisions,
realized today from the positions' day figures, the rest from the account line."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from spx_core.execution.orders import Intent, Side
from spx_core.portfolio.decisions import TradeDecision
from spx_core.risk.state import portfolio_state
from spx_core.storage import Store
from spx_core.storage.orders_repo import OrderRepository, et_day_start_ns
from spx_core.strategies.structure import Leg
from tests.storage.orders_factory import SEC, T0, filled_events, vertical

DAY = 86_400 * SEC
TODAY = et_day_start_ns(T0)


@pytest.fixture
def repo(tmp_path):
    with Store.open(tmp_path / "state.sqlite") as store:
        yield OrderRepository(store)


def _fill(repo, request, prices, t):
    repo.add_order(request)
    for event in filled_events(request, prices, t):
        repo.append(event)


def _book(repo):
    """Trade 1 opened yesterday (2 lots), 1 lot of it closed today; trade 2 opened today."""
    _fill(repo, vertical("A", created_ns=T0 - DAY), (3.00, 1.50), T0 - DAY)
    _fill(repo, vertical("B", short=5100.0, long=5075.0, quantity=1), (4.00, 2.00), T0)
    _fill(repo, vertical("C", quantity=1, side=Side.BUY, intent=Intent.CLOSE, trade_id=1, created_ns=T0 + 60 * SEC),
          (2.00, 1.00), T0 + 60 * SEC)
    for t, reason, action, ref in ((T0 - DAY, "stop_loss: yesterday's", "TRADE", "x"),
                                   (T0 + 5, "stop_loss: lost 100% of the credit", "TRADE", "C"),
                                   (T0 + 6, "take_profit: 50% of the credit", "TRADE", "y"),
                                   (T0 + 7, "stop_loss: would have, but skipped", "SKIP", None)):
        repo.record_decision(TradeDecision(t, "cv", action, (reason,), order_ref=ref))


def test_state_from_the_store(repo):
    _book(repo)
    account = SimpleNamespace(net_liquidation=99_000.0, maintenance_margin=4_000.0, day_pnl=-152.24)
    state = portfolio_state(repo, account=account, day_start_ns=TODAY, day_pnl_high=300.0)
    assert [t.id for t in state.trades] == [1, 2] and [t.quantity for t in state.trades] == [1, 1]
    assert state.trades_opened_today == 1
    assert state.stops_today == 1
    # closing 1 lot: short leg sold 3.00 bought 2.00 (+$100), long leg bought 1.50 sold 1.00 (-$50); charges of
    # today's fills (charged when paid): the close's 2 legs and trade 2's opening 2 legs, (0.65 + 0.47) each
    assert state.realized_pnl_today == pytest.approx(50.0 - 4 * 1.12)
    assert state.unrealized_pnl_today == pytest.approx(-152.24 - state.realized_pnl_today)
    assert state.day_pnl == pytest.approx(-152.24)
    assert (state.net_liq, state.margin, state.day_pnl_high) == (99_000.0, 4_000.0, 300.0)
    up = portfolio_state(repo, account=SimpleNamespace(net_liquidation=1e5, maintenance_margin=0.0, day_pnl=450.0),
                         day_start_ns=TODAY, day_pnl_high=300.0)
    assert up.day_pnl_high == pytest.approx(450.0)  # a new high


def test_tomorrow_starts_from_zero_and_no_account_is_unknown(repo):
    _book(repo)
    state = portfolio_state(repo, account=None, day_start_ns=TODAY + DAY)
    assert (state.trades_opened_today, state.stops_today, state.realized_pnl_today) == (0, 0, 0.0)
    assert math.isnan(state.net_liq) and math.isnan(state.unrealized_pnl_today) and math.isnan(state.margin)
    assert len(state.trades) == 2


def test_given_trades_and_decisions_are_used_instead_of_the_store(repo):
    _book(repo)
    state = portfolio_state(repo, account=None, day_start_ns=TODAY, trades=(), decisions=())
    assert state.trades == () and state.stops_today == 0 and state.trades_opened_today == 0


def test_working_opening_orders_count_as_the_trades_they_will_open(repo):
    _book(repo)
    resting = vertical("D", short=5200.0, long=5175.0, quantity=3, created_ns=T0 + 120 * SEC)
    repo.add_order(resting)
    extending = vertical("E", quantity=1, trade_id=2, created_ns=T0 + 130 * SEC)  # adds to trade 2: no new trade
    repo.add_order(extending)
    working = repo.orders(working_only=True)
    state = portfolio_state(repo, account=None, day_start_ns=TODAY, pending=working)
    assert [t.id for t in state.trades] == [1, 2, -1] and state.trades_opened_today == 2
    pending = state.trades[-1]
    assert pending.quantity == 3 and pending.legs == tuple(Leg(leg.contract, -leg.ratio) for leg in resting.legs)
    assert state.held()[pending.legs[0].contract] == -3
