"""The runs the Backtest panel can compare: every run is stored when it ends and listed for the Compare tab.

:class:`RunLibrary` is the panel's one door to stored runs: :meth:`save` (worker thread, on the worker's own
connection) and :meth:`rows` (the GUI thread's list, each row loading its equity only when it is overlaid).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from app.backtest_worker import BacktestOutcome, metrics_dict
from app.models.backtest_model import RunRow

__all__ = ["RunLibrary"]


class RunLibrary:
    """Runs of this window, newest first (thread-safe: the worker saves while the GUI lists)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[int, tuple[str, int, dict[str, Any], Any]] = {}

    def save(self, store: Any, outcome: BacktestOutcome) -> int:
        """Store ``outcome``'s run; its id."""
        with self._lock:
            run_id = max(self._runs, default=0) + 1
            self._runs[run_id] = (outcome.request.describe(), time.time_ns(), metrics_dict(outcome.metrics),
                                  outcome.result.equity)
        return run_id

    def rows(self, store: Any = None) -> list[RunRow]:
        with self._lock:
            runs = dict(self._runs)
        return [RunRow(run_id, name, created, metrics, lambda e=equity: e)
                for run_id, (name, created, metrics, equity) in sorted(runs.items(), reverse=True)]
