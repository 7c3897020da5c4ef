"""ChainModel without a widget: Qt model contract, layout, formatting, shading roles, change ranges."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QBrush
from scipy.stats import norm

from app.models.chain_data import (CALL, PUT, ChainField, ChainLayoutError, build_block, contiguous_ranges,
                                   expiry_subsnapshot, window_bounds)
from app.models.chain_model import STRIKE, ChainModel, column_layout
from spx_core.domain import ET, ChainSnapshot, OptionContract, Right, Root

SPOT = 4700.0
EXPIRY = date(2024, 2, 2)
NOW = datetime(2024, 1, 3, 11, 0, tzinfo=ET)
STRIKES = np.arange(4500.0, 4905.0, 10.0)  # 41 strikes, ATM 4700 at index 20


def _prices(vol: float = 0.18) -> tuple[np.ndarray, np.ndarray]:
    """Black-Scholes (r = q = 0) call/put values per strike, via scipy (independent of spx_core)."""
    t = (datetime(2024, 2, 2, 16, 0, tzinfo=ET) - NOW).total_seconds() / (365 * 86400)
    d1 = (np.log(SPOT / STRIKES) + 0.5 * vol * vol * t) / (vol * np.sqrt(t))
    d2 = d1 - vol * np.sqrt(t)
    call = SPOT * norm.cdf(d1) - STRIKES * norm.cdf(d2)
    return call, call - (SPOT - STRIKES)


def make_chain(*, bid_shift: dict[tuple[float, bool], float] | None = None,
               override: dict[tuple[float, bool], tuple[float, float]] | None = None,
               strikes: np.ndarray = STRIKES, time: datetime = NOW) -> ChainSnapshot:
    call, put = _prices()
    n = len(strikes)
    k = np.repeat(strikes, 2)
    is_call = np.tile([True, False], n)
    fair = np.where(is_call, np.repeat(call[:n], 2), np.repeat(put[:n], 2))
    bid = np.round((fair - 0.3) / 0.05) * 0.05
    ask = np.round((fair + 0.3) / 0.05) * 0.05
    for (strike, c), shift in (bid_shift or {}).items():
        i = int(np.flatnonzero((k == strike) & (is_call == c))[0])
        bid[i] += shift
    for (strike, c), (b, a) in (override or {}).items():
        i = int(np.flatnonzero((k == strike) & (is_call == c))[0])
        bid[i], ask[i] = b, a
    return ChainSnapshot.from_columns(
        underlying="SPX", time=time, underlying_price=SPOT, root=np.full(2 * n, "SPXW"),
        expiry=np.full(2 * n, np.datetime64(EXPIRY)), strike=k, is_call=is_call, bid=bid, ask=ask,
        bid_size=np.full(2 * n, 10), ask_size=np.full(2 * n, 20), volume=np.arange(2 * n) * 1000,
        open_interest=np.full(2 * n, 12345))


def civ_of(snapshot: ChainSnapshot):
    """The served IVs and greeks of a one-expiry snapshot (what the panel's worker computes)."""
    from spx_core.surface.served import serve_expiry

    sl = snapshot.expiries()[0]
    return serve_expiry(snapshot, sl.root, sl.expiry)


@pytest.fixture
def model(qapp) -> ChainModel:
    m = ChainModel(window=21)
    snap = make_chain()
    m.set_chain(snap, civ_of(snap))
    return m


def col(model: ChainModel, side: int, field: ChainField | None) -> int:
    return model.columns.index((side, field))


def test_empty_and_populated_models_pass_qtmodeltester(qtmodeltester, qapp):
    empty = ChainModel()
    qtmodeltester.check(empty, force_py=True)
    snap = make_chain()
    m = ChainModel(window=11)
    qtmodeltester.check(m, force_py=True)  # the tester keeps checking the model through the reset below
    m.set_chain(snap, civ_of(snap))
    m.set_chain(make_chain(bid_shift={(4700.0, True): 0.5}), civ_of(snap))
    m.set_fields([ChainField.BID, ChainField.ASK])
    assert m.rowCount() == 11 and m.columnCount() == 5


def test_columns_mirror_calls_and_puts_around_the_strike():
    cols = column_layout([ChainField.DELTA, ChainField.BID, ChainField.ASK, ChainField.IV])
    assert cols == [(CALL, ChainField.DELTA), (CALL, ChainField.IV), (CALL, ChainField.BID), (CALL, ChainField.ASK),
                    (STRIKE, None), (PUT, ChainField.BID), (PUT, ChainField.ASK), (PUT, ChainField.IV),
                    (PUT, ChainField.DELTA)]


def test_window_is_centred_on_the_forward_and_formats_numbers(model):
    assert model.rowCount() == 21
    atm = model.atm_row
    assert atm == 10 and model.block.strikes[model.atm_strike_index] == 4700.0
    disp = lambda c: model.data(model.index(atm, c))  # noqa: E731
    assert disp(col(model, STRIKE, None)) == "4,700"
    bid = model.block.values[CALL, model.atm_strike_index, ChainField.BID]
    assert disp(col(model, CALL, ChainField.BID)) == f"{bid:.2f}"
    iv = disp(col(model, CALL, ChainField.IV))
    assert iv.endswith("%") and 17.0 < float(iv[:-1]) < 19.0  # priced at 18% vol, +-0.3 point spread
    assert disp(col(model, CALL, ChainField.DELTA)).startswith("+0.5")
    assert disp(col(model, PUT, ChainField.DELTA)).startswith("-0.4")
    assert disp(col(model, PUT, ChainField.OI)) == "12,345"
    align = model.data(model.index(atm, col(model, CALL, ChainField.BID)), Qt.ItemDataRole.TextAlignmentRole)
    assert align & Qt.AlignmentFlag.AlignRight


def test_greeks_match_black_scholes_at_the_mid_iv(model):
    k = model.atm_strike_index
    v = model.block.values[CALL, k]
    t, f, vol = model.block.t, model.block.forward, v[ChainField.IV]
    d1 = (np.log(f / 4700.0) + 0.5 * vol * vol * t) / (vol * np.sqrt(t))
    df = model.block.discount
    assert v[ChainField.DELTA] == pytest.approx(df * norm.cdf(d1), rel=1e-6)
    assert v[ChainField.VEGA] == pytest.approx(df * f * norm.pdf(d1) * np.sqrt(t) / 100, rel=1e-6)


def test_itm_shading_and_atm_row_marking(model):
    bg = Qt.ItemDataRole.BackgroundRole
    atm = model.atm_row
    below, above = atm - 3, atm + 3  # strikes 4670 (call ITM) and 4730 (put ITM)
    call_bid, put_bid = col(model, CALL, ChainField.BID), col(model, PUT, ChainField.BID)
    itm_call = model.data(model.index(below, call_bid), bg)
    assert isinstance(itm_call, QBrush)
    assert model.data(model.index(above, call_bid), bg) is None  # OTM call: unshaded
    assert model.data(model.index(above, put_bid), bg) == itm_call
    assert model.data(model.index(below, put_bid), bg) is None
    strike = col(model, STRIKE, None)
    atm_strike_bg = model.data(model.index(atm, strike), bg)
    assert atm_strike_bg != model.data(model.index(below, strike), bg)
    assert model.data(model.index(atm, strike), Qt.ItemDataRole.FontRole).bold()


def test_quality_flags_in_tooltips_and_colours(qapp):
    snap = make_chain(override={(4600.0, True): (105.0, 104.0),  # crossed
                                (4800.0, True): (0.0, 12.0),  # zero bid
                                (4650.0, False): (20.0, 40.0)})  # wide
    m = ChainModel(window=41)
    m.set_chain(snap, civ_of(snap))
    tip = Qt.ItemDataRole.ToolTipRole
    fg = Qt.ItemDataRole.ForegroundRole

    def cell(strike: float, side: int) -> QModelIndex:
        return m.index(m.row_of_strike(strike), col(m, side, ChainField.BID))

    assert "crossed" in m.data(cell(4600.0, CALL), tip)
    assert "zero bid" in m.data(cell(4800.0, CALL), tip)
    assert "wide" in m.data(cell(4650.0, PUT), tip)
    assert "clean" in m.data(cell(4700.0, CALL), tip)
    assert "SPXW 2024-02-02 4700C PM" in m.data(cell(4700.0, CALL), tip)
    colours = {m.data(cell(s, side), fg).color().name() for s, side in ((4600.0, CALL), (4800.0, CALL),
                                                                        (4650.0, PUT))}
    assert len(colours) == 3  # crossed, zero bid and wide look different
    assert m.data(cell(4700.0, CALL), fg) is None


def test_one_data_changed_per_contiguous_changed_range(qapp, qtbot):
    m = ChainModel(window=41)
    m.set_chain(make_chain(), None)  # no greeks: only the quotes we touch can change
    seen = []
    m.dataChanged.connect(lambda a, b, roles: seen.append((a.row(), b.row(), a.column(), b.column())))
    moved = {(4600.0, True): 0.5, (4610.0, False): 0.5, (4620.0, True): -0.5, (4800.0, False): -0.3}
    snap = make_chain(bid_shift=moved)
    changed_rows = np.flatnonzero(snap.bid != make_chain().bid)
    m.set_chain(snap, None, changed=changed_rows)
    r = m.row_of_strike
    call_bid, call_mid = col(m, CALL, ChainField.BID), col(m, CALL, ChainField.MID)
    put_bid, put_mid = col(m, PUT, ChainField.BID), col(m, PUT, ChainField.MID)
    # rows 4600..4620 form one run (split into its call and put column blocks); 4800 is its own run
    assert seen == [(r(4600.0), r(4620.0), call_bid, call_mid), (r(4600.0), r(4620.0), put_bid, put_mid),
                    (r(4800.0), r(4800.0), put_bid, put_mid)]
    seen.clear()
    m.set_chain(snap, None, changed=np.zeros(0, np.int64))  # same values: nothing to repaint
    assert seen == []


def test_changed_bids_flash_for_a_moment_with_two_repaints(qapp):
    m = ChainModel(window=41)
    m.set_chain(make_chain(), None, now=100.0)
    snap = make_chain(bid_shift={(4700.0, True): 0.5, (4700.0, False): -0.5})
    m.set_chain(snap, None, changed=np.flatnonzero(snap.bid != make_chain().bid), now=100.0)
    bg = Qt.ItemDataRole.BackgroundRole
    row = m.row_of_strike(4700.0)
    up = m.data(m.index(row, col(m, CALL, ChainField.BID)), bg).color()
    down = m.data(m.index(row, col(m, PUT, ChainField.BID)), bg).color()
    assert up.green() > up.red() and down.red() > down.green()
    seen = []
    m.dataChanged.connect(lambda a, b, roles: seen.append(list(roles)))
    assert m.advance_flash(100.5) == 0  # still lit: nothing to repaint while it stays the same
    assert m.data(m.index(row, col(m, CALL, ChainField.BID)), bg).color() == up
    assert m.advance_flash(102.0) == 2  # one repaint back to the plain background
    assert m.advance_flash(103.0) == 0
    assert seen and all(roles == [Qt.ItemDataRole.BackgroundRole] for roles in seen)
    assert m.data(m.index(row, col(m, CALL, ChainField.BID)), bg) == m.data(m.index(row, col(m, CALL, ChainField.MID)), bg)


def test_window_recentre_and_contract_lookup(qapp, qtbot):
    m = ChainModel(window=9)
    snap = make_chain()
    m.set_chain(snap, None)
    assert m.rowCount() == 9 and m.row_of_strike(4700.0) == 4
    assert m.contract_at(m.index(4, col(m, PUT, ChainField.ASK))) == OptionContract(
        root=Root.SPXW, expiry=EXPIRY, strike=4700.0, right=Right.PUT)
    assert m.contract_at(m.index(4, col(m, STRIKE, None))) is None
    with qtbot.waitSignal(m.modelReset):
        m.set_strike_window(5)
    assert m.rowCount() == 5 and m.row_of_strike(4700.0) == 2
    with qtbot.waitSignal(m.modelReset):  # a new strike list is a new layout
        m.set_chain(make_chain(strikes=STRIKES[:30]), None)


def test_layout_helpers():
    assert window_bounds(41, 20, 9) == (16, 25)
    assert window_bounds(41, 1, 9) == (0, 9)
    assert window_bounds(41, 40, 9) == (32, 41)
    assert window_bounds(5, 2, 9) == (0, 5)
    assert contiguous_ranges(np.array([0, 1, 1, 0, 1, 0, 0, 1], bool)) == [(1, 3), (4, 5), (7, 8)]
    assert contiguous_ranges(np.zeros(4, bool)) == []


def test_block_rejects_more_than_one_expiry_and_subsnapshot_splits(qapp):
    one = make_chain()
    other = ChainSnapshot.from_columns(
        underlying="SPX", time=NOW, underlying_price=SPOT, root=np.r_[one.root, one.root],
        expiry=np.r_[one.expiry, one.expiry + 7], strike=np.r_[one.strike, one.strike],
        is_call=np.r_[one.is_call, one.is_call], bid=np.r_[one.bid, one.bid], ask=np.r_[one.ask, one.ask])
    with pytest.raises(ChainLayoutError, match="one expiry at a time"):
        build_block(other, None)
    sub = expiry_subsnapshot(other, other.expiries()[1])
    assert len(sub) == len(one) and sub.expiries()[0].expiry == date(2024, 2, 9)
    assert np.array_equal(sub.bid, one.bid)


def near_close_model(window: int = 61) -> ChainModel:
    from tests.surface.test_chain_iv import zero_dte_chain

    from spx_core.surface.served import serve_expiry

    full = zero_dte_chain()
    sl = full.expiries()[0]
    served = serve_expiry(full, sl.root, sl.expiry)
    m = ChainModel(window=window)
    m.set_chain(served.snapshot, served)
    return m


def test_near_close_zero_bids_show_the_surface_iv_marked_as_such(qapp):
    """0DTE 15 minutes before the close: no 100-400% IVs, deep ITM deltas near 1, substitutes marked."""
    m = near_close_model()
    iv_col, delta_col = col(m, CALL, ChainField.IV), col(m, CALL, ChainField.DELTA)
    far = m.row_of_strike(5250.0)  # call bid 0 / ask 0.05
    text = m.data(m.index(far, iv_col))
    assert text.endswith("%") and float(text[:-1]) < 30.0  # the solver says hundreds of percent
    tip = m.data(m.index(far, iv_col), Qt.ItemDataRole.ToolTipRole)
    assert "IV from fitted surface: bid is zero" in tip
    assert m.data(m.index(far, iv_col), Qt.ItemDataRole.FontRole).italic()
    assert m.data(m.index(far, delta_col), Qt.ItemDataRole.FontRole).italic()
    served_colour = m.data(m.index(far, iv_col), Qt.ItemDataRole.ForegroundRole)
    assert served_colour is not None
    deep = m.row_of_strike(5050.0)  # call 100 in the money, bid below intrinsic
    assert float(m.data(m.index(deep, delta_col))) > 0.99
    assert "intrinsic" in m.data(m.index(deep, iv_col), Qt.ItemDataRole.ToolTipRole)
    shown = {m.data(m.index(r, c)) for r in range(m.rowCount()) for c in range(m.columnCount())}
    assert not shown & {"-0.00", "-0.000", "+0.000", "-0.0000"}  # values rounded to zero have no sign
    atm = m.atm_row
    assert m.data(m.index(atm, iv_col), Qt.ItemDataRole.FontRole) is None  # its own solved IV: plain
    assert m.data(m.index(atm, iv_col), Qt.ItemDataRole.ForegroundRole) is None
    m.set_fields([ChainField.BID, ChainField.ASK, ChainField.THETA, ChainField.THETA_CLOSE])
    theta_close = float(m.data(m.index(atm, col(m, CALL, ChainField.THETA_CLOSE))))
    theta_day = float(m.data(m.index(atm, col(m, CALL, ChainField.THETA))))
    mid = m.block.values[CALL, m.atm_strike_index, ChainField.MID]
    assert -mid <= theta_close < 0 and theta_day < theta_close  # 15 minutes of decay, not a day's


def test_side_totals_and_expected_move(model):
    b = model.block
    call_vol, put_vol = b.side_totals(ChainField.VOLUME)
    n = len(STRIKES)
    assert call_vol == sum(range(0, 2 * n, 2)) * 1000 and put_vol == sum(range(1, 2 * n, 2)) * 1000
    assert b.side_totals(ChainField.OI) == (12345.0 * n, 12345.0 * n)
    points, frac = b.expected_move()
    k = model.atm_strike_index
    assert points == pytest.approx(b.values[CALL, k, ChainField.MID] + b.values[PUT, k, ChainField.MID])
    assert frac == pytest.approx(points / b.forward)


def test_size_columns_sit_beside_their_prices():
    cols = column_layout([ChainField.BID_SIZE, ChainField.BID, ChainField.ASK, ChainField.ASK_SIZE, ChainField.IV])
    assert cols == [(CALL, ChainField.IV), (CALL, ChainField.BID_SIZE), (CALL, ChainField.BID),
                    (CALL, ChainField.ASK), (CALL, ChainField.ASK_SIZE), (STRIKE, None),
                    (PUT, ChainField.BID_SIZE), (PUT, ChainField.BID), (PUT, ChainField.ASK),
                    (PUT, ChainField.ASK_SIZE), (PUT, ChainField.IV)]


def test_model_iv_source_codes_are_the_cores():
    from app.models import chain_model
    from spx_core.surface.served import IVSource

    assert (chain_model._NO_SRC, chain_model._QUOTE_SRC) == (IVSource.NONE, IVSource.QUOTE)
    assert max(IVSource) > IVSource.QUOTE and min(IVSource) == IVSource.NONE  # substitutes rank above QUOTE
