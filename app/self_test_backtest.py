"""The self-test's backtest check: a short backtest run in the Backtest panel, its charts and tables populated.

Like the order checks (orders in a temporary file, ``window.trading_db``), the backtest never touches the user's
database: a short simulated session (:data:`MINUTES` one-minute snapshots from 09:59 ET, so the preset's 10:00 entry
falls inside) is recorded into a temporary file beside the self-test's order book, the panel runs the first preset
over it with mid fills and a stop the session reaches, and the panel goes back to the window's database.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.self_test_trading import wait_until

if TYPE_CHECKING:
    from app.main_window import MainWindow

__all__ = ["MINUTES", "run_backtest_check"]

#: Simulated minutes recorded for the check (about a second to record, well under one to run).
MINUTES = 40
#: "1": the check also runs a two-point local sweep in worker processes (the bundle test sets it: a frozen app
#: must start its spawned workers as workers, not as second windows)
SWEEP_ENV = "SPX_SELF_TEST_SWEEP"
SWEEP_SECONDS = 90.0  # two workers each start a Python (a frozen app) before their first step
SESSION = "self-test backtest"


def record_sample(path: Path) -> Any:
    """A Store at ``path`` holding :data:`MINUTES` simulated minutes (worker thread: a second or two)."""
    from spx_core.cli.simulate_command import record_session
    from spx_core.domain.calendar import ET
    from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
    from spx_core.storage.store import Store

    store = Store.open(path)
    market = SimulatedMarket(SimulatorConfig(seed=5, start=datetime(2024, 3, 13, 9, 59, tzinfo=ET)))
    record_session(store, market, SESSION, MINUTES, replace=True)
    return store


async def run_backtest_check(window: MainWindow, seconds: float) -> dict[str, tuple[bool, str]]:
    panel = window.panels.get("backtest")
    if panel is None:
        return {"backtest: ran": (False, "no Backtest panel registered")}
    deadline = time.monotonic() + seconds
    folder = Path(window.trading_db).parent if window.trading_db else Path(tempfile.mkdtemp(prefix="spx-bt-"))
    store = await asyncio.get_running_loop().run_in_executor(None, record_sample, folder / "self_test_backtest.sqlite")
    try:
        window.show_dock("backtest")
        checks = {"backtest: ran": await _run(panel.view, store, deadline)}
        if os.environ.get(SWEEP_ENV) == "1" and checks["backtest: ran"][0]:
            checks["backtest: sweep"] = await _sweep(panel.view, time.monotonic() + SWEEP_SECONDS)
        return checks
    finally:
        panel.set_store(window.store)
        store.close()


async def _sweep(panel: Any, deadline: float) -> tuple[bool, str]:
    """A two-point local sweep on two worker processes (the frozen bundle's spawn path: freeze_support)."""
    page = panel.sweep
    page.keys[0].setCurrentText("exits.stop_loss")
    page.values[0].setText("0.01,0.02")
    page.keys[1].setCurrentText("strategy.quantity")
    page.values[1].setText("1")
    page.workers.setValue(min(2, page.workers.maximum()))
    if not page.run():
        return False, f"the sweep did not start: {page.status.text()}"
    await wait_until(lambda: not page.busy, deadline)
    if page.busy:
        page.cancel()
        return False, "the sweep did not end in time"
    outcome = page.outcome
    rows = outcome.result.rows if outcome is not None and getattr(outcome, "result", None) is not None else []
    errors = [r.error for r in rows if r.error]
    if len(rows) != 2 or errors or page.heat_map.model.rowCount() != 2:
        return False, f"{page.status.text()} {'; '.join(errors)}".strip()
    return True, page.status.text()


async def _run(panel: Any, store: Any, deadline: float) -> tuple[bool, str]:
    """On the panel's view (its content), over ``store``."""
    from spx_core.execution.fill_model import FillMode

    panel.set_store(store)
    if not panel.form.select_session(SESSION):
        return False, f"the recorded session {SESSION!r} is not offered: {panel.status_label.text()}"
    panel.form.preset.setCurrentIndex(0)
    panel.form.set_fill(FillMode.MID)
    panel.form.stop_loss.setValue(1.0)  # a loss of 1% of the credit: the trade closes within the session
    if not panel.run():
        return False, f"the run did not start: {panel.status_label.text()}"
    await wait_until(lambda: not panel.busy, deadline)
    if panel.busy:
        panel.cancel()
        return False, f"the run did not end in time ({panel.progress.value()} of {panel.progress.maximum()} steps)"
    outcome = panel.outcome
    if outcome is None or not outcome.ok:
        return False, panel.status_label.text()
    r = panel.tabs
    charts = {"equity": bool(r.equity.equity_items), "P&L histogram": len(r.histogram.pnl) > 0,
              "monthly": r.monthly.model.rowCount() > 0, "trades": r.trades_model.rowCount() > 0,
              "decisions": len(r.decisions_model.all) > 0, "summary": r.metrics_model.rowCount() > 0}
    empty = [name for name, ok in charts.items() if not ok]
    if empty:
        return False, f"run shown but empty: {', '.join(empty)} ({panel.status_label.text()})"
    return True, panel.status_label.text()
