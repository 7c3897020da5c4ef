"""The position monitor: each exit rule at its boundary, the priority when two fire, no exit on bad quotes.

The trade is the 25-wide put credit vertical SOLD at 2.00 (tests/automation/exit_market.py): cost to close at the
natural = 4650P ask - 4625P bid; take profit 50% fires at a cost of 1.00, stop loss 100% at 4.00.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from spx_core.automation.monitor import (
    ExitRule,
    PositionMonitor,
    marketable_limit,
    parse_clock,
)
from spx_core.domain.quotes import QuoteFlag
from spx_core.execution.orders import Intent, OrderType, Side
from tests.automation.exit_market import (
    EXPIRY,
    LONG,
    SHORT,
    T0,
    at,
    config,
    credit_vertical,
    debit_vertical,
    vertical_market,
)

QUIET = ((2.40, 2.50), (0.80, 0.90))  # cost to close 2.50 - 0.80 = 1.70 natural, 1.60 mid: nothing fires


def _check(trade, config, market, now_ns=None, **kw):
    now_ns = market.now_ns() if now_ns is None else now_ns
    return PositionMonitor().evaluate([trade], {trade.id: config}, market, now_ns, **kw)


def _one(result):
    assert len(result.signals) == 1, result
    return result.signals[0]


# --- take profit ---------------------------------------------------------------------------------------------
def test_take_profit_fires_at_the_boundary_and_closes_through_closing_request():
    trade = credit_vertical()
    signal = _one(_check(trade, config(), vertical_market((1.40, 1.50), (0.50, 0.60))))  # cost 1.00
    assert signal.rule is ExitRule.TAKE_PROFIT and signal.strategy == "pcs" and signal.trade_id == trade.id
    assert signal.reason.startswith("take_profit: cost to close 1.00 (natural) <= 1.00")
    req = signal.request
    assert req.intent is Intent.CLOSE and req.trade_id == trade.id and req.source == "automation"
    assert req.side is Side.BUY and req.legs == trade.order_legs and req.quantity == trade.quantity
    assert req.order_type is OrderType.LMT and req.limit == pytest.approx(1.00) and req.created_ns == T0


def test_take_profit_does_not_fire_one_tick_above():
    assert _check(credit_vertical(), config(), vertical_market((1.40, 1.55), (0.50, 0.60))).signals == ()


def test_take_profit_on_the_mid_when_the_strategy_prices_at_mid():
    trade = credit_vertical()
    market = vertical_market((1.40, 1.60), (0.45, 0.55))  # natural 1.15 (no), mid 1.50 - 0.50 = 1.00 (yes)
    assert _check(trade, config(), market).signals == ()
    signal = _one(_check(trade, config(price="mid"), market))
    assert signal.rule is ExitRule.TAKE_PROFIT and "(mid)" in signal.reason
    assert signal.request.limit == pytest.approx(1.15)  # the order itself crosses: an exit is meant to fill


# --- stop loss -----------------------------------------------------------------------------------------------
def test_stop_loss_fires_when_the_loss_reaches_the_credit():
    signal = _one(_check(credit_vertical(), config(), vertical_market((5.40, 5.50), (1.50, 1.60))))
    assert signal.rule is ExitRule.STOP_LOSS
    assert signal.reason.startswith("stop_loss: cost to close 4.00 (natural) is a 2.00 loss, >= 100%")
    assert signal.request.limit == pytest.approx(4.00)


def test_stop_loss_does_not_fire_just_inside():
    assert _check(credit_vertical(), config(), vertical_market((5.40, 5.45), (1.50, 1.60))).signals == ()


def test_debit_trade_uses_the_symmetric_rules():
    """Bought at 2.00: take profit 50% when the value to close (package bid) reaches 3.00, stop 50% at 1.00."""
    trade, cfg = debit_vertical(), config(take_profit_pct=50, stop_loss_pct=50)
    tp = _one(_check(trade, cfg, vertical_market((3.70, 3.80), (0.60, 0.70))))  # 3.70 - 0.70 = 3.00
    assert tp.rule is ExitRule.TAKE_PROFIT and tp.reason.startswith("take_profit: value to close 3.00 (natural) >=")
    assert tp.request.side is Side.SELL and tp.request.limit == pytest.approx(3.00)
    assert _check(trade, cfg, vertical_market((3.65, 3.80), (0.60, 0.70))).signals == ()
    sl = _one(_check(trade, cfg, vertical_market((1.60, 1.70), (0.55, 0.60))))  # 1.60 - 0.60 = 1.00
    assert sl.rule is ExitRule.STOP_LOSS and "1.00 loss, >= 50%" in sl.reason


# --- regime, DTE, time -----------------------------------------------------------------------------------------
def test_regime_exit_only_in_crash_mode_and_only_when_the_config_asks():
    trade, market = credit_vertical(), vertical_market(*QUIET)
    asks = config(regime_exit=True)
    assert _check(trade, asks, market).signals == ()
    assert _check(trade, config(), market, crash_mode=True).signals == ()
    signal = _one(_check(trade, asks, market, crash_mode=True))
    assert signal.rule is ExitRule.REGIME and signal.reason.startswith("regime: crash mode")


@pytest.mark.parametrize("close_dte, fires", [(1, True), (0, False)])
def test_dte_exit_at_the_boundary(close_dte, fires):
    """On Thursday the Friday expiry is 1 DTE."""
    result = _check(credit_vertical(), config(close_dte=close_dte), vertical_market(*QUIET))
    assert [s.rule for s in result.signals] == ([ExitRule.DTE] if fires else [])
    if fires:
        assert result.signals[0].reason == "dte: front expiry 2024-01-05 is 1 DTE, at or inside the close at 1 DTE"


@pytest.mark.parametrize("hms, fires", [((15, 44, 59), False), ((15, 45, 0), True), ((15, 50, 0), True)])
def test_time_exit_on_expiry_day_at_close_time(hms, fires):
    now = at(EXPIRY, *hms)
    result = _check(credit_vertical(), config(close_time="15:45"),
                    vertical_market(*QUIET, t=now))
    assert [s.rule for s in result.signals] == ([ExitRule.TIME] if fires else [])
    if fires:
        assert result.signals[0].reason.startswith("time: 15:45 ET reached on expiry day 2024-01-05")


def test_time_exit_not_before_expiry_day():
    now = at(EXPIRY.replace(day=4), 15, 50)
    assert _check(credit_vertical(), config(close_time="15:45"),
                  vertical_market(*QUIET, t=now)).signals == ()


# --- priority ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("quotes, exits, crash, now, rule", [
    # take profit and time both fire: take profit
    (((1.40, 1.50), (0.50, 0.60)), {"close_time": "15:45", "close_dte": 0}, False, at(EXPIRY, 15, 46),
     ExitRule.TAKE_PROFIT),
    # stop loss and regime and DTE: stop loss
    (((5.40, 5.50), (1.50, 1.60)), {"regime_exit": True, "close_dte": 3}, True, T0, ExitRule.STOP_LOSS),
    # regime and DTE: regime
    (QUIET, {"regime_exit": True, "close_dte": 3}, True, T0, ExitRule.REGIME),
    # DTE and time: DTE
    (QUIET, {"close_dte": 0, "close_time": "15:45"}, False, at(EXPIRY, 15, 46), ExitRule.DTE),
])
def test_the_first_rule_in_priority_names_the_exit(quotes, exits, crash, now, rule):
    result = _check(credit_vertical(), config(**exits), vertical_market(*quotes, t=now), crash_mode=crash)
    assert _one(result).rule is rule


# --- bad quotes ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flag", [QuoteFlag.STALE, QuoteFlag.WIDE, QuoteFlag.CROSSED, QuoteFlag.OUTSIDE_BOUNDS])
def test_no_exit_on_a_flagged_quote_even_when_a_rule_is_due(flag):
    """The quotes say take profit (and the time rule is due), but a flagged leg stops every exit."""
    now = at(EXPIRY, 15, 50)
    market = vertical_market((1.40, 1.50), (0.50, 0.60), t=now, flags={LONG: int(flag)})
    result = _check(credit_vertical(), config(close_time="15:45"), market)
    assert result.signals == ()
    (skip,) = result.skipped
    assert skip.trade_id == 1 and skip.strategy == "pcs"
    assert "time exit due but not sent" in skip.reason and str(LONG) in skip.reason
    assert skip.due == (ExitRule.TIME,) and skip.rule is ExitRule.TIME


@pytest.mark.parametrize("flags, why", [(None, "quote is zero bid"), ({}, "has no bid")])
def test_no_exit_on_a_nan_mark(flags, why):
    """A missing bid: flagged by the snapshot, or (flags forced clean) still no price."""
    market = vertical_market((math.nan, 1.50), (0.50, 0.60), flags=flags)
    result = _check(credit_vertical(), config(price="mid"), market)
    assert result.signals == ()
    (skip,) = result.skipped
    assert why in skip.reason and str(SHORT) in skip.reason and skip.reason.startswith("trade #1: not checked")
    assert skip.due == () and skip.rule is None


def test_no_exit_when_a_leg_is_not_listed_or_the_chain_is_old():
    trade = credit_vertical()
    market = vertical_market((1.40, 1.50), (0.50, 0.60))
    del market.snaps["SPX"]
    assert "no SPX chain" in _check(trade, config(), market).skipped[0].reason
    old = vertical_market((1.40, 1.50), (0.50, 0.60))
    old.now = T0 + 601 * 1_000_000_000
    result = _check(trade, config(), old)
    assert result.signals == () and "601 s old" in result.skipped[0].reason


def test_one_signal_per_trade_each_by_its_own_strategy():
    """Two trades on the same quotes (cost 1.70): a 10% take profit fires (1.70 <= 1.80), a 50% one does not."""
    a, b = credit_vertical(1), credit_vertical(2)
    market = vertical_market(*QUIET)
    signals = PositionMonitor().check([a, b], {1: config("tp10", take_profit_pct=10), 2: config("tp50")}, market, T0)
    assert [(s.trade_id, s.strategy, s.rule) for s in signals] == [(1, "tp10", ExitRule.TAKE_PROFIT)]


def test_trades_without_a_strategy_or_closed_are_not_checked():
    trade = credit_vertical()
    market = vertical_market((1.40, 1.50), (0.50, 0.60))
    assert PositionMonitor().check([trade], {}, market, T0) == []
    closed = replace(trade, status="closed", quantity=0)
    assert PositionMonitor().check([closed], {trade.id: config()}, market, T0) == []


def test_disabled_price_rules_leave_the_others():
    cfg = config(take_profit_pct=None, stop_loss_pct=None, close_dte=1)
    signal = _one(_check(credit_vertical(), cfg, vertical_market((1.40, 1.50), (0.50, 0.60))))
    assert signal.rule is ExitRule.DTE


def test_closing_orders_carry_the_monitor_broker_and_account():
    monitor = PositionMonitor(broker="ib", account="DU1")
    trade = credit_vertical()
    (signal,) = monitor.check([trade], {1: config()}, vertical_market((1.40, 1.50), (0.50, 0.60)), T0)
    assert signal.request.broker == "ib" and signal.request.account == "DU1"


def test_marketable_limit_rounds_toward_crossing():
    legs = credit_vertical().order_legs
    assert marketable_limit(legs, Side.BUY, 1.01) == pytest.approx(1.05)
    assert marketable_limit(legs, Side.SELL, 1.04) == pytest.approx(1.00)
    assert marketable_limit(legs[:1], Side.BUY, 3.01) == pytest.approx(3.10)  # single leg above 3: 0.10 tick


def test_parse_clock_names_bad_text():
    assert parse_clock("15:45").hour == 15
    with pytest.raises(ValueError, match="HH:MM"):
        parse_clock("3.45pm")
