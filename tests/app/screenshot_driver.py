"""Screenshot driver (run in a subprocess under Xvfb by test_screenshots.py).

``python -m tests.app.screenshot_driver OUT_DIR [SECONDS]`` launches the real app through its entry
point (``spx-terminal --source sim --seed 7 --self-test SECONDS``). When the main window is shown it
starts polling the docked chain and surface panels; once both report populated (and the surface has
been refitted at least twice, so smiles are drawn), it saves ``main.png`` (the whole window) and
``surface3d.png`` (the surface view) to OUT_DIR and writes ``shots.json`` with what it saw. The app
then finishes its own self-test and exits.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow

from app.panels.chain_panel import ChainPanel
from app.panels.surface_panel import SurfacePanel

WAIT_SECONDS = 45.0


class _Shooter:
    def __init__(self, window: QMainWindow, out: Path) -> None:
        self.window, self.out, self.t0 = window, out, time.monotonic()
        self.timer = QTimer(window)
        self.timer.setInterval(250)
        self.timer.timeout.connect(self.poll)
        self.timer.start()

    def poll(self) -> None:
        chain = self.window.findChild(ChainPanel)
        surface = self.window.findChild(SurfacePanel)
        status = {"chain": chain.self_test_status() if chain else (False, "no ChainPanel docked"),
                  "surface": surface.self_test_status() if surface else (False, "no SurfacePanel docked")}
        ready = all(ok for ok, _ in status.values()) and surface.fits >= 2
        if not ready and time.monotonic() - self.t0 < WAIT_SECONDS:
            return
        self.timer.stop()
        shots = {}
        if ready:
            QApplication.processEvents()
            self.window.grab().save(str(self.out / "main.png"))
            shots["main"] = "main.png"
            current = surface.tabs.currentIndex()
            surface.grab_surface()  # first grab after a tab switch can be stale: render, then grab
            QApplication.processEvents()
            surface.grab_surface().save(str(self.out / "surface3d.png"))
            surface.tabs.setCurrentIndex(current)
            shots["surface"] = "surface3d.png"
            shots["surface_is_3d"] = surface.surface_view.is_3d
            shots["gl_reason"] = surface.gl_reason
        shots["status"] = {k: list(v) for k, v in status.items()}
        shots["window_size"] = [self.window.width(), self.window.height()]
        (self.out / "shots.json").write_text(json.dumps(shots, indent=2))


def _install(out: Path) -> None:
    # Hook every QMainWindow.show*: the driver needs no knowledge of how main() builds the window.
    for name in ("show", "showMaximized", "showNormal"):
        original = getattr(QMainWindow, name)

        def hooked(self, _original=original):
            _original(self)
            if self.width() < 1400 or self.height() < 900:
                self.resize(1600, 1000)
            if not hasattr(self, "_spx_shooter"):
                self._spx_shooter = _Shooter(self, out)

        setattr(QMainWindow, name, hooked)


def _hold_self_test_until_shot(out: Path) -> None:
    # The self-test may pass (and close the window) before the shooter's next poll: make it wait
    # for the report first, so the pictures are always of the running app.
    import asyncio

    import app.self_test as self_test

    original = self_test.run_self_test

    async def held(window, seconds, reporter):
        deadline = time.monotonic() + WAIT_SECONDS + 5
        while not (out / "shots.json").exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return await original(window, seconds, reporter)

    self_test.run_self_test = held


def main() -> int:
    out = Path(sys.argv[1])
    seconds = sys.argv[2] if len(sys.argv) > 2 else "40"
    out.mkdir(parents=True, exist_ok=True)
    _install(out)
    _hold_self_test_until_shot(out)
    from app.main import main as app_main

    sys.argv = ["spx-terminal", "--source", "sim", "--seed", "7", "--self-test", seconds]
    return app_main()


if __name__ == "__main__":
    sys.exit(main())
