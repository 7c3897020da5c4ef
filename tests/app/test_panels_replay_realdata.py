"""Scanner and builder panels in the main window on REPLAYED real data: the Cboe DataShop chain of
2019-06-26 15:45 ET imported with the real importer into a SQLite store, replayed by the app's feed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from app.main_window import PANELS
from app.models.builder_model import LegColumn
from spx_core.domain import QuoteFlag, Right, Root
from spx_core.domain.contracts import OptionContract
from spx_core.marketdata.source import SourceKind
from spx_core.strategies.scanner import ScanParams, ScanStructure
from spx_core.strategies.structure import Leg

pytestmark = [pytest.mark.shared_data, pytest.mark.qt_log_ignore("propagateSizeHints", "does not support raise")]

DAY = date(2019, 6, 26)
#: the issue's check: 0.20-delta 25-wide put credit verticals, every expiry (0DTE included)
PUT_CREDIT = ScanParams(ScanStructure.PUT_CREDIT_VERTICAL, short_delta=0.20, widths=(25.0,), dte=(0, 400), top=100,
                        allow_flagged=True)


def _import(shared_data: Path, db: Path) -> str:
    """The DataShop file through ``import_files`` (what ``spx-data import`` runs); returns its session."""
    from spx_core.marketdata.importers import import_files
    from spx_core.storage import Store

    store = Store.open(db)
    try:
        reports = import_files(store, [shared_data / "cboe_datashop" / "spxw20190626.csv"], "cboe-datashop")
        assert not reports[0].error, reports[0].error
        sessions = store.list_sessions()
    finally:
        store.close()
    assert len(sessions) == 1
    return sessions[0].name


@pytest.fixture
def replayed(make_window, qtbot, run_async, shared_data, tmp_path):
    """A main window (chain, scanner, builder) replaying the imported session; its snapshot is the last batch."""
    db = tmp_path / "real.sqlite"
    session = _import(shared_data, db)
    specs = tuple(s for s in PANELS if s.key in ("chain", "scanner", "builder"))
    window = make_window(db_path=str(db), panels=specs)
    run_async(window.open_store(), timeout=30)
    assert session in window.toolbar.session_names()
    window.toolbar.source_requested.emit(SourceKind.REPLAY, session)
    qtbot.waitUntil(lambda: window.feed.kind is SourceKind.REPLAY and window.feed.last_batch is not None,
                    timeout=30_000)
    snap = window.feed.last_batch.snapshot
    assert len(snap) == 10_384 and snap.time.date() == DAY
    return window


def _row(snap, contract: OptionContract) -> int:
    c = snap.columns
    hit = np.flatnonzero((c["strike"] == contract.strike) & (c["is_call"] == (contract.right is Right.CALL))
                         & (c["expiry"] == np.datetime64(contract.expiry)))
    hit = [int(i) for i in hit if snap.contract(int(i)).root is contract.root]
    assert len(hit) == 1, contract
    return hit[0]


def _scan(panel, qtbot, params: ScanParams) -> None:
    before = panel.results
    panel.form.set_params(params)
    panel._params_settled()
    qtbot.waitUntil(lambda: panel.results > before and panel.outcome is not None
                    and panel.outcome.params == params, timeout=90_000)


def test_scanner_on_the_replayed_chain_finds_verticals_at_short_bid_minus_long_ask(replayed, qtbot):
    window = replayed
    snap = window.feed.last_batch.snapshot
    panel = window.panels["scanner"]
    window.docks["scanner"].raise_()
    qtbot.waitUntil(panel.on_screen, timeout=5_000)
    _scan(panel, qtbot, PUT_CREDIT)
    outcome = panel.outcome
    assert outcome.snapshot.checksum == snap.checksum
    cands = outcome.candidates
    assert panel.model.rowCount() == len(cands) >= 20
    assert min(c.dte for c in cands) == 0  # the 15:45 0DTE expiry is scanned too
    for cand in cands:
        short, long_ = cand.structure.legs
        s, lg = _row(snap, short.contract), _row(snap, long_.contract)
        assert cand.credit_natural == snap.bid[s] - snap.ask[lg]  # exactly
        assert cand.credit_natural <= cand.credit_mid and cand.max_loss > 0
    assert panel.payoff.data is not None  # the selected candidate's chart
    assert panel.status_label.text().startswith(f"{len(cands)} of ")


def test_scanner_says_which_filter_emptied_the_scan(replayed, qtbot):
    window = replayed
    panel = window.panels["scanner"]
    window.docks["scanner"].raise_()
    # 0DTE only, flagged quotes excluded: at 15:45 the 0DTE 25-wide wing is bid 0 (ZERO_BID)
    only_0dte = ScanParams(ScanStructure.PUT_CREDIT_VERTICAL, short_delta=0.20, widths=(25.0,), dte=(0, 0))
    _scan(panel, qtbot, only_0dte)
    assert panel.model.rowCount() == 0
    text = panel.status_label.text()
    assert "quote flags" in text and "zero bid" in text and "\n" not in text, text
    # a DTE range with no listed expiry names the DTEs that are listed
    _scan(panel, qtbot, ScanParams(ScanStructure.PUT_CREDIT_VERTICAL, short_delta=0.20, widths=(25.0,),
                                   dte=(500, 600)))
    text = panel.status_label.text()
    assert "no listed expiry has DTE 500-600" in text and "\n" not in text, text


def _builder_result(builder, qtbot, legs):
    qtbot.waitUntil(lambda: builder.result is not None and builder.result.legs == legs, timeout=60_000)
    return builder.result


def test_builder_values_a_listed_put_credit_vertical_as_value_structure(replayed, qtbot):
    from spx_core.strategies.market import Market
    from spx_core.strategies.recognize import recognize
    from spx_core.strategies.valuation import value_structure
    from spx_core.surface import chain_iv

    window = replayed
    snap = window.feed.last_batch.snapshot
    builder, context = window.panels["builder"], window.context
    window.docks["builder"].raise_()
    expiry = date(2019, 7, 19)  # 23 DTE: the 2800/2775 puts are both two-sided at 15:45
    legs = (Leg(OptionContract(Root.SPXW, expiry, 2800.0, Right.PUT), -1),
            Leg(OptionContract(Root.SPXW, expiry, 2775.0, Right.PUT), 1))
    s, lg = (_row(snap, leg.contract) for leg in legs)
    assert snap.flags[s] == 0 == snap.flags[lg]
    context.set_legs(legs)
    result = _builder_result(builder, qtbot, legs)
    assert "25 wide" in result.structure.name and "put credit vertical" in result.structure.name
    assert result.structure.name in builder.title_label.text()
    expected = value_structure(recognize(legs), Market.of(chain_iv(snap)))
    assert np.isfinite(result.value.natural)
    assert result.value.natural == pytest.approx(expected.natural, rel=1e-12)
    assert result.value.natural == pytest.approx(snap.bid[s] - snap.ask[lg], rel=1e-12)
    assert result.value.max_loss == pytest.approx(expected.max_loss, rel=1e-12)
    assert builder.plot.data is not None and len(builder.plot.data.prices) > 1
    assert np.isfinite(builder.plot.data.expiry).all()


def test_builder_says_a_zero_bid_0dte_leg_is_flagged_not_a_number(replayed, qtbot):
    window = replayed
    snap = window.feed.last_batch.snapshot
    builder, context = window.panels["builder"], window.context
    window.docks["builder"].raise_()
    c = snap.columns
    zero = np.flatnonzero((c["expiry"] == np.datetime64(DAY)) & ~c["is_call"]
                          & ((snap.flags & int(QuoteFlag.ZERO_BID)) != 0))
    assert len(zero) > 0
    wing = snap.contract(int(zero[-1]))  # the highest zero-bid 0DTE put: a far OTM wing
    short = OptionContract(Root.SPXW, DAY, wing.strike + 25.0, Right.PUT)
    legs = (Leg(short, -1), Leg(wing, -1))  # selling the zero-bid wing: no price to sell at
    context.set_legs(legs)
    result = _builder_result(builder, qtbot, legs)
    assert result.quotes[wing].note == "flagged: zero bid"
    row = [leg.contract for leg in builder.model.legs].index(wing)
    assert builder.model.index(row, LegColumn.NOTE).data() == "flagged: zero bid"
    assert np.isnan(result.value.natural) and builder.figures["natural"].text() == "–"
    assert "zero bid" in builder.status_label.text()


def _replay_file(make_window, qtbot, run_async, db: Path, path: Path, fmt: str, session_index: int = 0):
    from spx_core.marketdata.importers import import_files
    from spx_core.storage import Store

    store = Store.open(db)
    try:
        assert not import_files(store, [path], fmt)[0].error
        sessions = store.list_sessions()
    finally:
        store.close()
    specs = tuple(s for s in PANELS if s.key in ("chain", "scanner", "builder"))
    window = make_window(db_path=str(db), panels=specs)
    run_async(window.open_store(), timeout=30)
    window.toolbar.source_requested.emit(SourceKind.REPLAY, sessions[session_index].name)
    qtbot.waitUntil(lambda: window.feed.kind is SourceKind.REPLAY and window.feed.last_batch is not None,
                    timeout=30_000)
    return window


@pytest.mark.parametrize(("rel", "fmt", "width"), [
    ("lean_minute/spxw/20210104_quote_european.zip", "lean-minute", 100.0),  # minute bars, no index price
    ("cboe_delayed_quotes/hgnicej_MIT__spx_quotedata.csv", "cboe-delayed", 25.0),  # SPX (AM) root, 198 DTE
    ("cboe_delayed_quotes/hgnicej_MIT__spx_quotedata-3.csv", "cboe-delayed", 25.0),  # SPX AM + SPXW PM expiries
])
def test_other_real_files_replay_into_the_scanner_and_builder(make_window, qtbot, run_async, shared_data, tmp_path,
                                                               rel, fmt, width):
    window = _replay_file(make_window, qtbot, run_async, tmp_path / "other.sqlite", shared_data / rel, fmt)
    window.toolbar.pause_action.trigger()  # hold one snapshot while both panels value it
    qtbot.wait(300)
    snap = window.feed.last_batch.snapshot
    scanner, builder = window.panels["scanner"], window.panels["builder"]
    window.docks["scanner"].raise_()
    params = ScanParams(ScanStructure.PUT_CREDIT_VERTICAL, short_delta=(0.05, 0.95), widths=(width,), dte=(0, 400),
                        top=50, allow_flagged=True)
    _scan(scanner, qtbot, params)
    cands = scanner.outcome.candidates
    text = scanner.status_label.text()
    assert cands or (text and "\n" not in text), text
    assert "nan" not in text, text  # a file without an index price (Lean minute bars) says n/a
    for cand in cands:
        short, long_ = cand.structure.legs
        snap_s = scanner.outcome.snapshot
        s, lg = _row(snap_s, short.contract), _row(snap_s, long_.contract)
        assert cand.credit_natural == snap_s.bid[s] - snap_s.ask[lg] and cand.max_loss > 0
    # the builder on a listed vertical of the shown snapshot
    c = snap.columns
    two_sided = np.flatnonzero(~c["is_call"] & (c["bid"] > 0) & (c["ask"] > c["bid"]) & (snap.flags == 0))
    contracts = [snap.contract(int(i)) for i in two_sided]
    pairs = [(a, b) for a in contracts for b in contracts
             if a.expiry == b.expiry and a.root is b.root and a.strike - b.strike == width]
    assert pairs
    pair = next((p for p in pairs if p[0].root is Root.SPX), pairs[0])  # the AM-settled root where listed
    legs = (Leg(pair[0], -1), Leg(pair[1], 1))
    window.docks["builder"].raise_()
    window.context.set_legs(legs)
    result = _builder_result(builder, qtbot, legs)
    assert "put credit vertical" in result.structure.name or "put debit vertical" in result.structure.name
    s, lg = (_row(result.caches[snap.underlying].chain.snapshot, leg.contract) for leg in legs)
    shown = result.caches[snap.underlying].chain.snapshot
    assert result.value.natural == pytest.approx(shown.bid[s] - shown.ask[lg], rel=1e-12)
    assert builder.plot.data is not None
    shown_texts = [label.text() for label in builder.figures.values()] + [builder.title_label.text(),
                                                                         builder.status_label.text()]
    assert not [t for t in shown_texts if "nan" in t.lower()], shown_texts


def test_builder_on_a_0dte_spread_minutes_before_the_close_shows_the_lognormal_odds(replayed, qtbot):
    """At 15:45 the 0DTE slice has too few usable quotes to fit a smile: no risk-neutral POP, said so; the
    broker's lognormal figures at the slice's market ATM IV are still shown."""
    from math import erf, log, sqrt

    window = replayed
    builder, context = window.panels["builder"], window.context
    window.docks["builder"].raise_()
    legs = (Leg(OptionContract(Root.SPXW, DAY, 2920.0, Right.PUT), -1),
            Leg(OptionContract(Root.SPXW, DAY, 2915.0, Right.PUT), 1))  # both two-sided at 15:45
    context.set_legs(legs)
    result = _builder_result(builder, qtbot, legs)
    assert np.isfinite(result.value.natural) and result.value.credit
    odds = result.odds
    assert odds is not None and np.isnan(odds.pop) and builder.figures["pop"].text() == "–"
    assert 0.0 < odds.pop_lognormal < 1.0
    assert builder.figures["pop_ln"].text() == f"{odds.pop_lognormal * 100:.1f}%"
    assert "not fitted" in builder.status_label.text()
    # POP = P(S_T > breakeven) under the lognormal at the slice's ATM IV (forward, 15 minutes)
    fit = result.caches["SPX"].chain.surface.by_expiry(Root.SPXW, DAY)
    (breakeven,) = result.value.breakevens
    sd = fit.atm_iv * sqrt(fit.t)
    d2 = (log(fit.forward / breakeven) - 0.5 * sd * sd) / sd
    assert odds.pop_lognormal == pytest.approx(0.5 * (1.0 + erf(d2 / sqrt(2.0))), abs=2e-3)


def test_ctrl_click_in_the_replayed_chain_builds_the_vertical(replayed, qtbot):
    """The chain's Ctrl-click path on the real 23-DTE expiry: sell a put bid below the money, buy the put ask
    25 points lower (the chain shows a window of strikes around the money)."""
    from PySide6.QtCore import Qt

    from app.models.chain_data import PUT, ChainField

    window = replayed
    chain, builder = window.panels["chain"], window.panels["builder"]
    expiry = date(2019, 7, 19)
    window.docks["chain"].raise_()
    qtbot.waitUntil(lambda: chain.expiry_combo.count() == 30, timeout=30_000)  # every real expiry listed
    chain.select_expiry((Root.SPXW, expiry))
    qtbot.waitUntil(lambda: chain.model.block is not None and chain.model.block.expiry == expiry, timeout=30_000)
    strikes = chain.model.block.strikes[slice(*chain.model.window())]
    short_row = chain.model.atm_row - 2
    long_row = int(np.flatnonzero(strikes == strikes[short_row] - 25.0)[0])

    def click(row: int, field) -> None:
        index = chain.model.index(row, chain.model.columns.index((PUT, field)))
        chain.table.scrollTo(index)
        qtbot.mouseClick(chain.table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                         chain.table.visualRect(index).center())

    click(short_row, ChainField.BID)
    click(long_row, ChainField.ASK)
    legs = window.context.legs
    short, low = float(strikes[short_row]), float(strikes[long_row])
    assert [(leg.contract.strike, leg.contract.right, leg.ratio) for leg in legs] == [(short, Right.PUT, -1),
                                                                                       (low, Right.PUT, 1)]
    result = _builder_result(builder, qtbot, legs)
    assert result.structure.name == f"SPXW 2019-07-19 {short:g}/{low:g} put credit vertical (25 wide)"
    snap = window.feed.last_batch.snapshot
    s, lg = (_row(snap, leg.contract) for leg in legs)
    assert result.value.natural == pytest.approx(snap.bid[s] - snap.ask[lg], rel=1e-12)
    assert builder.figures["natural"].text() == f"{snap.bid[s] - snap.ask[lg]:,.2f} cr"
