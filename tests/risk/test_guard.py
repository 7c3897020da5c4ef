"""RiskGuard as the gate's limits hook: the active profile's limits refuse naming themselves; the breaker trips on
the daily loss, tells its listeners once, refuses OPEN orders until the next session (also after a restart)
while CLOSE orders pass it; the active profile is stored."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from spx_core.execution.gate import PreTradeGate
from spx_core.execution.orders import Intent, Side
from spx_core.risk.guard import RiskGuard
from spx_core.risk.profiles import PROFILES, LimitProfile
from spx_core.storage import Store
from spx_core.storage.orders_repo import OrderRepository, et_day_start_ns
from spx_core.storage.risk_repo import RiskRepository
from tests.execution.gate_market import RecordingBroker, StaticMarket, put_credit_spread

DAY_NS = 86_400 * 10**9


@pytest.fixture
def view():
    return StaticMarket()


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "guard.sqlite") as s:
        yield s


def guard_on(store, view, profile: LimitProfile | None = None) -> RiskGuard:
    risk = RiskRepository(store)
    if profile is not None:
        risk.save_profile(profile, view.clock)
        risk.set_active_profile(profile.name, view.clock)
    return RiskGuard(OrderRepository(store), risk, clock=view.now_ns)


def portfolio(view, day_pnl: float, net_liq: float = 100_000.0):
    account = SimpleNamespace(net_liquidation=net_liq, maintenance_margin=0.0, day_pnl=day_pnl)
    return SimpleNamespace(trades=(), positions=(), account=account, time_ns=view.clock,
                           day_start_ns=et_day_start_ns(view.clock), snapshots=dict(view.snapshots))


def test_the_active_profile_refuses_through_the_real_gate_naming_the_limit(store, view):
    guard = guard_on(store, view, LimitProfile("strict", max_trade_vega=0.01))
    assert guard.profile.name == "strict"
    verdict = PreTradeGate(limits=guard).check(put_credit_spread(), view, RecordingBroker())
    assert verdict.approved is None
    assert verdict.message.startswith("refused by limits: max_trade_vega 0.01: post-trade order $")
    guard.set_profile("credit verticals")  # 0 open trades, none today: the vertical fits
    assert guard.profile == PROFILES["credit verticals"]
    assert RiskRepository(store).active_profile().name == "credit verticals"
    assert PreTradeGate(limits=guard).check(put_credit_spread(), view, RecordingBroker()).ok


def test_breaker_trips_once_refuses_entries_until_the_next_session_and_survives_a_restart(store, view):
    guard = guard_on(store, view, LimitProfile("loss", max_daily_loss=1_000.0))
    trips, failing = [], []
    guard.on_trip(lambda trip: failing.append(1 / 0))  # a broken listener does not stop the others
    guard.on_trip(trips.append)
    status = guard.update(portfolio(view, -999.0))
    assert status.trip is None and trips == []
    assert [(u.name, u.value) for u in status.usage] == [("max_daily_loss", pytest.approx(999.0))]
    status = guard.update(portfolio(view, -1_000.0))
    (trip,) = trips
    assert status.trip == trip and trip.reason == "loss: max_daily_loss $1,000: day loss $1,000.00"
    guard.update(portfolio(view, -2_000.0))
    assert len(trips) == 1  # once a day
    opening = put_credit_spread()
    refused = guard(opening, view)
    assert [f.check for f in refused] == ["circuit breaker", "max_daily_loss 1,000"]
    assert str(refused[0]) == ("circuit breaker: tripped at 10:30 ET (loss: max_daily_loss $1,000: day loss "
                               "$1,000.00); new entries refused until the next session")
    closing = put_credit_spread(side=Side.BUY, intent=Intent.CLOSE, trade_id=1, limit=4.40)
    assert guard(closing, view) == []  # closing is never refused by the breaker (nor the loss limit)
    restarted = guard_on(store, view)
    assert next(f.check for f in restarted(opening, view)) == "circuit breaker"
    view.advance(86_400)  # the next session: a new day, a new P&L
    assert next(f.check for f in restarted(replace(opening), view)) == "max_daily_loss 1,000"  # P&L not known yet
    assert restarted.update(portfolio(view, 0.0)).trip is None
    assert restarted(replace(opening), view) == []


def test_the_day_pnl_high_is_tracked_for_the_drawdown_and_reset_each_day(store, view):
    guard = guard_on(store, view, LimitProfile("dd", max_daily_drawdown_pct=2.0))
    guard.update(portfolio(view, 1_500.0))
    status = guard.update(portfolio(view, -480.0))
    assert status.state.day_pnl_high == 1_500.0
    (use,) = status.usage
    assert use.value == pytest.approx(1.98) and use.pct == pytest.approx(99.0)
    assert guard(put_credit_spread(limit=4.20), view) == []  # at mid: still 1.98%
    refused = guard(put_credit_spread(limit=4.00), view)  # $20 under mid: the drawdown reaches 2%
    assert [str(f) for f in refused] == ["max_daily_drawdown_pct 2: post-trade 2.00% of net liq ($2,000.00)"]
    view.advance(86_400)
    assert guard.update(portfolio(view, -100.0)).state.day_pnl_high == 0.0


def test_close_all_setting_reads_risk_state(store, view):
    guard = guard_on(store, view)
    assert guard.close_all_on_trip is False
    guard.risk_repo.put("close_all_on_breaker", "1", view.clock)
    assert guard.close_all_on_trip is True


def test_update_without_revalue_reuses_the_last_greeks_and_counts_stay_current(store, view):
    from spx_core.domain import Root
    from spx_core.portfolio.trades import Trade
    from spx_core.strategies.structure import Leg
    from tests.execution.gate_market import DAY, contract

    trade = Trade(id=1, name="v", kind="vertical", legs=(Leg(contract(4700), -1), Leg(contract(4675), 1)),
                  quantity=1, opened_quantity=1, side=Side.SELL, open_price=4.20)
    guard = guard_on(store, view, LimitProfile("delta", max_delta=1e6, max_open_trades=5))

    def use(revalue=True, trades=(trade,)):
        status = guard.update(replace_ns(portfolio(view, 0.0), trades=trades), revalue=revalue)
        return {u.name: u.value for u in status.usage}

    first = use()
    view.move({(Root.SPXW, DAY, 4700, "P"): (12.00, 12.20)})  # a new chain: the short put's IV and delta move
    kept = use(revalue=False)
    assert kept["max_delta"] == first["max_delta"]
    assert use(revalue=False, trades=())["max_open_trades"] == 0  # counts are never stale
    assert use()["max_delta"] != pytest.approx(first["max_delta"], rel=1e-6)


def replace_ns(ns, **changes):
    return SimpleNamespace(**{**vars(ns), **changes})
