"""Backtest panel screenshot driver (run in a subprocess under Xvfb by test_screenshots_backtest.py).

``python -m tests.app.backtest_screenshot_driver OUT_DIR`` records two and a half weeks of simulated chains (a snapshot
every 30 simulated minutes, trading hours only, March-April 2024) into the app's database, then launches the real
app (``spx-terminal --source sim --seed 7 --self-test 40``). Once the Backtest panel lists the recorded session it
runs the default preset over it with the form's defaults, then the 0.20-delta preset, ticks both runs in Compare
and selects the first trade, then sweeps short delta x take profit (2 x 2) in the Sweep tab. Then, for each size (1280x720, 1920x1080):

* ``backtest_main_W.png``: the whole window after Reset layout with the Backtest tab in front (Summary);
* ``backtest_TAB_W.png``: the Backtest dock floated at the full screen size, one per result tab
  (equity, trades, pnl, monthly, decisions, compare).

It writes ``shots.json`` (status line, the runs' trades, what each tab shows, errors).
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

from tests.app.screenshot_driver import (
    PANEL_SETTLE_MS,
    PANEL_WAIT_SECONDS,
    SIZES,
    Shooter,
    Step,
    run_app,
)

SESSION = "sim 2024-03"
STEPS_PER_DAY = 14  # 09:30 .. 16:00 ET every 30 minutes (the presets enter on the hour)
DAYS = 12  # late March to mid-April: two months on the monthly map; CI time (every run and sweep point steps them)
PRESETS = ("credit verticals 3/5/7 DTE", "credit verticals 3/5/7 DTE, 0.20 delta")
TABS = (("equity", 1), ("trades", 2), ("pnl", 3), ("monthly", 4), ("decisions", 5), ("compare", 6), ("sweep", 7))
#: the Sweep tab's grid: rows short delta, columns take profit (4 points on 2 worker processes)
SWEEP = (("strategy.short_delta", "0.10,0.20"), ("exits.take_profit", "0.25,0.50"))


def record_history() -> None:
    """A month of simulated SPX (+ SPY) chains into the app's database (SPX_TERMINAL_HOME's)."""
    from spx_core.domain.calendar import ET
    from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
    from spx_core.paths import database_path
    from spx_core.storage.store import Store

    store = Store.open(database_path())
    try:
        market = SimulatedMarket(SimulatorConfig(seed=7, start=datetime(2024, 3, 25, 9, 30, tzinfo=ET)))
        for i in range(STEPS_PER_DAY * DAYS):  # the market's calendar skips nights and weekends
            batch = market.advance(1800.0 if i else 0.0)
            store.save_snapshots([batch.snapshot, *(b.snapshot for b in batch.companions)], source="Simulated",
                                 session=SESSION)
    finally:
        store.close()


class _Shooter(Shooter):
    def __init__(self, window, out: Path) -> None:
        super().__init__(window, out)
        self.stage = 0

    @property
    def panel(self):
        return self.window.panels["backtest"].view

    def poll(self) -> None:
        panel = self.panel
        if time.monotonic() - self.t0 > PANEL_WAIT_SECONDS + 150:
            self.timer.stop()
            self.shots.setdefault("errors", []).append(f"backtest runs did not end: {panel.status_label.text()}")
            self._run(self._script())
            return
        if panel.busy:
            return
        try:
            if self.stage < len(PRESETS):
                if not panel.form.select_session(SESSION):
                    return  # the window's database is not open yet
                if self.stage and panel.outcome is None:
                    raise RuntimeError(panel.status_label.text())
                self.window.show_dock("backtest")
                panel.form.preset.setCurrentText(PRESETS[self.stage])
                if panel.run():
                    self.stage += 1
                return
            if self.stage == len(PRESETS):
                self._sweep()
                return
            if self.panel.sweep.busy:
                return
            self.timer.stop()
            self._prepare()
        except Exception as exc:  # noqa: BLE001 (report, never hang the self-test waiting for shots.json)
            self.timer.stop()
            self.shots.setdefault("errors", []).append(f"{type(exc).__name__}: {exc}")
        self._run(self._script())

    def _sweep(self) -> None:
        page = self.panel.sweep
        self.panel.form.preset.setCurrentText(PRESETS[0])
        for combo, edit, (key, values) in zip(page.keys, page.values, SWEEP, strict=True):
            combo.setCurrentText(key)
            edit.setText(values)
        if not page.run():
            raise RuntimeError(page.status.text())
        self.stage += 1

    def _prepare(self) -> None:
        tabs = self.panel.tabs
        for row in tabs.runs_model.rows:
            tabs.runs_model.set_checked(row.run_id, True)
        tabs.select_trade(0)

    def _script(self) -> list[Step]:
        dock = self.window.docks["backtest"]
        tabs = self.panel.tabs
        steps: list[Step] = []
        for w, h in SIZES:
            steps += [(lambda w=w, h=h: self._resize_and_reset(w, h, dock), PANEL_SETTLE_MS),
                      (lambda: tabs.setCurrentIndex(0), 300),
                      (lambda w=w: self._grab(self.window, f"backtest_main_{w}.png"), 0),
                      (lambda w=w, h=h: self._float(w, h), PANEL_SETTLE_MS)]
            for name, index in TABS:
                steps += [(lambda i=index: tabs.setCurrentIndex(i), 600),
                          (lambda w=w, name=name: self._grab(dock, f"backtest_{name}_{w}.png"), 0)]
            steps.append((lambda: dock.setFloating(False), 300))
        return steps + [(self._report, 0)]

    def _float(self, width: int, height: int) -> None:
        dock = self.window.docks["backtest"]
        dock.setFloating(True)
        dock.setGeometry(0, 0, width, height)

    def _report(self) -> None:
        panel = self.panel
        tabs = panel.tabs
        outcome = panel.outcome
        self.shots.update(
            status=panel.status_label.text(), populated=panel.populated,
            trades=len(outcome.result.trades) if outcome else 0,
            runs=tabs.runs_model.rowCount(), compared=len(tabs.compare_chart.equity_items),
            monthly=[tabs.monthly.model.rowCount(), tabs.monthly.model.columnCount()],
            histogram=len(tabs.histogram.pnl), payoff=tabs.payoff.data is not None,
            decisions=tabs.decisions_model.rowCount(), trade_detail=tabs.trade_text.text(),
            sweep=[panel.sweep.heat_map.model.rowCount(), panel.sweep.heat_map.model.columnCount()],
            sweep_status=panel.sweep.status.text())


def main() -> int:
    record_history()
    return run_app(Path(sys.argv[1]), _Shooter, wait_seconds=PANEL_WAIT_SECONDS + 150)


if __name__ == "__main__":
    sys.exit(main())
