"""The runs the Backtest panel can compare: every run is stored (:class:`BacktestRepository`) when it ends and
listed in the Compare tab, each row loading its equity only when it is overlaid.

:class:`RunLibrary` reads on the GUI thread through the window's store (a list of run rows: one query); the worker
saves through its own connection (:func:`app.backtest_worker.run_backtest`).
"""

from __future__ import annotations

from typing import Any

from app.models.backtest_model import RunRow
from spx_core.storage.backtest_repo import BacktestRepository

__all__ = ["RunLibrary"]

#: Runs listed for comparison, newest first (older ones stay stored: ``spx-backtest runs`` lists them all).
MAX_LISTED = 200


class RunLibrary:
    """The stored runs of the window's database (not the sweeps' grid points), newest first."""

    def rows(self, store: Any) -> list[RunRow]:
        if store is None:
            return []
        repo = BacktestRepository(store)
        runs = [r for r in repo.list_runs() if r.sweep_id is None][-MAX_LISTED:]
        return [RunRow(r.id, r.name, r.created_ns, {**r.metrics, "starting_cash": r.starting_cash},
                       lambda run_id=r.id: repo.load_run(run_id).equity) for r in reversed(runs)]
