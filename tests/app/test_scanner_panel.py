"""Scanner panel on a simulated chain: candidates, sorting, payoff of the selection, Trade, throttling, params."""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.context import AppContext
from app.models.scanner_model import COLUMNS, ScannerTableModel
from app.panels.scanner_panel import NO_TICKET_TIP, ScannerPanel, compute_scan
from app.panels.scanner_params import CUSTOM
from app.settings import AppSettings
from app.shared_fits import SharedFits
from spx_core.domain import ET, Right
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.strategies.scanner import PRESETS, ScanParams, ScanStructure

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints", "does not support raise")

START = datetime(2024, 3, 13, 11, 0, tzinfo=ET)
#: a wide scan so every column has varied values to sort: put credit verticals, 0.10-0.30 delta, 7-30 DTE
WIDE = ScanParams(ScanStructure.PUT_CREDIT_VERTICAL, short_delta=(0.10, 0.30), widths=(10.0, 25.0), dte=(5, 30),
                  top=60)


@pytest.fixture(scope="module")
def market():
    return SimulatedMarket(SimulatorConfig(seed=5, start=START))


@pytest.fixture(scope="module")
def batch(market):
    return market.advance(1.0)


@pytest.fixture
def context(qapp):
    return AppContext(AppSettings(seed=3))


@pytest.fixture
def panel(qtbot, batch, context):
    p = ScannerPanel(rescan_seconds=0.05)
    p.bind(context)
    qtbot.addWidget(p)
    p.resize(1400, 900)
    p.show()
    p.form.set_params(WIDE)
    p._params_settled()
    p.on_batch(batch)
    qtbot.waitUntil(lambda: p.outcome is not None, timeout=60_000)
    yield p
    p.shutdown()


def test_model_passes_qtmodeltester(qtmodeltester, batch):
    outcome = compute_scan(batch.snapshot, WIDE, SharedFits(), None)
    assert len(outcome.candidates) > 10
    model = ScannerTableModel()
    model.set_candidates(outcome.candidates, batch.snapshot.time.astimezone(ET).date())
    qtmodeltester.check(model)


def test_every_column_header_states_its_unit():
    units = ("($)", "(pts)", "(%)", "(vol pts)", "(d)")
    for col in COLUMNS:
        assert col.title.endswith(units) or col.title in ("Expiry", "Score"), col.title
        assert col.tip


def test_panel_scans_the_simulated_chain_and_draws_the_selected_payoff(panel, batch):
    outcome = panel.outcome
    assert outcome.result is not None and outcome.result.snapshot_checksum == batch.snapshot.checksum
    n = panel.model.rowCount()
    assert n == len(outcome.candidates) > 10
    assert all(c.structure.legs[0].contract.right is Right.PUT for c in outcome.candidates)
    ok, message = panel.self_test_status()
    assert ok, message
    # the first row (best score) is selected and its payoff drawn: expiry P&L = value at expiry - cost
    candidate = panel.selected_candidate()
    assert candidate is outcome.candidates[0]
    data = panel.payoff.data
    assert data is not None and data.t0 is not None and np.isfinite(data.t0).all()
    mult = candidate.structure.legs[0].contract.multiplier
    expected = candidate.structure.expiry_value(data.prices) + candidate.credit_mid * mult
    np.testing.assert_allclose(data.expiry, expected, atol=1e-6 * mult)
    # a put credit vertical has one breakeven, between its strikes
    strikes = sorted(leg.contract.strike for leg in candidate.structure.legs)
    assert len(panel.payoff.breakeven_positions) == 1 and strikes[0] < panel.payoff.breakeven_positions[0] < strikes[1]
    assert data.density is not None and data.sd1 is not None and data.sd1[0] < data.spot < data.sd1[1]
    assert "of" in panel.status_label.text() and "ms" in panel.status_label.text()


@pytest.mark.parametrize("column", range(len(COLUMNS)))
def test_sorting_by_each_column(panel, column):
    for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
        panel.table.sortByColumn(column, order)
        values = panel.model.column_values(column)
        finite = values[np.isfinite(values)]
        assert np.isfinite(values[: len(finite)]).all(), "NaN sorts last"
        steps = np.diff(finite)
        assert (steps >= 0).all() if order == Qt.SortOrder.AscendingOrder else (steps <= 0).all()
    # the selection follows its candidate through a sort, and the chart keeps showing it
    panel.table.selectRow(3)
    chosen = panel.selected_candidate()
    panel.table.sortByColumn(column, Qt.SortOrder.AscendingOrder)
    assert panel.selected_candidate() is chosen


