"""Status bar: data source, its state, the ET clock, the market session and the data age."""

from __future__ import annotations

import time
from datetime import datetime

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from spx_core.domain.calendar import ET, UTC
from spx_core.marketdata.source import QuoteBatch, SourceState, SourceStatus

__all__ = ["TerminalStatusBar"]

#: Data older than this (wall seconds since the last batch) is shown as stale.
STALE_AFTER_SECONDS = 5.0


class TerminalStatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source_label = QLabel("Source: -")
        self.state_label = QLabel("stopped")
        self.clock_label = QLabel()
        self.session_label = QLabel()
        self.age_label = QLabel("no data")
        for w in (self.source_label, self.state_label):
            self.addWidget(w)
        for w in (self.age_label, self.session_label, self.clock_label):
            self.addPermanentWidget(w)
        self.state_label.setToolTip("data source state")
        self.age_label.setToolTip("market time of the latest chain, and how long ago (wall time) it arrived")
        self.session_label.setToolTip("market session at the data's time (US/Eastern)")
        self._last_wall: float | None = None
        self._last_market_ns: int | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()

    def on_status(self, status: SourceStatus) -> None:
        self.source_label.setText(f"Source: {status.source}")
        self.state_label.setText(f"{status.state.value}" + (f" - {status.message}" if status.message else ""))
        self._set_prop(self.state_label, "state", status.state.value)
        if status.state is SourceState.ERROR:
            self.showMessage(status.message, 10_000)

    def on_batch(self, batch: QuoteBatch) -> None:
        self._last_wall = time.monotonic()
        self._last_market_ns = batch.snapshot.time_ns

    def refresh(self) -> None:
        """Tick the wall clock, session and data age (twice a second)."""
        from spx_core.domain.calendar import default_calendar

        now = datetime.now(UTC)
        self.clock_label.setText(now.astimezone(ET).strftime("%H:%M:%S ET"))
        market_now = now if self._last_market_ns is None else datetime.fromtimestamp(self._last_market_ns / 1e9, UTC)
        calendar = default_calendar()
        if not calendar.loaded:  # loading it here would delay the first paint; the app loads it in a worker
            self.session_label.setText("Market: ...")
        else:
            try:
                self.session_label.setText(f"Market: {calendar.session_at(market_now).value}")
            except ValueError:
                self.session_label.setText("Market: -")
        if self._last_wall is None:
            self.age_label.setText("no data")
            self._set_prop(self.age_label, "stale", "true")
            return
        age = time.monotonic() - self._last_wall
        when = market_now.astimezone(ET).strftime("%a %d %b %H:%M:%S")
        self.age_label.setText(f"Data {when} ({age:.1f}s ago)")
        self._set_prop(self.age_label, "stale", "true" if age > STALE_AFTER_SECONDS else "false")

    @staticmethod
    def _set_prop(label: QLabel, name: str, value: str) -> None:
        if label.property(name) != value:
            label.setProperty(name, value)
            label.style().unpolish(label)
            label.style().polish(label)
