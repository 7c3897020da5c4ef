"""Source toolbar: Simulated (speed, pause), Replay of a stored session (play/pause, speed, seek, gaps), or IB
(Interactive Brokers market data at the settings' TWS address: pause only).

The toolbar only asks; the main window acts (switching sources is async). Controls that do not
apply to the current source are hidden, never shown disabled-but-pretending. The speed shown is the
stated one; when the source measures that it falls short, the achieved speed is shown beside it.

Signals:
    source_requested(SourceKind, str): (SourceKind.SIM, ""), (SourceKind.REPLAY, session name) or (SourceKind.IB, "").
    speed_requested(float): simulated/replay speed; 0 = replay as fast as possible.
    pause_toggled(bool): True to pause.
    seek_requested(int): replay snapshot index (a drag's release, a click on the groove, a key).
    skip_gaps_toggled(bool): replay jumps over session gaps (True) or waits them out.
    sessions_wanted(): the session list is about to be shown (or is due a refresh): re-read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QMouseEvent
from PySide6.QtWidgets import QComboBox, QLabel, QSlider, QStyle, QStyleOptionSlider, QToolBar, QWidget

from app.settings import SPEEDS
from spx_core.domain.calendar import ET
from spx_core.marketdata.source import SESSION_GAP_SECONDS, SourceKind, speed_label

if TYPE_CHECKING:  # the store (SQLAlchemy) loads after the first paint
    from spx_core.storage.records import SessionInfo

__all__ = ["SourceToolBar", "REPLAY_SPEEDS"]

REPLAY_SPEEDS = (1.0, 10.0, 60.0, 0.0)
#: a run of key presses or groove clicks is sent as one seek once it pauses this long (ms)
SEEK_DEBOUNCE_MS = 150
#: how often the session list is re-read while the app runs (ms), besides whenever a list opens
SESSION_REFRESH_MS = 15_000


class _PopupCombo(QComboBox):
    """A combo box that says when its list is about to open (to refresh it first)."""

    about_to_show = Signal()

    def showPopup(self) -> None:  # noqa: N802 (Qt override)
        self.about_to_show.emit()
        super().showPopup()


class _SeekSlider(QSlider):
    """A slider whose groove jumps to the clicked position (not one page step towards it)."""

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if event.button() == Qt.MouseButton.LeftButton and self.maximum() > self.minimum():
            opt = QStyleOptionSlider()
            self.initStyleOption(opt)
            style = self.style()
            handle = style.subControlRect(QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle,
                                          self)
            if not handle.contains(event.position().toPoint()):
                groove = style.subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                              QStyle.SubControl.SC_SliderGroove, self)
                span = max(groove.width() - handle.width(), 1)
                x = int(event.position().x() - groove.x() - handle.width() / 2)
                self.setValue(QStyle.sliderValueFromPosition(self.minimum(), self.maximum(), x, span))
                event.accept()
                return
        super().mousePressEvent(event)


class SourceToolBar(QToolBar):
    source_requested = Signal(object, str)
    speed_requested = Signal(float)
    pause_toggled = Signal(bool)
    seek_requested = Signal(int)
    skip_gaps_toggled = Signal(bool)
    sessions_wanted = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Source", parent)
        self.setObjectName("source_toolbar")
        self.setMovable(False)
        self.addWidget(QLabel("Source "))
        self.source_combo = _PopupCombo()
        self.source_combo.setObjectName("source_combo")
        self.source_combo.addItem("Simulated", SourceKind.SIM)
        self.source_combo.addItem("IB", SourceKind.IB)
        self.source_combo.setToolTip("Simulated market, Interactive Brokers market data (TWS / IB Gateway at the "
                                     "address in the settings), or replay of a recorded/imported session")
        self.addWidget(self.source_combo)
        self.session_combo = _PopupCombo()
        self.session_combo.setObjectName("session_combo")
        self.session_combo.setMinimumContentsLength(28)
        self.session_combo.setToolTip("stored session to replay (the list follows imports while the app runs)")
        self._session_action = self.addWidget(self.session_combo)
        self.addSeparator()
        self._speed_actions = [self.addWidget(QLabel("Speed "))]
        self.speed_combo = QComboBox()
        self.speed_combo.setObjectName("speed_combo")
        self.speed_combo.setToolTip("market seconds per wall second")
        self._speed_actions.append(self.addWidget(self.speed_combo))
        self.achieved_label = QLabel()
        self.achieved_label.setObjectName("achieved_label")
        self.achieved_label.setToolTip("the speed measured over the last few seconds: this machine cannot keep "
                                       "up with the chosen one")
        self._achieved_action = self.addWidget(self.achieved_label)
        self._achieved_action.setVisible(False)
        self.pause_action = QAction("Pause", self)
        self.pause_action.setObjectName("pause_action")
        self.pause_action.setCheckable(True)
        self.pause_action.setShortcut(QKeySequence(Qt.Key.Key_F5))
        self.pause_action.setToolTip("Pause / resume the feed (F5)")
        self.addAction(self.pause_action)
        self.skip_gaps_action = QAction("Skip gaps", self)
        self.skip_gaps_action.setObjectName("skip_gaps_action")
        self.skip_gaps_action.setCheckable(True)
        self.skip_gaps_action.setToolTip(f"Jump over gaps longer than {SESSION_GAP_SECONDS / 60:g} min of market time "
                                         f"(nights, weekends, halts) instead of waiting them out at the chosen speed")
        self.addAction(self.skip_gaps_action)
        self.seek_slider = _SeekSlider(Qt.Orientation.Horizontal)
        self.seek_slider.setObjectName("seek_slider")
        self.seek_slider.setMinimumWidth(260)
        self.seek_slider.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.seek_slider.setToolTip("seek within the replay: drag, click, or use the arrow / Page / Home / End keys")
        self._seek_action = self.addWidget(self.seek_slider)
        self.position_label = QLabel()
        self._position_action = self.addWidget(self.position_label)
        self._seek_timer = QTimer(self)
        self._seek_timer.setSingleShot(True)
        self._seek_timer.setInterval(SEEK_DEBOUNCE_MS)
        self._seek_timer.timeout.connect(self._send_seek)
        self._session_timer = QTimer(self)
        self._session_timer.setInterval(SESSION_REFRESH_MS)
        self._session_timer.timeout.connect(self.sessions_wanted)
        self._kind = SourceKind.SIM
        self._fill_speeds(SPEEDS)
        self._show_replay_controls(False)
        self.source_combo.currentIndexChanged.connect(self._on_source_chosen)
        self.source_combo.about_to_show.connect(self.sessions_wanted)
        self.session_combo.about_to_show.connect(self.sessions_wanted)
        self.session_combo.activated.connect(self._on_session_chosen)
        self.speed_combo.activated.connect(lambda i: self.speed_requested.emit(self.speed_combo.itemData(i)))
        self.pause_action.toggled.connect(self._on_pause)
        self.skip_gaps_action.toggled.connect(self.skip_gaps_toggled)
        self.seek_slider.valueChanged.connect(self._on_seek_value)
        self.seek_slider.sliderReleased.connect(self._send_seek)

    # --- state from the window ---------------------------------------------------------------------
    def start_session_refresh(self) -> None:
        """Re-read the session list every ``SESSION_REFRESH_MS`` from now on (and when a list opens)."""
        self._session_timer.start()

    def stop_session_refresh(self) -> None:
        """Stop asking for session refreshes (on shutdown: no slot may run once the loop is gone)."""
        self._session_timer.stop()

    def set_sessions(self, sessions: Sequence[SessionInfo]) -> None:
        """Stored sessions that can be replayed (keeps the current choice); "Replay" only when there is one."""
        current = self.session_combo.currentText()
        names = [s.name for s in sessions]
        if names != [self.session_combo.itemText(i) for i in range(self.session_combo.count())]:
            self.session_combo.blockSignals(True)
            self.session_combo.clear()
            self.session_combo.addItems(names)
            if current in names:
                self.session_combo.setCurrentText(current)
            self.session_combo.blockSignals(False)
        for i, s in enumerate(sessions):
            start, end = (t.astimezone(ET).strftime("%a %d %b %Y %H:%M") for t in (s.start, s.end))
            self.session_combo.setItemData(i, f"{s.name}: {s.n_snapshots} snapshots from {s.source}, "
                                              f"{start} to {end} ET", Qt.ItemDataRole.ToolTipRole)
        has_replay = self.source_combo.findData(SourceKind.REPLAY) >= 0
        if names and not has_replay:
            self.source_combo.addItem("Replay", SourceKind.REPLAY)
        elif not names and has_replay:
            self.source_combo.removeItem(self.source_combo.findData(SourceKind.REPLAY))

    def session_names(self) -> list[str]:
        return [self.session_combo.itemText(i) for i in range(self.session_combo.count())]

    def set_mode(self, kind: SourceKind, *, session: str = "", speed: float = 1.0, skip_gaps: bool = False) -> None:
        """Reflect the running source without emitting requests."""
        self._kind = kind
        replay = kind is SourceKind.REPLAY
        for w in (self.source_combo, self.session_combo, self.speed_combo, self.skip_gaps_action,
                  self.pause_action):
            w.blockSignals(True)
        self.source_combo.setCurrentIndex(max(self.source_combo.findData(kind), 0))
        if session:
            self.session_combo.setCurrentText(session)
        self._fill_speeds(REPLAY_SPEEDS if replay else SPEEDS)
        self.set_speed(speed)
        self.skip_gaps_action.setChecked(skip_gaps)
        self.pause_action.setChecked(False)
        self.pause_action.setText("Pause")
        for w in (self.source_combo, self.session_combo, self.speed_combo, self.skip_gaps_action,
                  self.pause_action):
            w.blockSignals(False)
        self._show_replay_controls(replay)
        for action in self._speed_actions:  # a live market runs at the speed of time
            action.setVisible(kind is not SourceKind.IB)
        self.set_achieved(speed, None)

    def set_speed(self, speed: float) -> None:
        i = self.speed_combo.findData(float(speed))
        if i >= 0:
            self.speed_combo.setCurrentIndex(i)

    def set_achieved(self, speed: float, achieved: float | None) -> None:
        """Show the measured speed beside the stated one when it falls more than 10% short."""
        text = speed_label(speed, achieved)
        short = text != speed_label(speed, None)
        self.achieved_label.setText(text[text.index("("):] if short else "")
        self._achieved_action.setVisible(short)

    def set_position(self, position: int, length: int) -> None:
        """The snapshot shown; the slider follows it unless the user is dragging or a seek is pending."""
        if not (self.seek_slider.isSliderDown() or self._seek_timer.isActive()):
            self.seek_slider.blockSignals(True)  # a programmatic move is not a seek request
            self.seek_slider.setRange(0, max(length - 1, 0))
            self.seek_slider.setPageStep(max(length // 20, 1))
            self.seek_slider.setValue(max(position, 0))
            self.seek_slider.blockSignals(False)
        self.position_label.setText(f"{position + 1}/{length}")

    # --- internals ------------------------------------------------------------------------------------
    def _fill_speeds(self, speeds: tuple[float, ...]) -> None:
        current = self.speed_combo.currentData()
        self.speed_combo.clear()
        for s in speeds:
            self.speed_combo.addItem(speed_label(s, None), float(s))
        if current is not None:
            self.set_speed(current)

    def _show_replay_controls(self, visible: bool) -> None:
        for action in (self._session_action, self._seek_action, self._position_action, self.skip_gaps_action):
            action.setVisible(visible)

    def _on_source_chosen(self, _index: int) -> None:
        kind = SourceKind(self.source_combo.currentData())
        self.source_requested.emit(kind, self.session_combo.currentText() if kind is SourceKind.REPLAY else "")

    def _on_session_chosen(self, _index: int) -> None:
        if self._kind is SourceKind.REPLAY:
            self.source_requested.emit(SourceKind.REPLAY, self.session_combo.currentText())

    def _on_pause(self, paused: bool) -> None:
        self.pause_action.setText("Resume" if paused else "Pause")
        self.pause_toggled.emit(paused)

    def _on_seek_value(self, _value: int) -> None:
        if not self.seek_slider.isSliderDown():  # a drag seeks once, on release
            self._seek_timer.start()

    def _send_seek(self) -> None:
        self._seek_timer.stop()
        self.seek_requested.emit(self.seek_slider.value())
