"""Alerts panel: what the alert rules raised (limits, P&L, short strikes, stale data, broker link, rejected
orders, exits due, the circuit breaker), newest first; acknowledge one or all; sound and desktop toggles.

Alerts come from the window's :class:`~app.ops_session.OpsSession` (``AppContext.ops``): ``alerts_changed`` after
every raise or acknowledgement, and a re-read of the store every few seconds while shown (alerts another window
of the same database raised show too). A repeat of an open alert bumps its Count instead of adding a row.

Severity is a symbol, a word and a colour (never colour alone); open alerts are bold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.models.alerts_model import AlertsModel, et_time, severity_text, worst_severity
from app.panels.base import Job
from app.panels.ops_base import NO_OPS, OpsPanel
from app.widgets.row_views import line_label, row_view, shortcut_action
from spx_core.marketdata.source import QuoteBatch

__all__ = ["AlertsPanel"]

#: Wall seconds between two re-reads of the store (the signals show this window's alerts at once).
REREAD_SECONDS = 3.0
DETAIL_HINT = "select an alert to read its whole message"


class AlertsPanel(OpsPanel):
    """See the module docstring."""

    def __init__(self, parent: QWidget | None = None, *, refresh_seconds: float = 1.0) -> None:
        super().__init__(parent, job_name="alerts", refresh_seconds=refresh_seconds)
        self.setObjectName("alerts_panel")
        self.model = AlertsModel(self)
        self.table = row_view(QTableView(), self.model, "alerts_table")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)  # the message takes what is left
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._on_selection())
        # the whole message of the selected alert (the table cuts long ones), wrapped under the table
        self.detail_label = QLabel(DETAIL_HINT)
        self.detail_label.setObjectName("alert_detail")
        self.detail_label.setWordWrap(True)
        self.detail_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.ack_button = QPushButton("Acknowledge")
        self.ack_button.setToolTip("Acknowledge the selected alert (Space): a repeat then raises a new one")
        self.ack_button.clicked.connect(self.acknowledge_selected)
        self.ack_all_button = QPushButton("Acknowledge all")
        self.ack_all_button.setToolTip("Acknowledge every open alert")
        self.ack_all_button.clicked.connect(self.acknowledge_all)
        shortcut_action(self, "Acknowledge alert", [QKeySequence(Qt.Key.Key_Space)], self.acknowledge_selected)
        self.sound_check = QCheckBox("Sound")
        self.sound_check.setToolTip("Beep on a new warning or critical alert")
        self.desktop_check = QCheckBox("Desktop notification")
        self.desktop_check.setToolTip("Show a new alert as a desktop (system tray) notification where the desktop "
                                      "has a tray")
        self.sound_check.toggled.connect(lambda on: self._request(alert_sound=on))
        self.desktop_check.toggled.connect(lambda on: self._request(alert_desktop=on))
        self.status_label = line_label(NO_OPS)
        bar = QHBoxLayout()
        bar.addWidget(self.ack_button)
        bar.addWidget(self.ack_all_button)
        bar.addWidget(self.status_label, 1)
        bar.addWidget(self.sound_check)
        bar.addWidget(self.desktop_check)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.detail_label)
        self._update_buttons()

    # --- binding --------------------------------------------------------------------------------------------
    def bind(self, context: Any) -> None:
        super().bind(context)
        context.settings_changed.connect(self._show_settings)
        self._show_settings(context.settings)

    def _show_settings(self, settings: Any) -> None:
        for box, on in ((self.sound_check, settings.alert_sound), (self.desktop_check, settings.alert_desktop)):
            if box.isChecked() != on:
                box.blockSignals(True)
                box.setChecked(on)
                box.blockSignals(False)

    def _request(self, **changes: object) -> None:
        if self.context is not None:
            self.context.request_settings(**changes)

    def ops_slots(self, ops: Any) -> dict[tuple[Any, str], Callable]:
        return {(ops, "alerts_changed"): self.set_alerts}

    def ops_changed(self, ops: Any) -> None:
        self.set_alerts(ops.recent() if ops is not None else ())
        if ops is None:
            self.status_label.setText(NO_OPS)

    # --- the list -------------------------------------------------------------------------------------------
    def set_alerts(self, alerts: Any) -> None:
        selected = self.selected_alert()
        self.model.set_alerts(alerts)
        if selected is not None and (row := self.model.row_of(selected.id)) >= 0:
            self.table.selectRow(row)
        self._on_selection()
        open_alerts = [a for a in self.model.alerts if a.is_open]
        worst = worst_severity(open_alerts)
        self.status_label.setText(f"{len(open_alerts)} open" + (f", worst {worst}" if worst else "")
                                  + f" · {len(self.model.alerts)} listed")
        self._update_buttons()

    def _on_selection(self) -> None:
        alert = self.selected_alert()
        self.detail_label.setText(DETAIL_HINT if alert is None else
                                  f"{severity_text(alert.severity)} · {alert.rule} · first {et_time(alert.first_ns)} ET"
                                  f", {alert.count}x: {alert.message}")
        self._update_buttons()

    def selected_alert(self) -> Any | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.model.alert_at(rows[0].row()) if rows else None

    def select_alert(self, alert_id: int) -> bool:
        row = self.model.row_of(alert_id)
        if row >= 0:
            self.table.selectRow(row)
        return row >= 0

    def acknowledge_selected(self) -> bool:
        alert = self.selected_alert()
        if self.ops is None or alert is None or not alert.is_open:
            return False
        self.ops.acknowledge(alert.id)
        return True

    def acknowledge_all(self) -> int:
        return self.ops.acknowledge_all() if self.ops is not None else 0

    def _update_buttons(self) -> None:
        alert = self.selected_alert()
        self.ack_button.setEnabled(self.ops is not None and alert is not None and alert.is_open)
        self.ack_all_button.setEnabled(self.ops is not None and any(a.is_open for a in self.model.alerts))

    # --- LivePanel ------------------------------------------------------------------------------------------
    def job(self, batch: QuoteBatch) -> Job | None:
        # the store is read here, on the GUI thread (~1 ms for 200 rows): a worker still reading it when the window
        # closes the store at shutdown would race the close; the worker only hands the rows back
        return Job(tuple, (self.ops.recent(),)) if self.ops is not None else None

    def moved(self, previous: QuoteBatch, batch: QuoteBatch) -> bool:
        return True  # the store, not the chain, is what changes: job_spacing paces the re-reads

    def job_spacing(self) -> float:
        return REREAD_SECONDS

    def show_result(self, result: Any) -> None:
        if list(result) != list(self.model.alerts):
            self.set_alerts(result)

    def health(self) -> tuple[bool, str]:
        if self.ops is None:
            return False, f"alerts: {NO_OPS}"
        return True, f"alerts: {self.status_label.text()}"

    def status_message(self, text: str) -> None:
        self.status_label.setText(text)