def test_sort_survives_a_rescan(panel, qtbot, market):
    panel.table.sortByColumn(COLUMNS.index(next(c for c in COLUMNS if c.title == "POP\n(%)")),
                             Qt.SortOrder.DescendingOrder)
    before = panel.results
    panel.on_batch(market.advance(30.0))
    panel.refresh(full=True)
    qtbot.waitUntil(lambda: panel.results > before, timeout=60_000)
    pops = panel.model.column_values(COLUMNS.index(next(c for c in COLUMNS if c.title == "POP\n(%)")))
    assert (np.diff(pops[np.isfinite(pops)]) <= 0).all()


def test_trade_button_waits_for_an_order_ticket(panel, context, qtbot):
    assert not panel.trade_button.isEnabled()
    assert panel.trade_button.toolTip() == NO_TICKET_TIP
    sent = []
    context.trade_requested.connect(sent.append)
    context.set_ticket_available(True)
    assert panel.trade_button.isEnabled() and panel.trade_button.toolTip() != NO_TICKET_TIP
    qtbot.mouseClick(panel.trade_button, Qt.MouseButton.LeftButton)
    assert sent == [panel.selected_candidate().structure]
    panel.table.clearSelection()
    assert not panel.trade_button.isEnabled()  # nothing to trade
    context.set_ticket_available(False)
    panel.table.selectRow(0)
    assert not panel.trade_button.isEnabled() and panel.trade_button.toolTip() == NO_TICKET_TIP


def test_open_in_builder_publishes_the_structure(panel, context):
    got = []
    context.structure_selected.connect(got.append)
    panel.table.selectRow(2)
    panel.open_in_builder()
    assert got == [panel.selected_candidate().structure]
    assert context.legs == panel.selected_candidate().structure.legs


def test_parameter_change_rescans_with_the_new_parameters(panel, qtbot):
    before = panel.results
    panel.form.widths.setText("50")
    panel.form.widths.editingFinished.emit()
    assert panel.form.preset.currentText() == CUSTOM
    qtbot.waitUntil(lambda: panel.results > before, timeout=60_000)
    assert panel.outcome.params.widths == (50.0,)
    assert {c.width for c in panel.outcome.candidates} == {50.0}


def test_preset_loads_its_parameters_and_rescans(panel, qtbot):
    name = next(n for n, p in PRESETS.items() if p.structure is ScanStructure.IRON_CONDOR)
    before = panel.results
    panel.form.preset.setCurrentText(name)
    qtbot.waitUntil(lambda: panel.results > before, timeout=60_000)
    assert panel.outcome.params == PRESETS[name]
    assert all(len(c.structure.legs) == 4 for c in panel.outcome.candidates)


def test_bad_parameters_say_what_is_wrong_in_one_line(panel, qtbot):
    before = panel.jobs_started
    panel.form.widths.setText("25,,")
    panel.form.widths.editingFinished.emit()
    qtbot.waitUntil(lambda: panel.status_label.text().startswith("parameters:"), timeout=5_000)
    assert "\n" not in panel.status_label.text() and "10,25,50" in panel.status_label.text()
    qtbot.wait(300)
    assert panel.jobs_started == before  # nothing scanned with parameters that do not parse


def test_rescans_at_most_once_a_second_on_a_stream_of_batches(qtbot, market):
    p = ScannerPanel(rescan_seconds=1.0)
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    p.form.set_params(dataclasses.replace(WIDE, dte=(5, 10)))
    p._params_settled()
    t0 = time.monotonic()
    batches = 0
    while time.monotonic() - t0 < 3.2:  # a batch every 50 ms (20 Hz) for ~3 s
        p.on_batch(market.advance(0.5))
        batches += 1
        qtbot.wait(50)
    elapsed = time.monotonic() - t0
    qtbot.waitUntil(lambda: not p._runner.busy, timeout=60_000)
    p.shutdown()
    assert batches >= 40
    assert 2 <= p.jobs_started <= int(elapsed) + 1, (p.jobs_started, elapsed)
    assert p.results >= 1


