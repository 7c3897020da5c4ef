"""LivePanel (app/panels/base.py) with a tiny probe panel, and registering a panel in the main window."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.main_window import PANELS, MainWindow, PanelSpec
from app.panels.base import Job, LivePanel, coalesce
from app.settings import AppSettings
from spx_core.domain import ET, ChainSnapshot
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.marketdata.source import QuoteBatch

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")

START = datetime(2024, 3, 13, 11, 0, tzinfo=ET)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    time_ns: int
    underlying: float
    changed: int
    thread: int
    seconds: float


def probe_compute(snapshot: ChainSnapshot, changed: int, fail: bool) -> ProbeResult:
    if fail:
        raise ValueError("probe input rejected")
    return ProbeResult(snapshot.time_ns, snapshot.underlying_price, changed, threading.get_ident(), 0.001)


class ProbePanel(LivePanel):
    """The smallest useful live panel: what adding a panel takes (plus one PanelSpec line)."""

    def __init__(self) -> None:
        super().__init__(job_name="probe", refresh_seconds=0.02)
        self.setObjectName("probe_panel")
        self.fail = False
        self.shown: list[ProbeResult] = []
        self.show_threads: list[int] = []
        self.messages: list[str] = []

    def job(self, batch: QuoteBatch) -> Job:
        changed = -1 if batch.layout_changed else len(batch.changed)
        return Job(probe_compute, (batch.snapshot, changed, self.fail))

    def show_result(self, result: ProbeResult) -> None:
        self.shown.append(result)
        self.show_threads.append(threading.get_ident())

    def status_message(self, text: str) -> None:
        self.messages.append(text)


@pytest.fixture(scope="module")
def batches() -> list[QuoteBatch]:
    market = SimulatedMarket(SimulatorConfig(seed=5, start=START))
    return [market.advance(1.0) for _ in range(4)]


@pytest.fixture
def probe(qtbot):
    p = ProbePanel()
    qtbot.addWidget(p)
    p.show()
    yield p
    p.shutdown()


def _same_data(batch: QuoteBatch, sequence: int) -> QuoteBatch:
    """The same quotes a second later: nothing changed but the clock."""
    return QuoteBatch(batch.snapshot, np.zeros(0, np.int64), False, sequence)


def test_coalesce_keeps_the_newest_snapshot_and_every_changed_row(batches):
    a, b = (QuoteBatch(batches[1].snapshot, np.array([3, 7]), False, 1),
            QuoteBatch(batches[2].snapshot, np.array([7, 9]), False, 2))
    merged = coalesce(a, b)
    assert merged.snapshot is b.snapshot and merged.changed.tolist() == [3, 7, 9] and not merged.layout_changed
    assert coalesce(coalesce(batches[0], a), b).layout_changed  # a layout change sticks until taken


def test_compute_runs_off_the_gui_thread_and_shows_on_it(probe, qtbot, batches):
    probe.on_batch(batches[0])
    qtbot.waitUntil(lambda: len(probe.shown) == 1, timeout=5_000)
    gui = threading.get_ident()
    assert probe.shown[0].thread != gui and probe.show_threads == [gui]
    assert probe.shown[0].changed == -1  # the first batch is a layout change
    ok, message = probe.self_test_status()
    assert ok and "1 results" in message


def test_a_burst_of_batches_costs_one_job_on_the_latest(probe, qtbot, batches):
    for b in batches:
        probe.on_batch(b)
    qtbot.waitUntil(lambda: len(probe.shown) >= 1, timeout=5_000)
    qtbot.wait(100)
    assert [r.time_ns for r in probe.shown] == [batches[-1].snapshot.time_ns]


def test_no_work_while_hidden_and_catch_up_when_shown(probe, qtbot, batches):
    probe.on_batch(batches[0])
    qtbot.waitUntil(lambda: len(probe.shown) == 1, timeout=5_000)
    probe.hide()
    assert not probe.running
    probe.on_batch(batches[1])
    probe.on_batch(batches[2])
    qtbot.wait(150)
    assert len(probe.shown) == 1  # hidden: nothing computed
    probe.show()
    qtbot.waitUntil(lambda: len(probe.shown) == 2, timeout=5_000)
    assert probe.running and probe.shown[-1].time_ns == batches[2].snapshot.time_ns


def test_no_recompute_when_only_the_clock_moved(probe, qtbot, batches):
    probe.on_batch(batches[0])
    qtbot.waitUntil(lambda: len(probe.shown) == 1, timeout=5_000)
    probe.on_batch(_same_data(batches[0], 1))
    probe.on_batch(_same_data(batches[0], 2))
    qtbot.wait(150)
    assert len(probe.shown) == 1
    probe.refresh(full=True)
    qtbot.waitUntil(lambda: len(probe.shown) == 2, timeout=5_000)  # a forced refresh recomputes
    probe.on_batch(batches[1])  # quotes moved
    qtbot.waitUntil(lambda: len(probe.shown) == 3, timeout=5_000)


def test_a_failing_job_is_reported_and_the_panel_recovers(probe, qtbot, batches, caplog):
    probe.fail = True
    probe.on_batch(batches[0])
    qtbot.waitUntil(lambda: bool(probe.messages), timeout=5_000)
    ok, message = probe.self_test_status()
    assert not ok and message == "probe failed: ValueError: probe input rejected" == probe.messages[-1]
    assert "probe input rejected" in caplog.text
    probe.fail = False
    probe.on_batch(batches[1])
    qtbot.waitUntil(lambda: len(probe.shown) == 1, timeout=5_000)
    assert probe.self_test_status()[0]


def test_shutdown_stops_the_timer_and_the_worker(probe, qtbot, batches):
    probe.shutdown()
    probe.shutdown()  # idempotent
    assert not probe.running
    probe.on_batch(batches[0])
    assert not probe.refresh()
    qtbot.wait(60)
    assert probe.shown == []


# --- registration in the main window ---------------------------------------------------------------------
@pytest.fixture
def window(qtbot, qloop, run_async):
    spec = PanelSpec("probe", "Probe", ProbePanel, Qt.DockWidgetArea.BottomDockWidgetArea)
    w = MainWindow(AppSettings(seed=3), panels=(*PANELS, spec))
    w.show()
    yield w
    run_async(w.shutdown())
    w.close()
    w.deleteLater()


def test_a_registered_panel_is_docked_fed_self_tested_and_shut_down(window, qtbot, run_async):
    from app.logs import ErrorReporter
    from app.self_test import _checks

    probe = window.panels["probe"]
    assert isinstance(probe, ProbePanel) and window.docks["probe"].widget() is probe
    assert window.docks["probe"].objectName() == "dock_probe"
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    assert "Probe" in [a.text() for a in view_menu.actions()]
    run_async(window.start_feed(), timeout=30)
    qtbot.waitUntil(lambda: len(probe.shown) >= 2, timeout=20_000)  # wired to the feed
    checks = _checks(window, ErrorReporter(show=False))
    assert checks["probe"][0] and "results shown" in checks["probe"][1]
    window.docks["probe"].hide()  # a closed dock costs nothing
    assert not probe.running
    seen = len(probe.shown)
    qtbot.wait(1500)
    assert len(probe.shown) == seen
    run_async(window.shutdown())
    assert all(not p.running for p in window.panels.values())
    assert not probe.refresh()


def test_selections_and_settings_go_through_the_context(window, qtbot, run_async):
    chain = window.panels["chain"]
    chain.window_spin.setValue(41)
    assert window.settings.strike_window == 41 and window.context.settings.strike_window == 41
    window.apply_settings(window.settings.with_changes(strike_window=25, chain_columns=("BID", "ASK")))
    assert chain.window_spin.value() == 25 and [f.name for f in chain.visible_fields()] == ["BID", "ASK"]
    run_async(window.start_feed(), timeout=30)
    qtbot.waitUntil(lambda: chain.self_test_status()[0], timeout=20_000)
    assert window.context.expiry == chain.selected_expiry()
    with qtbot.waitSignal(window.context.contract_selected, timeout=5_000) as sig:
        chain.table.setCurrentIndex(chain.model.index(2, 0))
    assert window.context.contract is sig.args[0] and sig.args[0].strike > 0


def test_a_panel_key_can_be_registered_only_once(qtbot, qloop):
    with pytest.raises(ValueError, match="registered twice"):
        MainWindow(AppSettings(), panels=(*PANELS, PANELS[0]))
