"""Cost of leaving the app open (issue 7, section 5): CPU cores used by the running app at 1x.

The real app (``python -m app --seed 7``, simulated market at 1x, default layout: chain and surface
docked and visible, the surface's smile tab current) runs in a subprocess with a fresh
``SPX_TERMINAL_HOME``; after ``WARMUP_S`` seconds (start, calendar, first fits) its process CPU time
(user + system, every thread: GUI, workers, GL) is read from ``/proc/<pid>/stat`` at the start and the
end of ``MEASURE_S`` wall seconds. Figure: CPU seconds / wall seconds = cores used. Target <= 0.15.

Measured offscreen and, when ``Xvfb`` is installed, on a private Xvfb display (Mesa: the 3D view is a
real GL view there). References in the same run and platform: the same app with its window minimised
(the feed, simulator and status bar run; panels should cost nothing), which the ratio is taken to, and a
bare PySide6 + pyqtgraph window (one plot in a QMainWindow, idle), the floor of any open Qt window. The
note lists the threads that used the most CPU (``/proc/<pid>/task/*/stat``; Python threads other than
the GUI thread are all called "python").

``python -m tests.benchmarks --only app_cpu`` (about 3 minutes with Xvfb).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.benchmarks.report import Report

GROUP = "app cpu"
REPO = Path(__file__).resolve().parents[2]
WARMUP_S = 15.0
MEASURE_S = 20.0
TARGET_CORES = 0.15
_TICKS = os.sysconf("SC_CLK_TCK")

BARE_WINDOW = """\
import sys
from PySide6.QtWidgets import QApplication, QMainWindow
import pyqtgraph as pg

app = QApplication(sys.argv[:1])
window = QMainWindow()
plot = pg.PlotWidget()
plot.plot([1.0, 2.0, 3.0], [3.0, 1.0, 2.0])
window.setCentralWidget(plot)
window.resize(1600, 980)
window.show()
app.exec()
"""

# the app as launched, but minimised as soon as it is shown
MINIMISED = """\
import sys
from PySide6.QtWidgets import QMainWindow

show = QMainWindow.show
QMainWindow.show = lambda self: (show(self), self.showMinimized())[0]
from app.main import main

sys.exit(main(["--seed", "7"]))
"""
APP = ["-m", "app", "--seed", "7"]

PREWARM = "from spx_core.pricing import start_background_warm_up as w; t = w(); t and t.join()"


def _stat_ticks(path: Path) -> tuple[str, int]:
    """(thread or process name, user + system clock ticks) from a /proc stat file."""
    text = path.read_text()
    name = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    return name, int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def _threads(pid: int) -> dict[int, tuple[str, int]]:
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(task.name)] = _stat_ticks(task / "stat")
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            continue
    return out


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """(cores used over MEASURE_S after WARMUP_S, a note naming the busiest threads)."""
    with tempfile.TemporaryDirectory(prefix="spx_cpu_") as home:
        env = {**env, "SPX_TERMINAL_HOME": home}
        env.pop("SPX_TERMINAL_DB", None)
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(WARMUP_S)
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[-1]} exited {proc.returncode} during warm-up: {proc.stderr.read()[-2000:]}")
            stat = Path(f"/proc/{proc.pid}/stat")
            threads0, (_, cpu0), t0 = _threads(proc.pid), _stat_ticks(stat), time.perf_counter()
            time.sleep(MEASURE_S)
            threads1, (_, cpu1), wall = _threads(proc.pid), _stat_ticks(stat), time.perf_counter() - t0
        finally:
            proc.terminate()
            try:
                proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
    # Python threads are all called "python" by the OS: tell the GUI (main) thread from the others
    by_name: Counter[str] = Counter()
    for tid, (name, ticks) in threads1.items():
        by_name["GUI thread" if tid == proc.pid else name] += ticks - threads0.get(tid, (name, 0))[1]
    busiest = ", ".join(f"{name} {ticks / _TICKS / wall:.3f}" for name, ticks in by_name.most_common(5) if ticks)
    return (cpu1 - cpu0) / _TICKS / wall, f"{MEASURE_S:.0f} s after {WARMUP_S:.0f} s warm-up; threads: {busiest}"


@contextmanager
def xvfb_display() -> Iterator[str | None]:
    """A private Xvfb display (``:N``), or None when Xvfb is not installed."""
    binary = shutil.which("Xvfb")
    if binary is None:
        yield None
        return
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([binary, "-displayfd", str(write_fd), "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()  # Xvfb writes the number once it accepts connections
        yield f":{number}" if number else None
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _platforms(display: str | None) -> list[tuple[str, dict[str, str]]]:
    base = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    out = [("offscreen", {**base, "QT_QPA_PLATFORM": "offscreen"})]
    if display is not None:
        out.append(("Xvfb", {**base, "QT_QPA_PLATFORM": "xcb", "DISPLAY": display}))
    return out


def run(report: Report) -> None:
    # the numba kernels are cached on disk after their first compile; do it before measuring
    subprocess.run([sys.executable, "-c", PREWARM], cwd=REPO, check=True, timeout=300)
    with xvfb_display() as display:
        if display is None:
            report.add(GROUP, "Xvfb: skipped", 0, "", note="Xvfb is not installed")
        for platform, env in _platforms(display):
            cores, note = measure([sys.executable, "-c", BARE_WINDOW], env)
            report.add(GROUP, f"bare PySide6 + pyqtgraph window, {platform}", cores, "cores", note=note)
            reference = f"app at 1x, window minimised, {platform} (ref)"
            cores, note = measure([sys.executable, "-c", MINIMISED], env)
            report.add(GROUP, reference, cores, "cores", note=note)
            cores, note = measure([sys.executable, *APP], env)
            report.add(GROUP, f"app at 1x, chain + surface shown, {platform}", cores, "cores", target=TARGET_CORES,
                       reference=reference, note=note)


if __name__ == "__main__":
    rep = Report()
    run(rep)
    print(rep.table())
