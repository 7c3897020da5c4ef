"""Screenshots of the Portfolio & risk panel with a real paper book in the real app under Xvfb, at 1280x720 and
1920x1080.

Runs ``tests/app/risk_screenshot_driver.py`` in a subprocess (xcb platform on a private Xvfb), checks the panel
showed the book (greeks by expiry and by trade, the 11 x 9 stress matrix, VaR beside its parametric check, the
named stresses, the curve) and the PNGs are real pictures of the right size. With ``SPX_UPDATE_SCREENSHOTS=1``
the PNGs are copied to ``resources/screenshots/``.
"""

from __future__ import annotations

import pytest
from PySide6.QtGui import QImage

from tests.app.risk_screenshot_driver import DAILY
from tests.app.screenshot_driver import (
    SIZES,
    distinct_colours,
    driver_shots,
    update_screenshots,
)

pytestmark = pytest.mark.xvfb


@pytest.fixture(scope="module")
def driver_run(xvfb_display_module, tmp_path_factory):
    return driver_shots("tests.app.risk_screenshot_driver", xvfb_display_module, tmp_path_factory, timeout=400)


def test_risk_screenshots(driver_run):
    out, shots, stderr = driver_run
    assert not shots.get("errors"), f"{shots.get('errors')}\n{stderr[-3000:]}"
    assert shots["verdicts"] == ["ok", "ok"] and shots["populated"], shots
    rows = shots["greek_rows"]
    assert rows[0] == "By expiry" and "By trade" in rows and rows[-1] == "Total"
    assert sum(r.startswith("#") for r in rows) == 2  # the two trades
    assert shots["heat_map"] == [11, 9] and shots["named"] >= 3 and shots["curve"]
    assert shots["status"].startswith("4 positions")
    if (DAILY / "sp500.csv.gz").exists():  # the real daily closes give VaR a history
        assert shots["var"][0][0] == "VaR 95%" and "—" not in shots["var"][0], shots["var"]
    names = []
    for w, h in SIZES:
        main = QImage(str(out / f"risk_main_{w}.png"))
        assert (main.width(), main.height()) == (w, h)
        floated = QImage(str(out / f"risk_{w}.png"))
        assert floated.width() >= w * 0.9 and floated.height() >= h * 0.8
        for image in (main, floated):
            assert distinct_colours(image) > 40, "screenshot is (nearly) blank"
        names += [f"risk_main_{w}", f"risk_{w}"]
    update_screenshots(out / f"{name}.png" for name in names)
