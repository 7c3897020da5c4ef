"""Issue 10 §2: every limit refuses at its boundary naming itself, its value and the post-trade figure, and
passes just inside it; orders that reduce a breached figure pass; the real gate refuses through the hook.

The market is the hand-priced chain of the gate tests; expected greeks come straight from ``value_structure``
of the post-trade book written as one structure (independent of the per-contract sums in the limits)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from spx_core.domain import OptionContract, Right, Root
from spx_core.domain.calendar import to_ns
from spx_core.domain.contracts import ROOTS
from spx_core.execution.gate import PreTradeGate
from spx_core.execution.orders import Intent, OrderRequest, Side, new_ref
from spx_core.portfolio.trades import Trade
from spx_core.risk.limits import PortfolioState, RiskLimits
from spx_core.risk.profiles import PROFILES, LimitProfile, profile
from spx_core.strategies.market import Market
from spx_core.strategies.structure import Leg, Structure
from spx_core.strategies.valuation import PriceBasis, value_structure
from spx_core.surface.chain_iv import chain_iv
from tests.execution.gate_market import (
    MONTHLY,
    T0,
    RecordingBroker,
    StaticMarket,
    contract,
    put_credit_spread,
)

NET_LIQ = 100_000.0


@pytest.fixture
def view():
    return StaticMarket()


@pytest.fixture
def mkt(view):
    return Market.of(chain_iv(view.snapshot("SPX")))


def held_trade(legs, quantity=1, trade_id=1):
    """An open trade holding ``legs`` (held ratios) x ``quantity``."""
    side = Side.BUY
    return Trade(id=trade_id, name="t", kind="custom", legs=tuple(legs), quantity=quantity,
                 opened_quantity=quantity, side=side, open_price=1.0)


BOOK = (held_trade((Leg(contract(4650), -2),)),)  # short 2 SPXW 4650P: the order adds to every greek
ORDER_HELD = (Leg(contract(4700), -1), Leg(contract(4675), 1))  # put_credit_spread() sold: held legs


def hook(state=None, **limits):
    state = state or PortfolioState(trades=BOOK, net_liq=NET_LIQ)
    return RiskLimits(LimitProfile("test", **limits), portfolio=lambda: state)


def greeks(mkt, legs, quantity=1):
    v = value_structure(Structure(tuple(legs)), mkt)
    return {"delta": v.delta_usd * quantity, "gamma": v.gamma_usd_1pct * quantity,
            "vega": v.vega_usd_volpt * quantity, "theta": v.theta_usd_day * quantity}


def assert_boundary(view, request, name, figure, text, state=None):
    """Refused at ``figure`` (naming the limit, its value and ``text``), passing just inside it."""
    at = hook(state, **{name: figure})(request, view)
    assert [str(f) for f in at] == [f"{name} {figure:,g}: post-trade {text}"]
    inside = figure * (1 + 1e-6) if isinstance(figure, float) else figure + 1
    assert hook(state, **{name: inside})(request, view) == []


@pytest.mark.parametrize("greek", ["delta", "gamma", "vega", "theta"])
def test_portfolio_greek_limits(view, mkt, greek):
    post = greeks(mkt, (Leg(contract(4650), -2), *ORDER_HELD))[greek]
    limit = round(abs(post), 9)
    assert limit > 0.1
    assert_boundary(view, put_credit_spread(), f"max_{greek}", limit, f"${post:,.2f}")


@pytest.mark.parametrize("greek", ["delta", "vega"])
def test_per_trade_limits(view, mkt, greek):
    order = greeks(mkt, ORDER_HELD, quantity=3)[greek]
    limit = round(abs(order), 9)
    assert_boundary(view, put_credit_spread(quantity=3), f"max_trade_{greek}", limit, f"order ${order:,.2f}")


def test_counts(view):
    req = put_credit_spread()
    assert_boundary(view, req, "max_open_positions", 2, "3 positions")  # 4650P + the order's 2 legs
    assert_boundary(view, req, "max_open_trades", 1, "2 open trades")
    with_closed = PortfolioState(trades=(*BOOK, replace(held_trade(ORDER_HELD, 5, 2), status="closed")), net_liq=NET_LIQ)
    assert_boundary(view, req, "max_open_trades", 1, "2 open trades", with_closed)
    assert_boundary(view, req, "max_open_positions", 2, "3 positions", with_closed)
    state = PortfolioState(trades=BOOK, net_liq=NET_LIQ, trades_opened_today=2)
    assert_boundary(view, req, "max_new_trades_per_day", 2, "3 trades opened today", state)


def test_stop_after_stop_loss(view):
    stopped = PortfolioState(trades=BOOK, net_liq=NET_LIQ, stops_today=1)
    [failure] = hook(stopped, stop_after_stop_loss=True)(put_credit_spread(), view)
    assert str(failure) == "stop_after_stop_loss on: post-trade 1 stop loss(es) taken today"
    assert hook(replace(stopped, stops_today=0), stop_after_stop_loss=True)(put_credit_spread(), view) == []


def test_min_entry_dte_reads_the_market_clock(view):
    req = OrderRequest(ref=new_ref(), legs=(Leg(contract(4700, expiry=MONTHLY, root="SPX"), 1),), side=Side.BUY,
                       quantity=1, limit=40.30, created_ns=to_ns(T0))
    [failure] = hook(min_entry_dte=15)(req, view)
    assert str(failure) == "min_entry_dte 15: post-trade 14 DTE"  # 2024-01-05 -> 2024-01-19 on the market clock
    assert hook(min_entry_dte=14)(req, view) == []


def test_daily_loss_and_drawdown(view):
    # SELL at 4.00 against a 4.20 mid gives up $20 at once: -980 realized today becomes a $1,000 day loss
    state = PortfolioState(trades=BOOK, net_liq=NET_LIQ, realized_pnl_today=-980.0)
    req = put_credit_spread(limit=4.00)
    assert_boundary(view, req, "max_daily_loss", 1000.0, "day loss $1,000.00", state)
    assert_boundary(view, req, "max_daily_loss_pct", 1.0, "1.00% of net liq ($1,000.00)", state)
    high = replace(state, realized_pnl_today=-480.0, day_pnl_high=1500.0)  # 1500 - (-500) = 2,000 = 2%
    assert_boundary(view, req, "max_daily_drawdown_pct", 2.0, "2.00% of net liq ($2,000.00)", high)


def test_an_unknown_day_pnl_refuses_an_opening_under_a_dollar_loss_limit(view):
    # a held leg without a mark makes the day P&L NaN: the loss limit cannot be shown to hold, so it refuses
    unknown = PortfolioState(trades=BOOK, net_liq=NET_LIQ, unrealized_pnl_today=math.nan)
    [failure] = hook(unknown, max_daily_loss=1000.0)(put_credit_spread(limit=4.20), view)
    assert str(failure) == "max_daily_loss 1,000: post-trade day loss unknown (a held leg has no usable mark)"
    known = PortfolioState(trades=BOOK, net_liq=NET_LIQ)
    assert hook(known, max_daily_loss=1000.0)(put_credit_spread(limit=4.20), view) == []


def test_leverage_margin_and_position_size(view, mkt):
    req = put_credit_spread()
    lev = 4 * 100 * 4705.0 / NET_LIQ  # 2 x 4650P + 1 x 4700P + 1 x 4675P, gross, at SPX 4705
    assert_boundary(view, req, "max_leverage", lev, f"{lev:.2f}x")
    held = Structure(ORDER_HELD)
    margin = value_structure(held, mkt, basis=PriceBasis.NATURAL).margin
    state = PortfolioState(trades=BOOK, net_liq=NET_LIQ, margin=1000.0)
    util = 100 * (1000.0 + margin) / NET_LIQ
    assert_boundary(view, req, "max_margin_utilisation_pct", util, f"{util:.1f}%", state)
    risk = (25 - 4.20) * 100  # max loss of the 25-wide vertical sold at 4.20
    assert_boundary(view, req, "max_position_size_pct", 100 * risk / NET_LIQ,
                    f"{100 * risk / NET_LIQ:.2f}% of net liq at risk (${risk:,.2f})")


def test_concentration(view):
    # book: 2 x SPX monthly 4650P + 1 x 0DTE 4700P short; the order adds 4700P and 4675P of the 0DTE:
    # 0DTE share 1/3 -> 3/5 of the contracts, strike 4700 share 1/3 -> 2/5
    book = (held_trade((Leg(contract(4650, expiry=MONTHLY, root=Root.SPX), -2), Leg(contract(4700), -1))),)
    state = PortfolioState(trades=book, net_liq=NET_LIQ)
    req = put_credit_spread()
    assert_boundary(view, req, "max_expiry_concentration_pct", 60.0, "60.0% in 2024-01-05", state)
    assert_boundary(view, req, "max_strike_concentration_pct", 40.0, "40.0% in 4700", state)
    # too small a book to speak of concentration
    assert hook(state, max_expiry_concentration_pct=10.0, concentration_min_positions=5)(req, view) == []
    # an order that spreads the risk out is not refused by an already-breached concentration: the monthly
    # holds 3/4 = 75% before and 3/6 = 50% after, the 0DTE 25% -> 50%
    lopsided = PortfolioState(trades=(held_trade((Leg(contract(4650, expiry=MONTHLY, root=Root.SPX), -3),
                                                  Leg(contract(4700), -1))),), net_liq=NET_LIQ)
    assert hook(lopsided, max_expiry_concentration_pct=60.0)(req, view) == []
    assert hook(lopsided, max_expiry_concentration_pct=50.0)(req, view)[0].reason == "post-trade 50.0% in 2024-01-05"


def test_a_closing_order_reducing_a_breached_figure_passes(view, mkt):
    trade = held_trade(ORDER_HELD, quantity=10, trade_id=7)  # a short put spread x 10
    state = PortfolioState(trades=(trade,), net_liq=NET_LIQ, realized_pnl_today=-50_000.0, stops_today=1)
    book_delta = abs(greeks(mkt, ORDER_HELD, 10)["delta"])
    tight = {"max_delta": book_delta / 2, "max_gamma": 1.0, "max_vega": 1.0, "max_theta": 1.0,
             "max_open_positions": 1, "max_open_trades": 0, "max_leverage": 0.1, "max_daily_loss": 100.0,
             "stop_after_stop_loss": True, "max_expiry_concentration_pct": 10.0,
             "max_margin_utilisation_pct": 1.0, "max_trade_delta": 0.01}
    close = put_credit_spread(quantity=4, side=Side.BUY, limit=4.40, intent=Intent.CLOSE, trade_id=7)
    assert hook(state, **tight)(close, view) == []
    more = hook(state, **tight)(put_credit_spread(), view)  # opening the same again: every limit speaks
    names = {f.check.split(" ")[0] for f in more}
    # (not max_open_positions: the same contracts again add no position)
    assert {"max_delta", "max_gamma", "max_vega", "max_theta", "max_open_trades",
            "max_leverage", "max_daily_loss", "stop_after_stop_loss", "max_margin_utilisation_pct",
            "max_trade_delta"} <= names


def test_unknown_net_liq_refuses_percent_limits(view):
    state = PortfolioState(trades=BOOK)
    failures = hook(state, max_daily_loss_pct=5.0, max_leverage=2.0)(put_credit_spread(), view)
    assert [f.check for f in failures] == ["max_leverage 2", "max_daily_loss_pct 5"]
    assert all("n/a" in f.reason or "nan" in f.reason for f in failures)


def test_an_unknown_share_of_net_liq_says_why_not_nan(view):
    # after a restart, before the held legs are marked: the % limits refuse and say why, not "nan%"
    state = PortfolioState(trades=BOOK, unrealized_pnl_today=-100.0)
    [failure] = hook(state, max_daily_loss_pct=5.0)(put_credit_spread(), view)
    assert failure.reason.startswith("post-trade share of net liq unknown (") and "nan" not in failure.reason
    assert "net liq n/a" in failure.reason and failure.reason.endswith("try again once it is in)")


def test_the_real_gate_refuses_through_the_hook(view):
    broker = RecordingBroker()
    one_open = PortfolioState(trades=(held_trade(ORDER_HELD),), net_liq=NET_LIQ, trades_opened_today=1)
    gate = PreTradeGate(limits=RiskLimits(PROFILES["credit verticals"], portfolio=lambda: one_open))
    verdict = gate.check(put_credit_spread(), view, broker)
    assert verdict.approved is None
    assert verdict.message == ("refused by limits: max_open_trades 1: post-trade 2 open trades; "
                               "max_new_trades_per_day 1: post-trade 2 trades opened today")
    flat = PortfolioState(net_liq=NET_LIQ)
    ok = PreTradeGate(limits=RiskLimits(PROFILES["credit verticals"], portfolio=lambda: flat))
    assert ok.check(put_credit_spread(), view, broker).ok


def test_profiles():
    assert set(PROFILES) == {"standard", "market making", "credit verticals", "iron condor", "SPX/SPY pair", "algo"}
    mm, ic = profile("market making"), profile("iron condor")
    assert (mm.max_open_positions, mm.max_daily_loss, mm.max_gamma, mm.max_expiry_concentration_pct,
            mm.max_strike_concentration_pct, mm.min_entry_dte) == (10, 5000, 1000, 30, 20, 7)
    assert (ic.max_trade_delta, ic.max_trade_vega, ic.max_delta, ic.max_gamma, ic.max_vega,
            ic.max_daily_drawdown_pct) == (30, 100, 200, 50, 500, 2)
    assert profile("algo").limits() == {"max_daily_loss_pct": 5.0, "max_leverage": 2.0,
                                        "max_position_size_pct": 25.0}
    with pytest.raises(ValueError, match="no limit profile 'x'; choose one of: standard, market making"):
        profile("x")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("max_delta", -1.0, "LimitProfile.max_delta must be a finite number > 0 or None, got -1.0"),
    ("max_vega", math.nan, "LimitProfile.max_vega must be a finite number > 0 or None, got nan"),
    ("max_open_positions", 2.5, "LimitProfile.max_open_positions must be a whole number >= 0 or None, got 2.5"),
    ("max_leverage", True, "LimitProfile.max_leverage must be a finite number > 0 or None, got True"),
    ("max_daily_loss_pct", 150.0, "LimitProfile.max_daily_loss_pct is a percentage: at most 100, got 150.0"),
    ("stop_after_stop_loss", 1, "LimitProfile.stop_after_stop_loss must be True or False, got 1"),
])
def test_profile_validation(field, value, message):
    with pytest.raises(ValueError) as err:
        LimitProfile("bad", **{field: value})
    assert str(err.value) == message
    with pytest.raises(ValueError, match="LimitProfile.name must be a non-empty string"):
        LimitProfile(" ")


def test_spy_legs_count_a_tenth_of_spx():
    """1 SPX call against 10 SPY calls of the same expiry: the book's delta is the pair's own dollar delta per
    SPX point (value_structure's leg scaling), and the 10 SPY contracts weigh as 1 SPX contract in concentration."""
    from tests.chains import make_chain
    from tests.strategies.test_valuation import _spy_snapshot

    spx, truth = make_chain(n_expiries=4, seed=3)
    spy = _spy_snapshot(spx, truth)
    view = StaticMarket(snapshots={"SPX": spx, "SPY": spy})
    view.clock = spx.time_ns
    expiry = truth[1].expiry
    c = spx.columns
    rows = np.flatnonzero((c["expiry"] == np.datetime64(expiry)) & c["is_call"]
                          & (c["strike"] >= spx.underlying_price) & (c["strike"] % 10 == 0))
    row = rows[np.argmin(c["strike"][rows])]
    strike = float(c["strike"][row])
    spx_leg = OptionContract(ROOTS[int(c["root"][row])], expiry, strike, Right.CALL)
    spy_leg = OptionContract(Root.SPY, expiry, strike / 10 + 1, Right.CALL)  # 10 SPX points higher
    legs = (Leg(spx_leg, 1), Leg(spy_leg, -10))
    expected = value_structure(Structure(legs), Market.of(chain_iv(spx), chain_iv(spy))).delta_usd
    req = OrderRequest(ref=new_ref(), legs=legs, side=Side.BUY, quantity=1, limit=1.0, created_ns=view.clock)
    limit = round(abs(expected), 9)
    flat = PortfolioState(net_liq=NET_LIQ)
    [failure] = hook(flat, max_delta=limit)(req, view)
    assert str(failure) == f"max_delta {limit:,g}: post-trade ${expected:,.2f}"
    assert hook(flat, max_delta=limit * (1 + 1e-6))(req, view) == []
    # two strikes (SPY's in SPX points), 1 SPX-equivalent contract each: 50% per strike, not 10/11
    assert hook(flat, max_strike_concentration_pct=50.0, concentration_min_positions=2)(req, view)[0].reason == \
        f"post-trade 50.0% in {strike + 10:g}"  # a tie names the higher strike
