"""The circuit breaker: trips at the daily loss limit (dollars or % of net liq) and not just inside it, once per
market day, stored so a restart the same day still holds, and clears with the next day."""

from __future__ import annotations

import math

import pytest

from spx_core.risk.breaker import BreakerTrip, CircuitBreaker, daily_loss_breach
from spx_core.risk.limits import PortfolioState
from spx_core.risk.profiles import LimitProfile
from spx_core.storage import Store
from spx_core.storage.risk_repo import RiskRepository

DAY_NS = 86_400 * 10**9
DAY = 1_704_430_800_000_000_000  # 2024-01-05 00:00 ET
NOW = DAY + 15 * 3600 * 10**9
DOLLARS = LimitProfile("usd", max_daily_loss=1_000.0)
PERCENT = LimitProfile("pct", max_daily_loss_pct=2.0)


def loss(dollars: float, net_liq: float = 100_000.0) -> PortfolioState:
    return PortfolioState(net_liq=net_liq, realized_pnl_today=-dollars * 0.25, unrealized_pnl_today=-dollars * 0.75)


@pytest.fixture
def risk(tmp_path):
    with Store.open(tmp_path / "breaker.sqlite") as store:
        yield RiskRepository(store)


@pytest.mark.parametrize(("profile", "at", "text"), [
    (DOLLARS, 1_000.0, "max_daily_loss $1,000: day loss $1,000.00"),
    (PERCENT, 2_000.0, "max_daily_loss_pct 2%: day loss $2,000.00 = 2.00% of net liq $100,000"),
])
def test_trips_at_the_limit_and_not_just_inside(profile, at, text):
    assert daily_loss_breach(profile, loss(at)) == text
    assert daily_loss_breach(profile, loss(at * (1 - 1e-6))) == ""


def test_unknown_day_pnl_or_no_loss_limit_never_trips():
    assert daily_loss_breach(DOLLARS, PortfolioState(unrealized_pnl_today=math.nan)) == ""
    assert daily_loss_breach(PERCENT, loss(5_000.0, net_liq=math.nan)) == ""
    assert daily_loss_breach(LimitProfile("none", max_open_trades=1), loss(1e9)) == ""


def test_trips_once_a_day_stored_and_holds_across_a_restart_until_the_next_day(risk):
    breaker = CircuitBreaker(risk)
    assert breaker.check(DOLLARS, loss(999.0), NOW, DAY) is None and breaker.tripped(DAY) is None
    trip = breaker.check(DOLLARS, loss(1_200.0), NOW + 1, DAY)
    assert trip == BreakerTrip(DAY, NOW + 1, "usd: max_daily_loss $1,000: day loss $1,200.00", id=trip.id)
    assert breaker.check(DOLLARS, loss(5_000.0), NOW + 2, DAY) is None  # once a day
    assert breaker.tripped(DAY) == trip
    assert risk.trips(DAY) == [trip]
    restarted = CircuitBreaker(risk)
    assert restarted.tripped(DAY) == trip
    assert breaker.acted(cancelled=3, closed=2) == BreakerTrip(trip.day_ns, trip.time_ns, trip.reason, 3, 2, trip.id)
    assert CircuitBreaker(risk).tripped(DAY).cancelled == 3
    assert breaker.tripped(DAY + DAY_NS) is None  # the next session
    again = breaker.check(DOLLARS, loss(1_000.0), NOW + DAY_NS, DAY + DAY_NS)
    assert again is not None and again.day_ns == DAY + DAY_NS and len(risk.trips()) == 2
