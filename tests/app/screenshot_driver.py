"""Screenshot driver (run in a subprocess under Xvfb by test_screenshots.py).

``python -m tests.app.screenshot_driver OUT_DIR [SECONDS]`` launches the real app through its entry
point (``spx-terminal --source sim --seed 7 --self-test SECONDS``). When the main window is shown it
polls the docked chain and surface panels; once both report populated (and the surface has been
refitted at least twice, so smiles are drawn) it runs a short script of steps, each after a pause
that lets the window settle:

* ``main.png`` (the window at 1600x1000) and ``surface3d.png`` (the surface view);
* the surface dock floated, re-docked, floated again and the layout reset: after each, how much of
  the 3D frame is coloured by the surface (``reparent`` in the report; a lost GL context draws none);
* ``main_1280x720.png`` and ``main_1920x1080.png``: the window at that size after Reset layout.

It writes ``shots.json`` with what it saw. The app then finishes its own self-test and exits.

The other drivers (``scanner_screenshot_driver``, ``trading_screenshot_driver``, the ticket's and the
builder's test modules) build on what this module shares: :class:`Shooter` (poll timer, step script,
report), :class:`StagedShooter`, :func:`run_app` on the driver side; :func:`driver_shots`,
:func:`distinct_colours` and :func:`update_screenshots` on the test side.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QMainWindow

from app.panels.chain_panel import ChainPanel
from app.panels.surface_panel import SurfacePanel

WAIT_SECONDS = 45.0
SETTLE_MS = 1200  # after a resize or a dock move: layout, a refit and a GL frame
SIZES = ((1280, 720), (1920, 1080))  # the screen sizes every driver shoots the window at
#: the panel drivers (scanner, trading, ticket, builder): how long they wait for their data, and how long
#: they let the window settle after a resize or a dock move (a scan or a fill may land meanwhile)
PANEL_WAIT_SECONDS = 60.0
PANEL_SETTLE_MS = 1500


REPO = Path(__file__).resolve().parents[2]


def run_driver(module: str, display: str, out: Path, *args: str, timeout: float = 300,
               gl: bool = True) -> tuple[dict, str]:
    """Run the driver ``module`` (``python -m``) under the Xvfb ``display`` writing into ``out``:
    (its shots.json, its stderr). ``gl=False`` keeps the app off OpenGL. Fails with the driver's output when it
    wrote no report."""
    import os
    import subprocess

    env = dict(os.environ, QT_QPA_PLATFORM="xcb", DISPLAY=display, PYTHONPATH=str(REPO),
               SPX_TERMINAL_HOME=str(out / "home"), XDG_CONFIG_HOME=str(out / "config"))
    env.pop("SPX_TERMINAL_NO_GL", None)
    if not gl:
        env["SPX_TERMINAL_NO_GL"] = "1"
    proc = subprocess.run([sys.executable, "-m", module, str(out), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    shots_file = out / "shots.json"
    assert shots_file.exists(), f"driver wrote no report; rc={proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return json.loads(shots_file.read_text()), proc.stderr


def distinct_colours(image: QImage, step: int = 7) -> int:
    """Distinct pixel colours on a ``step`` grid, counted up to 201 (a blank or failed grab has a handful)."""
    seen = set()
    for y in range(0, image.height(), step):
        for x in range(0, image.width(), step):
            seen.add(image.pixel(x, y))
            if len(seen) > 200:
                return len(seen)
    return len(seen)


def coloured_share(image: QImage, step: int = 4) -> float:
    """Share of pixels with a clearly saturated colour (the viridis surface; not the grey background or text)."""
    hits = total = 0
    for y in range(0, image.height(), step):
        for x in range(0, image.width(), step):
            c = image.pixelColor(x, y)
            total += 1
            hits += max(c.red(), c.green(), c.blue()) - min(c.red(), c.green(), c.blue()) > 60
    return hits / max(total, 1)


#: one step of a shooter's script: what to do, then how long (ms) to let the window settle before the next
Step = tuple[Callable[[], None], int]


def driver_shots(module: str, display: str, tmp_path_factory: Any, *args: str, **kwargs: Any) -> tuple[Path, dict, str]:
    """:func:`run_driver` into a fresh temporary folder named after ``module``: (that folder, shots.json, stderr).
    What a test module's fixture returns."""
    out = tmp_path_factory.mktemp(module.rsplit(".", 1)[-1])
    shots, stderr = run_driver(module, display, out, *args, **kwargs)
    return out, shots, stderr


