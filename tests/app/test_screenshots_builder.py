"""Screenshots of the strategy builder in the real app under Xvfb: a 4-leg iron condor on the simulated chain.

The test starts ``Xvfb :N`` and runs this module as the driver in a subprocess (``python -m
tests.app.test_screenshots_builder OUT``, xcb platform): it launches the app through its entry point
(``--source sim --seed 7 --self-test``), waits for the chain, shows the SPXW expiry nearest a week
out, puts an iron condor in the builder through the context (short strikes 0.6 expected moves
out, 20 wide), waits for the builder to value it, then for 1280x720 and 1920x1080 (after Reset layout)
saves the window and the builder dock. ``shots.json`` records what the builder showed.
With ``SPX_UPDATE_SCREENSHOTS=1`` the PNGs are copied to ``resources/screenshots/builder*.png``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.app.screenshot_driver import REPO, run_driver

SIZES = ((1280, 720), (1920, 1080))
WAIT_SECONDS = 60.0
SETTLE_MS = 1500


# --- the test ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def builder_shots(xvfb_display_module, tmp_path_factory):
    out = tmp_path_factory.mktemp("builder_shots")
    shots, _ = run_driver("tests.app.test_screenshots_builder", xvfb_display_module, out, gl=False)
    return out, shots


@pytest.mark.xvfb
def test_builder_screenshots_with_an_iron_condor(builder_shots, qapp):
    from PySide6.QtGui import QImage

    out, shots = builder_shots
    assert not shots.get("errors"), shots.get("errors")
    assert shots.get("valued"), f"the builder never valued the condor: {shots.get('status')}"
    assert "iron condor" in shots["title"], shots["title"]
    assert shots["legs"] == 4 and shots["marked"] == 4
    figures = shots["figures"]
    assert figures["mid"].endswith(" cr") and figures["max_loss"].startswith("-$"), figures
    assert len(re.findall(r"\d\.\d\d", figures["breakevens"])) == 2, figures  # "5,738.80, 5,866.20"
    assert figures["pop"].endswith("%") and figures["touch"].count("%") == 2, figures
    for w, h in SIZES:
        image = QImage(str(out / f"builder_{w}x{h}.png"))
        assert (image.width(), image.height()) == (w, h)
        panel = QImage(str(out / f"builder_panel_{w}x{h}.png"))
        assert panel.width() > 300 and panel.height() > 300
        assert QImage(str(out / f"market_{w}x{h}.png")).width() == w
    if os.environ.get("SPX_UPDATE_SCREENSHOTS") == "1":
        target = REPO / "resources" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        for png in [*out.glob("builder*.png"), *out.glob("market*.png")]:
            shutil.copyfile(png, target / png.name)


# --- the driver (runs in the app's process) -------------------------------------------------------------------
class _Shooter:
    """Polls the window; once the chain is up, loads the condor, waits for its value, takes the pictures."""

    def __init__(self, window, out: Path) -> None:
        from PySide6.QtCore import QTimer

        self.window, self.out, self.t0 = window, out, time.monotonic()
        self.shots: dict = {}
        self.stage = "chain"
        self.timer = QTimer(window)
        self.timer.setInterval(250)
        self.timer.timeout.connect(self.poll)
        self.timer.start()

    def poll(self) -> None:
        try:
            done = getattr(self, f"_{self.stage}")()
        except Exception as exc:  # report, never hang
            self.shots.setdefault("errors", []).append(f"{self.stage}: {type(exc).__name__}: {exc}")
            done = True
            self.stage = "finish"
        if self.stage == "finish" or (not done and time.monotonic() - self.t0 > WAIT_SECONDS):
            self.timer.stop()
            self.shots["status"] = {k: list(p.self_test_status()) for k, p in self.window.panels.items()}
            self._shoot_all()

    def _chain(self) -> bool:
        chain = self.window.panels["chain"]
        if not chain.self_test_status()[0]:
            return False
        today = chain.model.snapshot.time.date()  # the shown expiry's rows only: the selector lists them all
        keys = [chain.expiry_combo.itemData(i)[0] for i in range(chain.expiry_combo.count())]
        keys = [k for k in keys if k[0].value == "SPXW"]
        self.key = min(keys, key=lambda k: abs((k[1] - today).days - 7))
        self.shots["expiry"] = f"{self.key[0].value} {self.key[1]}"
        chain.select_expiry(self.key)
        self.stage = "condor"
        return True

    def _condor(self) -> bool:
        from spx_core.strategies.builders import iron_condor

        block = self.window.panels["chain"].model.block
        if block is None or block.key != self.key:
            return False
        move, _ = block.expected_move()
        strikes = block.strikes

        def near(x: float) -> float:
            return float(strikes[abs(strikes - x).argmin()])

        # short strikes 0.6 of the expected move out, 20 wide: every leg inside the chain's strike window
        condor = iron_condor(self.key[0], self.key[1], near(block.forward - 0.6 * move),
                             near(block.forward + 0.6 * move), 20.0)
        self.window.context.select_structure(condor)
        self.stage = "valued"
        return True

    def _valued(self) -> bool:
        builder = self.window.panels["builder"]
        result = builder.result
        if result is None or len(result.legs) != 4 or result.curves is None:
            return False
        self.shots["valued"] = True
        self.shots["title"] = builder.title_label.text()
        self.shots["figures"] = {k: label.text() for k, label in builder.figures.items()}
        self.shots["reason"] = builder.status_label.text()
        self.shots["legs"] = builder.model.rowCount()
        self.shots["marked"] = len(self.window.panels["chain"].table.marked_cells())
        self.stage = "finish"
        return True

    def _shoot_all(self) -> None:
        steps = []
        for w, h in SIZES:
            steps += [(lambda w=w, h=h: self._resize(w, h), SETTLE_MS), (lambda w=w, h=h: self._grab(w, h), 0),
                      (lambda: self.window.docks["market"].raise_(), 300),
                      (lambda w=w, h=h: self._grab_market(w, h), 0)]
        self._run(steps)

    def _run(self, steps) -> None:
        from PySide6.QtCore import QTimer

        if not steps:
            (self.out / "shots.json").write_text(json.dumps(self.shots, indent=2))
            return
        (action, settle), rest = steps[0], steps[1:]
        try:
            action()
        except Exception as exc:
            self.shots.setdefault("errors", []).append(f"{type(exc).__name__}: {exc}")
        QTimer.singleShot(settle, lambda: self._run(rest))

    def _resize(self, w: int, h: int) -> None:
        self.window.resize(w, h)
        self.window.reset_layout()
        self.window.docks["builder"].raise_()  # the default layout has the surface in front of it

    def _grab(self, w: int, h: int) -> None:
        self.window.grab().toImage().save(str(self.out / f"builder_{w}x{h}.png"))
        self.window.panels["builder"].grab().toImage().save(str(self.out / f"builder_panel_{w}x{h}.png"))


    def _grab_market(self, w: int, h: int) -> None:  # the market tab beside the builder (no bars in the sim)
        self.window.grab().toImage().save(str(self.out / f"market_{w}x{h}.png"))


if __name__ == "__main__":
    from tests.app.screenshot_driver import run_app

    sys.exit(run_app(Path(sys.argv[1]), _Shooter, seconds="20"))
