"""Automation panel on a real session (paper broker, simulated market, SQLite file): the presets seeded disabled in
manual mode; on/off and mode persist in the store; "Decide now" records and shows a decision and stages a TRADE in
the ticket; the summary exports as CSV."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.context import AppContext
from app.models.automation_model import STRATEGY_COLUMNS
from app.ops_session import OpsSession
from app.panels.automation_panel import AutomationPanel
from app.settings import AppSettings
from spx_core.automation.presets import PRESETS
from spx_core.storage.strategy_repo import StrategyRepository
from tests.app.test_alerts_panel import FakeDesktop
from tests.app.trading_factory import drive, session_on, sim_market


@pytest.fixture
def setup(qtbot, tmp_path):
    market = sim_market()
    session, store = session_on(tmp_path / "auto.sqlite")
    drive(session, market)
    context = AppContext(AppSettings())
    staged: list = []
    context.order_requested.connect(staged.append)
    ops = OpsSession(session, store, AppSettings(), stage=context.request_order, desktop=FakeDesktop())
    panel = AutomationPanel()
    panel.bind(context)
    qtbot.addWidget(panel)
    panel.resize(1100, 600)
    panel.show()
    context.set_trading(session)
    context.set_ops(ops)
    yield panel, ops, store, staged
    panel.shutdown()
    ops.close()
    session.close()
    store.close()


def test_presets_are_seeded_disabled_in_manual_mode_and_listed_with_their_next_entry(setup):
    panel, ops, store, _ = setup
    stored = StrategyRepository(store).strategies()
    assert {s.config.name for s in stored} == set(PRESETS)
    assert not any(s.enabled for s in stored) and {str(s.mode) for s in stored} == {"manual"}
    model = panel.strategies_model
    assert model.rowCount() == len(PRESETS) and model.columnCount() == len(STRATEGY_COLUMNS)
    row = model.row_of("credit verticals 3/5/7 DTE")
    assert model.index(row, 0).data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Unchecked
    assert model.index(row, 2).data() == "manual" and model.index(row, 4).data() == "credit verticals"
    # the simulated clock is 11:00 ET on a Wednesday: the next slot is today at 11:00 or 12:00
    assert model.index(row, 3).data().startswith("Wed 13 Mar 1")


def test_on_off_and_mode_persist_in_the_store(setup):
    panel, ops, store, _ = setup
    name = "iron condor (regime filter)"
    model = panel.strategies_model
    assert model.setData(model.index(model.row_of(name), 0), Qt.CheckState.Checked.value,
                         Qt.ItemDataRole.CheckStateRole)
    assert StrategyRepository(store).get(name).enabled is True
    assert model.index(model.row_of(name), 0).data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked
    panel.confirm_auto = lambda _name: False  # the trader says no: stays manual
    assert panel.select_strategy(name) and not panel.toggle_mode()
    assert str(StrategyRepository(store).get(name).mode) == "manual"
    panel.confirm_auto = lambda _name: True
    assert panel.toggle_mode()
    assert str(StrategyRepository(store).get(name).mode) == "auto"
    assert model.index(model.row_of(name), 2).data() == "auto" and panel.mode_button.text() == "Switch to manual"
    # a restart (a new ops session on the same store) keeps them and does not re-seed
    again = OpsSession(ops.trading, store, AppSettings(), desktop=FakeDesktop())
    try:
        kept = next(s for s in again.automation.strategies if s.config.name == name)
        assert kept.enabled and str(kept.mode) == "auto" and len(again.automation.strategies) == len(PRESETS)
    finally:
        again.close()


def test_decide_now_records_and_shows_the_decision_and_stages_a_trade(qtbot, setup):
    panel, ops, store, staged = setup
    name = "credit verticals 3/5/7 DTE"
    assert panel.select_strategy(name) and panel.decide_selected()
    qtbot.waitUntil(lambda: panel.decisions_model.rowCount() == 1, timeout=30_000)
    decision = panel.decisions_model.row_at(0)
    assert decision.strategy == name and decision.action in ("TRADE", "SKIP") and decision.reasons
    assert ops.trading.repo.decisions() == [decision]  # stored
    texts = [panel.decisions_model.index(0, c).data() for c in range(5)]
    assert texts[1] == name and texts[2] == decision.action and texts[3] == "; ".join(decision.reasons)
    if decision.traded:  # manual mode: the ticket opens with the order; nothing is sent
        assert [r.ref for r in staged] == [decision.order_ref]
        assert ops.trading.orders() == []
    else:
        assert staged == []


def test_summary_exports_as_csv(qtbot, setup, tmp_path):
    panel, ops, store, _ = setup
    assert panel.select_strategy("credit verticals 3/5/7 DTE") and panel.decide_selected()
    qtbot.waitUntil(lambda: panel.decisions_model.rowCount() == 1, timeout=30_000)
    assert panel.summary_model.rowCount() >= 1 and panel.export_button.isEnabled()
    target = tmp_path / "summary.csv"
    panel.ask_csv_path = lambda _scope: str(target)
    assert panel.export_csv() == str(target)
    text = target.read_text(encoding="utf-8")
    assert "credit verticals 3/5/7 DTE" in text and text.count("\n") >= 2
    panel.ask_csv_path = lambda _scope: str(tmp_path / "missing" / "dir" / "x.csv")
    assert panel.export_csv() == "" and "not saved" in panel.status_label.text()
