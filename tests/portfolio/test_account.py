"""The account line: net liquidation, cash, margin, buying power and day P&L by hand."""

import math

import pytest

from spx_core.portfolio.account import account_summary
from spx_core.portfolio.positions import Book, apply_fill
from tests.portfolio.helpers import T0, View, chain, fill, opt

P4700, P4675 = opt(4700), opt(4675)
DAY = T0 + 86_400 * 10**9
CHARGES = 2 * 1.14  # two contracts at $0.65 commission + $0.49 fees


def _short_vertical(desk):
    ref = desk.order([(P4700, 1), (P4675, -1)], "sell", 1, limit=1.45)
    trade = desk.fill(ref, [3.00, 1.55], 1, commission=0.65, fees=0.49)
    book = Book()
    for f in desk.fills:
        book.apply(f)
    return trade, book


def test_net_liquidation_cash_margin_and_buying_power(desk):
    trade, book = _short_vertical(desk)
    view = View(chain({P4700: (1.10, 1.30), P4675: (0.45, 0.55)}, price=4712.0))
    acct = account_summary(100_000.0, book.positions(include_flat=True), [trade], view, T0)
    assert acct.cash == pytest.approx(100_000 + 145 - CHARGES)  # the credit came in, the charges went out
    assert acct.unrealized_pnl == pytest.approx(75.0)  # 1.45 sold, 0.70 to buy back
    assert acct.realized_pnl == pytest.approx(-CHARGES) and acct.commissions == pytest.approx(CHARGES)
    assert acct.net_liquidation == pytest.approx(100_000 + 75 - CHARGES)
    # Reg-T short vertical: width x 100 less the credit at the marks (0.70): 2500 - 70
    assert acct.maintenance_margin == pytest.approx(2430.0)
    assert acct.buying_power == pytest.approx(acct.net_liquidation - 2430.0)
    assert acct.day_pnl == pytest.approx(75 - CHARGES)  # everything happened today
    assert acct.unmarked == ()


def test_an_unusable_quote_leaves_the_account_unvalued_and_says_which(desk):
    trade, book = _short_vertical(desk)
    view = View(chain({P4700: (1.30, 1.10), P4675: (0.45, 0.55)}))  # crossed
    acct = account_summary(100_000.0, book.positions(), [trade], view, T0)
    assert math.isnan(acct.net_liquidation) and math.isnan(acct.unrealized_pnl)
    assert acct.unmarked == (P4700,)
    # margin falls back to the prices the trade opened at: 2500 - the 145 credit received
    assert acct.maintenance_margin == pytest.approx(2355.0)


def test_day_pnl_counts_from_the_day_start_from_baselines_or_from_fills():
    f1 = fill(P4700, "sell", 3, 2.00, t=T0)
    f2 = fill(P4700, "buy", 1, 1.50, t=DAY + 5, commission=0.65)
    f3 = fill(P4675, "buy", 2, 0.80, t=DAY + 6)
    marks_now = {P4700: 1.40, P4675: 0.90}
    start = {P4700: 1.80}
    # baselines kept by apply_fill(day_start_ns=...)
    book = Book([apply_fill(None, f1).with_mark(1.80)], day_start_ns=DAY)
    book.apply(f2)
    book.apply(f3)
    book.mark(marks_now)
    acct = account_summary(0.0, book.positions(include_flat=True), [], None, DAY)
    # 4700P: 2 still short from 1.80 to 1.40 (+80), one bought back at 1.50 (+30) less $0.65; 4675P: +20
    expected = 80 + 30 - 0.65 + 20
    assert acct.day_pnl == pytest.approx(expected)
    # the same from the fills and the start marks, whatever the positions' baselines
    plain = Book()
    for f in (f1, f2, f3):
        plain.apply(f)
    plain.mark(marks_now)
    by_fills = account_summary(0.0, plain.positions(include_flat=True), [], None, DAY, start_marks=start,
                               fills=[f1, f2, f3])
    assert by_fills.day_pnl == pytest.approx(expected)
    # a position untouched today moves only with its mark; without the start mark the day P&L is unknown
    held = apply_fill(None, f1).with_mark(1.40)
    assert account_summary(0.0, [held], [], None, DAY, start_marks=start).day_pnl == pytest.approx(120.0)
    assert math.isnan(account_summary(0.0, [held], [], None, DAY).day_pnl)


def test_delivered_shares_count_in_cash_and_net_liquidation():
    from spx_core.portfolio.settlement import settle
    call = opt(450, "C", root="SPY")
    p = apply_fill(None, fill(call, "buy", 1, 1.00))
    result = settle([p], underlying_prices={"SPY": 452.01}, now_ns=T0 + 2 * 86_400 * 10**9)
    p = apply_fill(p, result.fills[0])
    spy = chain({opt(455, "C", root="SPY"): (0.10, 0.12)}, underlying="SPY", price=453.0)
    acct = account_summary(100_000.0, [p], [], View(spy), DAY, deliveries=result.deliveries)
    # paid 100 for the call, paid the 450 strike for 100 shares now worth 453
    assert acct.cash == pytest.approx(100_000 - 100 - 45_000)
    assert acct.net_liquidation == pytest.approx(100_000 - 100 + 300)
    at_delivery = account_summary(100_000.0, [p], [], None, DAY, deliveries=result.deliveries)
    assert at_delivery.net_liquidation == pytest.approx(100_000 - 100 + 201)
