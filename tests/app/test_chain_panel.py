"""ChainPanel with qtbot, fed real QuoteBatches from the simulated market."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.models.chain_data import ChainField
from app.models.chain_model import STRIKE
from app.panels.chain_panel import ChainPanel
from spx_core.domain import ET, OptionContract, Right
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig

# The offscreen platform plugin warns about size hints whenever a top-level window is shown.
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")

START = datetime(2024, 3, 13, 10, 30, tzinfo=ET)


@pytest.fixture(scope="module")
def batches():
    """A first full batch and a few one-second ticks of a seeded simulated market."""
    market = SimulatedMarket(SimulatorConfig(seed=11, start=START))
    return [market.advance(1.0) for _ in range(6)]


@pytest.fixture
def panel(qtbot):
    p = ChainPanel(strike_window=21, refresh_hz=50.0)
    qtbot.addWidget(p)
    p.resize(1400, 700)
    p.show()
    yield p
    p.shutdown()


def populated(panel: ChainPanel, qtbot, batch) -> None:
    panel.on_batch(batch)
    qtbot.waitUntil(lambda: panel.model.snapshot is not None and panel.model.snapshot.time_ns == batch.snapshot.time_ns,
                    timeout=10_000)


def test_panel_populates_from_a_live_batch(panel, qtbot, batches):
    first = batches[0]
    assert first.layout_changed
    populated(panel, qtbot, first)
    ok, message = panel.self_test_status()
    assert ok, message
    slices = first.snapshot.expiries()
    assert panel.expiry_combo.count() == len(slices)
    label = panel.expiry_combo.currentText()
    assert "DTE" in label and ("SPXW PM" in label or "SPX AM" in label)
    assert panel.model.rowCount() == 21
    atm = panel.model.atm_row
    assert atm is not None and 5 <= atm <= 15
    strike = panel.model.block.strikes[panel.model.atm_strike_index]
    fwd = panel.model.block.forward
    assert abs(strike - fwd) <= np.max(np.diff(panel.model.block.strikes))  # ATM is the strike nearest F
    assert "Fwd" in panel.info_label.text() and "ATM IV" in panel.info_label.text()


def test_bursts_of_batches_are_coalesced_into_the_latest(panel, qtbot, batches):
    populated(panel, qtbot, batches[0])
    applied = []
    original = panel.model.set_chain
    panel.model.set_chain = lambda *a, **k: (applied.append(a[0].time_ns), original(*a, **k))[1]
    for b in batches[1:]:
        panel.on_batch(b)  # five batches inside one refresh interval
    populated(panel, qtbot, batches[-1])
    assert applied[-1] == batches[-1].snapshot.time_ns
    assert len(applied) < len(batches) - 1


def test_switching_expiry_shows_that_expiry(panel, qtbot, batches):
    populated(panel, qtbot, batches[0])
    slices = batches[0].snapshot.expiries()
    target = next(s for s in slices if s.root.value == "SPX")  # an AM-settled monthly
    panel.select_expiry((target.root, target.expiry))
    qtbot.waitUntil(lambda: panel.model.block is not None and panel.model.block.key == (target.root, target.expiry),
                    timeout=10_000)
    assert "SPX AM" in panel.expiry_combo.currentText()
    assert panel.self_test_status()[0]


def test_clicking_a_put_cell_emits_that_contract(panel, qtbot, batches):
    populated(panel, qtbot, batches[0])
    model = panel.model
    row = model.atm_row
    column = model.columns.index((1, ChainField.BID))  # put bid
    index = model.index(row, column)
    rect = panel.table.visualRect(index)
    with qtbot.waitSignal(panel.contract_selected, timeout=2000) as blocker:
        qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    contract = blocker.args[0]
    assert isinstance(contract, OptionContract)
    assert contract.right is Right.PUT
    assert contract.strike == model.block.strikes[model.atm_strike_index]
    assert (contract.root, contract.expiry) == model.block.key


def test_column_chooser_and_strike_window(panel, qtbot, batches):
    populated(panel, qtbot, batches[0])
    before = panel.model.columnCount()
    with qtbot.waitSignal(panel.columns_changed) as blocker:
        panel._column_actions[ChainField.GAMMA].setChecked(False)
    assert "GAMMA" not in blocker.args[0]
    assert panel.model.columnCount() == before - 2
    assert (STRIKE, None) in panel.model.columns
    panel.set_visible_fields(["BID", "ASK", "IV"])
    assert panel.model.columnCount() == 7
    with qtbot.waitSignal(panel.strike_window_changed) as blocker:
        panel.window_spin.setValue(11)
    assert blocker.args == [11] and panel.model.rowCount() == 11
    with qtbot.waitSignal(panel.model.modelReset):
        qtbot.mouseClick(panel.recenter_button, Qt.MouseButton.LeftButton)
    assert panel.model.atm_row == 5


def test_self_test_reports_missing_data(panel):
    ok, message = panel.self_test_status()
    assert not ok and "no rows" in message


def _themed(qapp, theme: str):
    from app.main_window import apply_theme

    style, sheet = qapp.style().name(), qapp.styleSheet()
    apply_theme(qapp, theme)
    return lambda: (qapp.setStyle(style), qapp.setStyleSheet(sheet))


def test_rendered_cell_backgrounds_match_the_model(panel, qtbot, qapp):
    """Regression: the view painted the previous cell's background into cells that have none.

    The ATM put side leaked amber into the call side of the strike below, and the strike column's
    grey into the OTM puts (the delegate reuses one role array; multiData must clear unset roles).
    Checked on rendered pixels, since the model's data() was right all along.
    """
    market = SimulatedMarket(SimulatorConfig(seed=7, start=datetime(2026, 11, 23, 9, 30, tzinfo=ET)))
    restore = _themed(qapp, "dark")
    try:
        populated(panel, qtbot, market.advance(1.0))
        model, table = panel.model, panel.table
        image = table.viewport().grab().toImage()
        by_brush: dict[int | None, set[int]] = {}
        for row in range(model.rowCount()):
            for column in range(model.columnCount()):
                index = model.index(row, column)
                rect = table.visualRect(index)
                if not table.viewport().rect().contains(rect):
                    continue
                brush = model.data(index, Qt.ItemDataRole.BackgroundRole)
                key = None if brush is None else brush.color().rgba()
                by_brush.setdefault(key, set()).add(image.pixel(rect.left() + 2, rect.center().y()))
        base = table.viewport().palette().base().color().rgb()
        atm = model.atm_row
        assert atm is not None and model.data(model.index(atm + 1, 0), Qt.ItemDataRole.BackgroundRole) is None
        assert by_brush[None] == {base}, "a cell without a model background was painted with one"
        for key, pixels in by_brush.items():
            assert len(pixels) == 1, f"cells with background {key} rendered in several colours"
            if key is not None:
                assert pixels != {base}
    finally:
        restore()


# --- issue 7.3: the chain near expiry, and what a trader expects of it -------------------------------

def _zero_dte_key(batch):
    sl = batch.snapshot.expiries()[0]
    assert sl.expiry == batch.snapshot.time.astimezone(ET).date()  # the simulator lists a 0DTE
    return sl.root, sl.expiry


def test_chain_uses_the_surfaces_forward_and_discount(panel, qtbot, batches):
    from spx_core.surface import fit_surface

    populated(panel, qtbot, batches[0])
    key = _zero_dte_key(batches[0])
    panel.select_expiry(key)
    qtbot.waitUntil(lambda: panel.model.block is not None and panel.model.block.key == key, timeout=10_000)
    fit = fit_surface(batches[0].snapshot).by_expiry(*key)
    b = panel.model.block
    assert b.discount == fit.discount < 1.0 and b.forward == fit.forward  # the chain said DF 1.00000
    assert f"DF {fit.discount:.5f}" in panel.info_label.text()


def test_zero_dte_shows_time_left_as_h_mm(qtbot):
    market = SimulatedMarket(SimulatorConfig(seed=3, start=datetime(2024, 3, 13, 15, 45, tzinfo=ET)))
    batch = market.advance(1.0)
    p = ChainPanel(strike_window=21, refresh_hz=50.0)
    qtbot.addWidget(p)
    p.show()
    try:
        populated(p, qtbot, batch)
        key = _zero_dte_key(batch)
        p.select_expiry(key)
        qtbot.waitUntil(lambda: p.model.block is not None and p.model.block.key == key, timeout=10_000)
        assert "0DTE 0:15 left" in p.expiry_combo.currentText()  # 15:45:01: 14 min 59 s to the close
        assert "T 0:15 left" in p.info_label.text()
        assert (0, ChainField.THETA_CLOSE) in p.model.columns
    finally:
        p.shutdown()


def test_header_shows_expected_move_and_volume_and_oi_totals(panel, qtbot, batches):
    populated(panel, qtbot, batches[0])
    b = panel.model.block
    move, frac = b.expected_move()
    assert f"EM ±{move:,.2f} ({frac * 100:.2f}%)" in panel.info_label.text()
    call_vol, put_vol = b.side_totals(ChainField.VOLUME)
    assert f"C {call_vol:,.0f} / P {put_vol:,.0f}" in panel.totals_label.text()
    assert "Open interest" in panel.totals_label.text()


def _deep_chain():
    """One expiry with call bids over 1,000 and its served IVs."""
    from tests.app.test_chain_model import make_chain

    from spx_core.surface.served import serve_expiry

    snap = make_chain(override={(4500.0, True): (1234.5, 1240.0), (4510.0, True): (1199.95, 1205.0)})
    sl = snap.expiries()[0]
    return snap, serve_expiry(snap, sl.root, sl.expiry)


def test_columns_fit_their_header_and_widest_value(qtbot):
    from PySide6.QtGui import QFont, QFontMetrics
    from PySide6.QtWidgets import QStyle

    p = ChainPanel(strike_window=61, refresh_hz=0.001)
    qtbot.addWidget(p)
    p.resize(900, 600)  # narrower than the chain: the old equal-width columns cut values to "1,2…"
    p.show()
    try:
        snap, served = _deep_chain()
        p.model.set_chain(snap, served)
        qtbot.wait(10)
        model, table = p.model, p.table
        bids = [model.data(model.index(r, model.columns.index((0, ChainField.BID)))) for r in range(model.rowCount())]
        assert any(len(text) >= 8 and "," in text for text in bids)  # e.g. 1,234.50
        header = table.horizontalHeader()
        style = table.style()
        head_margin = 2 * style.pixelMetric(QStyle.PixelMetric.PM_HeaderMargin)
        cell_margin = 2 * (style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin) + 1)
        for c in range(model.columnCount()):
            width = table.columnWidth(c)
            label = model.headerData(c, Qt.Orientation.Horizontal)
            assert header.fontMetrics().horizontalAdvance(label) + head_margin <= width, label
            for r in range(model.rowCount()):
                index = model.index(r, c)
                font = model.data(index, Qt.ItemDataRole.FontRole) or table.font()
                text = model.data(index)
                assert QFontMetrics(QFont(font)).horizontalAdvance(text) + cell_margin <= width, (label, text)
    finally:
        p.shutdown()


def test_recentre_and_first_show_put_the_atm_row_mid_viewport(qtbot, batches):
    p = ChainPanel(strike_window=100, refresh_hz=50.0)
    qtbot.addWidget(p)
    p.resize(1200, 500)
    p.show()
    try:
        populated(p, qtbot, batches[0])
        table, model = p.table, p.model

        def atm_offset() -> int:
            rect = table.visualRect(model.index(model.atm_row, 0))
            return abs(rect.center().y() - table.viewport().height() // 2)

        row_h = table.rowHeight(0)
        assert model.atm_row is not None and model.atm_row > table.viewport().height() // row_h
        assert atm_offset() <= row_h  # first show
        table.scrollToTop()
        assert atm_offset() > row_h
        qtbot.mouseClick(p.recenter_button, Qt.MouseButton.LeftButton)
        assert atm_offset() <= row_h
        table.scrollToTop()
        p.menu_actions()[0].trigger()  # the window's Data menu "Re-centre chain" (Ctrl+R)
        assert atm_offset() <= row_h
    finally:
        p.shutdown()


def test_chosen_expiry_survives_refreshes_and_restarts(qtbot, batches):
    from spx_core.marketdata.source import QuoteBatch

    first = ChainPanel(strike_window=21, refresh_hz=50.0)
    qtbot.addWidget(first)
    first.show()
    populated(first, qtbot, batches[0])
    target = batches[0].snapshot.expiries()[5]
    key = (target.root, target.expiry)
    first.select_expiry(key)
    qtbot.waitUntil(lambda: first.model.block is not None and first.model.block.key == key, timeout=10_000)
    relisted = QuoteBatch(batches[1].snapshot, np.zeros(0, np.int64), True, 99)  # a layout refresh
    populated(first, qtbot, relisted)
    assert first.selected_expiry() == key
    first.shutdown()
    again = ChainPanel(strike_window=21, refresh_hz=50.0)  # a restart: a new panel, the same settings file
    qtbot.addWidget(again)
    again.show()
    try:
        populated(again, qtbot, batches[0])
        assert again.selected_expiry() == key and again.model.block.key == key
    finally:
        again.shutdown()


def test_ctrl_c_copies_the_selection_as_tab_separated_text(panel, qtbot, batches, qapp):
    from PySide6.QtCore import QItemSelection, QItemSelectionModel

    populated(panel, qtbot, batches[0])
    model, table = panel.model, panel.table
    row = model.atm_row
    c0, c1 = model.columns.index((1, ChainField.BID)), model.columns.index((1, ChainField.IV))
    table.setFocus()
    table.selectionModel().select(QItemSelection(model.index(row, c0), model.index(row + 1, c1)),
                                  QItemSelectionModel.SelectionFlag.ClearAndSelect)
    qtbot.keyClick(table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    lines = qapp.clipboard().text().split("\n")
    assert len(lines) == 2
    assert lines[0].split("\t") == [model.data(model.index(row, c)) for c in range(c0, c1 + 1)]


def test_right_click_menu_offers_copy_row_export_recentre_and_columns(panel, qtbot, batches, qapp):
    populated(panel, qtbot, batches[0])
    index = panel.model.index(panel.model.atm_row, 0)
    menu = panel.context_menu(index)
    texts = [a.text().replace("&", "") for a in menu.actions() if not a.isSeparator()]
    assert texts == ["Copy", "Copy row", "Export CSV…", "Re-centre", "Columns"]
    next(a for a in menu.actions() if a.text() == "Copy &row").trigger()
    header, values = (line.split("\t") for line in qapp.clipboard().text().split("\n"))
    assert header[0].startswith("Call ") and "Strike" in header and len(values) == panel.model.columnCount()
    assert values[header.index("Strike")] == panel.model.data(
        panel.model.index(panel.model.atm_row, panel.model.columns.index((2, None))))


def test_csv_export_of_the_shown_chain(panel, qtbot, batches, tmp_path):
    import csv

    populated(panel, qtbot, batches[0])
    out = tmp_path / "chain.csv"
    ok, message = panel.export_csv(out)
    assert ok and message.startswith("exported")
    with out.open(newline="") as fh:
        rows = list(csv.reader(fh))
    head = rows[0]
    assert head[:2] == ["root", "expiry"] and "call_bid" in head and "strike" in head and "put_iv" in head
    assert len(rows) - 1 == panel.model.rowCount()
    lo, _ = panel.model.window()
    b = panel.model.block
    first = dict(zip(head, rows[1], strict=True))
    assert float(first["strike"]) == b.strikes[lo]
    assert float(first["put_iv"]) == pytest.approx(b.values[1, lo, ChainField.IV], abs=1e-4)
    ok, message = panel.export_csv(tmp_path / "missing" / "chain.csv")
    assert not ok and message.startswith("export failed: cannot write") and "\n" not in message
    assert not (tmp_path / "missing").exists() and list(tmp_path.iterdir()) == [out]  # nothing half-written


def test_calls_and_puts_are_captions_not_buttons(panel, qtbot, batches):
    from PySide6.QtWidgets import QAbstractButton, QLabel

    populated(panel, qtbot, batches[0])
    texts = [w.text() for w in panel.findChildren(QAbstractButton)] + [w.text() for w in panel.findChildren(QLabel)]
    assert not any("CALLS" in t or "PUTS" in t for t in texts)
    image = panel.captions.grab().toImage()
    background = image.pixel(0, 0)
    assert any(image.pixel(x, image.height() // 2) != background for x in range(image.width()))


def test_importing_the_chain_panel_does_not_load_scipy():
    """The served-IV core is scipy-heavy; it loads in the worker, not on the start-up path."""
    import subprocess
    import sys

    code = ("import sys, app.panels.chain_panel, app.models.chain_model; "
            "print('scipy' in sys.modules, 'spx_core.surface' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["False", "False"]
