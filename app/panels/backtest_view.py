"""The Backtest panel's content: run a strategy preset over the stored snapshots and look at the result.

Built the first time the panel is shown (:class:`~app.panels.backtest_panel.BacktestPanel`): its imports (pandas,
the engine, SQLAlchemy through the stored runs) stay off the app's start-up path.

Left, the config form (:class:`~app.panels.backtest_form.BacktestForm`) with Run / Cancel, a progress bar and the
time left; right, the result tabs (:class:`~app.panels.backtest_results.BacktestResults`) with Export CSV (trades,
equity) and Export PNG (the chart on the current tab). One status line says what happened or what is wrong.

The run goes to a worker thread (:class:`~app.widgets.job_runner.JobRunner`, one run at a time; Run is disabled
while one runs) on its own connection to the window's database file (:func:`app.backtest_worker.run_backtest`);
progress and cancel cross threads through a :class:`~app.backtest_worker.RunControl`. Every run is stored when
it ends (a cancelled one as a partial run) and listed in the Compare tab.

Its self-test health (:meth:`BacktestView.health`) is "a run shown with its charts populated" once a run was asked.
"""

from __future__ import annotations

import gc
import logging
import math
import time
from pathlib import Path
from typing import Any

import pandas as pd
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.backtest_worker import (
    BacktestOutcome,
    RunControl,
    data_range,
    equity_frame,
    run_backtest,
    snapshots_between,
    spot_at,
)
from app.models.backtest_model import legs_text
from app.panels.backtest_form import BacktestForm
from app.panels.backtest_results import BacktestResults
from app.panels.backtest_runs import RunLibrary
from app.panels.backtest_sweep import SweepPage
from app.widgets.job_runner import JobRunner
from app.widgets.row_views import line_label

__all__ = ["NO_STORE", "BacktestView"]

log = logging.getLogger(__name__)

NO_STORE = "no database open yet: the backtest reads the stored snapshots of the window's database"
FORM_WIDTH = 300  # px: the form's labels and fields without a horizontal scroll bar


