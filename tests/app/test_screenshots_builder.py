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

import re
import sys
from pathlib import Path

import pytest

from tests.app.screenshot_driver import PANEL_SETTLE_MS, SIZES, CondorShooter, Step, driver_shots, update_screenshots


# --- the test ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def builder_shots(xvfb_display_module, tmp_path_factory):
    out, shots, _ = driver_shots("tests.app.test_screenshots_builder", xvfb_display_module, tmp_path_factory,
                                 gl=False)
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
    update_screenshots([*out.glob("builder*.png"), *out.glob("market*.png")])


# --- the driver (runs in the app's process) -------------------------------------------------------------------
class _Shooter(CondorShooter):
    """Polls the window; once the chain is up, loads the condor, waits for its value, takes the pictures."""

    def _stopped(self) -> None:
        self.shots["status"] = {k: list(p.self_test_status()) for k, p in self.window.panels.items()}

    def _open_condor(self, condor) -> None:
        self.window.context.select_structure(condor)

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

    def _script(self) -> list[Step]:
        dock = self.window.docks["builder"]  # the default layout has the surface in front of it
        steps: list[Step] = []
        for w, h in SIZES:
            steps += [(lambda w=w, h=h: self._resize_and_reset(w, h, dock), PANEL_SETTLE_MS),
                      (lambda w=w, h=h: self._grab_sized(w, h), 0),
                      (lambda: self.window.docks["market"].raise_(), 300),
                      (lambda w=w, h=h: self._grab_market(w, h), 0)]
        return steps

    def _grab_sized(self, w: int, h: int) -> None:
        self.window.grab().toImage().save(str(self.out / f"builder_{w}x{h}.png"))
        self.window.panels["builder"].grab().toImage().save(str(self.out / f"builder_panel_{w}x{h}.png"))

    def _grab_market(self, w: int, h: int) -> None:  # the market tab beside the builder (no bars in the sim)
        self.window.grab().toImage().save(str(self.out / f"market_{w}x{h}.png"))


if __name__ == "__main__":
    from tests.app.screenshot_driver import run_app

    sys.exit(run_app(Path(sys.argv[1]), _Shooter, seconds="20"))
