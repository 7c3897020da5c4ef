"""Blotter and positions screenshot driver (run in a subprocess under Xvfb by test_screenshots_trading.py).

``python -m tests.app.trading_screenshot_driver OUT_DIR`` launches the real app through its entry point
(``spx-terminal --source sim --seed 7 --self-test 40``). Once the window's trading session runs on a chain it
trades on paper through the session (the ticket's path): two put credit verticals filled at the natural price,
the second closed again, one order resting above the market and one refused by the gate (500 lots). Then, for
each size (1280x720, 1920x1080):

* ``trading_positions_main_WxH.png`` / ``trading_blotter_main_WxH.png``: the whole window after Reset layout
  with the positions (orders) tab in front of the bottom strip;
* ``positions_WxH.png`` / ``blotter_WxH.png``: that dock floated at the full width and half the height (the
  blotter with its first filled order selected, so the fills per leg show).

It writes ``shots.json`` (rows, statuses, greeks shown, errors).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from PySide6.QtWidgets import QMainWindow

from app.self_test_trading import (
    closing_at_natural,
    sample_vertical,
)
from tests.app.screenshot_driver import (
    PANEL_SETTLE_MS,
    PANEL_WAIT_SECONDS,
    SIZES,
    Shooter,
    Step,
    run_app,
)


class _Shooter(Shooter):
    def __init__(self, window: QMainWindow, out: Path) -> None:
        super().__init__(window, out)
        self.refs: dict[str, str] = {}

    # --- trading ---------------------------------------------------------------------------------------
    def poll(self) -> None:
        session = self.trading_session()
        if session is None:
            return
        self.session = session
        self._run([(self._open_trades, 0), (lambda: None, 2000), (self._close_second, 0),
                   (lambda: None, 2000), (self._rest_and_refuse, 0), (lambda: None, PANEL_SETTLE_MS)]
                  + self._script())

    def _place(self, name: str, request) -> None:
        result = self.session.place(request)
        self.refs[name] = request.ref
        self.shots.setdefault("verdicts", {})[name] = result.verdict.message if not result.verdict.ok else "ok"

    def _open_trades(self) -> None:
        self._place("first", sample_vertical(self.session.market, otm=0.02, width=25.0, source="screenshot"))
        self._place("second", sample_vertical(self.session.market, otm=0.04, width=10.0, source="screenshot"))

    def _close_second(self) -> None:
        trade = next((t for t in self.session.portfolio.open_trades if self.refs["second"] in t.order_refs), None)
        if trade is not None:
            self._place("close", closing_at_natural(self.session, trade.id, source="screenshot"))

    def _rest_and_refuse(self) -> None:
        request = sample_vertical(self.session.market, otm=0.03, width=25.0, source="screenshot")
        self._place("resting", dataclasses.replace(request, limit=request.limit + 0.50))
        self._place("refused", dataclasses.replace(sample_vertical(self.session.market, source="screenshot"),
                                                   quantity=500))

    # --- pictures --------------------------------------------------------------------------------------
    def _script(self) -> list[Step]:
        steps: list[Step] = []
        for w, h in SIZES:
            for key in ("positions", "blotter"):
                steps += [(lambda w=w, h=h, k=key: self._resize_and_reset(w, h, self.window.docks[k]), PANEL_SETTLE_MS),
                          (lambda w=w, h=h, k=key: self._grab(self.window, f"trading_{k}_main_{w}x{h}.png"), 0),
                          (lambda w=w, h=h, k=key: self._float(k, w, h), PANEL_SETTLE_MS),
                          (lambda w=w, h=h, k=key: self._grab(self.window.docks[k], f"{k}_{w}x{h}.png"), 0),
                          (lambda k=key: self.window.docks[k].setFloating(False), 300)]
        return steps + [(self._report, 0)]

    def _float(self, key: str, width: int, height: int) -> None:
        dock = self.window.docks[key]
        dock.setFloating(True)
        dock.setGeometry(0, 0, width, height // 2)
        blotter = self.window.panels["blotter"]
        blotter.select_ref(self.refs["first"])

    def _report(self) -> None:
        positions, blotter = self.window.panels["positions"], self.window.panels["blotter"]
        model = blotter.model
        statuses = {name: model.data(model.index(model.row_of(ref), 7)) for name, ref in self.refs.items()}
        pm = positions.model
        self.shots.update(statuses=statuses, order_rows=model.rowCount(), trade_rows=pm.rowCount(),
                          leg_rows=[pm.rowCount(pm.index(r, 0)) for r in range(pm.rowCount())],
                          delta=[pm.data(pm.index(r, 7)) for r in range(pm.rowCount())],
                          account=positions.account_label.text(),
                          status_bar=self.window.status.account_label.text())


def main() -> int:
    return run_app(Path(sys.argv[1]), _Shooter, wait_seconds=PANEL_WAIT_SECONDS + 90)


if __name__ == "__main__":
    sys.exit(main())
