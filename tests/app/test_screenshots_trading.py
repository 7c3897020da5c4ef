"""Screenshots of the positions and blotter panels with real paper fills in the real app under Xvfb, at
1280x720 and 1920x1080.

Runs ``tests/app/trading_screenshot_driver.py`` in a subprocess (xcb platform on a private Xvfb) and checks the
orders it placed reached the states a trader expects and the PNGs are real pictures of the right size. With
``SPX_UPDATE_SCREENSHOTS=1`` the PNGs are copied to ``resources/screenshots/``.
"""

from __future__ import annotations

import os
import shutil

import pytest
from PySide6.QtGui import QImage

from tests.app.screenshot_driver import REPO, distinct_colours, run_driver

pytestmark = pytest.mark.xvfb
SIZES = ((1280, 720), (1920, 1080))


@pytest.fixture(scope="module")
def driver_run(xvfb_display_module, tmp_path_factory):
    out = tmp_path_factory.mktemp("trading_shots")
    shots, stderr = run_driver("tests.app.trading_screenshot_driver", xvfb_display_module, out, timeout=400)
    return out, shots, stderr


def test_trading_screenshots(driver_run):
    out, shots, stderr = driver_run
    assert not shots.get("errors"), f"{shots.get('errors')}\n{stderr[-3000:]}"
    assert shots["statuses"] == {"first": "filled", "second": "filled", "close": "filled", "resting": "submitted",
                                 "refused": "rejected"}, shots
    assert shots["trade_rows"] == 2 and shots["leg_rows"] == [2, 2]
    assert shots["delta"][0] != ""  # live greeks on the open trade
    assert shots["account"].startswith("Net liq $") and shots["status_bar"] == "Paper · PAPER"
    names = []
    for w, h in SIZES:
        for key in ("positions", "blotter"):
            main = QImage(str(out / f"trading_{key}_main_{w}x{h}.png"))
            assert (main.width(), main.height()) == (w, h)
            floated = QImage(str(out / f"{key}_{w}x{h}.png"))
            assert floated.width() >= w * 0.9 and floated.height() >= h * 0.4
            for image in (main, floated):
                assert distinct_colours(image) > 40, "screenshot is (nearly) blank"
            names += [f"trading_{key}_main_{w}x{h}", f"{key}_{w}x{h}"]
    if os.environ.get("SPX_UPDATE_SCREENSHOTS") == "1":
        target = REPO / "resources" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(out / f"{name}.png", target / f"{name}.png")
