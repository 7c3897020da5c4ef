"""Alerts and Automation screenshot driver (run in a subprocess under Xvfb by test_screenshots_ops.py).

``python -m tests.app.ops_screenshot_driver OUT_DIR`` launches the real app through its entry point
(``spx-terminal --source sim --seed 7 --self-test ...``). Once the window's trading and ops sessions run on a chain:

* alerts: orders the gate refuses (500 lots; an off-tick limit) raise "order_rejected" alerts through the rules;
  the first is acknowledged;
* automation: two presets are switched on (one in auto mode, confirmed), and three presets decide now in turn
  (manual ones open the ticket with their order, which is not sent).

Then, for each size (1280x720, 1920x1080): ``alerts_W.png`` / ``automation_W.png``, that dock floated at the full
width and half the height. It writes ``shots.json`` (rows, decisions, the status bar's alert text, errors).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from PySide6.QtWidgets import QMainWindow

from app.self_test_trading import sample_vertical
from tests.app.screenshot_driver import (
    PANEL_SETTLE_MS,
    PANEL_WAIT_SECONDS,
    SIZES,
    Shooter,
    Step,
    run_app,
)

DECIDE = ("credit verticals 3/5/7 DTE", "call-spread market making", "iron condor (regime filter)")


class _Shooter(Shooter):
    def __init__(self, window: QMainWindow, out: Path) -> None:
        super().__init__(window, out)
        self.pending = list(DECIDE)

    def poll(self) -> None:
        session = self.trading_session(ops=True)
        if session is None:
            return
        self.session, self.ops = session, self.window.context.ops
        steps: list[Step] = [(self._refuse, 0), (lambda: None, 1500), (self._ack_first, 0),
                             (self._switch_on, 0)]
        for _ in DECIDE:
            steps += [(self._decide_next, 0), (lambda: None, 6000)]
        self._run(steps + self._script())

    def _refuse(self) -> None:
        request = sample_vertical(self.session.market, source="screenshot")
        self.session.place(dataclasses.replace(request, quantity=500))
        off_tick = sample_vertical(self.session.market, otm=0.03, source="screenshot")
        self.session.place(dataclasses.replace(off_tick, limit=round(off_tick.limit + 0.01, 2)))
        self.session.refresh_portfolio()

    def _ack_first(self) -> None:
        alerts = self.ops.recent()
        if alerts:
            self.ops.acknowledge(alerts[-1].id)

    def _switch_on(self) -> None:
        automation = self.ops.automation
        automation.set_enabled("credit verticals 3/5/7 DTE", True)
        automation.set_enabled("iron condor (regime filter)", True)
        automation.set_mode("iron condor (regime filter)", "auto")

    def _decide_next(self) -> None:
        if self.pending:
            self.ops.automation.decide_now(self.pending.pop(0))

    # --- pictures --------------------------------------------------------------------------------------
    def _script(self) -> list[Step]:
        steps: list[Step] = []
        for w, h in SIZES:
            for key in ("alerts", "automation"):
                steps += [(lambda w=w, h=h, k=key: self._resize_and_reset(w, h, self.window.docks[k]), PANEL_SETTLE_MS),
                          (lambda w=w, h=h, k=key: self._float(k, w, h), PANEL_SETTLE_MS),
                          (lambda w=w, k=key: self._grab(self.window.docks[k], f"{k}_{w}.png"), 0),
                          (lambda k=key: self.window.docks[k].setFloating(False), 300)]
        return steps + [(self._report, 0)]

    def _float(self, key: str, width: int, height: int) -> None:
        dock = self.window.docks[key]
        dock.setFloating(True)
        dock.setGeometry(0, 0, width, height // 2)
        if key == "automation":
            self.window.panels[key].select_strategy("credit verticals 3/5/7 DTE")
        else:  # the open alert selected: its whole message shows under the table
            alerts = self.window.panels[key]
            open_alert = next((a for a in alerts.model.alerts if a.is_open), None)
            if open_alert is not None:
                alerts.select_alert(open_alert.id)

    def _report(self) -> None:
        alerts, automation = self.window.panels["alerts"], self.window.panels["automation"]
        self.shots.update(alert_rows=alerts.model.rowCount(),
                          alert_rules=sorted({a.rule for a in alerts.model.alerts}),
                          open_alerts=sum(1 for a in alerts.model.alerts if a.is_open),
                          status_bar=self.window.status.alert_label.text(),
                          strategies=automation.strategies_model.rowCount(),
                          decisions=[(d.strategy, d.action) for d in automation.decisions_model.rows],
                          summary_rows=automation.summary_model.rowCount())


def main() -> int:
    return run_app(Path(sys.argv[1]), _Shooter, wait_seconds=PANEL_WAIT_SECONDS + 90)


if __name__ == "__main__":
    sys.exit(main())
