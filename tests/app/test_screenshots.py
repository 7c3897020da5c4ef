"""Screenshots of the real app under Xvfb: the main window and the 3D volatility surface.

Starts ``Xvfb :N``, runs ``tests/app/screenshot_driver.py`` in a subprocess with the xcb platform
(real OpenGL through Mesa llvmpipe), and checks the PNGs it saved are real pictures, not blank
frames. With ``SPX_UPDATE_SCREENSHOTS=1`` the PNGs are copied to ``resources/screenshots/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.xvfb


@pytest.fixture
def xvfb_display():
    binary = shutil.which("Xvfb")
    if binary is None:
        pytest.skip("Xvfb is not installed (Debian: apt-get install xvfb libxcb-icccm4 libxcb-keysyms1 ...)")
    for number in range(91, 120):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            break
    else:
        pytest.skip("no free X display number in :91..:119")
    proc = subprocess.Popen([binary, f":{number}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"Xvfb :{number} did not start: {proc.stderr.read().decode(errors='replace')}")
        time.sleep(0.05)
    yield f":{number}"
    proc.terminate()
    proc.wait(timeout=10)
    proc.stderr.close()


def _distinct_colours(image: QImage, step: int = 7) -> int:
    seen = set()
    for y in range(0, image.height(), step):
        for x in range(0, image.width(), step):
            seen.add(image.pixel(x, y))
            if len(seen) > 200:
                return len(seen)
    return len(seen)


def test_main_window_and_surface_screenshots(xvfb_display, tmp_path, qapp):
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", DISPLAY=xvfb_display, PYTHONPATH=str(REPO))
    env.pop("SPX_TERMINAL_NO_GL", None)
    proc = subprocess.run([sys.executable, "-m", "tests.app.screenshot_driver", str(tmp_path), "30"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=180)
    shots_file = tmp_path / "shots.json"
    assert shots_file.exists(), f"driver wrote no report; rc={proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    shots = json.loads(shots_file.read_text())
    assert "main" in shots, f"panels never populated: {shots['status']}\n{proc.stderr[-3000:]}"
    assert shots["surface_is_3d"], f"expected the OpenGL 3D view under Xvfb+Mesa, got: {shots['gl_reason']}"
    main = QImage(str(tmp_path / "main.png"))
    surface = QImage(str(tmp_path / "surface3d.png"))
    assert main.width() >= 1400 and main.height() >= 900
    assert surface.width() > 300 and surface.height() > 200
    assert _distinct_colours(main) > 50, "main window screenshot is (nearly) blank"
    assert _distinct_colours(surface) > 30, "3D surface screenshot is (nearly) blank"
    if os.environ.get("SPX_UPDATE_SCREENSHOTS") == "1":
        target = REPO / "resources" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "main.png", target / "main.png")
        shutil.copyfile(tmp_path / "surface3d.png", target / "surface3d.png")
