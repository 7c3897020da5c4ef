"""Strategy builder: legs picked in the chain (Ctrl-click, right-click), edited in the builder, valued.

Leg-edit functions and the legs model first, then a real main window (chain + builder docked,
offscreen) fed batches of the seeded simulated market.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from PySide6.QtCore import Qt

from app.main_window import PANELS
from app.models.builder_model import LegColumn, LegQuote, LegsModel, resized, toggled, with_leg, without
from app.models.chain_data import CALL, PUT, ChainField
from spx_core.domain import ET, OptionContract, Right, Root
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.strategies.structure import Leg

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")

START = datetime(2024, 3, 13, 10, 30, tzinfo=ET)


def _put(strike: float) -> OptionContract:
    return OptionContract(Root.SPXW, datetime(2024, 3, 15).date(), strike, Right.PUT)


# --- leg edits and the legs model --------------------------------------------------------------------------
def test_ctrl_click_semantics_add_remove_and_flip():
    a, b = _put(5700), _put(5675)
    legs = toggled((), a, -1)
    assert legs == (Leg(a, -1),)
    legs = toggled(legs, b, 1)
    assert legs == (Leg(a, -1), Leg(b, 1))
    assert toggled(legs, a, -1) == (Leg(b, 1),)  # the same side again removes it
    flipped = toggled(with_leg(legs, a, -3), a, 1)  # the other side flips it, keeping the size
    assert flipped == (Leg(a, 3), Leg(b, 1))
    assert without(legs, b) == (Leg(a, -1),)
    assert resized(legs, 0, qty=-4) == (Leg(a, -4), Leg(b, 1))
    assert resized(legs, 0, qty=4) == (Leg(a, 4), Leg(b, 1))
    assert resized(legs, 1, buy=False) == (Leg(a, -1), Leg(b, -1))
    assert resized(legs, 1, qty=0) == legs  # zero keeps the leg
    assert resized(legs, 1, qty=-2) == (Leg(a, -1), Leg(b, -2))  # a signed size sets the side too


def test_legs_model_shows_sides_quotes_and_reasons_and_emits_edits(qtbot, qtmodeltester):
    model = LegsModel()
    a, b = _put(5700), _put(5675)
    model.set_legs((Leg(a, -1), Leg(b, 2)))
    model.set_quotes({a: LegQuote(10.1, 10.4, 10.25, 0.152, -0.31, ""), b: LegQuote(note="not listed")})
    qtmodeltester.check(model)
    text = [[model.index(r, c).data() for c in range(model.columnCount())] for r in range(2)]
    assert text[0][:6] == ["5700 P", "Sell", "-1", "10.10", "10.40", "10.25"]  # the header names root and expiry
    assert model.headerData(LegColumn.CONTRACT, Qt.Orientation.Horizontal) == "15Mar24"
    assert text[0][LegColumn.IV] == "15.20" and text[0][LegColumn.DELTA] == "-0.310"
    assert text[1][LegColumn.BID] == "–" and text[1][LegColumn.NOTE] == "not listed"
    with qtbot.waitSignal(model.legs_edited) as sig:
        assert model.setData(model.index(1, LegColumn.QTY), 5)
    assert sig.args[0] == (Leg(a, -1), Leg(b, 5))
    assert model.index(0, LegColumn.QTY).data() == "-1" and model.index(1, LegColumn.QTY).data() == "+2"
    assert model.legs == (Leg(a, -1), Leg(b, 2))  # an edit is published, not applied here
    with qtbot.waitSignal(model.legs_edited) as sig:
        assert model.setData(model.index(0, LegColumn.SIDE), "Buy")
    assert sig.args[0] == (Leg(a, 1), Leg(b, 2))
    later = OptionContract(Root.SPXW, datetime(2024, 3, 22).date(), 5700, Right.PUT)
    model.set_legs((Leg(a, -1), Leg(later, 1)))  # a calendar: each leg names its expiry
    assert [model.index(r, LegColumn.CONTRACT).data() for r in range(2)] == ["SPXW 15Mar24 5700 P",
                                                                          "SPXW 22Mar24 5700 P"]
    assert model.headerData(LegColumn.CONTRACT, Qt.Orientation.Horizontal) == "Contract"


# --- in the main window ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def batches():
    market = SimulatedMarket(SimulatorConfig(seed=11, start=START))
    return [market.advance(1.0) for _ in range(3)]


@pytest.fixture
def window(make_window):
    specs = tuple(s for s in PANELS if s.key in ("chain", "builder"))
    w = make_window(panels=specs)
    w.resize(1600, 900)
    return w


def _feed(window, qtbot, batch):
    chain = window.panels["chain"]
    for panel in window.panels.values():
        panel.on_batch(batch)
    qtbot.waitUntil(lambda: chain.model.snapshot is not None and chain.model.snapshot.time_ns == batch.snapshot.time_ns,
                    timeout=15_000)


def _ctrl_click(chain, qtbot, row: int, side: int, field: ChainField) -> None:
    index = chain.model.index(row, chain.model.columns.index((side, field)))
    chain.table.scrollTo(index)
    rect = chain.table.visualRect(index)
    qtbot.mouseClick(chain.table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     rect.center())


def test_ctrl_click_in_the_chain_adds_toggles_and_marks_legs(window, qtbot, batches):
    _feed(window, qtbot, batches[0])
    chain, builder, context = window.panels["chain"], window.panels["builder"], window.context
    atm = chain.model.atm_row
    _ctrl_click(chain, qtbot, atm - 2, PUT, ChainField.BID)  # sell a put below the money
    _ctrl_click(chain, qtbot, atm - 4, PUT, ChainField.ASK)  # buy a lower one
    strikes = chain.model.block.strikes
    lo = chain.model.window()[0]
    assert [(leg.contract.strike, leg.contract.right, leg.ratio) for leg in context.legs] == [
        (strikes[lo + atm - 2], Right.PUT, -1), (strikes[lo + atm - 4], Right.PUT, 1)]
    assert builder.model.rowCount() == 2
    assert sorted(chain.table.marked_cells()) == sorted([(atm - 2, *_span(chain, PUT), -1),
                                                         (atm - 4, *_span(chain, PUT), 1)])
    _ctrl_click(chain, qtbot, atm - 4, PUT, ChainField.ASK)  # again: removed
    assert len(context.legs) == 1 and builder.model.rowCount() == 1
    assert len(chain.table.marked_cells()) == 1
    _ctrl_click(chain, qtbot, atm + 1, CALL, ChainField.IV)  # not a price cell: no leg
    assert len(context.legs) == 1


def _span(chain, side: int) -> tuple[int, int]:
    cols = [i for i, (s, f) in enumerate(chain.model.columns)
            if s == side and f in (ChainField.BID, ChainField.MID, ChainField.ASK)]
    return min(cols), max(cols)


def test_right_click_adds_and_builder_edits_go_back_to_the_context(window, qtbot, batches):
    _feed(window, qtbot, batches[0])
    chain, builder, context = window.panels["chain"], window.panels["builder"], window.context
    index = chain.model.index(chain.model.atm_row, chain.model.columns.index((CALL, ChainField.IV)))
    menu = chain.context_menu(index)
    actions = {a.text().split(":")[0].replace("&", ""): a for a in menu.actions()}
    actions["Add to builder (sell)"].trigger()
    contract = chain.model.contract_at(index)
    assert context.legs == (Leg(contract, -1),)
    actions["Add to builder (buy)"].trigger()  # the same contract: it becomes a buy
    assert context.legs == (Leg(contract, 1),)
    builder.model.setData(builder.model.index(0, LegColumn.QTY), 3)
    assert context.legs == (Leg(contract, 3),) and builder.model.index(0, LegColumn.QTY).data() == "+3"
    rect = builder.table.visualRect(builder.model.index(0, LegColumn.REMOVE))
    qtbot.mouseClick(builder.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert context.legs == () and chain.table.marked_cells() == []
    assert "No legs" in builder.title_label.text()
    context.set_legs((Leg(contract, 1),))
    qtbot.mouseClick(builder.clear_button, Qt.MouseButton.LeftButton)
    assert context.legs == ()


def _valued(builder, qtbot, legs_count: int):
    qtbot.waitUntil(lambda: builder.result is not None and len(builder.result.legs) == legs_count, timeout=20_000)
    return builder.result


def test_a_put_credit_vertical_is_recognised_and_valued_as_value_structure(window, qtbot, batches):
    from spx_core.strategies.market import Market
    from spx_core.strategies.recognize import recognize
    from spx_core.strategies.valuation import value_structure
    from spx_core.surface import chain_iv

    _feed(window, qtbot, batches[0])
    chain, builder = window.panels["chain"], window.panels["builder"]
    atm = chain.model.atm_row
    _ctrl_click(chain, qtbot, atm - 3, PUT, ChainField.BID)
    _ctrl_click(chain, qtbot, atm - 8, PUT, ChainField.ASK)
    result = _valued(builder, qtbot, 2)
    short, long_ = (leg.contract.strike for leg in window.context.legs)
    assert result.structure.kind.value == "vertical"
    assert f"{short - long_:g} wide" in result.structure.name and "put credit vertical" in result.structure.name
    assert result.structure.name in builder.title_label.text()
    expected = value_structure(recognize(window.context.legs), Market.of(chain_iv(batches[0].snapshot)))
    value = result.value
    for name in ("bid", "ask", "mid", "natural", "delta_usd", "gamma_usd_1pct", "vega_usd_volpt", "theta_usd_day",
                 "max_profit", "max_loss", "margin", "return_on_risk"):
        assert getattr(value, name) == pytest.approx(getattr(expected, name), rel=1e-12), name
    assert value.breakevens == pytest.approx(expected.breakevens)
    assert value.credit and value.mid > 0
    assert builder.figures["mid"].text() == f"{expected.mid:,.2f} cr"
    assert builder.figures["max_loss"].text() == f"-${expected.max_loss:,.0f}"
    assert builder.status_label.text() == ""
    from spx_core.strategies.probability import structure_odds
    from spx_core.surface import fit_surface

    civ = chain_iv(batches[0].snapshot)
    odds = structure_odds(recognize(window.context.legs), Market.of(civ, surfaces={"SPX": fit_surface(civ)}))
    assert result.odds.pop == pytest.approx(odds.pop, abs=1e-9) and 0.0 < odds.pop < 1.0
    assert result.odds.ev == pytest.approx(odds.ev, abs=1e-6)
    assert builder.figures["pop"].text() == f"{odds.pop * 100:.1f}%"
    assert builder.figures["pop_ln"].text() == f"{odds.pop_lognormal * 100:.1f}%"
    assert builder.figures["touch"].text().startswith(f"{short:g}P ")


def test_a_leg_not_in_the_snapshot_says_not_listed_and_prices_are_nan(window, qtbot, batches):
    _feed(window, qtbot, batches[0])
    chain, builder = window.panels["chain"], window.panels["builder"]
    atm = chain.model.atm_row
    _ctrl_click(chain, qtbot, atm - 3, PUT, ChainField.BID)
    listed = window.context.legs[0].contract
    ghost = OptionContract(listed.root, listed.expiry, listed.strike - 0.5, Right.PUT)  # no half-point strikes
    window.context.set_legs((*window.context.legs, Leg(ghost, 1)))
    result = _valued(builder, qtbot, 2)
    assert result.quotes[ghost].note == "not listed"
    assert builder.model.index(1, LegColumn.NOTE).data() == "not listed"
    assert builder.model.index(1, LegColumn.BID).data() == "–"
    assert all(text == "–" for key, text in ((k, builder.figures[k].text()) for k in ("bid", "ask", "mid", "natural")))
    assert "not listed" in builder.status_label.text() and str(ghost.strike).rstrip("0").rstrip(".") in \
        builder.status_label.text()
    assert builder.plot.data is None and builder.plot.message_text.startswith("no payoff: ")


def test_t_plus_days_and_iv_shift_reprice_the_t0_curve(window, qtbot, batches):
    _feed(window, qtbot, batches[0])
    chain, builder = window.panels["chain"], window.panels["builder"]
    keys = [chain.expiry_combo.itemData(i)[0] for i in range(chain.expiry_combo.count())]
    key = next(k for k in keys if k[0] is Root.SPXW and (k[1] - START.date()).days >= 7)
    chain.select_expiry(key)
    qtbot.waitUntil(lambda: chain.model.block is not None and chain.model.block.key == key, timeout=15_000)
    atm = chain.model.atm_row
    _ctrl_click(chain, qtbot, atm - 3, PUT, ChainField.BID)
    _ctrl_click(chain, qtbot, atm - 8, PUT, ChainField.ASK)
    now = _valued(builder, qtbot, 2)
    assert now.curves is not None and not now.curves.reason
    assert builder.days_spin.maximum() >= 6  # up to the day before the expiry
    assert builder.plot.data is not None and len(builder.plot.data.prices) == len(now.curves.prices)
    builder.days_spin.setValue(5)
    later = _view_result(builder, qtbot, 5.0, 0.0)
    builder.iv_spin.setValue(5.0)
    shifted = _view_result(builder, qtbot, 5.0, 5.0)
    for result in (later, shifted):
        assert result.curves.expiry == pytest.approx(now.curves.expiry)  # the expiry payoff does not move
    # out of the money (the index 60 points above the short strike) a put credit vertical gains from
    # time passing and loses from a rise in vol (at the short strike itself a narrow one can lose to time)
    k = int(abs(now.curves.prices - (window.context.legs[0].contract.strike + 60.0)).argmin())
    assert later.curves.t0[k] > now.curves.t0[k] + 1.0
    assert shifted.curves.t0[k] < later.curves.t0[k] - 1.0
    assert builder.plot.data.t0 == pytest.approx(shifted.curves.t0, nan_ok=True)


def _view_result(builder, qtbot, days: float, shift: float):
    qtbot.waitUntil(lambda: builder.result is not None and builder.result.view == (days, shift) or
                    builder.result is not None and (builder.result.view.days_ahead, builder.result.view.iv_shift)
                    == (days, shift), timeout=20_000)
    return builder.result


def test_the_builder_shares_the_surface_dock_and_comes_forward_when_a_leg_is_picked(make_window, qtbot, batches):
    window = make_window()  # every registered panel
    window.resize(1600, 900)
    builder, surface = window.panels["builder"], window.panels["surface"]
    assert window.tabifiedDockWidgets(window.docks["surface"]) == [window.docks["builder"], window.docks["market"],
                                                                   window.docks["ticket"]]
    # the surface is in front until the trader picks legs
    def in_front(panel) -> bool:  # a dock tabbed behind another stays "visible" with an empty visible region
        return panel.isVisible() and not panel.visibleRegion().isEmpty()

    qtbot.waitUntil(lambda: in_front(surface) and not in_front(builder), timeout=5_000)
    _feed(window, qtbot, batches[0])
    _ctrl_click(window.panels["chain"], qtbot, window.panels["chain"].model.atm_row, CALL, ChainField.ASK)
    qtbot.waitUntil(lambda: in_front(builder), timeout=5_000)
    assert _valued(builder, qtbot, 1).structure.kind.value == "single"


def test_an_spx_spy_pair_is_valued_with_the_spy_companion_chain(window, qtbot, batches):
    from spx_core.strategies.builders import spx_spy_pair
    from spx_core.strategies.market import Market, MarketChain
    from spx_core.strategies.valuation import value_structure
    from spx_core.surface import chain_iv

    batch = batches[0]
    spy = batch.for_underlying("SPY")
    assert spy is not None, "the simulator lists SPY as a companion"
    _feed(window, qtbot, batch)
    builder = window.panels["builder"]
    spx_keys = {(s.root, s.expiry) for s in batch.snapshot.expiries()}
    expiry = next(s.expiry for s in spy.snapshot.expiries()
                  if (Root.SPXW, s.expiry) in spx_keys and (s.expiry - START.date()).days >= 7)
    strike = 5 * round(batch.snapshot.underlying_price / 5)
    window.context.select_structure(spx_spy_pair(expiry, strike))
    result = _valued(builder, qtbot, 2)
    assert result.structure.kind.value == "SPX vs SPY pair"
    assert all(not q.note and q.bid > 0 for q in result.quotes.values()), result.quotes
    spy_civ = result.caches["SPY"].chain.civ
    expected = value_structure(result.structure, Market({"SPX": MarketChain(batch.snapshot, chain_iv(batch.snapshot)),
                                                         "SPY": MarketChain(spy.snapshot, spy_civ)}))
    assert result.value.mid == pytest.approx(expected.mid, rel=1e-12)
    assert abs(result.value.delta_usd) < 0.2 * abs(result.quotes[result.structure.legs[0].contract].delta) * 100
    spx_iv, spy_iv = (result.quotes[leg.contract].iv for leg in result.structure.legs)
    assert abs(spy_iv - spx_iv) < 0.02, (spx_iv, spy_iv)  # American IVs on SPX's discount: the same smile
    assert "pair" in builder.title_label.text()


def test_a_flagged_leg_says_why_and_new_snapshots_revalue(window, qtbot, batches):
    import numpy as np

    from spx_core.domain import QuoteFlag

    first = batches[0]
    _feed(window, qtbot, first)
    builder, context = window.panels["builder"], window.context
    snap = first.snapshot
    zero_bid = int(np.flatnonzero(snap.flags & int(QuoteFlag.ZERO_BID))[0])  # a far wing with no bid
    flagged = snap.contract(zero_bid)
    with qtbot.waitSignal(context.structure_selected) as sig:
        context.select_structure(recognize_legs((Leg(flagged, -1),)))
    assert context.legs == sig.args[0].legs
    result = _valued(builder, qtbot, 1)
    assert result.quotes[flagged].note == "flagged: zero bid"
    assert builder.model.index(0, LegColumn.NOTE).data() == "flagged: zero bid"
    assert builder.figures["mid"].text() == "–" and "zero bid" in builder.status_label.text()
    # a new snapshot re-values the same legs (the job reads the latest one)
    for batch in batches[1:]:
        window.panels["chain"].on_batch(batch)
        builder.on_batch(batch)
    qtbot.waitUntil(lambda: builder.result.caches["SPX"].chain.snapshot is batches[-1].snapshot, timeout=15_000)


def recognize_legs(legs):
    from spx_core.strategies.recognize import recognize

    return recognize(legs)


def test_at_1280x720_the_chart_gets_the_height_and_every_figure_fits(make_window, qtbot, batches):
    window = make_window()  # every registered panel, the default layout
    window.resize(1280, 720)
    window.docks["builder"].raise_()
    qtbot.wait(400)  # the default split runs after the show
    _feed(window, qtbot, batches[0])
    chain, builder = window.panels["chain"], window.panels["builder"]
    atm = chain.model.atm_row
    for row, side, field in ((atm - 6, PUT, ChainField.ASK), (atm - 3, PUT, ChainField.BID),
                             (atm + 3, CALL, ChainField.BID), (atm + 6, CALL, ChainField.ASK)):
        _ctrl_click(chain, qtbot, row, side, field)
    window.docks["builder"].raise_()
    _valued(builder, qtbot, 4)
    qtbot.wait(100)
    # the figures as tall as they need, three to a row at this width; the chart the rest (it was ~170 px)
    assert builder._columns == 3
    plot = builder.plot.plot_widget
    assert plot.height() >= 280, (plot.height(), builder.height())
    assert builder.summary_scroll.verticalScrollBar().maximum() == 0  # nothing scrolled out of sight
    for key, label in builder.figures.items():
        text = label.text()
        assert label.fontMetrics().horizontalAdvance(text) <= label.width(), (key, text, label.width())
    # the trader drags the handle: the split stays theirs through a resize
    sizes = builder.splitter.sizes()
    builder.splitter.moveSplitter(sizes[0] - 60, 1)
    moved = builder.splitter.sizes()
    assert moved[0] < sizes[0]
    window.resize(1300, 740)
    qtbot.wait(100)
    assert builder.splitter.sizes()[0] == moved[0]
