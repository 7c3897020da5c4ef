"""The Backtest panel on a real SQLite file holding a short recorded simulated session: a run fills every tab
with the engine's numbers, cancel stops it, a trade click shows its legs and payoff, two runs overlay in Compare,
errors are one line, and the exports write what is shown."""

from __future__ import annotations

import math
import shutil
from datetime import date, datetime

import pandas as pd
import pytest
from PySide6.QtCore import Qt

from app.backtest_worker import BacktestRequest, data_range, run_backtest
from app.models.backtest_model import (
    DecisionsModel,
    MetricsModel,
    RunsModel,
    TradesModel,
)
from app.models.backtest_trade import trade_payoff
from app.panels.backtest_panel import BacktestPanel
from app.panels.backtest_view import NO_STORE
from spx_core.backtest.config import load_spec
from spx_core.cli.simulate_command import record_session
from spx_core.domain.calendar import ET
from spx_core.execution.fill_model import FillMode
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.storage.backtest_repo import BacktestRepository
from spx_core.storage.store import Store

PRESET = "credit verticals 3/5/7 DTE"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """75 simulated minutes from 09:59 ET (the preset enters at 10:00) in a real database file."""
    path = tmp_path_factory.mktemp("btpanel") / "data.sqlite"
    store = Store.open(path)
    record_session(store, SimulatedMarket(SimulatorConfig(seed=5, start=datetime(2024, 3, 13, 9, 59, tzinfo=ET))),
                   "s", 75, replace=False)
    store.close()
    return path


@pytest.fixture
def db(recorded, tmp_path):
    """The recorded file, copied: each test starts with no stored run."""
    path = tmp_path / "data.sqlite"
    shutil.copyfile(recorded, path)
    return path


@pytest.fixture
def shell(qtbot, db):
    store = Store.open(db)
    p = BacktestPanel()
    qtbot.addWidget(p)
    p.resize(1280, 720)
    p.show()
    p.set_store(store)
    yield p
    p.shutdown()
    store.close()


@pytest.fixture
def panel(shell):
    """The panel's content (built when the panel was shown)."""
    return shell.view


def _run(qtbot, panel, *, stop=1.0, fill=FillMode.MID):
    """A run of the preset with a stop the session reaches (a loss of 1% of the credit), mid fills."""
    panel.form.stop_loss.setValue(stop)
    panel.form.set_fill(fill)
    assert panel.form.select_session("s")
    assert panel.run()
    qtbot.waitUntil(lambda: not panel.busy, timeout=60_000)
    return panel.outcome


def test_form_offers_the_stored_session_with_its_count(panel):
    assert panel.form.select_session("s")
    assert panel.form.data.currentText() == "s (150)"  # SPX and its SPY companions
    assert panel.form.data_info.text() == "s: 150 snapshots, 2024-03-13 to 2024-03-13 ET"
    panel.form.data.setCurrentIndex(0)  # the date range: its snapshot count
    assert "75 SPX snapshots between 2024-03-13 and 2024-03-13" in panel.form.data_info.text()


def test_a_run_fills_every_tab_with_the_engines_numbers(qtbot, panel, db):
    outcome = _run(qtbot, panel)
    assert outcome is not None and outcome.ok and not outcome.result.cancelled
    # stored with its canonical TOML: that config alone (as spx-backtest run reads it) gives the same result
    store = Store.open(db)
    try:
        stored = BacktestRepository(store).load_run(outcome.run_id)
        again = load_spec(stored.config_toml).backtest(store).run()
    finally:
        store.close()
    assert stored.info.result_checksum == again.result_checksum == outcome.result.result_checksum
    assert len(stored.trades) == len(outcome.result.trades) and stored.info.name == outcome.request.describe()
    trades = outcome.result.trades
    assert trades and trades[0].exit_reason == "stop_loss"
    r = panel.tabs
    assert r.metrics_model.text("n_trades").startswith(f"{outcome.metrics.n_trades} (")
    assert r.metrics_model.text("total_return") == f"{outcome.metrics.total_return * 100:+.2f}%"
    assert r.trades_model.rowCount() == len(trades)
    assert r.decisions_model.rowCount() == len(outcome.result.decisions) > len(trades)
    assert len(r.equity.equity_items) == 1 and len(r.equity.equity_items[0].xData) == len(outcome.result.equity)
    closed = [t.pnl for t in trades if t.exit_ns is not None]
    assert sorted(r.histogram.pnl) == sorted(closed) and r.histogram.message_text == ""
    assert r.monthly.model.rowCount() == 1  # March 2024
    assert panel.populated and panel.health()[0]
    # one losing trade: no winner to set the losers' entry factors against
    assert r.factors_note.text().endswith("— (needs closed winners and losers with entry factors)")
    assert "return" in panel.status_label.text() and "run #1" in panel.status_label.text()
    assert panel.progress.value() == panel.progress.maximum() == outcome.result.steps[1]


