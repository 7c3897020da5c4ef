"""Every alert rule fires on hand-made inputs, is not raised again while true, and re-arms once it clears."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, datetime

import pytest

from spx_core.domain.calendar import ET, to_ns
from spx_core.execution.orders import OrderState, OrderStatus
from spx_core.portfolio.trades import Trade
from spx_core.risk.alert_rules import (
    AlertEngine,
    AlertInputs,
    AlertSettings,
    AlertSettingsError,
)
from spx_core.risk.alerts import Severity
from spx_core.strategies.structure import Leg
from tests.storage.orders_factory import call, put, vertical

SEC = 1_000_000_000
NOON = to_ns(datetime(2024, 3, 4, 12, 0, tzinfo=ET))  # a Monday, market open
SATURDAY = to_ns(datetime(2024, 3, 9, 12, 0, tzinfo=ET))


@dataclass(frozen=True)
class Use:  # the LimitUse fields the rules read (guard's LimitUse has the same shape)
    name: str
    label: str
    value: float
    limit: float
    pct: float
    unit: str = ""


@dataclass(frozen=True)
class Signal:
    trade_id: int
    rule: str
    reason: str
    strategy: str = ""


@dataclass(frozen=True)
class Trip:
    day_ns: int
    time_ns: int
    reason: str
    cancelled: int
    closed: int


def delta_use(value: float) -> Use:
    return Use("max_delta", "portfolio delta", value, 200.0, abs(value) / 200.0 * 100.0)


def trade(*legs: Leg, trade_id: int = 7, quantity: int = 1, name: str = "put credit vertical") -> Trade:
    return Trade(id=trade_id, name=name, kind="vertical", legs=legs, quantity=quantity, opened_quantity=quantity,
                 side="sell", open_price=1.45)


def keys(drafts) -> list[str]:
    return [d.key for d in drafts]


@pytest.fixture
def engine():
    return AlertEngine(AlertSettings(pnl_loss_usd=2_000, pnl_gain_usd=3_000))


def run(engine, **kw):
    kw.setdefault("now_ns", NOON)
    kw.setdefault("last_data_ns", kw["now_ns"])
    return engine.evaluate(AlertInputs(**kw))


def test_a_limit_warns_at_80_pct_with_a_message_a_trader_reads(engine):
    [draft] = run(engine, usage=[delta_use(182)], profile_name="iron condor")
    assert (draft.key, draft.rule, draft.severity) == ("limit_warning:max_delta", "limit_warning", Severity.WARNING)
    assert draft.message == "Portfolio delta 182 is 91% of the 200 limit (iron condor)"
    assert run(engine, usage=[delta_use(185)]) == []  # still true: not raised again
    assert run(engine, usage=[delta_use(159)]) == []  # 79.5%: clears
    assert keys(run(engine, usage=[delta_use(-170)])) == ["limit_warning:max_delta"]  # re-armed


def test_a_limit_at_100_pct_is_critical_and_covers_its_warning(engine):
    [draft] = run(engine, usage=[delta_use(210)])
    assert (draft.key, draft.severity) == ("limit_breach:max_delta", Severity.CRITICAL)
    assert "105% of the 200 limit" in draft.message
    assert run(engine, usage=[delta_use(190)]) == []  # the warning was covered by the critical
    assert keys(run(engine, usage=[delta_use(200)])) == ["limit_breach:max_delta"]  # breach re-armed at exactly 100%
    assert run(engine, usage=[Use("max_vega", "portfolio vega", math.nan, 500.0, math.nan)]) == []  # unknown: nothing


def test_money_limits_read_as_dollars(engine):
    [draft] = run(engine, usage=[Use("max_daily_loss", "daily loss", 4_100.0, 5_000.0, 82.0, "$")])
    assert draft.message == "Daily loss $4,100 is 82% of the $5,000 limit"


def test_a_short_put_strike_touched_fires_and_re_arms(engine):
    book = [trade(Leg(put(5000.0), -1), Leg(put(4975.0), 1))]
    assert run(engine, trades=book, spots={"SPX": 5010.0}) == []
    [draft] = run(engine, trades=book, spots={"SPX": 5000.0})
    assert draft.key == "short_strike:7:SPXW240304P05000000" and draft.severity is Severity.WARNING
    assert "SPX 5,000.00 is at or below the short SPXW 2024-03-04 5000P of trade 7" in draft.message
    assert run(engine, trades=book, spots={"SPX": 4970.0}) == []  # through the long strike too: no new alert
    assert run(engine, trades=book, spots={"SPX": 5020.0}) == []
    assert keys(run(engine, trades=book, spots={"SPX": 4999.0})) == ["short_strike:7:SPXW240304P05000000"]


def test_a_short_call_strike_touched_fires_and_longs_never_do(engine):
    book = [trade(Leg(call(5100.0), -1), Leg(call(5125.0), 1), name="call credit vertical")]
    assert run(engine, trades=book, spots={"SPX": 5099.0}) == []
    assert keys(run(engine, trades=book, spots={"SPX": 5130.0})) == ["short_strike:7:SPXW240304C05100000"]
    long_only = [trade(Leg(call(5100.0), 1), trade_id=8)]
    assert run(AlertEngine(), trades=long_only, spots={"SPX": 5130.0}) == []


def test_an_expired_short_leg_awaiting_settlement_is_not_a_touch():
    book = [trade(Leg(put(5000.0, expiry=date(2024, 3, 1)), -1))]
    assert run(AlertEngine(), trades=book, spots={"SPX": 4990.0}) == []


def test_a_held_leg_is_short_by_its_ratio_times_quantity():
    sold_back = [trade(Leg(put(5000.0), 1), quantity=-1)]  # defensive: the sign of the held units decides
    assert keys(run(AlertEngine(), trades=sold_back, spots={"SPX": 4990.0})) == ["short_strike:7:SPXW240304P05000000"]


def test_day_pnl_thresholds_fire_once_and_re_arm(engine):
    [loss] = run(engine, day_pnl=-2_150.0)
    assert (loss.key, loss.severity) == ("pnl_loss:2024-03-04", Severity.WARNING)
    assert loss.message == "Day P&L -$2,150 is past the -$2,000 loss alert"
    assert run(engine, day_pnl=-2_500.0) == []
    assert run(engine, day_pnl=-1_000.0) == []
    assert keys(run(engine, day_pnl=-2_000.0)) == ["pnl_loss:2024-03-04"]
    [gain] = run(engine, day_pnl=3_100.0)
    assert (gain.key, gain.severity, gain.message) == ("pnl_gain:2024-03-04", Severity.INFO,
                                                      "Day P&L +$3,100 is past the +$3,000 gain alert")
    assert run(AlertEngine(), day_pnl=-1e9) == []  # no thresholds set: off
    assert run(engine, day_pnl=math.nan) == []


def test_dte_and_time_exits_due_alert_and_other_rules_do_not(engine):
    signals = [Signal(7, "dte", "dte: 2 DTE reached (close at 2)", "credit verticals"),
               Signal(8, "take_profit", "take_profit: 50% of credit")]
    [draft] = run(engine, exits_due=signals)
    assert draft.key == "exit_due:7:dte"
    assert draft.message == "Exit due on trade 7 (credit verticals): dte: 2 DTE reached (close at 2)"
    assert run(engine, exits_due=signals) == []
    assert run(engine) == []
    [time_exit] = run(engine, exits_due=[Signal(7, "time", "15:45 reached")])
    assert time_exit.message == "Exit due on trade 7: time: 15:45 reached"


def test_a_short_spy_leg_in_the_money_near_expiry_is_an_assignment_risk(engine):
    tomorrow, later = date(2024, 3, 5), date(2024, 3, 11)
    book = [trade(Leg(put(450.0, root="SPY", expiry=tomorrow), -1), Leg(put(445.0, root="SPY", expiry=tomorrow), 1))]
    drafts = run(engine, trades=book, spots={"SPY": 446.0})
    assert "assignment:7:SPY240305P00450000" in keys(drafts)
    [draft] = [d for d in drafts if d.rule == "assignment"]
    assert "is 0.9% in the money (SPY 446.00), 1 trading day to expiry" in draft.message
    assert "assignment" not in {d.rule for d in run(engine, trades=book, spots={"SPY": 444.0})}  # still true
    assert [d for d in run(engine, trades=book, spots={"SPY": 451.0}) if d.rule == "assignment"] == []  # out
    far = [trade(Leg(put(450.0, root="SPY", expiry=later), -1))]
    assert not [d for d in run(AlertEngine(), trades=far, spots={"SPY": 440.0}) if d.rule == "assignment"]
    spx = [trade(Leg(put(5000.0, expiry=tomorrow), -1))]  # European: no early assignment
    assert not [d for d in run(AlertEngine(), trades=spx, spots={"SPX": 4900.0}) if d.rule == "assignment"]


def test_assignment_itm_threshold_and_days_come_from_the_settings():
    book = [trade(Leg(put(450.0, root="SPY", expiry=date(2024, 3, 6)), -1))]  # 2 trading days out
    assert not [d for d in run(AlertEngine(), trades=book, spots={"SPY": 440.0}) if d.rule == "assignment"]
    strict = AlertEngine(AlertSettings(assignment_days=2, assignment_itm_pct=1.0))
    assert not [d for d in run(strict, trades=book, spots={"SPY": 447.0}) if d.rule == "assignment"]  # 0.7%
    assert keys([d for d in run(strict, trades=book, spots={"SPY": 440.0}) if d.rule == "assignment"]) == [
        "assignment:7:SPY240306P00450000"]


def test_no_quote_for_stale_after_s_while_open_is_stale_and_re_arms(engine):
    assert run(engine, last_data_ns=NOON - 29 * SEC) == []
    [draft] = run(engine, last_data_ns=NOON - 31 * SEC)
    assert (draft.key, draft.severity) == ("stale_data:feed", Severity.WARNING)
    assert draft.message.startswith("No new quote for 31 s while the market is open")
    assert run(engine, now_ns=NOON + 10 * SEC, last_data_ns=NOON - 31 * SEC) == []
    assert run(engine, now_ns=NOON + 11 * SEC, last_data_ns=NOON + 11 * SEC) == []
    assert keys(run(engine, now_ns=NOON + 60 * SEC, last_data_ns=NOON + 11 * SEC)) == ["stale_data:feed"]


def test_stale_data_waits_for_the_open_and_ignores_closed_markets():
    open_ns = to_ns(datetime(2024, 3, 4, 9, 30, tzinfo=ET))
    yesterday = open_ns - 17 * 3600 * SEC
    assert run(AlertEngine(), now_ns=SATURDAY, last_data_ns=SATURDAY - 3600 * SEC) == []
    assert run(AlertEngine(), now_ns=open_ns - 60 * SEC, last_data_ns=yesterday) == []  # pre-open
    assert run(AlertEngine(), now_ns=open_ns + 10 * SEC, last_data_ns=yesterday) == []  # counted from the open
    assert keys(run(AlertEngine(), now_ns=open_ns + 40 * SEC, last_data_ns=yesterday)) == ["stale_data:feed"]
    evening = to_ns(datetime(2024, 3, 4, 16, 20, tzinfo=ET))  # after the 16:15 options close
    assert run(AlertEngine(), now_ns=evening, last_data_ns=evening - 600 * SEC) == []


def test_no_quote_at_all_counts_from_the_first_evaluation():
    engine = AlertEngine()
    assert engine.evaluate(AlertInputs(now_ns=NOON)) == []
    [draft] = engine.evaluate(AlertInputs(now_ns=NOON + 30 * SEC))
    assert draft.message.startswith("No quote received for 30 s")


def test_broker_disconnected_is_critical_and_re_arms(engine):
    [draft] = run(engine, broker_connected=False, broker_name="ib")
    assert (draft.key, draft.severity) == ("broker_disconnected:ib", Severity.CRITICAL)
    assert draft.message.startswith("Broker ib disconnected")
    assert run(engine, broker_connected=False, broker_name="ib") == []
    assert run(engine, broker_name="ib") == []
    assert keys(run(engine, broker_connected=False, broker_name="ib")) == ["broker_disconnected:ib"]


def test_each_rejected_order_is_its_own_alert_raised_once(engine):
    rejected = [replace(OrderState.new(vertical(ref)), status=OrderStatus.REJECTED, reason=why)
                for ref, why in (("A1", "margin: not enough buying power"), ("A2", ""))]
    drafts = run(engine, rejected=rejected)
    assert keys(drafts) == ["order_rejected:A1", "order_rejected:A2"]
    assert drafts[0].message == ("Order A1 (5000/4975 put credit vertical, sell 2) rejected: "
                                 "margin: not enough buying power")
    assert drafts[1].message.endswith("rejected: no reason given")
    assert run(engine, rejected=rejected) == []  # handed in again: already raised


def test_a_breaker_trip_is_critical_once_a_day(engine):
    day = to_ns(datetime(2024, 3, 4, 0, 0, tzinfo=ET))
    trip = Trip(day, NOON, "daily loss $5,000 reached ($5,120 lost)", cancelled=2, closed=1)
    [draft] = run(engine, trip=trip)
    assert (draft.key, draft.severity) == ("breaker:2024-03-04", Severity.CRITICAL)
    assert draft.message == ("Circuit breaker tripped: daily loss $5,000 reached ($5,120 lost); 2 working orders "
                             "cancelled, 1 trades closed; new entries refused until the next session")
    assert run(engine, trip=trip) == []


@pytest.mark.parametrize("kw, words", [
    ({"warn_pct": 100.0}, "warn_pct 100.0 must be above 0 and below limit_pct"),
    ({"limit_pct": 0.0}, "limit_pct 0.0 must be above 0"),
    ({"pnl_loss_usd": -5.0}, "pnl_loss_usd -5.0 must be a positive dollar amount"),
    ({"pnl_gain_usd": 0.0}, "pnl_gain_usd 0.0 must be a positive"),
    ({"stale_after_s": 0}, "stale_after_s 0 must be above 0 seconds"),
    ({"assignment_days": -1}, "assignment_days -1 must be a whole number"),
    ({"assignment_itm_pct": math.nan}, "assignment_itm_pct nan must be >= 0"),
])
def test_settings_out_of_range_say_which_and_how(kw, words):
    with pytest.raises(AlertSettingsError, match=words):
        AlertSettings(**kw)
