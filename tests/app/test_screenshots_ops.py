"""Screenshots of the Alerts and Automation panels in the real app under Xvfb, at 1280 and 1920 wide.

Runs ``tests/app/ops_screenshot_driver.py`` in a subprocess (xcb platform on a private Xvfb) and checks the alerts
the refused orders raised and the decisions the presets made are listed, and the PNGs are real pictures. With
``SPX_UPDATE_SCREENSHOTS=1`` the PNGs are copied to ``resources/screenshots/``.
"""

from __future__ import annotations

import pytest
from PySide6.QtGui import QImage

from tests.app.ops_screenshot_driver import DECIDE
from tests.app.screenshot_driver import SIZES, distinct_colours, driver_shots, update_screenshots

pytestmark = pytest.mark.xvfb


@pytest.fixture(scope="module")
def driver_run(xvfb_display_module, tmp_path_factory):
    return driver_shots("tests.app.ops_screenshot_driver", xvfb_display_module, tmp_path_factory, timeout=400)


def test_ops_screenshots(driver_run):
    out, shots, stderr = driver_run
    assert not shots.get("errors"), f"{shots.get('errors')}\n{stderr[-3000:]}"
    assert "order_rejected" in shots["alert_rules"] and shots["alert_rows"] >= 2, shots
    assert shots["open_alerts"] >= 1 and "alert" in shots["status_bar"], shots
    assert shots["strategies"] >= 7
    assert sorted(name for name, _action in shots["decisions"]) == sorted(DECIDE), shots
    assert shots["summary_rows"] >= 2
    names = []
    for w, h in SIZES:
        for key in ("alerts", "automation"):
            image = QImage(str(out / f"{key}_{w}.png"))
            assert image.width() >= w * 0.9 and image.height() >= h * 0.4
            assert distinct_colours(image) > 40, "screenshot is (nearly) blank"
            names.append(f"{key}_{w}")
    update_screenshots(out / f"{name}.png" for name in names)