def test_trade_click_shows_its_legs_and_payoff(qtbot, panel):
    outcome = _run(qtbot, panel)
    trade = outcome.result.trades[0]
    panel.tabs.select_trade(0)
    text = panel.tabs.trade_text.text()
    for root, expiry, strike, right, ratio in trade.legs:
        assert f"{ratio:+d} × {root} {expiry} {strike:g} {'call' if right == 'C' else 'put'}" in text
    assert f"Entry {trade.entry_price:.2f}" in text and trade.exit_reason in text
    data = panel.tabs.payoff.data
    assert data is not None and len(data.prices) > 10
    store = Store.open(panel.db_path)
    try:  # the spot drawn is the index stored at the entry
        (entry,) = store.list_snapshots(underlying="SPX", start=trade.entry_ns, end=trade.entry_ns)
    finally:
        store.close()
    assert data.spot == entry.underlying_price
    # a put credit vertical: the full credit (less fees) above the short strike, the width less the credit below
    short = max(leg[2] for leg in trade.legs)
    width = short - min(leg[2] for leg in trade.legs)
    assert data.expiry[-1] == pytest.approx(trade.entry_price * 100 * trade.quantity - trade.fees)
    assert data.expiry[0] == pytest.approx((trade.entry_price - width) * 100 * trade.quantity - trade.fees)
    assert len(data.breakevens) == 1 and short - width < data.breakevens[0] < short


def test_cancel_stops_the_run_and_shows_the_partial_result(qtbot, panel, monkeypatch):
    import app.backtest_worker as worker

    real = worker.RunControl.progress

    def slow(self, done, total):  # a step takes long enough to press Cancel in
        import time
        time.sleep(0.05)
        real(self, done, total)

    monkeypatch.setattr(worker.RunControl, "progress", slow)
    panel.form.select_session("s")
    assert panel.run()
    qtbot.waitUntil(lambda: panel.progress.value() >= 3, timeout=20_000)
    assert "left" in panel.eta_label.text()
    panel.cancel()
    qtbot.waitUntil(lambda: not panel.busy, timeout=20_000)
    done, total = panel.outcome.result.steps
    assert panel.outcome.result.cancelled and 3 <= done < total == 75
    assert "cancelled after" in panel.status_label.text()
    assert panel.run_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_compare_overlays_two_runs_with_their_metrics(qtbot, panel):
    first = _run(qtbot, panel, stop=1.0)
    second = _run(qtbot, panel, stop=0.0)  # no stop: held to the end
    r = panel.tabs
    assert r.runs_model.rowCount() == 2
    for row in r.runs_model.rows:
        r.runs_model.set_checked(row.run_id, True)
    assert r.compare_model.columnCount() == 3
    assert len(r.compare_chart.equity_items) == 2
    shown = {r.compare_model.headerData(c, Qt.Orientation.Horizontal) for c in (1, 2)}
    assert shown == {f"Run #{first.run_id}", f"Run #{second.run_id}"}
    total = [r.compare_model.data(r.compare_model.index(0, c)) for c in (1, 2)]
    by_run = {r.compare_model.runs[c - 1].run_id: total[c - 1] for c in (1, 2)}
    assert by_run[first.run_id] == f"{first.metrics.total_return * 100:+.2f}%"
    assert by_run[second.run_id] == f"{second.metrics.total_return * 100:+.2f}%"
    assert first.metrics.ending_equity != second.metrics.ending_equity


def test_no_snapshots_in_the_range_is_one_line(qtbot, panel):
    panel.form.data.setCurrentIndex(0)
    panel.form.start.setDate(date(2024, 3, 13))
    panel.form.end.setDate(date(2024, 3, 13))
    request = panel.form.request(panel.db_path)
    empty = BacktestRequest(**{**{f: getattr(request, f) for f in request.__dataclass_fields__},
                               "start": date(2023, 1, 3), "end": date(2023, 1, 4)})
    outcome = run_backtest(empty)
    assert not outcome.ok and "\n" not in outcome.error
    assert outcome.error.startswith("[data] start/end: no stored snapshots from 2023-01-03 to 2023-01-04 (ET)")


def test_without_a_database_run_says_so(qtbot):
    p = BacktestPanel()
    qtbot.addWidget(p)
    assert p.health()[0]  # nothing asked, nothing to check
    assert not p.view.run() and p.view.status_label.text() == NO_STORE
    p.shutdown()


def test_the_content_is_built_on_the_first_show(qtbot, db):
    p = BacktestPanel()
    qtbot.addWidget(p)
    store = Store.open(db)
    try:
        p.set_store(store)
        assert p._view is None
        p.show()
        assert p._view is not None and p.view.form.select_session("s")  # the store set before is the view's
    finally:
        p.shutdown()
        store.close()