def update_screenshots(pngs: Iterable[Path]) -> None:
    """With ``SPX_UPDATE_SCREENSHOTS=1`` only: copy ``pngs`` into ``resources/screenshots/`` (the README's)."""
    if os.environ.get("SPX_UPDATE_SCREENSHOTS") != "1":
        return
    target = REPO / "resources" / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    for png in pngs:
        shutil.copyfile(png, target / png.name)


def weekly_spxw(chain: Any) -> tuple:
    """The chain panel's SPXW expiry key nearest a week after its snapshot (the selector lists every expiry)."""
    today = chain.model.snapshot.time.date()
    keys = [chain.expiry_combo.itemData(i)[0] for i in range(chain.expiry_combo.count())]
    keys = [k for k in keys if k[0].value == "SPXW"]
    return min(keys, key=lambda k: abs((k[1] - today).days - 7))


def condor_near_money(block: Any, key: tuple) -> Any:
    """An iron condor on ``key``: short strikes 0.6 of the chain block's expected move either side of the
    forward, 20 wide (every leg inside the chain's strike window)."""
    from spx_core.strategies.builders import iron_condor

    move, _ = block.expected_move()
    strikes = block.strikes

    def near(x: float) -> float:
        return float(strikes[abs(strikes - x).argmin()])

    return iron_condor(key[0], key[1], near(block.forward - 0.6 * move), near(block.forward + 0.6 * move), 20.0)


class Shooter:
    """What every driver's shooter shares: the subclass's ``poll`` on a 250 ms timer started on the window,
    a script of :data:`Step` run one after another on the event loop, and the report ``shots.json`` written
    when the script ends (``_finish``).

    A step that raises is recorded in ``shots["errors"]`` and the script goes on: a driver must never hang
    the self-test, which waits for ``shots.json``."""

    def __init__(self, window: QMainWindow, out: Path) -> None:
        self.window, self.out, self.t0 = window, out, time.monotonic()
        self.shots: dict = {}
        self.timer = QTimer(window)
        self.timer.setInterval(250)
        self.timer.timeout.connect(self.poll)
        self.timer.start()

    def poll(self) -> None:
        raise NotImplementedError

    def trading_session(self, *, ops: bool = False) -> Any | None:
        """The window's trading session once its market can price a vertical (and, with ``ops``, alerts and
        automation run); None while waiting. After PANEL_WAIT_SECONDS without one the timer stops and the report
        says so (the drivers that trade start their script from the session this returns)."""
        from app.self_test_trading import SelfTestOrderError, sample_vertical

        context = self.window.context
        session = context.trading
        try:
            ready = (session is not None and (not ops or context.ops is not None)
                     and sample_vertical(session.market) is not None)
        except SelfTestOrderError:
            ready = False
        if ready:
            self.timer.stop()
            return session
        if time.monotonic() - self.t0 >= PANEL_WAIT_SECONDS:
            self.timer.stop()
            self.shots["errors"] = ["no trading session on a chain" + (" with alerts and automation" if ops else "")]
            self._finish()
        return None

    def _run(self, steps: list[Step]) -> None:
        if not steps:
            self._finish()
            return
        (action, settle), rest = steps[0], steps[1:]
        try:
            action()
        except Exception as exc:  # noqa: BLE001 (report, never hang the self-test waiting for shots.json)
            self.shots.setdefault("errors", []).append(f"{type(exc).__name__}: {exc}")
        QTimer.singleShot(settle, lambda: self._run(rest))

    def _finish(self) -> None:
        (self.out / "shots.json").write_text(json.dumps(self.shots, indent=2))

    def _resize_and_reset(self, width: int, height: int, front: Any = None) -> None:
        """The window at ``width`` x ``height`` after Reset layout, ``front`` (a dock) raised in its tab group."""
        self.window.resize(width, height)
        self.window.reset_layout()
        if front is not None:
            front.raise_()

    def _grab(self, widget: Any, name: str) -> None:
        """Save ``widget`` as ``name`` (after pending paints) and record its size in ``shots["sizes"]``."""
        QApplication.processEvents()
        widget.grab().save(str(self.out / name))
        self.shots.setdefault("sizes", {})[name] = [widget.width(), widget.height()]


