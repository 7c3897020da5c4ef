"""Screenshots of the spread scanner in the real app under Xvfb at 1280x720 and 1920x1080.

Runs ``tests/app/scanner_screenshot_driver.py`` in a subprocess (xcb platform on a private Xvfb) and
checks the PNGs are real pictures of the right size with a listed, charted candidate. With
``SPX_UPDATE_SCREENSHOTS=1`` the PNGs are copied to ``resources/screenshots/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from app.panels.scanner_panel import NO_TICKET_TIP

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.xvfb
SIZES = ((1280, 720), (1920, 1080))


@pytest.fixture(scope="module")
def driver_run(xvfb_display_module, tmp_path_factory):
    out = tmp_path_factory.mktemp("scanner_shots")
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", DISPLAY=xvfb_display_module, PYTHONPATH=str(REPO),
               SPX_TERMINAL_HOME=str(out / "home"), XDG_CONFIG_HOME=str(out / "config"))
    proc = subprocess.run([sys.executable, "-m", "tests.app.scanner_screenshot_driver", str(out)], check=False, cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    shots_file = out / "shots.json"
    assert shots_file.exists(), f"driver wrote no report; rc={proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return out, json.loads(shots_file.read_text()), proc.stderr


def _distinct_colours(image: QImage, step: int = 7) -> int:
    seen = set()
    for y in range(0, image.height(), step):
        for x in range(0, image.width(), step):
            seen.add(image.pixel(x, y))
            if len(seen) > 200:
                return len(seen)
    return len(seen)


def test_scanner_screenshots(driver_run):
    out, shots, stderr = driver_run
    assert "rows" in shots, f"the scanner never listed candidates: {shots.get('status')}\n{stderr[-3000:]}"
    assert not shots.get("errors"), shots["errors"]
    assert shots["rows"] > 0 and shots["payoff_points"] >= 400
    assert shots["readout"].count("$") >= 2  # "price -> expiry $... · T+0 $..."
    assert not shots["trade_enabled"] and shots["trade_tip"] == NO_TICKET_TIP
    names = []
    for w, h in SIZES:
        main = QImage(str(out / f"scanner_main_{w}x{h}.png"))
        assert (main.width(), main.height()) == (w, h)
        floated = QImage(str(out / f"scanner_{w}x{h}.png"))
        assert floated.width() >= w * 0.9 and floated.height() >= h * 0.85
        for image in (main, floated):
            assert _distinct_colours(image) > 50, "screenshot is (nearly) blank"
        names += [f"scanner_main_{w}x{h}", f"scanner_{w}x{h}"]
    if os.environ.get("SPX_UPDATE_SCREENSHOTS") == "1":
        target = REPO / "resources" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(out / f"{name}.png", target / f"{name}.png")