def test_exports_write_the_trades_equity_and_chart(qtbot, panel, tmp_path):
    outcome = _run(qtbot, panel)
    trades_csv, equity_csv = panel.export_csv(tmp_path)
    trades = pd.read_csv(trades_csv)
    assert len(trades) == len(outcome.result.trades)
    assert trades["pnl"].sum() == pytest.approx(sum(t.pnl for t in outcome.result.trades))
    equity = pd.read_csv(equity_csv)
    assert len(equity) == len(outcome.result.equity) and equity["equity"].iloc[-1] == outcome.result.equity.iloc[-1]
    panel.tabs.setCurrentIndex(1)  # Equity
    png = panel.export_png(tmp_path / "equity.png")
    assert png.stat().st_size > 1000
    panel.tabs.setCurrentIndex(4)  # Monthly: the heat map in its page
    assert panel.export_png(tmp_path / "monthly.png").stat().st_size > 1000
    assert panel.tabs.monthly.height() < 10 * panel.fontMetrics().height()  # one year: not the whole tab high
    panel.tabs.setCurrentIndex(0)  # Summary: a table
    with pytest.raises(ValueError, match="no chart on this tab"):
        panel.export_png(tmp_path / "summary.png")


def test_data_range_counts_the_stored_snapshots(db):
    store = Store.open(db)
    try:
        data = data_range(store)
    finally:
        store.close()
    assert data.n_snapshots == 150 and [s.name for s in data.sessions] == ["s"]  # SPX + SPY companions
    assert "150 snapshots stored, 2024-03-13 to 2024-03-13 ET (1 session)" == data.text()


def test_models_pass_the_model_tester(qtmodeltester, qtbot, panel):
    _run(qtbot, panel)
    r = panel.tabs
    for model in (r.metrics_model, r.trades_model, r.decisions_model, r.runs_model):
        qtmodeltester.check(model)
    assert isinstance(r.metrics_model, MetricsModel) and isinstance(r.trades_model, TradesModel)
    assert isinstance(r.decisions_model, DecisionsModel) and isinstance(r.runs_model, RunsModel)


def test_decisions_filter_by_action_and_text(qtbot, panel):
    outcome = _run(qtbot, panel)
    model = panel.tabs.decisions_model
    skips = [d for d in outcome.result.decisions if d.action == "SKIP"]
    panel.tabs.action_filter.setCurrentIndex(panel.tabs.action_filter.findData("SKIP"))
    assert model.rowCount() == len(skips)
    panel.tabs.text_filter.setText("no-such-reason")
    assert model.rowCount() == 0


def test_payoff_of_a_debit_trade():
    from spx_core.backtest.run import TradeRecord

    call = TradeRecord(1, "x", 0, None, "open", (("SPXW", "2024-03-20", 5000.0, "C", 1),), "buy", 10.0, 0.0, 2, 0.0,
                       2.0)
    data = trade_payoff(call)
    data = trade_payoff(call, 5003.0)
    assert data.expiry[0] == pytest.approx(-10.0 * 100 - 1.0)  # per unit: the debit and half the fees
    assert len(data.breakevens) == 1 and math.isclose(data.breakevens[0], 5010.01, abs_tol=1e-6)
    assert data.spot == 5003.0


def test_sweep_tab_runs_a_grid_and_shows_its_heat_map(qtbot, panel, db):
    panel.form.select_session("s")
    panel.form.set_fill(FillMode.MID)
    page = panel.sweep
    page.keys[0].setCurrentText("exits.stop_loss")
    page.values[0].setText("0.01,0.02")
    page.keys[1].setCurrentText("strategy.width")
    page.values[1].setText("25")
    page.workers.setValue(1)
    page.metric.setCurrentText("total_return")
    assert page.run()
    qtbot.waitUntil(lambda: not page.busy, timeout=120_000)
    result = page.outcome.result
    assert [r.error for r in result.rows] == [None, None], page.status.text()
    assert page.model.rowCount() == 2 and page.heat_map.model.rowCount() == 2
    assert page.status.text().startswith(f"sweep #{result.sweep_id}: 2 of 2 points run")
    store = Store.open(db)
    try:  # each point is a stored run of the sweep; the Compare tab lists plain runs only
        assert [r.id for r in BacktestRepository(store).sweep_runs(result.sweep_id)] == [r.run_id for r in result.rows]
    finally:
        store.close()
    panel.tabs.set_runs(panel.library.rows(panel.store))
    assert panel.tabs.runs_model.rowCount() == 0


def test_sweep_with_a_mistyped_grid_is_one_line(qtbot, panel):
    page = panel.sweep
    page.values[0].setText("0.1,,0.2")
    assert not page.run() and "empty value" in page.status.text()
    page.values[0].setText("0.1,0.2")
    page.keys[1].setCurrentText(page.keys[0].currentText())
    assert not page.run() and page.status.text().startswith("pick two different keys")


def test_showing_the_panel_offers_sessions_recorded_meanwhile(qtbot, panel):
    _run(qtbot, panel)
    shown = panel.status_label.text()
    panel.hide()
    record_session(panel.store, SimulatedMarket(SimulatorConfig(seed=6, start=datetime(2024, 3, 14, 9, 59, tzinfo=ET))),
                   "later", 3, replace=False)
    assert panel.form.data.findData("later") < 0
    panel.show()
    assert panel.form.data.findData("later") > 0
    assert panel.status_label.text() == shown  # the run's result line stays
