"""Status bar: the data source, its state and pace with one live ET clock of market time, the market
session at that time, how long ago data arrived, and the broker and account orders go to.

The clock is the data's own time (simulated or replayed), not the wall clock: the latest batch's
time, run forward at the source's pace between batches while the source runs, frozen while it is
paused or finished ("running at 60x, Thu 12 Mar 10:31:05 ET"). Data age is an alarm only for a
source that should be producing now (running and not a replay, whose quiet spells are the data's).

A tripped circuit breaker shows as a red "BREAKER: <reason>" label until the next session.

The account is shown at all times ("Paper · PAPER", "IB paper · DU123456"); a live account is red
(``live`` property), so real money is never mistaken for paper.

The alert indicator counts the open (unacknowledged) alerts, coloured by the worst of them and naming it
("2 alerts ▲ WARNING"), so the colour is never the only cue.
"""

from __future__ import annotations

import time
from datetime import datetime

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from spx_core.domain.calendar import ET, UTC
from spx_core.marketdata.source import (
    QuoteBatch,
    SourceKind,
    SourceState,
    SourceStatus,
    speed_label,
)

__all__ = ["TerminalStatusBar"]

#: Data older than this (wall seconds since the last batch) is shown as stale, for a running live source.
STALE_AFTER_SECONDS = 5.0
#: How long a source's notice (a skipped snapshot, a jumped gap) stays in the message area (ms).
NOTICE_MS = 15_000


class _ClickLabel(QLabel):
    """A label that says when it is clicked (the alert count opens the Alerts panel)."""

    clicked = Signal()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mousePressEvent(event)


