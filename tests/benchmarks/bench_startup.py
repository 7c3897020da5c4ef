"""Startup benchmarks: wall time from ``Popen`` to the first painted main window (issue 4, section 6).

Each figure is the best of 3 runs in a fresh ``SPX_TERMINAL_HOME``, offscreen. The app prints
``FIRST_PAINT <s>`` at its first paint when ``SPX_TERMINAL_REPORT_PAINT=1`` and closes; the clock here stops
when that line arrives, so interpreter (or bootloader) start, imports, window construction and the first
paint are all counted. Targets: <= 1.5 s from source, <= 2 s frozen. Reference measured in the same run: a
bare PySide6 + pyqtgraph window (one plot in a QMainWindow) painting, i.e. the floor any Qt + pyqtgraph app
pays. The frozen figure uses ``dist/spx-terminal/`` when it exists (built by the README command; may be
older than the source), else builds ``build.spec`` into a temporary folder once (~50 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.benchmarks.report import Report

GROUP = "startup"
REPO = Path(__file__).resolve().parents[2]
NAME = "spx-terminal"
RUNS = 3
TIMEOUT_S = 60.0
REFERENCE = "bare PySide6 + pyqtgraph window (ref)"

# Same measurement as the app's own hook (app/main.py _FirstPaint): time since the script started, printed at
# the window's first paint event (one paint pass draws the whole window), then quit.
BARE_WINDOW = """\
import time
T0 = time.perf_counter()
import sys
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
import pyqtgraph as pg

app = QApplication(sys.argv[:1])
window = QMainWindow()
plot = pg.PlotWidget()
plot.plot([1.0, 2.0, 3.0], [3.0, 1.0, 2.0])
window.setCentralWidget(plot)


class FirstPaint(QObject):
    done = False

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and not self.done:
            self.done = True
            print(f"FIRST_PAINT {time.perf_counter() - T0:.4f}", flush=True)
            QTimer.singleShot(0, app.quit)
        return False


hook = FirstPaint()
app.installEventFilter(hook)  # a plain QMainWindow gets no paint event of its own: take the first widget's
window.resize(1600, 980)
window.show()
app.exec()
"""


class StartupError(RuntimeError):
    """A startup run ended without printing FIRST_PAINT."""


def _first_paint(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds from Popen to the FIRST_PAINT line, the seconds the process itself printed)."""
    with tempfile.TemporaryDirectory(prefix="spx_startup_") as home:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SPX_TERMINAL_HOME": home,
               "SPX_TERMINAL_REPORT_PAINT": "1"}
        env.pop("SPX_TERMINAL_DB", None)
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        killer = threading.Timer(TIMEOUT_S, proc.kill)  # a hung start must not hang the benchmark run
        killer.start()
        try:
            for line in proc.stdout:
                if line.startswith("FIRST_PAINT "):
                    wall = time.perf_counter() - t0
                    inside = float(line.split()[1])
                    break
            else:
                proc.wait()
                raise StartupError(f"{cmd[0]} exited {proc.returncode} without painting: {proc.stderr.read()[-2000:]}")
            proc.communicate(timeout=TIMEOUT_S)  # the window closes itself after its first paint
        finally:
            killer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return wall, inside


def _best(cmd: list[str]) -> tuple[float, float]:
    return min(_first_paint(cmd) for _ in range(RUNS))


def _frozen_executable(report: Report, tmp: Path) -> tuple[Path, str]:
    """The executable to time and a note saying where it came from (building it when dist/ has none)."""
    existing = REPO / "dist" / NAME / NAME
    if existing.is_file():
        return existing, "dist/ (README build; may predate the source)"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "PyInstaller", str(REPO / "build.spec"), "--noconfirm",
                    "--distpath", str(tmp / "dist"), "--workpath", str(tmp / "work")],
                   cwd=REPO, check=True, capture_output=True, timeout=900)
    report.add(GROUP, "build.spec build time", time.perf_counter() - t0, "s", note="PyInstaller one-dir")
    folder = tmp / "dist" / NAME
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    report.add(GROUP, "bundle size", size / 2**20, "MiB", note="regular files, symlinks not counted")
    return folder / NAME, "built for this run"


def run(report: Report) -> None:
    wall, inside = _best([sys.executable, "-c", BARE_WINDOW])
    report.add(GROUP, REFERENCE, wall, "s", note=f"in-process {inside:.3f} s")
    wall, inside = _best([sys.executable, "-m", "app"])
    report.add(GROUP, "spx-terminal first paint, source", wall, "s", target=1.5, reference=REFERENCE,
               note=f"python -m app; {inside:.3f} s after app.main import")
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        report.add(GROUP, "frozen: skipped", 0, "", note="PyInstaller is not installed")
        return
    with tempfile.TemporaryDirectory(prefix="spx_bundle_") as tmp:
        exe, origin = _frozen_executable(report, Path(tmp))
        wall, inside = _best([str(exe)])
        report.add(GROUP, "spx-terminal first paint, frozen", wall, "s", target=2.0, reference=REFERENCE,
                   note=f"{origin}; {inside:.3f} s after app.main import")
