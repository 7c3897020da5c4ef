"""Source toolbar: Simulated (speed, pause) or Replay of a stored session (play/pause, speed, seek).

The toolbar only asks; the main window acts (switching sources is async). Controls that do not
apply to the current source are hidden, never shown disabled-but-pretending.

Signals:
    source_requested(str, str): ("sim", "") or ("replay", session name).
    speed_requested(float): simulated/replay speed; 0 = replay as fast as possible.
    pause_toggled(bool): True to pause.
    seek_requested(int): replay snapshot index.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QSlider, QToolBar, QWidget

from app.settings import SPEEDS

__all__ = ["SourceToolBar"]

REPLAY_SPEEDS = (1.0, 10.0, 60.0, 0.0)


class SourceToolBar(QToolBar):
    source_requested = Signal(str, str)
    speed_requested = Signal(float)
    pause_toggled = Signal(bool)
    seek_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Source", parent)
        self.setObjectName("source_toolbar")
        self.setMovable(False)
        self.addWidget(QLabel("Source "))
        self.source_combo = QComboBox()
        self.source_combo.setObjectName("source_combo")
        self.source_combo.addItem("Simulated", "sim")
        self.source_combo.setToolTip("Simulated market, or replay of a recorded/imported session")
        self.addWidget(self.source_combo)
        self.session_combo = QComboBox()
        self.session_combo.setObjectName("session_combo")
        self.session_combo.setMinimumContentsLength(28)
        self.session_combo.setToolTip("stored session to replay")
        self._session_action = self.addWidget(self.session_combo)
        self.addSeparator()
        self.addWidget(QLabel("Speed "))
        self.speed_combo = QComboBox()
        self.speed_combo.setObjectName("speed_combo")
        self.speed_combo.setToolTip("simulated (or replayed) seconds per wall second")
        self.addWidget(self.speed_combo)
        self.pause_action = QAction("Pause", self)
        self.pause_action.setObjectName("pause_action")
        self.pause_action.setCheckable(True)
        self.pause_action.setShortcut(QKeySequence(Qt.Key.Key_F5))
        self.pause_action.setToolTip("Pause / resume the feed (F5)")
        self.addAction(self.pause_action)
        self.seek_slider = QSlider(Qt.Orientation.Horizontal)
        self.seek_slider.setObjectName("seek_slider")
        self.seek_slider.setMinimumWidth(260)
        self.seek_slider.setToolTip("seek within the replay")
        self._seek_action = self.addWidget(self.seek_slider)
        self.position_label = QLabel()
        self._position_action = self.addWidget(self.position_label)
        self._mode = "sim"
        self._fill_speeds(SPEEDS)
        self._show_replay_controls(False)
        self.source_combo.currentIndexChanged.connect(self._on_source_chosen)
        self.session_combo.activated.connect(self._on_session_chosen)
        self.speed_combo.activated.connect(lambda i: self.speed_requested.emit(self.speed_combo.itemData(i)))
        self.pause_action.toggled.connect(self._on_pause)
        self.seek_slider.sliderReleased.connect(lambda: self.seek_requested.emit(self.seek_slider.value()))

    # --- state from the window ---------------------------------------------------------------------
    def set_sessions(self, names: list[str]) -> None:
        """Stored sessions that can be replayed; "Replay" is offered only when there is one."""
        self.session_combo.blockSignals(True)
        self.session_combo.clear()
        self.session_combo.addItems(names)
        self.session_combo.blockSignals(False)
        has_replay = self.source_combo.findData("replay") >= 0
        if names and not has_replay:
            self.source_combo.addItem("Replay", "replay")
        elif not names and has_replay:
            self.source_combo.removeItem(self.source_combo.findData("replay"))

    def set_mode(self, mode: str, *, session: str = "", speed: float = 1.0) -> None:
        """Reflect the running source without emitting requests."""
        self._mode = mode
        for w in (self.source_combo, self.session_combo, self.speed_combo):
            w.blockSignals(True)
        self.source_combo.setCurrentIndex(max(self.source_combo.findData(mode), 0))
        if session:
            self.session_combo.setCurrentText(session)
        self._fill_speeds(REPLAY_SPEEDS if mode == "replay" else SPEEDS)
        self.set_speed(speed)
        for w in (self.source_combo, self.session_combo, self.speed_combo):
            w.blockSignals(False)
        self._show_replay_controls(mode == "replay")
        self.pause_action.blockSignals(True)
        self.pause_action.setChecked(False)
        self.pause_action.setText("Pause")
        self.pause_action.blockSignals(False)

    def set_speed(self, speed: float) -> None:
        i = self.speed_combo.findData(float(speed))
        if i >= 0:
            self.speed_combo.setCurrentIndex(i)

    def set_position(self, position: int, length: int) -> None:
        if not self.seek_slider.isSliderDown():
            self.seek_slider.setRange(0, max(length - 1, 0))
            self.seek_slider.setValue(max(position, 0))
        self.position_label.setText(f"{position + 1}/{length}")

    # --- internals ------------------------------------------------------------------------------------
    def _fill_speeds(self, speeds: tuple[float, ...]) -> None:
        current = self.speed_combo.currentData()
        self.speed_combo.clear()
        for s in speeds:
            self.speed_combo.addItem("max" if s == 0 else f"{s:g}x", float(s))
        if current is not None:
            self.set_speed(current)

    def _show_replay_controls(self, visible: bool) -> None:
        for action in (self._session_action, self._seek_action, self._position_action):
            action.setVisible(visible)

    def _on_source_chosen(self, _index: int) -> None:
        mode = self.source_combo.currentData()
        self.source_requested.emit(mode, self.session_combo.currentText() if mode == "replay" else "")

    def _on_session_chosen(self, _index: int) -> None:
        if self._mode == "replay":
            self.source_requested.emit("replay", self.session_combo.currentText())

    def _on_pause(self, paused: bool) -> None:
        self.pause_action.setText("Resume" if paused else "Pause")
        self.pause_toggled.emit(paused)
