"""Source controls with qtbot: seek by click and key (also paused), achieved speed, the status bar's
one live ET clock, session lists that follow imports, picking a session, skip gaps."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from app.main_window import MainWindow
from app.settings import AppSettings
from app.source_toolbar import SourceToolBar
from app.status_bar import STALE_AFTER_SECONDS, TerminalStatusBar
from spx_core.domain.calendar import ET
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.marketdata.source import QuoteBatch, SourceKind, SourceState, SourceStatus

START = datetime(2025, 3, 12, 10, 0, tzinfo=ET)
CLOCK = re.compile(r"\w{3} \d{2} \w{3} \d{2}:\d{2}:\d{2} ET$")


@pytest.fixture
def window(qtbot, qloop, run_async):
    w = MainWindow(AppSettings(seed=3))
    w.show()
    yield w
    run_async(w.shutdown())
    w.close()
    w.deleteLater()


def _record(store, session: str, n: int, *, seed: int = 5, start: datetime = START) -> list:
    """Store ``n`` snapshots one minute apart as ``session``; returns them."""
    market = SimulatedMarket(SimulatorConfig(seed=seed, start=start))
    snaps = [market.snapshot()] + [market.advance(60.0).snapshot for _ in range(n - 1)]
    store.save_snapshots(snaps, source="Simulated", session=session)
    return snaps


def _replaying(window, qtbot, run_async, session: str) -> None:
    window.toolbar.source_requested.emit(SourceKind.REPLAY, session)
    qtbot.waitUntil(lambda: window.feed.kind is SourceKind.REPLAY and window.feed.source.position >= 0
                    and window.feed.source.session == session, timeout=10_000)


def _shows(window, snap) -> bool:
    last = window.feed.last_batch
    return last is not None and last.snapshot.checksum == snap.checksum


def test_seek_on_a_key_and_a_click_while_paused_shows_that_snapshot(window, qtbot, run_async):
    run_async(window.open_store())
    snaps = _record(window.store, "minutes", 12)
    run_async(window.open_store())
    _replaying(window, qtbot, run_async, "minutes")
    window.toolbar.pause_action.trigger()
    slider = window.toolbar.seek_slider
    slider.setFocus()
    qtbot.keyClick(slider, Qt.Key.Key_End)  # a key, no drag: it must seek
    qtbot.waitUntil(lambda: _shows(window, snaps[-1]), timeout=5_000)
    assert window.feed.source.position == 11 and slider.value() == 11
    assert window.toolbar.position_label.text() == "12/12"
    assert window.feed.source.status.state is SourceState.PAUSED
    qtbot.keyClick(slider, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: _shows(window, snaps[10]), timeout=5_000)
    # a click on the groove's left end seeks there (not one page step towards it)
    qtbot.mouseClick(slider, Qt.MouseButton.LeftButton, pos=QPoint(2, slider.height() // 2))
    qtbot.waitUntil(lambda: _shows(window, snaps[0]), timeout=5_000)
    assert slider.value() == 0 == window.feed.source.position
    assert window.feed.source.status.state is SourceState.PAUSED  # still paused, showing the target


@pytest.mark.qt_log_ignore("This plugin does not support")  # the offscreen platform and popups
def test_sessions_imported_while_running_are_listed_and_can_be_picked(window, qtbot, run_async):
    run_async(window.start_feed(), timeout=30)
    assert window.toolbar.source_combo.findData(SourceKind.REPLAY) < 0
    _record(window.store, "first", 3)  # e.g. `spx-data import` in another process
    window.toolbar.source_combo.showPopup()  # opening the list re-reads it
    qtbot.waitUntil(lambda: window.toolbar.source_combo.findData(SourceKind.REPLAY) >= 0, timeout=5_000)
    window.toolbar.source_combo.hidePopup()
    second = _record(window.store, "second", 4, seed=9, start=START + timedelta(days=1))
    window.toolbar.sessions_wanted.emit()  # what the refresh timer does
    qtbot.waitUntil(lambda: window.toolbar.session_names() == ["first", "second"], timeout=5_000)
    _replaying(window, qtbot, run_async, "first")
    assert window.toolbar.session_combo.currentText() == "first"
    combo = window.toolbar.session_combo
    combo.setCurrentIndex(combo.findText("second"))
    combo.activated.emit(combo.currentIndex())
    qtbot.waitUntil(lambda: getattr(window.feed.source, "session", None) == "second" and _shows(window, second[0]),
                    timeout=10_000)  # (no source for a moment while the feed switches)
    assert window._mode() is SourceKind.REPLAY
    window.toolbar.sessions_wanted.emit()  # a refresh keeps the choice
    qtbot.wait(200)
    assert combo.currentText() == "second"
    window.toolbar.skip_gaps_action.trigger()
    assert window.feed.source.skip_gaps


def test_toolbar_shows_the_achieved_speed_only_when_short(qtbot):
    bar = SourceToolBar()
    qtbot.addWidget(bar)
    bar.resize(1800, 40)  # wide enough that nothing moves to the overflow menu
    bar.show()
    bar.set_mode(SourceKind.SIM, speed=60.0)
    bar.set_achieved(60.0, 41.2)
    qtbot.waitUntil(bar.achieved_label.isVisible)  # the toolbar lays its widgets out on the next pass
    assert bar.achieved_label.text() == "(achieved 41.2x)"
    assert bar.speed_combo.currentText() == "60x"  # reads "60x (achieved 41.2x)"
    bar.set_achieved(60.0, 58.0)
    qtbot.waitUntil(lambda: not bar.achieved_label.isVisible())
    bar.set_achieved(60.0, 41.2)
    qtbot.waitUntil(bar.achieved_label.isVisible)
    bar.set_achieved(60.0, None)
    qtbot.waitUntil(lambda: not bar.achieved_label.isVisible())


def _batch(time_ns: int) -> QuoteBatch:
    snap = SimulatedMarket(SimulatorConfig(seed=2, start=START)).snapshot()
    snap = snap.replace_quotes(time=time_ns, underlying_price=snap.underlying_price)
    return QuoteBatch(snapshot=snap, changed=np.zeros(0, np.int64), layout_changed=False, sequence=0)


@pytest.fixture
def wall(monkeypatch):
    """A controllable monotonic clock for the status bar."""
    now = [1000.0]
    monkeypatch.setattr("app.status_bar.time.monotonic", lambda: now[0])
    return now


def test_status_bar_has_one_live_readable_et_clock_of_market_time(qtbot, wall):
    bar = TerminalStatusBar()
    qtbot.addWidget(bar)
    bar.on_status(SourceStatus("Simulated", SourceState.RUNNING, "running at 60x", SourceKind.SIM))
    bar.set_pace(60.0, None)
    bar.on_batch(_batch(int(START.timestamp() * 1e9)))
    bar.refresh()
    assert bar.state_label.text() == "running at 60x, Wed 12 Mar 10:00:00 ET"
    wall[0] += 1.5  # between batches the clock runs at the source's pace
    bar.refresh()
    assert bar.state_label.text() == "running at 60x, Wed 12 Mar 10:01:30 ET"
    bar.set_pace(60.0, 30.0)  # measured short: the clock follows what is achieved, and says so
    bar.refresh()
    assert bar.state_label.text() == "running at 60x (achieved 30x), Wed 12 Mar 10:00:45 ET"
    assert "+00:00" not in bar.state_label.text() and "UTC" not in bar.state_label.text()
    clocks = [w.text() for w in bar.findChildren(type(bar.state_label)) if CLOCK.search(w.text() or "")]
    assert len(clocks) == 1  # one clock, not a wall clock beside a data clock


def test_status_bar_paused_reads_once_and_raises_no_stale_alarm(qtbot, wall):
    bar = TerminalStatusBar()
    qtbot.addWidget(bar)
    bar.on_status(SourceStatus("Simulated", SourceState.RUNNING, "running at 1x", SourceKind.SIM))
    bar.set_pace(1.0, None)
    bar.on_batch(_batch(int(START.timestamp() * 1e9)))
    bar.on_status(SourceStatus("Simulated", SourceState.PAUSED, "paused", SourceKind.SIM))
    wall[0] += STALE_AFTER_SECONDS * 4
    bar.refresh()
    assert bar.state_label.text() == "paused, Wed 12 Mar 10:00:00 ET"  # frozen, and not "paused - paused"
    assert bar.age_label.property("stale") == "false"
    bar.on_status(SourceStatus("Simulated", SourceState.RUNNING, "running at 1x", SourceKind.SIM))
    bar.refresh()
    assert bar.age_label.property("stale") == "true"  # running and silent: that is an alarm
    bar.on_status(SourceStatus("Replay", SourceState.RUNNING, "3/9 at 1x", SourceKind.REPLAY))
    bar.refresh()
    assert bar.age_label.property("stale") == "false"  # a replay's quiet spell is the data's own gap


def test_status_bar_shows_a_sources_notice(qtbot):
    bar = TerminalStatusBar()
    qtbot.addWidget(bar)
    bar.on_status(SourceStatus("Replay", SourceState.RUNNING, "3/9 at 1x", SourceKind.REPLAY,
                               notice="Replay skipped snapshot 42: checksum mismatch"))
    assert "snapshot 42" in bar.currentMessage()
