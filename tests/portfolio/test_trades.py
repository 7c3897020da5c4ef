"""Trades: a 2-leg credit vertical and a 4-leg iron condor opened, partly closed and closed (hand numbers)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spx_core.execution.orders import EventKind, Intent, OrderEvent, OrderType, Side, apply
from spx_core.portfolio.trades import TradeError, TradeLedger, closing_request, money_text, short_label
from spx_core.strategies.recognize import recognize
from spx_core.strategies.structure import Leg
from tests.portfolio.helpers import T0, Desk, View, chain, fill, opt

P4700, P4675 = opt(4700), opt(4675)
IC = (opt(4600), opt(4650), opt(4750, "C"), opt(4800, "C"))
COMM, FEES = 0.65, 0.49  # per contract, dollars


def _vertical(desk, units=3):
    ref = desk.order([(P4700, 1), (P4675, -1)], "sell", units, limit=1.45)
    return ref, desk.fill(ref, [3.00, 1.55], units, commission=COMM * units, fees=FEES * units)


def test_credit_vertical_open_partial_close_close(desk):
    ref, t = _vertical(desk)
    assert t.name == "SPXW 2024-01-05 4700/4675 put credit vertical (25 wide)" and t.kind == "vertical"
    assert t.legs == (Leg(P4700, -1), Leg(P4675, 1))  # held per unit
    assert (t.side, t.quantity, t.opened_quantity, t.status) == (Side.SELL, 3, 3, "open")
    assert t.open_price == pytest.approx(1.45)
    charges_open = 2 * 3 * (COMM + FEES)
    assert t.realized_pnl == pytest.approx(-charges_open)  # charged when paid
    assert t.unrealized_pnl(0.70) == pytest.approx(3 * 75.0)

    close = desk.order([(P4700, 1), (P4675, -1)], "buy", 1, limit=0.70, intent=Intent.CLOSE, trade_id=t.id)
    t = desk.fill(close, [1.20, 0.50], 1, t=T0 + 10, commission=COMM, fees=FEES)
    assert (t.quantity, t.opened_quantity, t.closed_quantity, t.status) == (2, 3, 1, "open")
    assert t.close_price == pytest.approx(0.70)
    charges_1 = 2 * 1 * (COMM + FEES)
    assert t.realized_pnl == pytest.approx(75.0 - charges_open - charges_1)
    assert t.unrealized_pnl(0.70) == pytest.approx(2 * 75.0)

    close2 = desk.order([(P4700, 1), (P4675, -1)], "buy", 2, limit=0.30, intent=Intent.CLOSE, trade_id=t.id)
    t = desk.fill(close2, [0.40, 0.10], 2, t=T0 + 20, commission=2 * COMM, fees=2 * FEES)
    assert (t.quantity, t.status, t.closed_ns) == (0, "closed", T0 + 20)
    assert t.close_price == pytest.approx((0.70 + 2 * 0.30) / 3)
    # (1.45 - 0.70) x 100 + 2 x (1.45 - 0.30) x 100 = 75 + 230
    assert t.realized_pnl == pytest.approx(305.0 - 12 * (COMM + FEES))  # 12 contracts traded
    # P&L = sum of fill cash - commissions - fees, straight from the fills
    cash = sum(f.cash - f.commission - f.fees for f in desk.fills)
    assert round(t.realized_pnl, 2) == round(cash, 2)
    assert t.order_refs == (ref, close, close2)


def test_iron_condor_open_partial_close_close(desk):
    # sold iron condor written with the first leg bought (normalize_side): SELL (+4650P, -4600P, +4750C, -4800C)
    legs = [(IC[1], 1), (IC[0], -1), (IC[2], 1), (IC[3], -1)]
    ref = desk.order(legs, "sell", 2, limit=4.30)
    t = desk.fill(ref, [5.00, 2.80, 4.10, 2.00], 2)  # 2.20 + 2.10 = 4.30 credit
    assert t.kind == "iron condor" and t.name == "SPXW 2024-01-05 4600/4650/4750/4800 iron condor (50 wide)"
    assert t.open_price == pytest.approx(4.30) and t.quantity == 2
    c1 = desk.order(legs, "buy", 1, limit=1.10, intent=Intent.CLOSE, trade_id=t.id)
    t = desk.fill(c1, [1.50, 0.80, 1.20, 0.80], 1)  # 0.70 + 0.40 = 1.10
    assert t.quantity == 1 and t.realized_pnl == pytest.approx(320.0)  # (4.30 - 1.10) x 100
    assert t.unrealized_pnl(1.10) == pytest.approx(320.0)
    c2 = desk.order(legs, "buy", 1, limit=0.40, intent=Intent.CLOSE, trade_id=t.id)
    t = desk.fill(c2, [0.30, 0.10, 0.25, 0.05], 1)  # 0.20 + 0.20 = 0.40
    assert t.status == "closed" and t.realized_pnl == pytest.approx(320.0 + 390.0)
    assert t.close_price == pytest.approx(0.75)
    assert t.describe() == "2 x 50-wide iron condor, opened at 4.30, closed at 0.75, +$710"


def test_describe_reads_like_a_trader(desk):
    ref = desk.order([(P4700, 1), (P4675, -1)], "sell", 1, limit=1.45)
    desk_trade = desk.fill(ref, [3.00, 1.55], 1)
    assert desk_trade.describe(0.70) == "25-wide put credit vertical, opened at 1.45, now 0.70, +$75"
    assert desk_trade.describe(2.10) == "25-wide put credit vertical, opened at 1.45, now 2.10, -$65"
    assert desk_trade.describe() == "25-wide put credit vertical, opened at 1.45, no mark, realized $0"
    assert money_text(-1234.4) == "-$1,234" and money_text(float("nan")) == "n/a"
    assert short_label(recognize([Leg(P4700, -1)])) == "4700 short put"


def test_partial_leg_fills_count_whole_units_only(desk):
    ref = desk.order([(P4700, 1), (P4675, -1)], "sell", 2, limit=1.45)
    state = desk.orders[ref]
    f = fill(P4700, "sell", 2, 3.00, leg=0)
    state = apply(state, OrderEvent(ref, EventKind.FILL, T0, fill=f))
    t = desk.ledger.on_fill(state, f)
    assert (t.quantity, t.opened_quantity, t.status) == (0, 0, "open") and math.isnan(t.open_price)
    assert t.describe() == "25-wide put credit vertical, opening (legs filling), no mark, realized $0"
    assert t.leg_unrealized_pnl({P4700: 2.50}) == pytest.approx(100.0)  # 2 sold at 3.00, now 2.50
    f2 = fill(P4675, "buy", 1, 1.55, leg=1)
    t = desk.ledger.on_fill(apply(state, OrderEvent(ref, EventKind.FILL, T0, fill=f2)), f2)
    assert (t.quantity, t.opened_quantity) == (1, 1) and t.open_price == pytest.approx(1.45)


def test_mark_price_from_prices_view_and_market(desk):
    _, t = _vertical(desk, units=1)
    assert t.mark_price({P4700: 1.20, P4675: 0.50}) == pytest.approx(0.70)
    assert math.isnan(t.mark_price({P4700: 1.20}))
    snap = chain({P4700: (1.10, 1.30), P4675: (0.45, 0.55)})
    assert t.mark_price(View(snap)) == pytest.approx(0.70)
    flagged = chain({P4700: (1.10, 1.30), P4675: (0.0, 0.55)})  # zero bid: no mark for the package
    assert math.isnan(t.mark_price(View(flagged)))


def test_mark_price_from_a_market_uses_the_structure_valuation(desk):
    from spx_core.strategies.market import Market
    from spx_core.strategies.valuation import value_structure
    from spx_core.surface.chain_iv import chain_iv
    from tests.chains import make_chain
    snap, truth = make_chain(n_expiries=2, seed=1)
    market = Market.of(chain_iv(snap))
    exp = truth[0]
    k = float(round(exp.forward / 5) * 5)
    short, long_ = opt(k - 50, root=exp.root.value, expiry=exp.expiry), opt(k - 75, root=exp.root.value,
                                                                         expiry=exp.expiry)
    ref = desk.order([(short, 1), (long_, -1)], "sell", 1, limit=1.0)
    t = desk.fill(ref, [3.0, 1.5], 1)
    value = value_structure(recognize(t.legs), market)
    assert t.mark_price(market) == pytest.approx(value.mid)  # credit-positive mid = the SELL's package price
    assert t.mark_price(market) == pytest.approx(t.mark_price(View(snap)))


def test_closing_request_is_the_opposite_order_on_the_same_legs(desk):
    _, t = _vertical(desk)
    req = closing_request(t, quantity=2, limit=0.70, ref="c1", now_ns=T0)
    assert (req.side, req.quantity, req.intent, req.trade_id, req.ref) == (Side.BUY, 2, Intent.CLOSE, t.id, "c1")
    assert req.legs == ((Leg(P4700, 1), Leg(P4675, -1))) and req.order_type is OrderType.LMT
    assert desk.ledger.closing_request(t.id).order_type is OrderType.MKT
    with pytest.raises(TradeError, match="between 1 and the 3 open units"):
        closing_request(t, quantity=4)


def test_the_ledger_refuses_what_does_not_fit(desk):
    _, t = _vertical(desk)
    stray = desk.order([(P4700, 1), (P4675, -1)], "buy", 1, limit=0.7, intent=Intent.CLOSE, trade_id=99)
    with pytest.raises(TradeError, match="trade 99, which is not in the ledger"):
        desk.fill(stray, [1.0, 0.5], 1)
    wrong = desk.order([(P4700, -1), (P4675, 1)], "buy", 1, limit=-0.7, intent=Intent.CLOSE, trade_id=t.id)
    with pytest.raises(TradeError, match="does not close"):
        desk.fill(wrong, [1.0, 0.5], 1)


def test_ledger_restored_from_stored_trades_continues_and_ignores_repeated_executions(desk):
    ref, t = _vertical(desk)
    ledger = TradeLedger([t])
    assert ledger.trade_for(ref) == t
    close = desk.order([(P4700, 1), (P4675, -1)], "buy", 3, limit=0.7, intent=Intent.CLOSE, trade_id=t.id)
    desk.ledger = ledger
    closed = desk.fill(close, [1.20, 0.50], 3)
    assert closed.status == "closed" and ledger.trades(open_only=True) == []
    again = ledger.on_fill(desk.orders[close], desk.fills[-1])
    assert again == closed  # the same execution twice books once
    ids = iter([41])
    ref2 = desk.order([(P4700, 1)], "buy", 1, limit=3.0)
    desk.ledger.on_fill(desk.orders[ref2], fill(P4700, "buy", 1, 3.0), trade_id_for_new=lambda: next(ids))
    assert ledger.trade(41).name == "SPXW 2024-01-05 4700 long put"


_steps = st.lists(st.tuples(st.booleans(), st.integers(1, 5), st.integers(5, 900), st.integers(0, 600),
                            st.integers(0, 150)), min_size=1, max_size=25)


@settings(max_examples=150, deadline=None)
@given(_steps, st.integers(0, 900), st.integers(0, 600))
def test_trade_pnl_equals_its_fill_cash_less_charges_to_the_cent(steps, short_mark, long_mark):
    """Random opens and partial closes of a vertical: realized + open P&L == the fills' cash - charges + held value,
    and once flat, realized == the fills' cash - charges, to the cent."""
    desk = Desk()
    legs = [(P4700, 1), (P4675, -1)]
    ref = desk.order(legs, "sell", 1000, limit=1.0)
    desk.fill(ref, [3.00, 1.50], 1, commission=0.65, fees=0.49)
    trade = None
    for add, units, short_c, long_c, charge_c in steps:
        units = units if add else min(units, desk.ledger.trades()[0].quantity)
        if units == 0:
            continue
        if add:
            trade = desk.fill(ref, [short_c / 100, long_c / 100], units, commission=charge_c / 100)
        else:
            close = desk.order(legs, "buy", units, limit=1.0, intent=Intent.CLOSE, trade_id=1)
            trade = desk.fill(close, [short_c / 100, long_c / 100], units, commission=charge_c / 100)
    trade = desk.ledger.trade(1)
    cash = sum(f.cash - f.commission - f.fees for f in desk.fills)
    marks = {P4700: short_mark / 100, P4675: long_mark / 100}
    held_value = -trade.quantity * (marks[P4700] - marks[P4675]) * 100  # short the 4700, long the 4675
    assert round(trade.total_pnl(trade.mark_price(marks)), 2) == pytest.approx(round(cash + held_value, 2), abs=0.011)
    close = desk.order(legs, "buy", trade.quantity, limit=1.0, intent=Intent.CLOSE, trade_id=1) \
        if trade.quantity else None
    if close:
        trade = desk.fill(close, [short_mark / 100, long_mark / 100], trade.quantity)
    assert trade.status == "closed"
    cash = sum(f.cash - f.commission - f.fees for f in desk.fills)
    assert round(trade.realized_pnl, 2) == pytest.approx(round(cash, 2), abs=0.011)


def test_an_opening_order_naming_a_trade_adds_to_it(desk):
    _, t = _vertical(desk, units=1)
    close = desk.order([(P4700, 1), (P4675, -1)], "buy", 1, limit=0.70, intent=Intent.CLOSE, trade_id=t.id)
    desk.fill(close, [1.20, 0.50], 1)
    add = desk.order([(P4700, 1), (P4675, -1)], "sell", 2, limit=1.00, trade_id=t.id)
    t = desk.fill(add, [2.00, 1.00], 2)
    assert (t.id, t.quantity, t.opened_quantity, t.status) == (1, 2, 3, "open")
    assert t.open_price == pytest.approx((1.45 + 2 * 1.00) / 3)  # every opening fill
    assert t.cost_price == pytest.approx(1.00)  # what is held now
    assert t.unrealized_pnl(0.50) == pytest.approx(2 * 50.0)