class BacktestView(QWidget):
    """See the module docstring."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("backtest_view")
        self.store: Any = None
        self.db_path: str | None = None
        self.library = RunLibrary()
        self.outcome: BacktestOutcome | None = None
        self.control: RunControl | None = None
        self.runs_asked = 0
        self._runner_bt = JobRunner("backtest", self)
        self._runner_bt.finished.connect(self._on_outcome)
        self._runner_bt.failed.connect(self._on_failed)
        self._build_ui()
        self.set_store(None)

    def _build_ui(self) -> None:
        self.status_label = line_label(NO_STORE)
        self.status_label.setObjectName("backtest_status")
        self.form = BacktestForm()
        self.form.dates_changed.connect(self._count_dates)
        self.run_button = QPushButton("Run backtest")
        self.run_button.setObjectName("backtest_run")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("backtest_cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setObjectName("backtest_progress")
        self.progress.setFormat("%v / %m steps")
        self.progress.setValue(0)
        self.eta_label = QLabel(" ")
        self.eta_label.setObjectName("backtest_eta")
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button, 1)
        buttons.addWidget(self.cancel_button)
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 4, 0)
        column.addWidget(self.form)
        column.addLayout(buttons)
        column.addWidget(self.progress)
        column.addWidget(self.eta_label)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(FORM_WIDTH)
        self.tabs = BacktestResults()
        self.sweep = SweepPage(self._request)
        self.tabs.addTab(self.sweep, "Sweep")
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.setToolTip("trades.csv and equity.csv of the run shown, into a folder")
        self.csv_button.clicked.connect(self._ask_csv)
        self.png_button = QPushButton("Export PNG…")
        self.png_button.setToolTip("the chart on the current tab")
        self.png_button.clicked.connect(self._ask_png)
        exports = QHBoxLayout()
        exports.setContentsMargins(0, 0, 0, 0)
        exports.addStretch(1)
        exports.addWidget(self.csv_button)
        exports.addWidget(self.png_button)
        right = QWidget()
        rcol = QVBoxLayout(right)
        rcol.setContentsMargins(0, 0, 0, 0)
        rcol.addLayout(exports)
        rcol.addWidget(self.tabs, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(scroll)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([FORM_WIDTH, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.status_label)
        layout.addWidget(self.splitter, 1)
        self._enable_exports()

    # --- the window's store -----------------------------------------------------------------------------------
    def set_store(self, store: Any) -> None:
        """Follow the window's database: its file is what a run reads (on a connection of its own)."""
        self.store = store
        self.tabs.spot_at = (lambda underlying, ns: spot_at(store, underlying, ns)) if store is not None else \
            (lambda underlying, ns: math.nan)
        path = getattr(store, "path", None)
        self.db_path = str(path) if path is not None else None
        self.run_button.setEnabled(self.db_path is not None and self.control is None)
        if self.db_path is None:
            self.status_label.setText(NO_STORE if store is None else "the database is in memory: a backtest "
                                      "needs a database file (set one in File > Settings)")
            return
        self.reload_data()
        self.tabs.set_runs(self.library.rows(store))

    def reload_data(self) -> None:
        """Re-read the stored sessions and span (after recording or importing)."""
        if self.store is None:
            return
        try:
            data = data_range(self.store)
        except Exception as exc:  # a damaged database: one line, the panel stays usable
            log.exception("cannot list the stored sessions")
            self.status_label.setText(f"cannot list the stored snapshots: {exc}")
            return
        self.form.set_data_range(data)
        if self.control is None and self.outcome is None:  # a run's result line stays until the next run
            self.status_label.setText(data.text() if data.empty else f"{data.text()}; pick the data and Run")

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self.control is None:  # sessions recorded or imported while the panel was hidden are offered now
            self.reload_data()

    def _count_dates(self, start: Any, end: Any) -> None:
        if self.store is None:
            return
        n = snapshots_between(self.store, start, end)
        self.form.set_range_count(f"{n:,} SPX snapshots between {start} and {end} (ET)" if n else
                                  f"no stored snapshots between {start} and {end}: pick other dates or record "
                                  f"some with spx-data simulate")

    # --- running ---------------------------------------------------------------------------------------------
    def run(self) -> bool:
        """Start the run the form describes (False, with the reason in the status line, when it cannot)."""
        if self.control is not None:
            return False
        if self.db_path is None:
            self.status_label.setText(NO_STORE)
            return False
        try:
            request = self._request()
        except ValueError as exc:
            self.status_label.setText(str(exc))
            return False
        # Qt objects in cyclic garbage (a closed window's) must be freed on the GUI thread: a run allocates enough
        # to trigger the collector in its worker, where freeing them warns "Timers cannot be started from another
        # thread" (seen after the shell tests' windows)
        gc.collect()
        control = RunControl(self)
        control.progressed.connect(self._on_progress)
        if not self._runner_bt.submit(run_backtest, request, control):
            return False
        self.control = control
        self.runs_asked += 1
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)  # busy until the first step reports its total
        self.eta_label.setText("starting…")
        self.status_label.setText(f"running {request.describe()}…")
        return True

    def _request(self) -> Any:
        """The form's run on the window's database (``ValueError``, one line, when there is none)."""
        if self.db_path is None:
            raise ValueError(NO_STORE)
        return self.form.request(self.db_path)

    def cancel(self) -> None:
        """Stop the running backtest after its current step (its partial result is shown and stored)."""
        if self.control is not None:
            self.control.cancel()
            self.cancel_button.setEnabled(False)
            self.eta_label.setText("cancelling…")

    @property
    def busy(self) -> bool:
        """A run is in progress."""
        return self.control is not None

    def _on_progress(self, done: int, total: int) -> None:
        if self.control is None:
            return
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        elapsed = time.monotonic() - self.control.started
        if 0 < done < total:
            self.eta_label.setText(f"{_duration(elapsed * (total - done) / done)} left "
                                   f"({_duration(elapsed)} so far)")
        elif done >= total:
            self.eta_label.setText(f"finishing ({_duration(elapsed)})")

    def _finish(self) -> None:
        self.control = None
        self.run_button.setEnabled(self.db_path is not None)
        self.cancel_button.setEnabled(False)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)

    def _on_outcome(self, outcome: BacktestOutcome) -> None:
        self._finish()
        if not outcome.ok:
            self.eta_label.setText(" ")
            self.progress.setValue(0)
            self.status_label.setText(outcome.error)
            return
        self.outcome = outcome
        self.tabs.show_outcome(outcome)
        self.tabs.set_runs(self.library.rows(self.store))
        self._enable_exports()
        m = outcome.metrics
        done, total = outcome.result.steps
        self.progress.setValue(done)
        self.eta_label.setText(f"{done:,} steps in {_duration(outcome.seconds)}")
        what = "cancelled after" if outcome.result.cancelled else "done:"
        self.status_label.setText(
            f"{outcome.request.describe()} {what} {done:,} of {total:,} steps · {len(outcome.result.trades)} trades"
            + (f" · return {m.total_return * 100:+.2f}% · max drawdown {m.max_drawdown * 100:.2f}%" if m else "")
            + (f" · run #{outcome.run_id}" if outcome.run_id is not None else ""))

    def _on_failed(self, message: str) -> None:
        self._finish()
        self.eta_label.setText(" ")
        self.status_label.setText(message)

    # --- exports -----------------------------------------------------------------------------------------------
    def _enable_exports(self) -> None:
        self.csv_button.setEnabled(self.outcome is not None)
        self.png_button.setEnabled(self.outcome is not None)

    def export_csv(self, folder: str | Path) -> list[Path]:
        """trades.csv (one row per trade, prices in points per unit, P&L and fees in dollars) and equity.csv
        (equity and margin in dollars by UTC time) of the run shown."""
        if self.outcome is None:
            raise ValueError("no run to export yet: run a backtest first")
        folder = Path(folder)
        if not folder.is_dir():
            raise OSError(f"cannot write into {folder}: no such folder")
        result = self.outcome.result
        trades = pd.DataFrame([{
            "trade_id": t.trade_id, "strategy": t.strategy,
            "entry_time_utc": pd.Timestamp(t.entry_ns, tz="UTC").isoformat(),
            "exit_time_utc": "" if t.exit_ns is None else pd.Timestamp(t.exit_ns, tz="UTC").isoformat(),
            "exit_reason": t.exit_reason, "legs": legs_text(t.legs), "side": t.side, "entry_price": t.entry_price,
            "exit_price": t.exit_price, "quantity": t.quantity, "pnl": t.pnl, "fees": t.fees}
            for t in result.trades], columns=["trade_id", "strategy", "entry_time_utc", "exit_time_utc",
                                              "exit_reason", "legs", "side", "entry_price", "exit_price",
                                              "quantity", "pnl", "fees"])
        paths = [folder / "trades.csv", folder / "equity.csv"]
        trades.to_csv(paths[0], index=False)
        equity_frame(result).to_csv(paths[1])
        return paths

    def export_png(self, path: str | Path) -> Path:
        """The chart on the current tab as a PNG (``ValueError`` on a table tab)."""
        chart = self.tabs.current_chart()
        if chart is None:
            raise ValueError("no chart on this tab: pick the Equity, Trades (a trade), P&L, Monthly or Compare tab")
        if hasattr(chart, "export_png"):
            return chart.export_png(path)
        target = Path(path)
        if not chart.grab().save(str(target), "PNG"):
            raise OSError(f"cannot write {target}: check the folder is writable")
        return target

    def _ask_csv(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the run's trades and equity into")
        if folder:
            self._report(lambda: self.export_csv(folder))

    def _ask_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the chart", "backtest.png", "PNG image (*.png)")
        if path:
            self._report(lambda: self.export_png(path))

    def _report(self, export: Any) -> None:
        try:
            written = export()
        except (OSError, ValueError) as exc:
            self.status_label.setText(str(exc))
            return
        names = written if isinstance(written, list) else [written]
        self.status_label.setText("wrote " + ", ".join(str(p) for p in names))

    # --- health ------------------------------------------------------------------------------------------------
    @property
    def populated(self) -> bool:
        """A run is shown with its equity drawn and its tables filled."""
        r = self.tabs
        return (self.outcome is not None and bool(r.equity.equity_items) and r.metrics_model.rowCount() > 0
                and r.decisions_model.rowCount() + len(r.decisions_model.all) > 0)

    def health(self) -> tuple[bool, str]:
        if self.runs_asked == 0:
            return True, "backtest: no run asked (the self-test runs one)"
        if self.control is not None:
            return False, f"backtest: running ({self.progress.value()} of {self.progress.maximum()} steps)"
        if not self.populated:
            return False, f"backtest: {self.status_label.text()}"
        return True, f"backtest: {self.status_label.text()}"

    def shutdown(self) -> None:
        if self.control is not None:
            self.control.cancel()
        self._runner_bt.shutdown()
        self.sweep.shutdown()


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "—"
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    return f"{minutes} min {sec:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
