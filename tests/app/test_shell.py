"""The app shell with qtbot: settings, layout, theme, status bar, source toolbar, errors."""

from __future__ import annotations

import logging

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.logs import ErrorReporter
from app.main_window import MainWindow
from app.settings import AppSettings, SettingsError, load_settings, save_settings
from app.settings_dialog import SettingsDialog
from spx_core.marketdata.source import SourceState


def test_settings_round_trip_and_validation():
    s = AppSettings(seed=11, speed=10.0, strike_window=40, chain_columns=("BID", "ASK", "IV"), theme="light")
    save_settings(s)
    assert load_settings() == s
    with pytest.raises(SettingsError, match="speed 7x must be one of"):
        AppSettings(speed=7.0)
    with pytest.raises(SettingsError, match="chain columns"):
        AppSettings(chain_columns=("FOO",))


def test_unreadable_stored_settings_fall_back_to_defaults():
    from app.settings import qsettings

    store = qsettings()
    store.setValue("settings/strike_window", 9999)
    store.sync()
    assert load_settings() == AppSettings()


def test_settings_dialog_edits_and_refuses_bad_input(qtbot):
    dialog = SettingsDialog(AppSettings())
    qtbot.addWidget(dialog)
    dialog.seed_spin.setValue(42)
    dialog.theme_combo.setCurrentText("light")
    assert dialog.result_settings().seed == 42 and dialog.result_settings().theme == "light"
    for box in dialog.column_checks.values():
        box.setChecked(False)
    dialog.accept()
    assert "chain columns" in dialog.error_label.text()
    assert dialog.result() == 0


def test_live_simulated_feed_populates_status_chain_and_surface(window, qtbot, run_async):
    run_async(window.start_feed(), timeout=30)
    qtbot.waitUntil(lambda: window.feed.batches >= 1, timeout=20_000)
    qtbot.waitUntil(lambda: window.panels["chain"].self_test_status()[0], timeout=20_000)
    assert window.status.source_label.text() == "Source: Simulated"
    assert window.feed.source.status.state is SourceState.RUNNING
    window.status.refresh()
    assert window.status.session_label.text().startswith("Market: ")
    assert "ago" in window.status.age_label.text()
    qtbot.waitUntil(lambda: window.panels["surface"].self_test_status()[0], timeout=30_000)


def test_toolbar_speed_and_pause_drive_the_simulator(window, qtbot, run_async):
    run_async(window.start_feed(), timeout=30)
    src = window.feed.source
    combo = window.toolbar.speed_combo
    combo.setCurrentIndex(combo.findData(60.0))
    combo.activated.emit(combo.currentIndex())
    assert src.speed == 60.0 and window.settings.speed == 60.0
    window.toolbar.pause_action.trigger()
    assert src.paused and src.status.state is SourceState.PAUSED
    assert window.toolbar.pause_action.text() == "Resume"
    window.toolbar.pause_action.trigger()
    assert not src.paused


def test_replay_is_offered_only_with_a_stored_session_and_plays_it(window, qtbot, run_async):
    from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig

    run_async(window.open_store())
    assert window.toolbar.source_combo.findData("replay") < 0  # nothing recorded yet: no replay control
    market = SimulatedMarket(SimulatorConfig(seed=5, market_hours=False))
    for _ in range(3):
        window.store.save_snapshot(market.advance(60.0).snapshot, source="sim", session="test session")
    run_async(window.open_store())
    assert window.toolbar.source_combo.findData("replay") >= 0
    window.toolbar.source_requested.emit("replay", "test session")
    qtbot.waitUntil(lambda: window.feed.source is not None and window.feed.source.name == "Replay", timeout=10_000)
    qtbot.waitUntil(lambda: window.feed.batches >= 1, timeout=10_000)
    assert window.toolbar.seek_slider.isVisibleTo(window)
    window.toolbar.set_speed(0.0)
    window.toolbar.speed_requested.emit(0.0)
    qtbot.waitUntil(lambda: window.feed.source.status.state is SourceState.FINISHED, timeout=10_000)
    assert window.toolbar.position_label.text() == "3/3"


def test_layout_save_restore_and_reset(window, qtbot):
    chain_dock = window.docks["chain"]
    chain_dock.hide()
    window.save_layout()
    other = MainWindow(AppSettings())
    qtbot.addWidget(other)
    other.show()
    assert other.docks["chain"].isHidden()
    other.reset_layout()
    assert not other.docks["chain"].isHidden()
    third = MainWindow(AppSettings())
    qtbot.addWidget(third)
    third.show()
    assert not third.docks["chain"].isHidden()  # the reset also forgot the saved layout


def test_theme_switch_applies_and_persists(window):
    window.set_theme("light")
    assert "#f" in QApplication.instance().styleSheet().lower()
    assert load_settings().theme == "light"
    assert window.findChild(type(window.theme_group.actions()[0]), "theme_light").isChecked()
    window.set_theme("dark")
    assert load_settings().theme == "dark"


def test_menus_have_shortcuts_and_about_lists_versions(window):
    shortcuts = {a.text(): a.shortcut().toString() for m in window.menuBar().actions() for a in m.menu().actions()}
    assert shortcuts["&Quit"] and shortcuts["Reset &layout"] == "Ctrl+Shift+R"
    text = window.about_text()
    for name in ("Python", "PySide6", "pyqtgraph", "numpy"):
        assert name in text


def test_error_reporter_logs_and_shows_one_dialog(caplog):
    shown = []
    reporter = ErrorReporter(dialog=lambda summary, details: shown.append(summary))
    with caplog.at_level(logging.ERROR, logger="app"):
        try:
            raise ValueError("boom")
        except ValueError as exc:
            reporter.excepthook(type(exc), exc, exc.__traceback__)
    assert shown == ["ValueError: boom"]
    assert "boom" in caplog.text and "Traceback" in caplog.text
    reporter.loop_handler(None, {"message": "task exception was never retrieved", "exception": RuntimeError("x")})
    assert reporter.errors == ["ValueError: boom", "RuntimeError: x"]


def test_contract_selection_reaches_the_window(window, qtbot, run_async):
    run_async(window.start_feed(), timeout=30)
    qtbot.waitUntil(lambda: window.panels["chain"].self_test_status()[0], timeout=20_000)
    table = window.panels["chain"].table
    with qtbot.waitSignal(window.panels["chain"].contract_selected, timeout=5_000) as sig:
        index = table.model().index(3, 0)
        table.setCurrentIndex(index)
    assert sig.args[0].strike > 0
    assert Qt.Key  # keep Qt imported for keyboard tests below


def test_the_start_up_path_loads_no_heavy_library():
    """scipy (~0.3 s), SQLAlchemy (~0.15 s) and pandas load after the first paint (worker, store, calendar)."""
    import subprocess
    import sys

    code = ("import sys, app.main, app.main_window, spx_core.path_checks; "
            "print(*(m in sys.modules for m in ('scipy', 'sqlalchemy', 'pandas')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["False", "False", "False"]
