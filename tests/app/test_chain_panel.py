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