def test_worker_imports_the_surface_package_before_the_scanner():
    """The surface worker imports spx_core.surface in parallel with the scan worker's first job; the
    scanner first (it pulls spx_core.surface.* in mid-import) let that worker see a partially initialised
    spx_core.surface.surface (~1 start in 6). Same package first = acyclic module locks."""
    import subprocess
    import sys

    code = ("import sys, builtins; seen = []; real = builtins.__import__\n"
            "def spy(name, *a, **k):\n"
            "    if name in ('spx_core.surface', 'spx_core.strategies.scanner') and name not in sys.modules:\n"
            "        seen.append(name)\n"
            "    return real(name, *a, **k)\n"
            "import app.panels.scanner_panel as p; builtins.__import__ = spy; p._import_core(); print(*seen)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["spx_core.surface", "spx_core.strategies.scanner"]


def test_market_filter_gates_the_scan_and_says_why(panel, context, qtbot):
    from app.panels.scanner_panel import NO_MARKET_STATE
    from spx_core.analytics.market_state import MarketState

    def rescanned(action):
        before = panel.results
        action()
        qtbot.waitUntil(lambda: panel.results > before, timeout=60_000)

    # ticking the box with a VIX ceiling: no state published yet -> fails closed, nothing scanned
    panel.form.vix_max.setValue(20.0)
    rescanned(lambda: panel.form.gate.setChecked(True))
    assert panel.outcome.result is None and panel.model.rowCount() == 0
    assert NO_MARKET_STATE in panel.status_label.text() and panel.payoff.data is None
    # the Market panel publishes a state above the ceiling: the gate names the failing condition
    context.set_market_state(MarketState(vix=27.5, vix_as_of=START.date()))
    rescanned(lambda: panel.refresh(full=True))
    assert panel.outcome.result is None and "27.5" in panel.status_label.text()
    ok, message = panel.self_test_status()
    assert ok and "market filter" in message
    # a calm market passes: candidates again
    context.set_market_state(MarketState(vix=14.0, vix_as_of=START.date()))
    rescanned(lambda: panel.refresh(full=True))
    assert panel.outcome.result is not None and panel.model.rowCount() > 0
    # unticking removes the gate, and presets leave the gate alone
    assert panel.form.market_filter().vix_max == 20.0
    panel.form.preset.setCurrentIndex(2)
    assert panel.form.gate.isChecked()
    rescanned(lambda: panel.form.gate.setChecked(False))
    assert panel.form.market_filter() is None


def test_a_slow_scan_keeps_the_worker_at_most_half_busy(panel, market):
    """New data waits max(rescan interval, 2 x the last scan's seconds) after the last scan started."""
    since_last_start = 0.5
    panel.last_compute_seconds = 0.4  # a 0.4 s scan: the next one no sooner than 0.8 s after it started
    assert not panel.job_spacing() <= since_last_start
    panel.last_compute_seconds = 0.2
    assert panel.job_spacing() <= since_last_start


def test_in_the_main_window_a_tab_behind_the_chain_that_scans_when_raised(window, qtbot, run_async):
    chain, scanner = window.docks["chain"], window.docks["scanner"]
    panel = window.panels["scanner"]
    assert scanner in window.tabifiedDockWidgets(chain)
    run_async(window.start_feed(), timeout=30)
    qtbot.waitUntil(lambda: window.panels["chain"].results > 0, timeout=30_000)
    # behind the chain it computes nothing (the panel framework idles covered panels)
    assert not panel.on_screen() and panel.jobs_started == 0
    scanner.raise_()
    qtbot.waitUntil(lambda: panel.model.rowCount() > 0, timeout=60_000)
    assert panel.payoff.data is not None and panel.self_test_status()[0]
    # the window's order ticket listens: Trade sends the selected candidate there
    assert panel.trade_button.toolTip() != NO_TICKET_TIP
    assert panel.trade_button.isEnabled() == (panel.selected_candidate() is not None)
    window.reset_layout()  # the default layout keeps the tab and puts the chain in front again
    assert scanner in window.tabifiedDockWidgets(chain)


def test_picking_a_structure_starts_from_its_usual_delta_and_widths(panel, qtbot):
    from spx_core.strategies.scanner_params import STRUCTURE_DEFAULTS

    form = panel.form
    before = panel.results
    form.structure.setCurrentIndex(form.structure.findData(ScanStructure.IRON_BUTTERFLY))
    delta, widths = STRUCTURE_DEFAULTS[ScanStructure.IRON_BUTTERFLY]
    params = form.params()
    assert params.short_delta == delta and params.widths == widths and form.preset.currentText() == CUSTOM
    qtbot.waitUntil(lambda: panel.results > before, timeout=60_000)
    assert panel.outcome.params.structure is ScanStructure.IRON_BUTTERFLY and panel.model.rowCount() > 0


def test_at_1280x720_the_score_is_not_cut_off_at_the_tables_edge(window, qtbot, run_async):
    window.resize(1280, 720)
    panel = window.panels["scanner"]
    window.docks["scanner"].raise_()
    run_async(window.start_feed(), timeout=30)
    qtbot.waitUntil(lambda: panel.model.rowCount() > 0, timeout=60_000)
    qtbot.wait(100)
    header = panel.table.horizontalHeader()
    titles = [column.title for column in COLUMNS]
    score, strikes = titles.index("Score"), titles.index("Strikes\n(pts)")
    assert header.visualIndex(score) == header.visualIndex(strikes) + 1  # read beside the structure it ranks
    right = header.sectionViewportPosition(score) + header.sectionSize(score)
    assert right <= panel.table.viewport().width(), (right, panel.table.viewport().width())
    # a view order only: the model's columns (and sorting by them) are unchanged
    assert panel.model.headerData(score, Qt.Orientation.Horizontal) == "Score"