class StagedShooter(Shooter):
    """A shooter that works through stages before its pictures: ``poll`` calls ``self._<stage>()`` until it
    returns True (having set the next ``stage``); stage "finish", an exception or ``wait_seconds`` without
    getting there ends the wait, ``_stopped()`` records the outcome and ``_script()`` runs."""

    wait_seconds = PANEL_WAIT_SECONDS

    def __init__(self, window: QMainWindow, out: Path) -> None:
        super().__init__(window, out)
        self.stage = "chain"

    def poll(self) -> None:
        try:
            done = getattr(self, f"_{self.stage}")()
        except Exception as exc:  # noqa: BLE001 (report, never hang)
            self.shots.setdefault("errors", []).append(f"{self.stage}: {type(exc).__name__}: {exc}")
            done = True
            self.stage = "finish"
        if self.stage == "finish" or (not done and time.monotonic() - self.t0 > self.wait_seconds):
            self.timer.stop()
            self._stopped()
            self._run(self._script())

    def _stopped(self) -> None:
        """Record why the wait ended (called once, before the script)."""

    def _script(self) -> list[Step]:
        raise NotImplementedError


class CondorShooter(StagedShooter):
    """A staged shooter whose first stages put an iron condor on the chain: "chain" waits for the chain panel
    (and ``_chain_ready()``), shows the SPXW expiry nearest a week out (:func:`weekly_spxw`); "condor" waits
    for that expiry's block and hands :func:`condor_near_money` to ``_open_condor`` (the subclass: the
    builder or the ticket), then goes on to stage "valued" (the subclass's)."""

    def _chain_ready(self) -> bool:
        return True

    def _open_condor(self, condor: Any) -> None:
        raise NotImplementedError

    def _chain(self) -> bool:
        chain = self.window.panels["chain"]
        if not chain.self_test_status()[0] or not self._chain_ready():
            return False
        self.key = weekly_spxw(chain)
        self.shots["expiry"] = f"{self.key[0].value} {self.key[1]}"
        chain.select_expiry(self.key)
        self.stage = "condor"
        return True

    def _condor(self) -> bool:
        block = self.window.panels["chain"].model.block
        if block is None or block.key != self.key:
            return False
        self._open_condor(condor_near_money(block, self.key))
        self.stage = "valued"
        return True


