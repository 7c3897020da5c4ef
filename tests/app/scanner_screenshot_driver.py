"""Scanner screenshot driver (run in a subprocess under Xvfb by test_screenshots_scanner.py).

``python -m tests.app.scanner_screenshot_driver OUT_DIR`` launches the real app through its entry point
(``spx-terminal --source sim --seed 7 --self-test 40``). Once the docked scanner has listed candidates and
drawn the selected one's payoff, for each size (1280x720, 1920x1080) it saves:

* ``scanner_main_WxH.png``: the whole window after Reset layout, the scanner's tab (behind the chain) raised;
The iron-condor preset is picked first (a populated table, a payoff with two breakevens).

* ``scanner_WxH.png``: the scanner dock floated and sized to the screen (how a trader reads the scanner),
  the crosshair held at the spot so the readout line shows.

It writes ``shots.json`` (what it saw: rows, the selected structure, the payoff curves' extent, errors).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QTimer

from app.panels.scanner_panel import ScannerPanel
from spx_core.strategies.scanner_params import PRESETS, ScanStructure
from tests.app.screenshot_driver import (
    PANEL_SETTLE_MS,
    PANEL_WAIT_SECONDS,
    SIZES,
    Shooter,
    Step,
    run_app,
)

CONDOR = next(name for name, p in PRESETS.items() if p.structure is ScanStructure.IRON_CONDOR)


class _Shooter(Shooter):
    def poll(self) -> None:
        panel = self.window.findChild(ScannerPanel)
        if panel is not None and not panel.on_screen():
            panel.parentWidget().raise_()  # its dock is a tab behind the chain: bring it to the front
        ready = panel is not None and panel.model.rowCount() > 0 and panel.payoff.data is not None
        if not ready and time.monotonic() - self.t0 < PANEL_WAIT_SECONDS:
            return
        self.timer.stop()
        self.shots["status"] = list(panel.self_test_status()) if panel else [False, "no ScannerPanel docked"]
        if not ready:
            self._finish()
            return
        self.panel = panel
        # the iron condor plan: a populated table and a payoff with two breakevens (what a trader checks)
        results = panel.results
        panel.form.preset.setCurrentText(CONDOR)
        self._wait(lambda: panel.results > results and panel.payoff.data is not None,
                   lambda: self._run(self._script()))

    def _wait(self, done: Callable[[], bool], then: Callable[[], None]) -> None:
        deadline = time.monotonic() + PANEL_WAIT_SECONDS

        def check() -> None:
            if done() or time.monotonic() > deadline:
                then()
            else:
                QTimer.singleShot(200, check)

        check()

    def _script(self) -> list[Step]:
        dock = self.panel.parentWidget()
        steps: list[Step] = []
        for w, h in SIZES:
            steps += [(lambda w=w, h=h: self._resize_and_reset(w, h, dock), PANEL_SETTLE_MS),
                      (lambda w=w, h=h: self._grab(self.window, f"scanner_main_{w}x{h}.png"), 0),
                      (lambda w=w, h=h: self._float(dock, w, h), PANEL_SETTLE_MS),
                      (lambda w=w, h=h: self._grab(dock, f"scanner_{w}x{h}.png"), 0),
                      (lambda: dock.setFloating(False), 300)]
        return steps + [(self._report, 0)]

    def _float(self, dock, width: int, height: int) -> None:
        dock.setFloating(True)
        dock.setGeometry(0, 0, width, height)
        self.panel.table.selectRow(0)

    def _grab(self, widget, name: str) -> None:
        data = self.panel.payoff.data
        if data is not None:
            self.panel.payoff.show_crosshair(data.spot)
        super()._grab(widget, name)

    def _report(self) -> None:
        p = self.panel
        data = p.payoff.data
        self.shots.update(rows=p.model.rowCount(), preset=p.form.preset.currentText(), selected=p.selected_candidate().structure.name,
                          readout=p.payoff.readout.text(), payoff_points=len(data.prices),
                          breakevens=p.payoff.breakeven_positions, bands=data.sd1 is not None,
                          density=data.density is not None, trade_enabled=p.trade_button.isEnabled(),
                          trade_tip=p.trade_button.toolTip())


def main() -> int:
    return run_app(Path(sys.argv[1]), _Shooter, wait_seconds=PANEL_WAIT_SECONDS + 60)


if __name__ == "__main__":
    sys.exit(main())
