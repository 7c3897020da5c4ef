"""limit_usage: each limit's current figure against a hand computation on the hand-priced gate chain (greeks
from value_structure of the book written as one structure, independent of the per-contract sums)."""

from __future__ import annotations

import math

import pytest

from spx_core.execution.orders import Side
from spx_core.portfolio.trades import Trade
from spx_core.risk.limits import PortfolioState
from spx_core.risk.profiles import PROFILES, LimitProfile
from spx_core.risk.usage import limit_usage
from spx_core.strategies.market import Market
from spx_core.strategies.structure import Leg, Structure
from spx_core.strategies.valuation import value_structure
from spx_core.surface.chain_iv import chain_iv
from tests.execution.gate_market import StaticMarket, contract

NET_LIQ = 100_000.0
NAKED = Trade(id=1, name="short put", kind="single", legs=(Leg(contract(4650), -1),), quantity=2,
              opened_quantity=2, side=Side.SELL, open_price=3.10)
VERTICAL = Trade(id=2, name="vertical", kind="vertical", legs=(Leg(contract(4700), -1), Leg(contract(4675), 1)),
                 quantity=3, opened_quantity=3, side=Side.SELL, open_price=4.20)
EVERY = LimitProfile("every", max_trade_delta=10.0, max_trade_vega=10.0, max_delta=100.0, max_gamma=100.0,
                     max_vega=100.0, max_theta=100.0, max_expiry_concentration_pct=50.0,
                     max_strike_concentration_pct=50.0, max_open_positions=4, max_open_trades=4,
                     max_new_trades_per_day=4, max_daily_loss=1000.0, max_daily_loss_pct=2.0,
                     max_daily_drawdown_pct=4.0, max_leverage=10.0, max_margin_utilisation_pct=50.0,
                     max_position_size_pct=100.0, stop_after_stop_loss=True, min_entry_dte=3)


@pytest.fixture
def view():
    return StaticMarket()


def vs(view, legs, quantity):
    mkt = Market.of(chain_iv(view.snapshot("SPX")))
    return value_structure(Structure(tuple(legs)), mkt), quantity


def test_every_limit_against_a_hand_computation(view):
    state = PortfolioState(trades=(NAKED, VERTICAL), net_liq=NET_LIQ, margin=2_000.0, realized_pnl_today=-300.0,
                           unrealized_pnl_today=-200.0, day_pnl_high=500.0, stops_today=1, trades_opened_today=2)
    use = {u.name: u for u in limit_usage(EVERY, state, view)}
    # min_entry_dte bounds entries, not the book: no use; every other limit set has one
    assert list(use) == [n for n in EVERY.limits() if n != "min_entry_dte"] + ["stop_after_stop_loss"]
    book = value_structure(Structure((Leg(contract(4650), -2), Leg(contract(4700), -3), Leg(contract(4675), 3))),
                           Market.of(chain_iv(view.snapshot("SPX"))))
    for name, expected in (("max_delta", book.delta_usd), ("max_gamma", book.gamma_usd_1pct),
                           ("max_vega", book.vega_usd_volpt), ("max_theta", book.theta_usd_day)):
        assert use[name].value == pytest.approx(expected, rel=1e-9)
        assert use[name].pct == pytest.approx(abs(expected) / 100.0 * 100, rel=1e-9)
        assert use[name].unit == "$"
    (naked, n), (vert, q) = vs(view, NAKED.legs, 2), vs(view, VERTICAL.legs, 3)
    assert use["max_trade_delta"].value == pytest.approx(max(abs(naked.delta_usd * n), abs(vert.delta_usd * q)))
    assert use["max_trade_vega"].value == pytest.approx(max(abs(naked.vega_usd_volpt * n),
                                                            abs(vert.vega_usd_volpt * q)))
    # 8 contracts, one expiry; 4650: 2, 4700: 3, 4675: 3
    assert use["max_expiry_concentration_pct"].value == pytest.approx(100.0)
    assert use["max_strike_concentration_pct"].value == pytest.approx(37.5)
    assert (use["max_open_positions"].value, use["max_open_trades"].value,
            use["max_new_trades_per_day"].value) == (3, 2, 2)
    assert use["max_open_positions"].pct == pytest.approx(75.0)
    assert use["max_daily_loss"].value == pytest.approx(500.0) and use["max_daily_loss"].pct == pytest.approx(50.0)
    assert use["max_daily_loss_pct"].value == pytest.approx(0.5)
    assert use["max_daily_drawdown_pct"].value == pytest.approx(1.0)  # high 500 -> -500: $1,000 of 100k
    assert use["max_margin_utilisation_pct"].value == pytest.approx(2.0)
    assert use["max_leverage"].value == pytest.approx(8 * 100 * 4705.0 / NET_LIQ)
    # the naked put's max loss: 4650 x 100 - 310 credit per contract, 2 of them: 929,380 = 929.38% of net liq
    assert use["max_position_size_pct"].value == pytest.approx(100 * 2 * (465_000 - 310) / NET_LIQ)
    stop = use["stop_after_stop_loss"]
    assert (stop.value, stop.limit, stop.pct) == (1.0, 1.0, 100.0)


def test_a_flat_book_uses_nothing_and_labels_say_what_is_measured(view):
    use = limit_usage(PROFILES["credit verticals"], PortfolioState(net_liq=NET_LIQ), view)
    assert [(u.name, u.label, u.value, u.limit, u.pct) for u in use] == [
        ("max_open_trades", "open trades", 0.0, 1.0, 0.0),
        ("max_new_trades_per_day", "trades opened today", 0.0, 1.0, 0.0),
        ("stop_after_stop_loss", "stop losses today", 0.0, 1.0, 0.0)]


def test_unknown_figures_are_nan_never_zero(view):
    # no net liquidation: every %-of-net-liq figure is unknown
    use = {u.name: u for u in limit_usage(EVERY, PortfolioState(trades=(VERTICAL,)), view)}
    for name in ("max_daily_loss_pct", "max_daily_drawdown_pct", "max_margin_utilisation_pct", "max_leverage",
                 "max_position_size_pct"):
        assert math.isnan(use[name].value) and math.isnan(use[name].pct), name
    # a held contract the chain does not list: the greeks cannot be known
    from datetime import date
    unlisted = Trade(id=3, name="x", kind="single", legs=(Leg(contract(4000, expiry=date(2024, 1, 12)), -1),),
                     quantity=1, opened_quantity=1, side=Side.SELL, open_price=1.0)
    use = {u.name: u for u in limit_usage(EVERY, PortfolioState(trades=(unlisted,), net_liq=NET_LIQ), view)}
    assert math.isnan(use["max_delta"].value) and math.isnan(use["max_trade_delta"].pct)
    assert use["max_open_positions"].value == 1.0