class TerminalStatusBar(QStatusBar):
    """See the module docstring.

    Events: alerts_clicked(): the user clicked the alert count (the window brings the Alerts panel forward).
    """

    alerts_clicked = Signal()
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source_label = QLabel("Source: -")
        self.state_label = QLabel("stopped")
        self.session_label = QLabel()
        self.age_label = QLabel("no data")
        self.account_label = QLabel("Orders: not connected")
        self.account_label.setObjectName("account_status")
        self.account_label.setToolTip("where orders go: the broker and its account id (red: live trading)")
        self.alert_label = _ClickLabel("Alerts: -")
        self.alert_label.clicked.connect(self.alerts_clicked)
        self.alert_label.setObjectName("alert_status")
        self.alert_label.setToolTip("open (unacknowledged) alerts and the worst of them; click for the Alerts panel")
        self.breaker_label = QLabel()  # shown only while the circuit breaker holds: red, with its reason
        self.breaker_label.setObjectName("breaker_status")
        self.breaker_label.setStyleSheet("color: white; background: #d70015; font-weight: bold; padding: 0 6px;")
        self.breaker_label.hide()
        self.addPermanentWidget(self.breaker_label)
        for w in (self.source_label, self.state_label):
            self.addWidget(w)
        for w in (self.alert_label, self.age_label, self.session_label, self.account_label):
            self.addPermanentWidget(w)
        self.state_label.setToolTip("data source state, its speed and the market time of the data (US/Eastern)")
        self.age_label.setToolTip("how long ago (wall time) the latest chain arrived")
        self.session_label.setToolTip("market session at the data's time (US/Eastern)")
        self._state = SourceState.STOPPED
        self._message = ""
        self._kind: SourceKind | None = None
        self._speed: float | None = None
        self._achieved: float | None = None
        self._last_wall: float | None = None
        self._last_market_ns: int | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()

    # --- inputs ---------------------------------------------------------------------------------------
    def on_status(self, status: SourceStatus) -> None:
        if status.kind != self._kind:
            self._speed = self._achieved = None
        self._state, self._message, self._kind = status.state, status.message, status.kind
        self.source_label.setText(f"Source: {status.source}")
        self._set_prop(self.state_label, "state", status.state.value)
        if status.state is SourceState.ERROR:
            self.showMessage(status.message, 10_000)
        elif status.notice:
            self.showMessage(status.notice, NOTICE_MS)
        self.refresh()

    def on_batch(self, batch: QuoteBatch) -> None:
        self._last_wall = time.monotonic()
        self._last_market_ns = batch.snapshot.time_ns

    def set_trading(self, session: object | None) -> None:
        """Show the broker and account of ``session`` (an ``app.trading.TradingSession``; None: no orders)."""
        if session is None:
            self.account_label.setText("Orders: not connected")
            self.set_risk(None)
            live = False
        else:
            self.account_label.setText(session.describe())
            self.account_label.setToolTip(session.link_message or "where orders go: the broker and its account id")
            live = bool(session.is_live)
        self._set_prop(self.account_label, "live", "true" if live else "false")
        # red without relying on the theme's style sheet: a live account must never look like paper
        self.account_label.setStyleSheet("color: #ff3b30; font-weight: bold;" if live else "")

    def set_alerts(self, alerts: object) -> None:
        """Show the open alerts among ``alerts`` (``spx_core.risk.alerts.Alert``s; None: no alert service)."""
        from app.models.alerts_model import SEVERITY_COLORS, severity_text, worst_severity

        if alerts is None:
            self.alert_label.setText("Alerts: -")
            self.alert_label.setStyleSheet("")
            self._set_prop(self.alert_label, "severity", "")
            return
        open_alerts = [a for a in alerts if a.acknowledged_ns is None]
        worst = worst_severity(open_alerts)
        if worst is None:
            self.alert_label.setText("Alerts: none open")
            self.alert_label.setStyleSheet("")
        else:
            n = len(open_alerts)
            self.alert_label.setText(f"{n} alert{'s' if n != 1 else ''} {severity_text(worst)}")
            # coloured without relying on the theme's style sheet (as the live account)
            self.alert_label.setStyleSheet(f"color: {SEVERITY_COLORS[worst]}; font-weight: bold;")
        self._set_prop(self.alert_label, "severity", worst or "")

    def set_risk(self, status: object | None) -> None:
        """The circuit breaker from a ``GuardStatus`` (None: no trading): a red BREAKER label while it holds."""
        trip = getattr(status, "trip", None)
        if trip is None:
            self.breaker_label.hide()
            return
        text = f"BREAKER: {trip.reason}"
        if self.breaker_label.text() != text or self.breaker_label.isHidden():
            self.breaker_label.setText(text)
            self.breaker_label.setToolTip(f"{text}. Working orders were cancelled; new entries are refused until "
                                          f"the next session (closing orders still go through).")
            self.breaker_label.show()
            self.showMessage(f"CIRCUIT BREAKER TRIPPED: {trip.reason}", 60_000)

    def set_pace(self, speed: float | None, achieved: float | None = None) -> None:
        """The source's stated and measured speed (None when it has no speed control)."""
        self._speed, self._achieved = speed, achieved

    # --- display --------------------------------------------------------------------------------------
    def market_time(self) -> datetime | None:
        """The live market clock: the latest data's time, run forward at the source's pace while it runs."""
        if self._last_market_ns is None:
            return None
        seconds = self._last_market_ns / 1e9
        if self._state is SourceState.RUNNING and self._speed and self._last_wall is not None:
            pace = self._speed if self._achieved is None else min(self._speed, self._achieved)
            seconds += pace * (time.monotonic() - self._last_wall)
        return datetime.fromtimestamp(seconds, UTC)

    def state_text(self) -> str:
        """``running at 60x (achieved 41x)``, ``paused``, ``finished: end of replay (390 snapshots)``."""
        if self._state is SourceState.RUNNING:
            return "running" if self._speed is None else f"running at {speed_label(self._speed, self._achieved)}"
        if self._state is SourceState.PAUSED or not self._message or self._message == self._state.value:
            return self._state.value
        return f"{self._state.value}: {self._message}"

    def refresh(self) -> None:
        """Tick the market clock, session and data age (twice a second)."""
        from spx_core.domain.calendar import default_calendar

        market_now = self.market_time()
        text = self.state_text()
        if market_now is not None:
            text += ", " + market_now.astimezone(ET).strftime("%a %d %b %H:%M:%S ET")
        self.state_label.setText(text)
        calendar = default_calendar()
        if not calendar.loaded:  # loading it here would delay the first paint; the app loads it in a worker
            self.session_label.setText("Market: ...")
        else:
            try:
                when = market_now or datetime.now(UTC)
                self.session_label.setText(f"Market: {calendar.session_at(when).value}")
            except ValueError:
                self.session_label.setText("Market: -")
        if self._last_wall is None:
            self.age_label.setText("no data")
            self._set_prop(self.age_label, "stale", "true" if self._expects_data() else "false")
            return
        age = time.monotonic() - self._last_wall
        self.age_label.setText(f"updated {age:.1f}s ago")
        self._set_prop(self.age_label, "stale", "true" if age > STALE_AFTER_SECONDS and self._expects_data()
                       else "false")

    def _expects_data(self) -> bool:
        """True when silence means trouble: a live source (not a replay) that says it is running."""
        return self._state is SourceState.RUNNING and self._kind is not SourceKind.REPLAY

    @staticmethod
    def _set_prop(label: QLabel, name: str, value: str) -> None:
        if label.property(name) != value:
            label.setProperty(name, value)
            label.style().unpolish(label)
            label.style().polish(label)
