"""The pre-trade gate's checks, each against hand-computed figures on the hand-priced chain of gate_market."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pytest

from spx_core.domain import ET
from spx_core.execution.approval import ApprovedOrder
from spx_core.execution.checks import CHECKS, CheckFailure, CloseContext, package_quote
from spx_core.execution.fill_model import LegQuotes, natural_price
from spx_core.execution.gate import GateSettings, PreTradeGate, PriceBand
from spx_core.execution.orders import Intent, OrderRequest, Side, new_ref
from spx_core.strategies.structure import Leg
from tests.execution.gate_market import (
    MONTHLY,
    YESTERDAY,
    RecordingBroker,
    StaticMarket,
    contract,
    put_credit_spread,
    single,
)

ALL_CHECKS = ("broker", "live_trading", "structure", "priced", "expiry", "market_open", "quantity", "notional",
              "tick", "price_band", "close", "rate_limit", "limits")


@pytest.fixture
def market():
    return StaticMarket()


@pytest.fixture
def broker():
    return RecordingBroker()


def failed(verdict) -> dict[str, str]:
    return {f.check: f.reason for f in verdict.failures}


def test_every_check_is_named_and_a_clean_order_passes_them_all(market, broker):
    assert tuple(c.__name__.removeprefix("check_") for c in CHECKS) == ALL_CHECKS
    verdict = PreTradeGate().check(put_credit_spread(), market, broker)
    assert verdict.ok and verdict.failures == ()
    assert verdict.passed == ALL_CHECKS
    assert isinstance(verdict.approved, ApprovedOrder) and verdict.approved.checks == ALL_CHECKS
    assert verdict.approved.approved_ns == market.now_ns() and not verdict.approved.used
    assert verdict.message == "approved (13 checks passed)"


def test_package_quote_matches_hand_computation(market):
    req = put_credit_spread()
    q = package_quote(req.legs, market, side=Side.SELL)
    assert q.bid == pytest.approx(10.00 - 6.00) and q.ask == pytest.approx(10.20 - 5.80)
    assert q.natural(Side.SELL) == pytest.approx(4.00) and q.natural(Side.BUY) == pytest.approx(4.40)
    assert q.width == pytest.approx(0.40) and q.mid == pytest.approx(4.20)


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
@pytest.mark.parametrize("legs", [
    ((4700, "P", 1), (4675, "P", -1)),  # vertical
    ((4700, "P", 1), (4675, "P", -1), (4725, "C", 1), (4750, "C", -1)),  # iron condor
    ((4650, "C", 1), (4700, "C", -2), (4750, "C", 1)),  # butterfly
])
def test_the_gates_natural_is_the_paper_fill_models(market, legs, side):
    legs = tuple(Leg(contract(k, r), q) for k, r, q in legs)
    gate_natural = package_quote(legs, market, side=side).natural(side)
    assert gate_natural == pytest.approx(natural_price(legs, side, LegQuotes.from_market(legs, market)), abs=1e-12)


def test_iron_condor_natural_by_hand(market):
    # SELL (+4700P, -4675P, +4725C, -4750C): 10.00 - 6.00 + 7.40 - 2.65
    legs = (Leg(contract(4700), 1), Leg(contract(4675), -1), Leg(contract(4725, "C"), 1), Leg(contract(4750, "C"), -1))
    assert package_quote(legs, market, side=Side.SELL).natural(Side.SELL) == pytest.approx(8.75)


def test_preview_never_mints_and_never_counts(market, broker):
    gate = PreTradeGate(GateSettings(orders_per_minute=1))
    for _ in range(3):
        verdict = gate.preview(put_credit_spread(), market, broker)
        assert verdict.ok and verdict.approved is None
    assert gate.check(put_credit_spread(), market, broker).approved is not None


# --- quantity and notional ------------------------------------------------------------------------------
def test_quantity_limit(market, broker):
    gate = PreTradeGate(GateSettings(max_quantity=5))
    assert gate.check(put_credit_spread(quantity=5), market, broker).ok
    verdict = gate.check(put_credit_spread(quantity=6), market, broker)
    assert list(failed(verdict)) == ["quantity"]
    assert "6 units is above the 5-unit limit" in verdict.message


def test_notional_uses_max_loss_of_a_credit_spread(market, broker):
    # SELL the 25-wide put spread at 4.20: max loss 25*100 - 420 = $2,080 per unit.
    gate = PreTradeGate(GateSettings(max_notional=10_000))
    assert gate.check(put_credit_spread(quantity=4), market, broker).ok  # $8,320
    verdict = gate.check(put_credit_spread(quantity=5), market, broker)  # $10,400
    assert list(failed(verdict)) == ["notional"]
    assert "$10,400 at risk is above the $10,000 limit" in verdict.message


def test_notional_uses_premium_of_a_debit(market, broker):
    # BUY the 4700 call at 17.30: the premium is the max loss, $1,730 per contract.
    gate = PreTradeGate(GateSettings(max_notional=5_000))
    assert gate.check(single(4700, "C", Side.BUY, 17.30, quantity=2), market, broker).ok  # $3,460
    assert "$5,190 at risk" in gate.check(single(4700, "C", Side.BUY, 17.30, quantity=3), market, broker).message


def test_naked_short_call_is_unlimited_risk(market, broker):
    verdict = PreTradeGate().check(single(4750, "C", Side.SELL, 2.55), market, broker)
    assert failed(verdict)["notional"].startswith("unlimited at risk")


def test_a_calendar_short_the_later_leg_is_margined_naked(market, broker):
    # BUY (+0105 4700P, -0119 4700P) at the natural 10.20 - 40.00 = -29.80 (a credit). The later leg is short, so
    # the risk is Reg-T offset-free: the long leg's 10.20 premium + the short put naked:
    # 40.00 + max(15% x 4705 - 5 OTM, 10% x 4700) = 740.75 points -> $1,020 + $74,075 = $75,095.
    legs = (Leg(contract(4700), 1), Leg(contract(4700, "P", MONTHLY, "SPX"), -1))
    req = OrderRequest(ref=new_ref(), legs=legs, side=Side.BUY, quantity=1, limit=-29.80)
    assert PreTradeGate(GateSettings(max_notional=75_100)).check(req, market, broker).ok
    verdict = PreTradeGate(GateSettings(max_notional=75_000)).check(req, market, broker)
    assert failed(verdict) == {"notional": "$75,095 at risk is above the $75,000 limit (GateSettings.max_notional); "
                                           "trade fewer units or a defined-risk structure"}


def test_closing_orders_count_only_their_premium(market, broker):
    # Buying back a naked call closes risk: its notional is the premium, not unlimited.
    trade = SimpleNamespace(id=7, legs=(Leg(contract(4750, "C"), -1),), quantity=1, status="open")
    req = single(4750, "C", Side.BUY, 2.65, intent=Intent.CLOSE, trade_id=7)
    verdict = PreTradeGate(GateSettings(max_notional=300)).check(req, market, broker, close=CloseContext(trade))
    assert verdict.ok, verdict.message


# --- price band and tick --------------------------------------------------------------------------------
@pytest.mark.parametrize(("limit", "ok"), [
    (4.40, True),  # the package ask: passive for a SELL
    (4.00, True),  # the natural
    (3.90, True),  # 0.10 through = max(2 ticks, 25% of the 0.40 width)
    (3.85, False),  # 0.15 through
    (6.10, True),  # 2.10 away = max(20 ticks = 1.00, 5 widths = 2.00, 50% of the 4.20 mid = 2.10)
    (6.15, False),
])
def test_price_band_around_the_natural(market, broker, limit, ok):
    verdict = PreTradeGate().check(put_credit_spread(limit=limit), market, broker)
    assert verdict.ok is ok, verdict.message
    if not ok:
        assert list(failed(verdict)) == ["price_band"]


def test_price_band_for_a_buy_and_its_message(market, broker):
    # BUY 4700C: ask 17.30, bid 17.00, width 0.30; tick 0.10 above 3.00: through allowed max(0.20, 0.075).
    gate = PreTradeGate()
    assert gate.check(single(4700, "C", Side.BUY, 17.50), market, broker).ok
    verdict = gate.check(single(4700, "C", Side.BUY, 17.60), market, broker)
    assert verdict.message == ("refused by price_band: limit 17.6 pays 0.30 worse than the natural 17.30; at most "
                               "0.20 allowed (PriceBand); use a limit nearer the market")


def test_price_band_is_configurable(market, broker):
    wide = PreTradeGate(GateSettings(price_band=PriceBand(through_ticks=10)))
    assert wide.check(put_credit_spread(limit=3.55), market, broker).ok  # 0.45 through <= 10 x 0.05
    with pytest.raises(ValueError, match="through_ticks"):
        PriceBand(through_ticks=-1)


def test_tick_size(market, broker):
    verdict = PreTradeGate().check(put_credit_spread(limit=4.22), market, broker)
    assert verdict.message == "refused by tick: limit 4.22 is not on the 0.05 tick of SPXW combos; use 4.20 or 4.25"
    # a single SPXW option above 3.00 trades in 0.10
    verdict = PreTradeGate().check(single(4700, "C", Side.BUY, 17.25), market, broker)
    assert "not on the 0.1 tick of SPXW options; use 17.20 or 17.30" in verdict.message


@pytest.mark.parametrize("limit", [0.0, -0.05])
def test_a_single_option_at_no_price_is_refused_but_a_package_at_zero_is_not(market, broker, limit):
    # a bid of 0 or less on one option sat on the tick grid and inside the price band, so it was approved
    verdict = PreTradeGate().check(single(4700, "C", Side.BUY, limit), market, broker)
    assert failed(verdict)["tick"] == f"limit {limit:g}: a single option trades at a positive price; use at least 0.05"
    assert "tick" not in failed(PreTradeGate().preview(put_credit_spread(limit=0.0), market, broker))


def test_market_orders_skip_price_checks_but_need_a_natural(market, broker):
    assert PreTradeGate().check(single(4700, "C", Side.BUY, None), market, broker).ok
    verdict = PreTradeGate().check(single(4600, "P", Side.SELL, None), market, broker)  # no bid to sell into
    assert list(failed(verdict)) == ["priced"]  # notional needs the natural too, named once


# --- structure and quotes -------------------------------------------------------------------------------
def test_unlisted_leg_and_missing_chain(market, broker):
    verdict = PreTradeGate().check(single(4800, "P", Side.BUY, 1.00), market, broker)
    assert "SPXW 2024-01-05 4800P PM is not listed in the SPX chain of 2024-01-05 10:30:00 ET" in failed(verdict)["structure"]
    market.snapshots.clear()
    verdict = PreTradeGate().check(put_credit_spread(), market, broker)
    assert "no SPX chain in the market yet" in failed(verdict)["structure"]
    assert "priced" not in failed(verdict)  # one cause, named once


@pytest.mark.parametrize(("strike", "side", "words"), [
    (4600, Side.SELL, "has no bid"),  # selling needs a bid
    (4575, Side.SELL, "has no bid"),  # and zero is no bid
    (4625, Side.BUY, "quote is crossed"),
])
def test_unusable_quotes(market, broker, strike, side, words):
    verdict = PreTradeGate().check(single(strike, "P", side, 1.10), market, broker)
    assert words in failed(verdict)["priced"]


def test_buying_needs_only_the_ask(market, broker):
    assert PreTradeGate().check(single(4600, "P", Side.BUY, 1.10), market, broker).ok


def test_stale_chain(market, broker):
    market.advance(601)
    verdict = PreTradeGate().check(put_credit_spread(), market, broker)
    assert "the SPX chain is 601 s old (limit 600 s)" in failed(verdict)["priced"]
    assert PreTradeGate(GateSettings(max_snapshot_age_s=None)).check(put_credit_spread(), market, broker).ok


# --- clock: expiry, hours, rate --------------------------------------------------------------------------
def test_expired_leg_is_refused_once(market, broker):
    verdict = PreTradeGate().check(single(4700, "P", Side.BUY, 0.10, expiry=YESTERDAY), market, broker)
    assert failed(verdict)["expiry"] == ("SPXW 2024-01-04 4700P PM stopped trading at 2024-01-04 16:00 ET; "
                                         "pick a later expiry")
    assert "market_open" not in failed(verdict)


@pytest.mark.parametrize(("when", "words"), [
    (datetime(2024, 1, 5, 9, 0, tzinfo=ET), "opens at 09:30"),
    (datetime(2024, 1, 6, 11, 0, tzinfo=ET), "weekend"),
])
def test_market_closed(broker, when, words):
    market = StaticMarket(when)
    verdict = PreTradeGate().check(single(4700, "P", Side.BUY, 40.60, expiry=MONTHLY, root="SPX"), market, broker)
    assert words in failed(verdict)["market_open"], verdict.message


def test_the_demo_clock_may_trade_around_the_clock_but_not_live(broker):
    market = StaticMarket(datetime(2024, 1, 6, 11, 0, tzinfo=ET))  # Saturday
    req = single(4700, "P", Side.BUY, 40.60, expiry=MONTHLY, root="SPX")
    assert PreTradeGate(GateSettings(enforce_hours=False)).check(req, market, broker).ok
    live = GateSettings(enforce_hours=False, live_trading=True)
    assert "weekend" in failed(PreTradeGate(live).check(req, market, RecordingBroker(live=True)))["market_open"]


def test_zero_dte_stops_at_four(broker):
    market = StaticMarket(datetime(2024, 1, 5, 16, 5, tzinfo=ET))
    verdict = PreTradeGate().check(put_credit_spread(), market, broker)
    assert list(failed(verdict)) == ["expiry"]
    # the monthly still trades until 16:15
    assert PreTradeGate().check(single(4700, "P", Side.BUY, 40.60, expiry=MONTHLY, root="SPX"), market, broker).ok


def test_rate_limit_slides_on_the_market_clock(market, broker):
    gate = PreTradeGate(GateSettings(orders_per_minute=3))
    for _ in range(3):
        assert gate.check(put_credit_spread(), market, broker).ok
        market.advance(10)
    verdict = gate.check(put_credit_spread(), market, broker)
    assert verdict.message == ("refused by rate_limit: 3 orders and modifies in the last 60 s is the limit "
                               "(GateSettings.orders_per_minute); send again in 30.0 s")
    market.advance(29.9)
    assert not gate.check(put_credit_spread(), market, broker).ok  # refusals do not count, but 0.1 s is left
    market.advance(0.1)
    assert gate.check(put_credit_spread(), market, broker).ok


# --- broker and live trading -----------------------------------------------------------------------------
def test_live_broker_needs_live_trading_enabled(market):
    live = RecordingBroker(live=True, account="U777")
    verdict = PreTradeGate().check(put_credit_spread(), market, live)
    assert verdict.message == ("refused by live_trading: paper account U777 trades real money and live trading is "
                               "off; enable it in settings first")
    assert PreTradeGate(GateSettings(live_trading=True)).check(put_credit_spread(), market, live).ok


def test_order_for_another_broker_or_account(market, broker):
    assert "for the ib broker" in failed(PreTradeGate().check(put_credit_spread(broker="ib"), market, broker))["broker"]
    verdict = PreTradeGate().check(put_credit_spread(account="DU999"), market, broker)
    assert "account DU999 but paper trades account DU123" in verdict.message


# --- closing orders --------------------------------------------------------------------------------------
def _trade(quantity=2, status="open"):
    # the put credit spread as sold: SELL (+4700P, -4675P) holds -4700P, +4675P per unit
    return SimpleNamespace(id=7, legs=(Leg(contract(4700), -1), Leg(contract(4675), 1)), quantity=quantity,
                           status=status)


def _closing(quantity=1, limit=4.40):
    return OrderRequest(ref=new_ref(), legs=(Leg(contract(4700), 1), Leg(contract(4675), -1)), side=Side.BUY,
                        quantity=quantity, limit=limit, intent=Intent.CLOSE, trade_id=7)


def test_close_within_the_open_quantity(market, broker):
    gate = PreTradeGate()
    assert gate.check(_closing(2), market, broker, close=CloseContext(_trade())).ok
    verdict = gate.check(_closing(2), market, broker, close=CloseContext(_trade(), other_working=1))
    assert failed(verdict)["close"] == ("closes 2 units of trade #7, which has 2 open (1 more in working closing "
                                        "orders); close at most 1")
    # a modify of a partly filled closing order counts only what it still has to close
    assert gate.check(_closing(3), market, broker, close=CloseContext(_trade(), already_filled=1)).ok


@pytest.mark.parametrize(("close", "words"), [
    (None, "no trade book"),
    (CloseContext(None), "trade #7 does not exist"),
    (CloseContext(_trade(quantity=0, status="closed")), "already closed"),
])
def test_close_needs_an_open_trade(market, broker, close, words):
    assert words in failed(PreTradeGate().check(_closing(), market, broker, close=close))["close"]


def test_close_must_reverse_the_trade(market, broker):
    same_way = OrderRequest(ref=new_ref(), legs=(Leg(contract(4700), 1), Leg(contract(4675), -1)), side=Side.SELL,
                            quantity=1, limit=4.20, intent=Intent.CLOSE, trade_id=7)
    verdict = PreTradeGate().check(same_way, market, broker, close=CloseContext(_trade()))
    assert "do not reverse trade #7's legs" in failed(verdict)["close"]


# --- the issue-10 hook and failing closed ------------------------------------------------------------------
def test_limits_hook(market, broker):
    seen = []

    def limits(request, mkt):
        seen.append((request.ref, mkt))
        return [CheckFailure("max_delta", "post-trade delta $-5,200 beyond the $5,000 limit")]

    req = put_credit_spread()
    verdict = PreTradeGate(limits=limits).check(req, market, broker)
    assert seen == [(req.ref, market)]
    assert verdict.message == "refused by limits: max_delta: post-trade delta $-5,200 beyond the $5,000 limit"
    assert PreTradeGate(limits=lambda r, m: []).check(req, market, broker).ok


def test_a_check_that_cannot_answer_refuses(market, broker):
    def broken(request, mkt):
        raise ZeroDivisionError("no book yet")

    verdict = PreTradeGate(limits=broken).check(put_credit_spread(), market, broker)
    assert failed(verdict) == {"limits": "the portfolio limits could not be checked (ZeroDivisionError: no book yet)"}

    class Flaky(RecordingBroker):
        @property
        def connected(self):
            raise OSError("socket gone")

    verdict = PreTradeGate().check(put_credit_spread(), market, Flaky())
    assert failed(verdict) == {"broker": "the check could not run (OSError: socket gone)"}
    assert verdict.approved is None


def test_every_failure_is_reported_in_one_line(broker):
    market = StaticMarket(datetime(2024, 1, 6, 11, 0, tzinfo=ET))  # Saturday
    req = single(4700, "C", Side.BUY, 19.05, quantity=80, expiry=MONTHLY, root="SPX")
    verdict = PreTradeGate(GateSettings(orders_per_minute=1)).check(req, market, RecordingBroker(live=True))
    assert set(failed(verdict)) == {"live_trading", "structure", "market_open", "quantity", "tick"}
    assert "\n" not in verdict.message
    assert verdict.message.count("refused by ") == 5 and verdict.message.startswith("refused by live_trading: ")
