"""Risk panel screenshot driver (run in a subprocess under Xvfb by test_screenshots_risk.py).

``python -m tests.app.risk_screenshot_driver OUT_DIR`` imports the real S&P 500 and VIX daily closes of
``shared/data/index_daily`` (when present) into the app's database, so VaR has a history, then launches the real
app (``spx-terminal --source sim --seed 7 --self-test 40``). Once the window's trading session runs on a chain it
makes "SPX/SPY pair" the active limit profile, sells two SPXW put credit verticals on paper (3 and 2 lots) at the natural price and waits for the risk panel's
report of that book. Then, for each size (1280x720, 1920x1080):

* ``risk_main_W.png``: the whole window after Reset layout with the risk tab in front;
* ``risk_W.png``: the risk dock floated at the full screen size (W = 1280 or 1920).

It writes ``shots.json`` (the panel's status line, notes, rows and what each table shows, errors).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtCore import QTimer

from app.self_test_trading import sample_vertical
from tests.app.screenshot_driver import (
    PANEL_SETTLE_MS,
    PANEL_WAIT_SECONDS,
    REPO,
    SIZES,
    Shooter,
    Step,
    run_app,
)

PROFILE = "SPX/SPY pair"
DAILY = REPO.parent / "shared" / "data" / "index_daily"


class _Shooter(Shooter):
    def poll(self) -> None:
        session = self.trading_session()
        if session is None:
            return
        self.session = session
        self.window.docks["risk"].raise_()  # a covered panel computes nothing
        try:
            self._open_trades()
        except Exception as exc:  # noqa: BLE001 (report, never hang the self-test waiting for shots.json)
            self.shots.setdefault("errors", []).append(f"{type(exc).__name__}: {exc}")
        # not a step of _run: its end writes shots.json, which lets the app's own self-test trade meanwhile
        self._await_report()

    def _open_trades(self) -> None:
        # a profile with a dollar day-loss limit and a trade count, so the gauges show both kinds
        self.session.set_profile(PROFILE)
        for otm, width, lots in ((0.02, 25.0, 3), (0.04, 10.0, 2)):
            request = sample_vertical(self.session.market, otm=otm, width=width, quantity=lots, source="screenshot")
            verdict = self.session.place(request).verdict
            self.shots.setdefault("verdicts", []).append("ok" if verdict.ok else verdict.message)

    def _await_report(self) -> None:
        risk = self.window.panels["risk"]
        held = sum(len(t.legs) for t in self.session.portfolio.open_trades) if self.session.portfolio else 0
        shown = risk.result.report if risk.populated else None
        if (shown is None or len(shown.greeks.by_contract) < held or held < 4) \
                and time.monotonic() - self.t0 < PANEL_WAIT_SECONDS + 60:
            QTimer.singleShot(500, self._await_report)
            return
        self._run(self._script())

    def _script(self) -> list[Step]:
        steps: list[Step] = []
        for w, h in SIZES:
            steps += [(lambda w=w, h=h: self._resize_and_reset(w, h, self.window.docks["risk"]), PANEL_SETTLE_MS),
                      (lambda w=w, h=h: self._grab(self.window, f"risk_main_{w}.png"), 0),
                      (lambda w=w, h=h: self._float(w, h), PANEL_SETTLE_MS + 1000),
                      (lambda w=w, h=h: self._grab(self.window.docks["risk"], f"risk_{w}.png"), 0),
                      (lambda: self.window.docks["risk"].setFloating(False), 300)]
        return steps + [(self._report, 0)]

    def _float(self, width: int, height: int) -> None:
        dock = self.window.docks["risk"]
        dock.setFloating(True)
        dock.setGeometry(0, 0, width, height)

    def _report(self) -> None:
        risk = self.window.panels["risk"]
        gm = risk.greeks_model
        self.shots.update(
            status=risk.status_label.text(), notes=risk.notes_label.text(), populated=risk.populated,
            greek_rows=[gm.data(gm.index(r, 0)) for r in range(gm.rowCount())],
            heat_map=[risk.heat_map.model.rowCount(), risk.heat_map.model.columnCount()],
            var=[[risk.var_model.data(risk.var_model.index(r, c)) for c in range(3)]
                 for r in range(risk.var_model.rowCount())],
            named=risk.named_model.rowCount(), curve=risk.curve.data is not None,
            gauges=risk.gauges.message.text() if not risk.gauges.bars else sorted(risk.gauges.bars))


def _import_daily_history() -> None:
    """The real daily closes into the app's database (the folder SPX_TERMINAL_HOME points at)."""
    files = [DAILY / "sp500.csv.gz", DAILY / "vix.csv.gz"]
    if not all(f.exists() for f in files):
        return  # VaR then says there is no history: the shot still shows everything else
    from spx_core.cli.main import main as spx_data
    from spx_core.paths import database_path

    spx_data(["import", "--db", str(database_path()), *map(str, files)])


def main() -> int:
    _import_daily_history()
    return run_app(Path(sys.argv[1]), _Shooter, wait_seconds=PANEL_WAIT_SECONDS + 150)


if __name__ == "__main__":
    sys.exit(main())
