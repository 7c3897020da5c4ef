"""The Backtest panel's Sweep tab: a grid over two config keys of the form's run, swept in worker processes
(:class:`~spx_core.backtest.sweep.Sweep`), shown as a heat map of one metric and a table of every point.

The sweep is the form's config (:attr:`BacktestRequest.spec`) with each point's overrides; the Sweep runs its own
process pool (``workers``) from a worker thread of this tab (:class:`~app.widgets.job_runner.JobRunner`), stores
every point as a run of the sweep, and reports progress and honours Cancel between points
(:class:`~app.backtest_worker.RunControl`).
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.backtest_worker import BacktestRequest, RunControl
from app.models.backtest_model import SweepModel
from app.widgets.backtest_charts import SweepHeatMap
from app.widgets.job_runner import JobRunner
from app.widgets.row_views import line_label, row_view
from spx_core.backtest.sweep import KEY_METRICS, RANKABLE, SweepResult, parse_grid

__all__ = ["SWEEP_KEYS", "SweepOutcome", "SweepPage", "run_sweep"]

#: Config keys a trader sweeps, with a starting grid each (any dotted key of the TOML config can be typed in).
SWEEP_KEYS: dict[str, str] = {
    "strategy.short_delta": "0.10,0.15,0.20",
    "strategy.width": "10,25,50",
    "exits.take_profit": "0.25,0.50,0.75",
    "exits.stop_loss": "1.0,2.0",
    "strategy.dte_max": "7,14,30",
    "fills.spread_fraction": "0.0,0.3,0.5",
}


@dataclass(frozen=True)
class SweepOutcome:
    """A finished (or cancelled) sweep and the two keys of its heat map, or one line in ``error``."""

    result: SweepResult | None
    x_key: str = ""
    y_key: str = ""
    error: str = ""
    seconds: float = math.nan


def run_sweep(request: BacktestRequest, grid_text: str, x_key: str, y_key: str, metric: str, workers: int,
              control: RunControl | None = None) -> SweepOutcome:
    """Worker thread: the sweep of ``grid_text`` over ``request``'s config (every point stored)."""
    from spx_core.backtest.sweep import Sweep

    t0 = time.perf_counter()
    try:
        grid = parse_grid(grid_text)
        sweep = Sweep(request.db_path, request.spec, grid, workers=workers, metric=metric)
        result = sweep.run(control.progress if control else None, control.should_stop if control else None)
    except (ValueError, OSError) as exc:  # GridError, BacktestConfigError, a database that cannot be opened
        return SweepOutcome(None, error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return SweepOutcome(result, x_key, y_key, seconds=time.perf_counter() - t0)


class SweepPage(QWidget):
    """See the module docstring. ``request()`` gives the form's run (``ValueError`` when it cannot be run)."""

    def __init__(self, request: Callable[[], BacktestRequest], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("backtest_sweep")
        self._request = request
        self.outcome: SweepOutcome | None = None
        self.control: RunControl | None = None
        self._runner = JobRunner("backtest sweep", self)
        self._runner.finished.connect(self._on_outcome)
        self._runner.failed.connect(self._on_failed)
        self.keys = [QComboBox(), QComboBox()]
        self.values = [QLineEdit(), QLineEdit()]
        for i, (combo, edit) in enumerate(zip(self.keys, self.values, strict=True)):
            combo.setEditable(True)  # any dotted key of the config
            combo.addItems(list(SWEEP_KEYS))
            combo.setCurrentIndex(i)
            combo.currentTextChanged.connect(lambda key, e=edit: e.setText(SWEEP_KEYS.get(key, e.text())))
            edit.setText(SWEEP_KEYS[combo.currentText()])
        self.metric = QComboBox()
        self.metric.addItems(list(RANKABLE))
        # narrow minimums: the Backtest dock shares the chain's column (about 760 px at 1280x720)
        for box, chars in ((self.keys[0], 20), (self.keys[1], 20), (self.metric, 10)):  # "strategy.short_delta"
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(chars)
        for edit in self.values:
            edit.setMinimumWidth(60)
        self.metric.setCurrentText("sharpe")
        self.workers = QSpinBox()
        self.workers.setRange(1, max(os.cpu_count() or 1, 1))
        self.workers.setValue(min(2, self.workers.maximum()))
        self.workers.setSuffix(" processes")
        self.run_button = QPushButton("Run sweep")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m points")
        self.status = line_label("A grid over two keys of the form's run; each point is stored as a run.")
        self.heat_map = SweepHeatMap()
        self.model = SweepModel(self)
        self.table = row_view(QTableView(), self.model, "backtest_sweep_table", select_rows=False)
        self._build()

    def _build(self) -> None:
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        for row, (label, combo, edit) in enumerate(zip(("Rows", "Columns"), self.keys, self.values, strict=True)):
            grid.addWidget(QLabel(label), row, 0)
            grid.addWidget(combo, row, 1)
            grid.addWidget(edit, row, 2)
        # metric, workers and the buttons on a row of their own: the page stays narrow enough for the chain's
        # column at 1280x720 (the Backtest dock is tabbed with the chain)
        grid.addWidget(self.run_button, 0, 3)
        grid.addWidget(self.cancel_button, 1, 3)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Metric"))
        controls.addWidget(self.metric)
        controls.addWidget(QLabel("Workers"))
        controls.addWidget(self.workers)
        controls.addStretch(1)
        grid.addLayout(controls, 2, 0, 1, 4)
        grid.setColumnStretch(2, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.heat_map)
        split.addWidget(self.table)
        split.setChildrenCollapsible(False)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        column = QVBoxLayout(self)
        column.setContentsMargins(2, 2, 2, 2)
        column.addLayout(grid)
        column.addWidget(self.progress)
        column.addWidget(self.status)
        column.addWidget(split, 1)

    @property
    def busy(self) -> bool:
        return self.control is not None

    def grid_text(self) -> str:
        return ";".join(f"{k.currentText().strip()}={v.text().strip()}" for k, v in zip(self.keys, self.values,
                                                                                        strict=True))

    def run(self) -> bool:
        """Start the sweep (False, with the reason in the status line, when it cannot)."""
        if self.control is not None:
            return False
        y_key, x_key = (k.currentText().strip() for k in self.keys)
        if x_key == y_key:
            self.status.setText(f"pick two different keys (both are {x_key})")
            return False
        try:
            request = self._request()
            parse_grid(self.grid_text())  # a typo is one line now, not after the pool started
        except ValueError as exc:
            self.status.setText(str(exc))
            return False
        gc.collect()  # cyclic Qt garbage freed here, not in the worker (see BacktestView.run)
        control = RunControl(self)
        control.progressed.connect(self._on_progress)
        if not self._runner.submit(run_sweep, request, self.grid_text(), x_key, y_key, self.metric.currentText(),
                                   self.workers.value(), control):
            return False
        self.control = control
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self.status.setText(f"sweeping {self.grid_text()} over {request.describe()}…")
        return True

    def cancel(self) -> None:
        if self.control is not None:
            self.control.cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText("cancelling: the points running finish, the rest are skipped…")

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _finish(self) -> None:
        self.control = None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)

    def _on_failed(self, message: str) -> None:
        self._finish()
        self.status.setText(message)

    def _on_outcome(self, outcome: SweepOutcome) -> None:
        self._finish()
        if outcome.result is None:
            self.status.setText(outcome.error)
            return
        self.outcome = outcome
        result = outcome.result
        metric = result.metric
        self.heat_map.set_table(result.heat_map(metric, outcome.x_key, outcome.y_key), metric)
        self.model.set_result(result, (metric, *(m for m in KEY_METRICS if m != metric)))
        failed = [r for r in result.rows if r.error]
        best = result.best()
        self.status.setText(
            f"sweep #{result.sweep_id}: {len(result.rows) - len(failed)} of {len(result.rows)} points run in "
            f"{outcome.seconds:.1f} s" + (" (cancelled)" if result.cancelled else "")
            + (f" · best {metric} {best.value(metric):.3g} at "
               + ", ".join(f"{k}={v}" for k, v in best.params.items()) if best is not None else "")
            + (f" · {len(failed)} failed: {failed[0].error}" if failed else ""))

    def shutdown(self) -> None:
        if self.control is not None:
            self.control.cancel()
        self._runner.shutdown()

    def export_png(self, path: Any) -> Any:
        return self.heat_map.export_png(path)