class _Shooter(Shooter):
    def __init__(self, window: QMainWindow, out: Path) -> None:
        super().__init__(window, out)
        self.shots["reparent"] = {}

    def poll(self) -> None:
        chain = self.window.findChild(ChainPanel)
        surface = self.window.findChild(SurfacePanel)
        status = {"chain": chain.self_test_status() if chain else (False, "no ChainPanel docked"),
                  "surface": surface.self_test_status() if surface else (False, "no SurfacePanel docked")}
        ready = all(ok for ok, _ in status.values()) and surface.fits >= 2
        if not ready and time.monotonic() - self.t0 < WAIT_SECONDS:
            return
        self.timer.stop()
        self.shots["status"] = {k: list(v) for k, v in status.items()}
        if not ready:
            self._finish()
            return
        self.surface = surface
        self._run(self._script())

    def _script(self) -> list[Step]:
        dock = self.surface.parentWidget()  # the QDockWidget holding the panel
        steps: list[Step] = [(self._shoot_main, SETTLE_MS), (self._shoot_surface, 300)]
        for name, action in (("floated", lambda: dock.setFloating(True)),
                             ("redocked", lambda: dock.setFloating(False)),
                             ("floated_again", lambda: dock.setFloating(True)),
                             ("reset_layout", self.window.reset_layout)):
            steps += [(action, SETTLE_MS), (lambda n=name: self._check_surface(n), 0)]
        for w, h in SIZES:
            steps += [(lambda w=w, h=h: self._resize_and_reset(w, h), SETTLE_MS),
                      (lambda w=w, h=h: self._save(self.window.grab().toImage(), f"main_{w}x{h}.png"), 0)]
        return steps

    def _save(self, image: QImage, name: str) -> None:
        image.save(str(self.out / name))
        self.shots[name.removesuffix(".png")] = name

    def _shoot_main(self) -> None:
        QApplication.processEvents()
        self.shots["window_size"] = [self.window.width(), self.window.height()]
        self._save(self.window.grab().toImage(), "main.png")
        self.surface.grab_surface()  # first grab after a tab switch can be stale: render, then grab

    def _shoot_surface(self) -> None:
        self._save(self.surface.grab_surface(), "surface3d.png")
        view = self.surface.surface_view
        self.shots["surface_is_3d"] = view.is_3d
        self.shots["gl_reason"] = self.surface.gl_reason
        self.shots["tick_labels"] = getattr(view, "tick_labels", list)() if view.is_3d else []

    def _check_surface(self, name: str) -> None:
        view = self.surface.surface_view
        self.surface.grab_surface()
        QApplication.processEvents()
        gl_view = getattr(view, "view", None) if getattr(view, "fallback", None) is None else None
        frame = gl_view.grabFramebuffer() if view.is_3d and gl_view is not None else view.grab_image()
        self._save(frame, f"surface_{name}.png")
        self.shots["reparent"][name] = {"coloured": coloured_share(frame), "is_3d": view.is_3d,
                                        "floating": self.surface.parentWidget().isFloating()}

    def _resize_and_reset(self, width: int, height: int, front: Any = None) -> None:
        self.surface.tabs.setCurrentIndex(0)
        super()._resize_and_reset(width, height, front)


def install(out: Path, make_shooter: Callable[[QMainWindow, Path], object],
            min_size: tuple[int, int] | None = None) -> None:
    """Hook every QMainWindow.show*: a driver needs no knowledge of how main() builds the window.
    ``min_size``: grow a smaller window to it first (the main shots start from a roomy window)."""
    for name in ("show", "showMaximized", "showNormal"):
        original = getattr(QMainWindow, name)

        def hooked(self, _original=original):
            _original(self)
            if min_size is not None and (self.width() < min_size[0] - 200 or self.height() < min_size[1] - 100):
                self.resize(*min_size)
            if not hasattr(self, "_spx_shooter"):
                self._spx_shooter = make_shooter(self, out)

        setattr(QMainWindow, name, hooked)


def hold_self_test_until_shot(out: Path, wait_seconds: float) -> None:
    # The self-test may pass (and close the window) before the shooter is done: make it wait for
    # the report first, so the pictures are always of the running app.
    import asyncio

    from app import self_test

    original = self_test.run_self_test

    async def held(window, seconds, reporter):
        deadline = time.monotonic() + wait_seconds
        while not (out / "shots.json").exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return await original(window, seconds, reporter)

    self_test.run_self_test = held


def run_app(out: Path, make_shooter: Callable[[QMainWindow, Path], object], *, seconds: str = "40",
            wait_seconds: float = WAIT_SECONDS + 30, min_size: tuple[int, int] | None = None) -> int:
    """Run the real app (simulated market, seed 7, self-test) with ``make_shooter`` hooked to its window."""
    out.mkdir(parents=True, exist_ok=True)
    install(out, make_shooter, min_size)
    hold_self_test_until_shot(out, wait_seconds)
    from app.main import main as app_main

    sys.argv = ["spx-terminal", "--source", "sim", "--seed", "7", "--self-test", seconds]
    return app_main()


def main() -> int:
    seconds = sys.argv[2] if len(sys.argv) > 2 else "40"
    return run_app(Path(sys.argv[1]), _Shooter, seconds=seconds, min_size=(1600, 1000))


if __name__ == "__main__":
    sys.exit(main())
