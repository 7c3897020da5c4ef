"""Positions: average cost, realized P&L on reductions, flips, charges, marks from quotes (hand numbers)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spx_core.domain.quotes import QuoteFlag
from spx_core.portfolio.positions import Book, Position, PositionError, apply_fill, quote_marks
from tests.portfolio.helpers import T0, View, chain, fill, opt

P4700 = opt(4700)


def test_adds_average_the_cost_and_reductions_realize_against_it():
    p = apply_fill(None, fill(P4700, "buy", 2, 3.00, commission=1.30, fees=0.94))
    p = apply_fill(p, fill(P4700, "buy", 3, 4.00, commission=1.95, fees=1.41))
    assert p.quantity == 5 and p.avg_cost == pytest.approx(3.60)  # (2*3 + 3*4) / 5
    assert p.realized_pnl == pytest.approx(-(1.30 + 0.94 + 1.95 + 1.41))  # charged when paid
    p = apply_fill(p, fill(P4700, "sell", 4, 5.10, commission=2.60, fees=1.88))
    assert p.quantity == 1 and p.avg_cost == pytest.approx(3.60)  # what remains keeps its cost
    # (5.10 - 3.60) * 4 * 100 = 600, less every charge paid so far
    assert p.realized_pnl == pytest.approx(600 - (5.60 + 4.48))
    assert p.commission_fees == pytest.approx(10.08)
    p = apply_fill(p, fill(P4700, "sell", 1, 2.60))
    assert not p.is_open and p.avg_cost == 0 and p.unrealized_pnl == 0
    assert p.realized_pnl == pytest.approx(600 - 100 - 10.08)


def test_short_position_realizes_with_the_sign_of_the_position():
    p = apply_fill(None, fill(P4700, "sell", 3, 2.00))
    assert p.quantity == -3 and p.avg_cost == 2.00
    assert p.with_mark(1.50).unrealized_pnl == pytest.approx(150.0)  # short gains as the price falls
    p = apply_fill(p, fill(P4700, "buy", 1, 2.50))
    assert p.realized_pnl == pytest.approx(-50.0) and p.quantity == -2


@pytest.mark.parametrize("first, second, left, avg, realized", [
    (("buy", 2, 1.00), ("sell", 5, 1.50), -3, 1.50, 100.0),  # long 2 -> short 3 at the fill price
    (("sell", 2, 1.00), ("buy", 5, 1.50), 3, 1.50, -100.0),  # short 2 -> long 3
])
def test_a_fill_through_zero_closes_the_old_side_and_opens_the_rest_at_the_fill_price(first, second, left, avg,
                                                                                      realized):
    p = apply_fill(None, fill(P4700, first[0], first[1], first[2], t=T0))
    p = apply_fill(p, fill(P4700, second[0], second[1], second[2], t=T0 + 5))
    assert (p.quantity, p.avg_cost, p.opened_ns) == (left, avg, T0 + 5)
    assert p.realized_pnl == pytest.approx(realized)
    assert p.with_mark(avg).unrealized_pnl == 0


def test_no_mark_means_no_unrealized_pnl_and_a_fill_for_another_contract_is_refused():
    p = apply_fill(None, fill(P4700, "buy", 1, 3.0))
    assert math.isnan(p.unrealized_pnl) and math.isnan(p.with_mark(None).unrealized_pnl)
    assert p.with_mark(3.5).unrealized_pnl == pytest.approx(50.0)
    with pytest.raises(PositionError, match="not for the position"):
        apply_fill(p, fill(opt(4675), "buy", 1, 1.0))
    with pytest.raises(PositionError):
        Position(P4700, avg_cost=-1.0)


_fills = st.lists(st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 20), st.integers(0, 5000),
                            st.integers(0, 300), st.integers(0, 200)), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(_fills, st.integers(0, 5000))
def test_pnl_equals_the_cash_of_the_fills_less_charges_to_the_cent(seq, mark_cents):
    """realized + unrealized == sum(fill cash) - commissions - fees + held x mark (direct cash computation)."""
    p = None
    cash = 0
    held = 0
    for side, qty, cents, comm_cents, fee_cents in seq:
        f = fill(P4700, side, qty, cents / 100, commission=comm_cents / 100, fees=fee_cents / 100)
        p = apply_fill(p, f)
        sign = 1 if side == "buy" else -1
        # in cents of a dollar, exact integers: price cents x 100 multiplier is dollars, x 100 is cents
        cash += -sign * qty * cents * 100 - (comm_cents + fee_cents)
        held += sign * qty
    mark = mark_cents / 100
    expected = (cash + held * mark_cents * 100) / 100
    p = p.with_mark(mark)
    assert p.quantity == held and p.avg_cost >= 0
    assert round(p.realized_pnl + p.unrealized_pnl, 2) == pytest.approx(expected, abs=0.005)


def _snap():
    return chain({opt(4700): (2.90, 3.10), opt(4675): (1.50, 1.60), opt(4650): (0.0, 0.10),
                  opt(4625): (1.20, 1.00), opt(4600): (float("nan"), 0.40), opt(4575): (0.50, 0.55)},
                 stale={opt(4575)})


def test_marks_are_mids_of_usable_quotes_and_nan_otherwise():
    cs = [opt(4700), opt(4675), opt(4650), opt(4625), opt(4600), opt(4575), opt(4550)]
    marks = quote_marks(_snap(), cs)
    assert marks[:2].tolist() == pytest.approx([3.00, 1.55])
    # zero bid, crossed, missing bid, stale, not listed: no mark, never a made-up one
    assert all(math.isnan(m) for m in marks[2:])
    relaxed = quote_marks(_snap(), cs, allow_flags=QuoteFlag.STALE | QuoteFlag.ZERO_BID)
    assert relaxed[5] == pytest.approx(0.525) and relaxed[2] == pytest.approx(0.05)
    assert math.isnan(relaxed[3])  # crossed stays unusable whatever the flags say


def test_book_applies_each_execution_once_and_marks_from_the_market():
    book = Book()
    f = fill(opt(4700), "sell", 2, 3.20, exec_id="E1")
    book.apply(f)
    book.apply(f)  # IB re-sends executions after a reconnect
    book.apply(fill(opt(4650), "buy", 1, 0.20))
    book.apply(fill(opt(4650), "sell", 1, 0.30))
    assert [p.quantity for p in book.positions()] == [-2]
    assert len(book.positions(include_flat=True)) == 2
    marks = book.marks_from(View(_snap()))
    assert marks == {opt(4700): pytest.approx(3.00)}
    assert book.get(opt(4700)).unrealized_pnl == pytest.approx(40.0)
    book.marks_from(View())  # no snapshot: the mark goes, it is not kept from before
    assert math.isnan(book.get(opt(4700)).mark)


def test_day_pnl_is_realized_today_plus_the_change_in_unrealized():
    day = T0 + 86_400 * 10**9
    p = apply_fill(None, fill(P4700, "sell", 3, 2.00, t=T0)).with_mark(1.80)  # yesterday; closed at 1.80
    p = apply_fill(p, fill(P4700, "buy", 1, 1.50, t=day + 1), day_start_ns=day)  # rolls at the 1.80 mark
    p = p.with_mark(1.40)
    # realized today (2.00 - 1.50) x 100 = 50 minus yesterday's view (2.00 - 1.80) x 100 of that contract;
    # unrealized: 2 x (2.00 - 1.40) x 100 = 120 now against 3 x 20 = 60 at the start -> 50 + 120 - 60 = 110
    assert p.day_realized_pnl == pytest.approx(50.0) and p.day_start_unrealized == pytest.approx(60.0)
    assert p.day_pnl == pytest.approx(110.0)
    # the same figure from prices: 3 contracts from 1.80 to 1.40 except the one bought back at 1.50
    assert p.day_pnl == pytest.approx(2 * 40 + 30)


def test_book_start_day_rolls_every_baseline_at_the_given_marks():
    day = T0 + 86_400 * 10**9
    book = Book()
    book.apply(fill(P4700, "sell", 2, 2.00, t=T0))
    book.apply(fill(opt(4650), "buy", 1, 1.00, t=T0))
    book.start_day(day, {P4700: 1.50})
    short, long_ = book.get(P4700), book.get(opt(4650))
    assert short.day_start_unrealized == pytest.approx(100.0) and math.isnan(long_.day_start_unrealized)
    book.mark({P4700: 1.20, opt(4650): 0.90})
    assert book.get(P4700).day_pnl == pytest.approx(60.0)  # 2 x (1.50 - 1.20) x 100
    book.apply(fill(P4700, "buy", 2, 1.10, t=day + 1))
    assert book.get(P4700).day_pnl == pytest.approx(80.0) and book.get(P4700).day_realized_pnl == pytest.approx(180)
