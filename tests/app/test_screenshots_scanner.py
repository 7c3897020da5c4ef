"""Screenshots of the spread scanner in the real app under Xvfb at 1280x720 and 1920x1080.

Runs ``tests/app/scanner_screenshot_driver.py`` in a subprocess (xcb platform on a private Xvfb) and
checks the PNGs are real pictures of the right size with a listed, charted candidate. With
``SPX_UPDATE_SCREENSHOTS=1`` the PNGs are copied to ``resources/screenshots/``.
"""

from __future__ import annotations

import os
import shutil

import pytest
from PySide6.QtGui import QImage

from app.panels.scanner_panel import NO_TICKET_TIP
from tests.app.screenshot_driver import REPO, distinct_colours, run_driver

pytestmark = pytest.mark.xvfb
SIZES = ((1280, 720), (1920, 1080))


@pytest.fixture(scope="module")
def driver_run(xvfb_display_module, tmp_path_factory):
    """Run the app once under Xvfb through the driver: (output folder, shots.json, stderr)."""
    out = tmp_path_factory.mktemp("scanner_shots")
    shots, stderr = run_driver("tests.app.scanner_screenshot_driver", xvfb_display_module, out, timeout=300)
    return out, shots, stderr


def test_scanner_screenshots(driver_run):
    out, shots, stderr = driver_run
    assert "rows" in shots, f"the scanner never listed candidates: {shots.get('status')}\n{stderr[-3000:]}"
    assert not shots.get("errors"), shots["errors"]
    assert shots["rows"] > 0 and shots["payoff_points"] >= 400
    assert shots["readout"].count("$") >= 2  # "price -> expiry $... · T+0 $..."
    assert shots["trade_enabled"] and shots["trade_tip"] != NO_TICKET_TIP  # the window's order ticket listens
    names = []
    for w, h in SIZES:
        main = QImage(str(out / f"scanner_main_{w}x{h}.png"))
        assert (main.width(), main.height()) == (w, h)
        floated = QImage(str(out / f"scanner_{w}x{h}.png"))
        assert floated.width() >= w * 0.9 and floated.height() >= h * 0.85
        for image in (main, floated):
            assert distinct_colours(image) > 50, "screenshot is (nearly) blank"
        names += [f"scanner_main_{w}x{h}", f"scanner_{w}x{h}"]
    if os.environ.get("SPX_UPDATE_SCREENSHOTS") == "1":
        target = REPO / "resources" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(out / f"{name}.png", target / f"{name}.png")
