"""Screenshots of the Backtest panel in the real app under Xvfb, at 1280x720 and 1920x1080: two runs of seed presets
over two months of recorded simulated chains, every result tab.

Runs ``tests/app/backtest_screenshot_driver.py`` in a subprocess (xcb platform on a private Xvfb), checks the panel
showed the runs (trades, equity, monthly returns, histogram, a trade's payoff, two runs overlaid) and the PNGs are
real pictures of the right size. With ``SPX_UPDATE_SCREENSHOTS=1`` the PNGs are copied to ``resources/screenshots/``.
"""

from __future__ import annotations

import pytest
from PySide6.QtGui import QImage

from tests.app.backtest_screenshot_driver import TABS
from tests.app.screenshot_driver import (
    SIZES,
    distinct_colours,
    driver_shots,
    update_screenshots,
)

pytestmark = pytest.mark.xvfb


@pytest.fixture(scope="module")
def driver_run(xvfb_display_module, tmp_path_factory):
    return driver_shots("tests.app.backtest_screenshot_driver", xvfb_display_module, tmp_path_factory, timeout=400)


def test_backtest_screenshots(driver_run):
    out, shots, stderr = driver_run
    assert not shots.get("errors"), f"{shots.get('errors')}\n{stderr[-3000:]}"
    assert shots["populated"] and shots["trades"] >= 5, shots
    assert shots["runs"] >= 2 and shots["compared"] >= 2, shots
    assert shots["monthly"] == [1, 13], shots  # 2024 (March and April filled); twelve months and the year
    assert shots["histogram"] >= 5 and shots["payoff"] and shots["trade_detail"].startswith("Trade #"), shots
    assert shots["sweep"] == [2, 2] and "4 of 4 points run" in shots["sweep_status"], shots
    names = []
    for w, h in SIZES:
        main = QImage(str(out / f"backtest_main_{w}.png"))
        assert (main.width(), main.height()) == (w, h)
        assert distinct_colours(main) > 40, "screenshot is (nearly) blank"
        names.append(f"backtest_main_{w}")
        for tab, _ in TABS:
            image = QImage(str(out / f"backtest_{tab}_{w}.png"))
            assert image.width() >= w * 0.9 and image.height() >= h * 0.8, (tab, image.width(), image.height())
            assert distinct_colours(image) > 20, f"{tab} screenshot is (nearly) blank"
            names.append(f"backtest_{tab}_{w}")
    update_screenshots(out / f"{name}.png" for name in names)
