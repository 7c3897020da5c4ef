"""Under Xvfb (real OpenGL via Mesa): the 3D surface renders nothing while its tab is hidden, and its presence
does not make the rest of the window composite through OpenGL (issue 7, section 5).

Runs a small driver in a subprocess on a private Xvfb display: a main window with a ticking label (standing
in for the chain's repaints) and a docked SurfacePanel with the 3D view on its hidden tab. It counts the GL
view's frames and the CPU of Mesa's ``llvmpipe`` threads while hidden, then shows the tab and checks that the
view draws, axis labels included.
"""

from __future__ import annotations

import json
import os
import shutil
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


@pytest.fixture
def xvfb_display():
    """A private Xvfb server; it picks a free display number itself (``-displayfd``)."""
    binary = shutil.which("Xvfb")
    if binary is None:
        pytest.skip("Xvfb is not installed (Debian: apt-get install xvfb libxcb-icccm4 libxcb-keysyms1 ...)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([binary, "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number:
            raise RuntimeError(f"Xvfb exited ({proc.wait(timeout=10)}) without opening a display")
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_hidden_3d_view_renders_nothing_and_costs_no_gl_composition(xvfb_display, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", DISPLAY=xvfb_display, PYTHONPATH=str(REPO),
               SPX_TERMINAL_HOME=str(tmp_path))
    env.pop("SPX_TERMINAL_NO_GL", None)
    result = subprocess.run([sys.executable, "-c", DRIVER], env=env, capture_output=True, text=True, timeout=180)
    line = next((x for x in result.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}"
    out = json.loads(line[len("RESULT "):])
    assert out["hidden_frames"] == 0, out  # nothing rendered while the tab is hidden
    # the ticking label must not be composited through GL (a QOpenGLWidget in the window did that: ~0.15 core)
    assert out["llvmpipe_cores"] < 0.02, out
    assert out["shown_frames"] > 0, out  # shown: it draws
    assert out["label_pixels"] > 20, out  # ... with its axis labels
    assert "Error while drawing item" not in result.stderr, result.stderr[-3000:]
