"""The delta hedger: the band, the minimum interval, the instrument (SPX or SPY synthetic, nearest liquid expiry)
and the portfolio delta it reads (the portfolio greeks of the held legs)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from spx_core.automation.config import HedgeConfig, HedgeInstrument
from spx_core.automation.hedger import DeltaHedger, HedgeError, book_delta, unit_delta
from spx_core.domain.contracts import OptionContract
from spx_core.domain.quotes import QuoteFlag
from spx_core.execution.checks import package_quote
from spx_core.execution.orders import Intent, Side
from spx_core.risk.greeks import portfolio_greeks
from spx_core.strategies import Market as PricingMarket
from spx_core.surface.chain_iv import chain_iv
from tests.automation.exit_market import EXPIRY, NEXT, SECOND, T0, Market, snapshot
from tests.chains import make_chain


def _hedge(band_delta: float = 500.0, instrument: str = "synthetic", min_interval_s: float = 300.0) -> HedgeConfig:
    """Band in dollars per SPX point: 500 = five SPX contracts of delta 1."""
    return HedgeConfig(band_delta=band_delta, instrument=HedgeInstrument(instrument), min_interval_s=min_interval_s)


def _c(strike, right, expiry=NEXT, root="SPXW"):
    return OptionContract(root, expiry, strike, right)


#: the 01-12 series around a 4700 index: calls richer than puts (forward above the strike)
QUOTES = {
    _c(4675, "C"): (40.0, 40.5), _c(4675, "P"): (14.0, 14.5),
    _c(4700, "C"): (26.0, 26.5), _c(4700, "P"): (20.0, 20.5),
    _c(4725, "C"): (15.0, 15.5), _c(4725, "P"): (33.0, 33.5),
    # the wings 5% beyond: a call near 4700 x 1.05 = 4935 above a short future, a put near 4465 below a long one
    _c(4950, "C"): (0.50, 0.60), _c(4450, "P"): (0.50, 0.60),
    _c(4950, "C", EXPIRY): (0.05, 0.10), _c(4450, "P", EXPIRY): (0.05, 0.10),
    # tomorrow's (1 DTE) series and today's (0 DTE, Thursday 01-04): 1 DTE is the nearest the hedger may use
    _c(4700, "C", EXPIRY): (12.0, 12.5), _c(4700, "P", EXPIRY): (11.0, 11.5),
}


def _market(quotes=QUOTES, flags=None, t=T0):
    return Market(snapshot(quotes, t=t, flags=flags), now_ns=t)


# --- the band ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("delta", [0.0, 500.0, -500.0, 499.0])
def test_inside_the_band_no_hedge(delta):
    hedger = DeltaHedger(_hedge())
    assert hedger.check(delta, _market(), T0) is None
    assert "$/pt within ±500" in hedger.due(delta, T0)


def test_just_outside_the_band_hedges():
    assert DeltaHedger(_hedge()).check(550.0, _market(), T0).quantity == 6  # 5.5 units rounds to 6


def test_long_delta_outside_the_band_sells_the_synthetic_back_to_zero():
    hedge = DeltaHedger(_hedge(), min_dte=2).plan(1230.0, _market(), T0)
    req = hedge.request
    assert req.quantity == 12 and hedge.delta_change == pytest.approx(-1200.0)
    held = {leg.contract: leg.ratio * req.side.sign for leg in req.legs}
    # short call + long put (a short future) + the long 4950 call wing that caps its risk
    assert held == {_c(4700, "C"): -1, _c(4700, "P"): 1, _c(4950, "C"): 1}
    assert req.intent is Intent.OPEN and req.source == "automation" and req.created_ns == T0
    # held, it costs -26.25 + 20.25 + 0.55 = -5.45 at mid: written as SELL (+C -P -Cw) at the natural
    # 26.0 - 20.5 - 0.60 = 4.90
    assert req.side is Side.SELL and req.limit == pytest.approx(4.90)
    assert hedge.reason.startswith("hedge: portfolio delta +1,230 $/pt outside ±500; sell 12 x SPXW 2024-01-12 4700 "
                                   "synthetic (short, 4950C wing) at 4.90")
    assert hedge.reason.endswith("(-1,200 $/pt) -> +30 $/pt")


def test_short_delta_buys_and_a_negative_synthetic_price_is_written_the_other_way():
    """The 4725 synthetic costs 15.25 - 33.25 < 0 at mid: a long future is written SELL (-C +P) at a credit."""
    quotes = {k: v for k, v in QUOTES.items() if k.strike in (4725, 4450) or k.expiry == EXPIRY}
    hedge = DeltaHedger(_hedge(), min_dte=2).plan(-760.0, _market(quotes), T0)
    req = hedge.request
    held = {leg.contract: leg.ratio * req.side.sign for leg in req.legs}
    assert held == {_c(4725, "C"): 1, _c(4725, "P"): -1, _c(4450, "P"): 1} and req.quantity == 8
    assert req.limit > 0 and hedge.delta_change == pytest.approx(800.0)
    natural = package_quote(req.legs, _market(quotes), side=req.side).natural(req.side)
    assert req.limit == pytest.approx(natural)


def test_less_than_one_unit_outside_the_band_sends_nothing():
    assert DeltaHedger(_hedge(band_delta=20.0)).plan(40.0, _market(), T0) is None


def test_unknown_delta_sends_nothing():
    hedger = DeltaHedger(_hedge())
    assert hedger.check(math.nan, _market(), T0) is None and "unknown" in hedger.due(math.nan, T0)


# --- the interval ----------------------------------------------------------------------------------------------
def test_minimum_interval_between_hedges():
    hedger = DeltaHedger(_hedge(min_interval_s=300))
    assert hedger.check(900.0, _market(), T0) is not None and hedger.last_hedge_ns == T0
    assert hedger.check(900.0, _market(), T0 + 299 * SECOND) is None
    assert "last hedge was 299 s ago" in hedger.due(900.0, T0 + 299 * SECOND)
    assert hedger.check(900.0, _market(), T0 + 300 * SECOND) is not None


def test_a_restart_carries_the_last_hedge_time():
    hedger = DeltaHedger(_hedge(min_interval_s=300), last_hedge_ns=T0)
    assert hedger.check(900.0, _market(), T0 + 10 * SECOND) is None


def test_plan_does_not_start_the_interval():
    hedger = DeltaHedger(_hedge())
    assert hedger.plan(900.0, _market(), T0) is not None and hedger.last_hedge_ns is None


# --- the instrument ----------------------------------------------------------------------------------------------
def test_nearest_expiry_at_least_min_dte_out():
    assert DeltaHedger(_hedge(), min_dte=1).plan(900.0, _market(), T0).request.legs[0].contract.expiry == EXPIRY
    assert DeltaHedger(_hedge(), min_dte=2).plan(900.0, _market(), T0).request.legs[0].contract.expiry == NEXT


def test_a_flagged_strike_is_passed_over_for_the_nearest_clean_one():
    flags = {_c(4700, "P"): int(QuoteFlag.STALE), _c(4700, "C", EXPIRY): int(QuoteFlag.WIDE)}
    req = DeltaHedger(_hedge()).plan(900.0, _market(flags=flags), T0).request
    assert {leg.contract.strike for leg in req.legs} == {4675.0, 4950.0} and req.legs[0].contract.expiry == NEXT


def test_no_liquid_synthetic_is_an_error_that_says_so():
    with pytest.raises(HedgeError, match="no SPX expiry 1\\+ days out has a call and a put"):
        DeltaHedger(_hedge()).plan(900.0, _market({_c(4700, "C"): (26.0, 26.5)}), T0)
    with pytest.raises(HedgeError, match="no SPY chain"):
        DeltaHedger(_hedge(instrument="SPY")).plan(900.0, _market(), T0)


def test_spy_synthetic_hedges_in_tenths():
    spy = {OptionContract("SPY", NEXT, k, r): q for k, r, q in ((470, "C", (3.0, 3.02)), (470, "P", (2.4, 2.42)),
                                                                   (494, "C", (0.05, 0.06)))}
    snap = snapshot(spy, spot=470.0)
    snap = type(snap).from_columns(**{**_columns(snap), "underlying": "SPY"})
    market = Market(snap, now_ns=T0)
    hedge = DeltaHedger(_hedge(instrument="SPY")).plan(734.0, market, T0)
    assert unit_delta(hedge.request.legs[0].contract) == pytest.approx(10.0)
    assert hedge.request.quantity == 73 and hedge.delta_change == pytest.approx(-730.0)
    assert unit_delta(hedge.request.legs[0].contract, spy_beta=0.98) == pytest.approx(9.8)


def test_the_wing_is_required_unless_switched_off():
    quotes = {k: v for k, v in QUOTES.items() if k.strike == 4700}
    with pytest.raises(HedgeError, match="no cleanly quoted call above 4700 .* for the hedge's wing"):
        DeltaHedger(_hedge()).plan(900.0, _market(quotes), T0)
    bare = DeltaHedger(_hedge(), wing_pct=None).plan(900.0, _market(quotes), T0).request
    assert {leg.contract.strike for leg in bare.legs} == {4700.0} and len(bare.legs) == 2
    with pytest.raises(ValueError, match="wing_pct"):
        DeltaHedger(_hedge(), wing_pct=1.5)


def _columns(snap):
    c = snap.columns
    return {"time": snap.time_ns, "underlying_price": snap.underlying_price, "root": c["root"],
            "expiry": c["expiry"], "strike": c["strike"], "is_call": c["is_call"], "bid": c["bid"], "ask": c["ask"],
            "bid_size": c["bid_size"], "ask_size": c["ask_size"]}


# --- the delta it reads ------------------------------------------------------------------------------------------
def test_book_delta_is_the_portfolio_greeks_of_the_held_legs():
    snap, _ = make_chain(n_expiries=2, seed=4)
    market = PricingMarket.of(chain_iv(snap))
    a, b = snap.contract(len(snap) // 3), snap.contract(2 * len(snap) // 3)
    legs_a = (SimpleNamespace(contract=a, ratio=1), SimpleNamespace(contract=b, ratio=-2))
    trades = [SimpleNamespace(status="open", quantity=3, legs=legs_a),
              SimpleNamespace(status="open", quantity=1, legs=(SimpleNamespace(contract=a, ratio=-1),)),
              SimpleNamespace(status="closed", quantity=5, legs=(SimpleNamespace(contract=b, ratio=1),))]
    expected = portfolio_greeks([(a, 2), (b, -6)], market).total.delta_usd_pt
    assert math.isfinite(expected) and expected != 0
    assert book_delta(trades, market) == pytest.approx(expected, abs=1e-12)
    assert book_delta([], market) == 0.0
