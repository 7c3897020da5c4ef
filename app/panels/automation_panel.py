"""Automation panel: the strategies the automation runs (on/off, manual or auto, next entry time, limit profile),
today's decisions with their reasons, and the day's summary with "Export CSV…" (today's rows, or every day stored
in the database's ``daily_summaries``: the automation stores each day's rows as it goes and at the close).

Strategies come from the window's :class:`~app.ops_session.OpsSession` (its ``automation``: the strategy store,
seeded with the presets on first run, all disabled). Manual mode stages each entry in the order ticket for the
trader to send; auto mode sends it through the pre-trade gate by itself (switching to auto asks first).

Feeding (:class:`~app.panels.base.LivePanel`): the worker computes the next entry times and the summary rows from
the strategies, today's decisions and trades (read on the GUI thread) at the market clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.models.automation_model import DecisionsModel, StrategiesModel, SummaryModel
from app.ops_automation import automation_view
from app.panels.base import Job
from app.panels.ops_base import NO_OPS, OpsPanel
from app.widgets.row_views import line_label, row_view
from spx_core.marketdata.source import QuoteBatch

__all__ = ["AutomationPanel", "SummaryScope"]

log = logging.getLogger(__name__)

#: Wall seconds between two recomputations of next entries and the summary on a live feed.
VIEW_SECONDS = 2.0


class SummaryScope(StrEnum):
    """Which summary rows "Export CSV…" writes."""

    TODAY = "today"  # the rows shown: today's
    HISTORY = "history"  # every day stored in the database (today's brought up to date first)


class AutomationPanel(OpsPanel):
    """See the module docstring."""

    def __init__(self, parent: QWidget | None = None, *, refresh_seconds: float = 1.0) -> None:
        super().__init__(parent, job_name="automation view", refresh_seconds=refresh_seconds)
        self.setObjectName("automation_panel")
        #: asks before a strategy trades by itself (tests replace it); returns True to go ahead
        self.confirm_auto: Callable[[str], bool] = self._confirm_auto
        #: asks where to save the summary CSV of a scope (tests replace it); "" = cancelled
        self.ask_csv_path: Callable[[SummaryScope], str] = self._ask_csv_path
        self.strategies_model = StrategiesModel(self)
        self.strategies_model.toggled.connect(self.set_enabled)
        self.strategies = row_view(QTableView(), self.strategies_model, "automation_strategies")
        self.strategies.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        self.decisions_model = DecisionsModel(self)
        self.decisions = row_view(QTableView(), self.decisions_model, "automation_decisions")
        self.decisions.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.summary_model = SummaryModel(self)
        self.summary = row_view(QTableView(), self.summary_model, "automation_summary", select_rows=False)
        self.mode_button = QPushButton("Switch to auto")
        self.mode_button.setToolTip("manual: the ticket opens with each entry for you to send; auto: entries are "
                                    "sent through the pre-trade gate by themselves")
        self.mode_button.clicked.connect(self.toggle_mode)
        self.decide_button = QPushButton("Decide now")
        self.decide_button.setToolTip("Decide the selected strategy on the current chain now, whatever its schedule "
                                      "(manual: the ticket opens with the order; auto: it is sent)")
        self.decide_button.clicked.connect(self.decide_selected)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("Save the daily summary as CSV: today's rows, or every day stored")
        export_menu = QMenu(self.export_button)
        self.export_today_action = export_menu.addAction("Today's summary…",
                                                         lambda: self.export_csv(SummaryScope.TODAY))
        self.export_history_action = export_menu.addAction("All stored days…",
                                                           lambda: self.export_csv(SummaryScope.HISTORY))
        self.export_button.setMenu(export_menu)
        self.status_label = line_label(NO_OPS)
        row = self.strategies.verticalHeader().defaultSectionSize()
        for view, rows in ((self.strategies, 3), (self.decisions, 2), (self.summary, 2)):
            view.setMinimumHeight(rows * row + 4)
        # one toolbar, then the three tables without titles (their headers say what they are): at 1280x720 a
        # title per table cost two strategy rows
        self.strategies.setToolTip("Strategies: tick to switch one on; select one for Decide now / Switch mode")
        self.decisions.setToolTip("Today's decisions, newest first: TRADE or SKIP and why")
        self.summary.setToolTip("Today's summary: all strategies, then each strategy with a decision")
        split = QSplitter(Qt.Orientation.Vertical)
        split.setObjectName("automation_split")
        for i, (view, stretch) in enumerate(((self.strategies, 4), (self.decisions, 4), (self.summary, 2))):
            split.addWidget(view)
            split.setStretchFactor(i, stretch)
        split.setSizes([400, 400, 200])  # proportions until the first layout
        bar = QHBoxLayout()
        bar.addWidget(self.decide_button)
        bar.addWidget(self.mode_button)
        bar.addWidget(self.status_label, 1)
        bar.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        self._update_buttons()

    # --- binding --------------------------------------------------------------------------------------------
    @property
    def automation(self) -> Any | None:
        """The window's :class:`~app.ops_automation.OpsAutomation` (None: no order service, or it failed)."""
        return self.ops.automation if self.ops is not None else None

    def ops_slots(self, ops: Any) -> dict[tuple[Any, str], Callable]:
        return {(ops.automation, "changed"): self.show_view} if ops.automation is not None else {}

    def ops_changed(self, ops: Any) -> None:
        if self.automation is None:
            self.show_result(automation_view((), (), (), 0))
            self.status_label.setText(ops.automation_error if ops is not None else NO_OPS)
        else:
            self.show_view()

    def show_view(self) -> None:
        """Repaint from the automation's state now (a toggle, a decision recorded)."""
        if self.automation is not None:
            self.show_result(self.automation.view())

    # --- actions --------------------------------------------------------------------------------------------
    def selected_name(self) -> str:
        rows = self.strategies.selectionModel().selectedRows()
        stored = self.strategies_model.row_at(rows[0].row()) if rows else None
        return stored.config.name if stored is not None else ""

    def select_strategy(self, name: str) -> bool:
        row = self.strategies_model.row_of(name)
        if row >= 0:
            self.strategies.selectRow(row)
        return row >= 0

    def set_enabled(self, name: str, on: bool) -> None:
        if self.automation is not None:
            self.automation.set_enabled(name, on)

    def toggle_mode(self) -> bool:
        """Switch the selected strategy between manual and auto (auto asks first)."""
        name = self.selected_name()
        stored = next((s for s in self.strategies_model.rows if s.config.name == name), None)
        if self.automation is None or stored is None:
            return False
        mode = "manual" if str(stored.mode) == "auto" else "auto"
        if mode == "auto" and not self.confirm_auto(name):
            return False
        self.automation.set_mode(name, mode)
        return True

    def decide_selected(self) -> bool:
        name = self.selected_name()
        started = bool(name) and self.automation is not None and self.automation.decide_now(name)
        if name and not started:
            self.status_label.setText(f"{name}: no decision now (no chain yet, or a step is running); try again")
        return started

    def export_csv(self, scope: SummaryScope = SummaryScope.TODAY) -> str:
        """Write today's summary rows, or every stored day's, as CSV where the user says; the path written ("" when
        cancelled or not written)."""
        from spx_core.automation.summary import summaries_csv

        scope = SummaryScope(scope)
        path = self.ask_csv_path(scope)
        if not path:
            return ""
        try:
            if scope is SummaryScope.TODAY:
                rows = list(self.summary_model.rows)
            elif self.automation is not None:
                rows = self.automation.summary_history()
            else:
                rows = []
            Path(path).write_text(summaries_csv(rows), encoding="utf-8")
        except OSError as exc:
            self.status_label.setText(f"summary not saved to {path}: {exc.strerror or exc}; choose another folder")
            return ""
        except Exception as exc:  # the database could not be read: one line here, the details in the log
            log.exception("automation: reading the stored daily summaries failed")
            self.status_label.setText(f"summary not saved: the stored summaries could not be read ({exc}); "
                                      f"check the database")
            return ""
        days = len({r.day for r in rows})
        self.status_label.setText(f"summary saved to {path} ({len(rows)} rows, {days} day{'s' if days != 1 else ''})")
        return path

    def _confirm_auto(self, name: str) -> bool:
        answer = QMessageBox.question(self, "Automatic trading",
                                      f"Let \"{name}\" send its orders by itself through the pre-trade gate?")
        return answer == QMessageBox.StandardButton.Yes

    def _ask_csv_path(self, scope: SummaryScope) -> str:
        title, name = (("Export today's summary", "daily_summary.csv") if scope is SummaryScope.TODAY
                       else ("Export every stored daily summary", "daily_summaries.csv"))
        path, _ = QFileDialog.getSaveFileName(self, title, name, "CSV (*.csv)")
        return path

    def _update_buttons(self) -> None:
        name = self.selected_name()
        stored = next((s for s in self.strategies_model.rows if s.config.name == name), None)
        self.mode_button.setEnabled(stored is not None)
        self.decide_button.setEnabled(stored is not None)
        self.mode_button.setText("Switch to manual" if stored is not None and str(stored.mode) == "auto"
                                 else "Switch to auto")
        self.export_button.setEnabled(self.automation is not None)
        self.export_today_action.setEnabled(bool(self.summary_model.rows))

    # --- LivePanel ------------------------------------------------------------------------------------------
    def job(self, batch: QuoteBatch) -> Job | None:
        return Job(automation_view, self.automation.view_inputs()) if self.automation is not None else None

    def job_spacing(self) -> float:
        return VIEW_SECONDS

    def show_result(self, result: Any) -> None:
        name = self.selected_name()
        self.strategies_model.set_strategies(result.strategies, result.next_entry)
        self.decisions_model.set_decisions(result.decisions)
        self.summary_model.set_rows(result.summaries)
        if self.automation is not None:  # the worker computed them: stored here, on the GUI thread (the store's)
            self.automation.keep_summaries(result.summaries)
        if name:
            self.select_strategy(name)
        on = sum(1 for s in result.strategies if s.enabled)
        auto = sum(1 for s in result.strategies if s.enabled and str(s.mode) == "auto")
        trades = sum(1 for d in result.decisions if d.action == "TRADE")
        if self.automation is not None:
            self.status_label.setText(f"{on} of {len(result.strategies)} strategies on ({auto} auto) · today "
                                      f"{len(result.decisions)} decisions, {trades} trades")
        self._update_buttons()

    def health(self) -> tuple[bool, str]:
        if self.automation is None:
            return False, f"automation: {self.ops.automation_error if self.ops is not None else NO_OPS}"
        return True, f"automation: {self.status_label.text()}"

    def status_message(self, text: str) -> None:
        self.status_label.setText(text)
