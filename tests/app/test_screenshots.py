"""Screenshots of the real app under Xvfb: the main window at three sizes and the 3D volatility surface.

Starts ``Xvfb :N``, runs ``tests/app/screenshot_driver.py`` in a subprocess with the xcb platform
(real OpenGL through Mesa llvmpipe), and checks the PNGs it saved are real pictures, not blank
frames, and that the 3D view still draws after its dock was floated, re-docked and the layout reset.
With ``SPX_UPDATE_SCREENSHOTS=1`` the PNGs are copied to ``resources/screenshots/``.
"""

from __future__ import annotations

import pytest
from PySide6.QtGui import QImage

from tests.app.screenshot_driver import distinct_colours, driver_shots, update_screenshots

pytestmark = pytest.mark.xvfb
SHOTS = ("main", "main_1280x720", "main_1920x1080", "surface3d")


@pytest.fixture(scope="module")
def driver_run(xvfb_display_module, tmp_path_factory):
    """Run the app once under Xvfb through the driver: (output folder, shots.json, stderr)."""
    return driver_shots("tests.app.screenshot_driver", xvfb_display_module, tmp_path_factory, "30", timeout=240)


def test_main_window_and_surface_screenshots(driver_run, qapp):
    out, shots, stderr = driver_run
    assert "main" in shots, f"panels never populated: {shots['status']}\n{stderr[-3000:]}"
    assert not shots.get("errors"), shots["errors"]
    assert shots["surface_is_3d"], f"expected the OpenGL 3D view under Xvfb+Mesa, got: {shots['gl_reason']}"
    main = QImage(str(out / "main.png"))
    surface = QImage(str(out / "surface3d.png"))
    assert main.width() >= 1400 and main.height() >= 900
    assert surface.width() > 300 and surface.height() > 200
    assert distinct_colours(main) > 50, "main window screenshot is (nearly) blank"
    assert distinct_colours(surface) > 30, "3D surface screenshot is (nearly) blank"
    for w, h in ((1280, 720), (1920, 1080)):
        image = QImage(str(out / f"main_{w}x{h}.png"))
        assert (image.width(), image.height()) == (w, h), f"main_{w}x{h}.png is {image.width()}x{image.height()}"
        assert distinct_colours(image) > 50
    labels = shots["tick_labels"]  # the 3D scene labels its three axes
    assert {"85%", "100%", "110%"} <= set(labels) and "7d" in labels and "days to expiry" in labels
    assert any(s.endswith("%") and s not in {"85%", "90%", "95%", "100%", "105%", "110%"} for s in labels)
    update_screenshots(out / f"{name}.png" for name in SHOTS)


def test_3d_view_survives_floating_redocking_and_reset_layout(driver_run):
    out, shots, stderr = driver_run
    assert shots.get("surface_is_3d"), f"no 3D view to test: {shots.get('gl_reason')}"
    steps = shots["reparent"]
    assert list(steps) == ["floated", "redocked", "floated_again", "reset_layout"], steps
    assert steps["floated"]["floating"] and not steps["reset_layout"]["floating"]
    for name, step in steps.items():
        assert step["is_3d"], f"{name}: fell back to the heat map"
        # the surface mesh covers a good part of the frame; a lost GL context leaves only background
        assert step["coloured"] > 0.02, f"{name}: 3D frame blank ({step['coloured']:.3f} coloured)"
    assert "Error while drawing item" not in stderr and "GLError" not in stderr, stderr[-3000:]
