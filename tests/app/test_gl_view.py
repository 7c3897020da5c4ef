"""Under Xvfb (real OpenGL via Mesa): the 3D surface renders nothing while its tab is hidden, and its presence
does not make the rest of the window composite through OpenGL (issue 7, section 5).

Runs a small driver in a subprocess on a private Xvfb display: a main window with a ticking label (standing
in for the chain's repaints) and a docked SurfacePanel with the 3D view on its hidden tab. It counts the GL
view's frames and the CPU of Mesa's ``llvmpipe`` threads while hidden, then shows the tab and checks that the
view draws, axis labels included. A second driver floats and re-docks the surface dock (re-parenting a
QOpenGLWidget lost its GL resources: "GLError invalid value" on every frame afterwards).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.xvfb

DRIVER = r"""
import json, sys, time
from datetime import datetime
from pathlib import Path
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDockWidget, QLabel, QMainWindow

app = QApplication(sys.argv[:1])
from app.panels.surface_panel import SurfacePanel
from spx_core.domain import ET
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig

def llvmpipe_ticks():
    total = 0
    for task in Path("/proc/self/task").iterdir():
        text = (task / "stat").read_text()
        if text[text.index("(") + 1:text.rindex(")")].startswith("llvmpipe"):
            fields = text[text.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])
    return total

window = QMainWindow()
label = QLabel("0")
label.setMinimumSize(700, 500)
window.setCentralWidget(label)
panel = SurfacePanel(use_gl=True, refit_seconds=0.05)
dock = QDockWidget("surface")
dock.setWidget(panel)
window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
window.resize(1500, 900)
window.show()
frames = [0]
panel.surface_view.view.frameSwapped.connect(lambda: frames.__setitem__(0, frames[0] + 1))
market = SimulatedMarket(SimulatorConfig(seed=5, start=datetime(2024, 3, 13, 11, 0, tzinfo=ET)))
panel.on_batch(market.advance(1.0))
out = {}
ticker = QTimer()
ticker.timeout.connect(lambda: label.setText(str(time.monotonic())))  # repaints like a ticking chain

def wait_fit():
    if panel.result is None:
        QTimer.singleShot(100, wait_fit)
        return
    ticker.start(50)
    out["frames_before"], out["t0"], out["ticks0"] = frames[0], time.perf_counter(), llvmpipe_ticks()
    for _ in range(3):
        panel.surface_view.set_grid(*panel.result.grid)  # new fits arrive while the tab is hidden
    QTimer.singleShot(3000, measured)

def measured():
    out["hidden_frames"] = frames[0] - out.pop("frames_before")
    out["llvmpipe_cores"] = (llvmpipe_ticks() - out.pop("ticks0")) / 100 / (time.perf_counter() - out.pop("t0"))
    panel.tabs.setCurrentWidget(panel.surface_view)
    QTimer.singleShot(1000, shown)

def shown():
    out["shown_frames"] = frames[0]
    image = panel.surface_view.grab_image()
    light = 0
    for y in range(0, image.height(), 2):
        for x in range(0, image.width(), 2):
            c = image.pixelColor(x, y)
            light += c.red() > 180 and c.green() > 180 and c.blue() > 180  # the grey-white axis labels
    out["label_pixels"] = light
    print("RESULT " + json.dumps(out), flush=True)
    panel.shutdown()
    app.quit()

wait_fit()
app.exec()
"""


FLOAT_DRIVER = r"""
import sys
from datetime import datetime
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDockWidget, QLabel, QMainWindow

app = QApplication(sys.argv[:1])
from app.panels.surface_panel import SurfacePanel
from spx_core.domain import ET
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig

window = QMainWindow()
window.setCentralWidget(QLabel("chain"))
panel = SurfacePanel(use_gl=True, refit_seconds=0.05)
dock = QDockWidget("surface")
dock.setWidget(panel)
window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
window.resize(1400, 900)
window.show()
market = SimulatedMarket(SimulatorConfig(seed=5, start=datetime(2024, 3, 13, 11, 0, tzinfo=ET)))
panel.on_batch(market.advance(1.0))
frames = [0]
panel.surface_view.view.frameSwapped.connect(lambda: frames.__setitem__(0, frames[0] + 1))

def coloured(image):  # mesh pixels (viridis has green in every colour); the background is near black
    return sum(image.pixelColor(x, y).green() > 100
               for y in range(0, image.height(), 4) for x in range(0, image.width(), 4))

def docked():
    if panel.result is None:
        QTimer.singleShot(100, docked)
        return
    panel.tabs.setCurrentWidget(panel.surface_view)
    QTimer.singleShot(500, lambda: (dock.setFloating(True), QTimer.singleShot(800, floating)))

def floating():
    print("FLOATING", frames[0], coloured(panel.surface_view.grab_image()), flush=True)
    panel.on_batch(market.advance(10.0))
    dock.setFloating(False)
    QTimer.singleShot(1500, redocked)

def redocked():
    print("REDOCKED", frames[0], coloured(panel.surface_view.grab_image()), panel.fits, flush=True)
    panel.shutdown()
    app.quit()

docked()
app.exec()
"""


def _run(driver: str, display: str, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", DISPLAY=display, PYTHONPATH=str(REPO), SPX_TERMINAL_HOME=str(home))
    env.pop("SPX_TERMINAL_NO_GL", None)
    return subprocess.run([sys.executable, "-c", driver], env=env, capture_output=True, text=True, timeout=180)


def test_hidden_3d_view_renders_nothing_and_costs_no_gl_composition(xvfb_display, tmp_path):
    result = _run(DRIVER, xvfb_display, tmp_path)
    line = next((x for x in result.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}"
    out = json.loads(line[len("RESULT "):])
    assert out["hidden_frames"] == 0, out  # nothing rendered while the tab is hidden
    # the ticking label must not be composited through GL (a QOpenGLWidget in the window did that: ~0.15 core)
    assert out["llvmpipe_cores"] < 0.02, out
    assert out["shown_frames"] > 0, out  # shown: it draws
    assert out["label_pixels"] > 20, out  # ... with its axis labels
    assert "Error while drawing item" not in result.stderr, result.stderr[-3000:]


def test_3d_view_survives_floating_and_redocking(xvfb_display, tmp_path):
    result = _run(FLOAT_DRIVER, xvfb_display, tmp_path)
    lines = {x.split()[0]: [int(v) for v in x.split()[1:]] for x in result.stdout.splitlines()
             if x.startswith(("FLOATING ", "REDOCKED "))}
    assert "REDOCKED" in lines, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}"
    assert "GLError" not in result.stderr and "Error while drawing" not in result.stderr, result.stderr[-3000:]
    (frames_floating, drawn_floating), (frames_back, drawn_back, fits) = lines["FLOATING"], lines["REDOCKED"]
    assert drawn_floating > 100 and drawn_back > 100  # the surface is drawn floating and back in its dock
    assert frames_back > frames_floating and fits >= 2  # and keeps rendering new fits
