"""Screenshots of the order ticket in the real app under Xvfb: an iron condor sent to the paper broker.

The test starts ``Xvfb :N`` and runs this module as the driver in a subprocess (``python -m
tests.app.test_screenshots_ticket OUT``, xcb platform): it launches the app through its entry point
(``--source sim --seed 7 --self-test``), waits for the chain and the trading session, opens the ticket on an
SPXW iron condor about a week out (short strikes 0.6 expected moves out, 20 wide) the way the scanner's and
the builder's Trade do (``AppContext.request_trade``), waits for its figures and the gate's verdict, sends it
at the natural price (Send) and waits for the paper fill; then for 1280x720 and 1920x1080 (after Reset
layout, the ticket raised) saves the window and the ticket dock, and the ticket floated at 600x560
(``ticket_floating.png``: every figure in view). ``shots.json`` records what the ticket
showed. With ``SPX_UPDATE_SCREENSHOTS=1`` the PNGs are copied to ``resources/screenshots/ticket*.png``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.app.screenshot_driver import REPO, run_driver

SIZES = ((1280, 720), (1920, 1080))
WAIT_SECONDS = 60.0
SETTLE_MS = 1500
FLOAT_SIZE = (600, 560)


# --- the test ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ticket_shots(xvfb_display_module, tmp_path_factory):
    out = tmp_path_factory.mktemp("ticket_shots")
    shots, _ = run_driver("tests.app.test_screenshots_ticket", xvfb_display_module, out, gl=False)
    return out, shots


@pytest.mark.xvfb
def test_ticket_screenshots_with_a_filled_iron_condor(ticket_shots, qapp):
    from PySide6.QtGui import QImage

    out, shots = ticket_shots
    assert not shots.get("errors"), shots.get("errors")
    assert "iron condor" in shots["title"], shots["title"]
    # written as the structure reads (long put wing first): a BUY at a negative price, i.e. a credit
    assert shots["legs"] == 4 and shots["premium"].startswith("credit $"), shots["premium"]
    assert shots["verdict"].startswith("ready"), shots["verdict"]
    figures = shots["figures"]
    assert figures["max_loss"].startswith("-$") and figures["max_profit"].startswith("+$"), figures
    assert figures["commission"].startswith("$") and "→" in figures["delta"], figures
    assert "filled 1 of 1" in shots["status"], shots["status"]
    floating = QImage(str(out / "ticket_floating.png"))
    assert floating.width() > 500 and floating.height() > 450
    for w, h in SIZES:
        image = QImage(str(out / f"ticket_{w}x{h}.png"))
        assert (image.width(), image.height()) == (w, h)
        panel = QImage(str(out / f"ticket_panel_{w}x{h}.png"))
        assert panel.width() > 300 and panel.height() > 200
        assert shots[f"send_visible_{w}x{h}"], "the Send button is scrolled out of the ticket's dock"
    if os.environ.get("SPX_UPDATE_SCREENSHOTS") == "1":
        target = REPO / "resources" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        for png in out.glob("ticket*.png"):
            shutil.copyfile(png, target / png.name)


# --- the driver (runs in the app's process) -------------------------------------------------------------------
class _Shooter:
    """Polls the window; once the chain and the session are up, opens the condor, sends it, takes the pictures."""

    def __init__(self, window, out: Path) -> None:
        from PySide6.QtCore import QTimer

        self.window, self.out, self.t0 = window, out, time.monotonic()
        self.shots: dict = {}
        self.stage = "chain"
        self.timer = QTimer(window)
        self.timer.setInterval(250)
        self.timer.timeout.connect(self.poll)
        self.timer.start()

    def poll(self) -> None:
        try:
            done = getattr(self, f"_{self.stage}")()
        except Exception as exc:  # report, never hang
            self.shots.setdefault("errors", []).append(f"{self.stage}: {type(exc).__name__}: {exc}")
            done = True
            self.stage = "finish"
        if self.stage == "finish" or (not done and time.monotonic() - self.t0 > WAIT_SECONDS):
            self.timer.stop()
            if self.stage != "finish":
                self.shots.setdefault("errors", []).append(f"timed out at stage {self.stage}")
            self._shoot_all()

    def _chain(self) -> bool:
        chain = self.window.panels["chain"]
        if not chain.self_test_status()[0] or self.window.context.trading is None:
            return False
        today = chain.model.snapshot.time.date()
        keys = [chain.expiry_combo.itemData(i)[0] for i in range(chain.expiry_combo.count())]
        keys = [k for k in keys if k[0].value == "SPXW"]
        self.key = min(keys, key=lambda k: abs((k[1] - today).days - 7))
        chain.select_expiry(self.key)
        self.stage = "condor"
        return True

    def _condor(self) -> bool:
        from spx_core.strategies.builders import iron_condor

        block = self.window.panels["chain"].model.block
        if block is None or block.key != self.key:
            return False
        move, _ = block.expected_move()
        strikes = block.strikes

        def near(x: float) -> float:
            return float(strikes[abs(strikes - x).argmin()])

        condor = iron_condor(self.key[0], self.key[1], near(block.forward - 0.6 * move),
                             near(block.forward + 0.6 * move), 20.0)
        self.window.context.request_trade(condor)  # what the scanner's and the builder's Trade buttons do
        self.stage = "valued"
        return True

    def _valued(self) -> bool:
        from app.models.ticket_model import PriceMode

        ticket = self.window.panels["ticket"]
        ready = ticket.form.verdict_label.text().startswith("ready")
        if ticket.value is None or ticket.value.value is None or not ready:
            return False
        form = ticket.form
        self.shots.update(title=form.title_label.text(), legs=form.legs_model.rowCount(), premium=form.premium_label.text(),
                          verdict=form.verdict_label.text(), figures={k: v.text() for k, v in form.figures.items()})
        ticket.set_mode(PriceMode.NATURAL)
        form.send_button.click()  # one click
        self.stage = "filled"
        return True

    def _filled(self) -> bool:
        status = self.window.panels["ticket"].form.status_label.text()
        if "filled 1 of 1" not in status:
            return "rejected" in status  # a rejection ends the wait (the test reports it)
        self.shots["status"] = status
        self.stage = "finish"
        return True

    def _shoot_all(self) -> None:
        steps = []
        for w, h in SIZES:
            steps += [(lambda w=w, h=h: self._resize(w, h), SETTLE_MS), (lambda w=w, h=h: self._grab(w, h), 0)]
        steps += [(self._float, SETTLE_MS), (self._grab_floating, 0),
                  (lambda: self.window.docks["ticket"].setFloating(False), 300)]
        self._run(steps)

    def _run(self, steps) -> None:
        from PySide6.QtCore import QTimer

        if not steps:
            self.shots.setdefault("status", self.window.panels["ticket"].form.status_label.text())
            (self.out / "shots.json").write_text(json.dumps(self.shots, indent=2))
            return
        (action, settle), rest = steps[0], steps[1:]
        try:
            action()
        except Exception as exc:
            self.shots.setdefault("errors", []).append(f"{type(exc).__name__}: {exc}")
        QTimer.singleShot(settle, lambda: self._run(rest))

    def _resize(self, w: int, h: int) -> None:
        self.window.resize(w, h)
        self.window.reset_layout()
        self.window.docks["ticket"].raise_()  # the default layout has the surface in front of it

    def _float(self) -> None:  # the whole ticket at the size a trader would give a floating ticket
        dock = self.window.docks["ticket"]
        dock.setFloating(True)
        dock.resize(*FLOAT_SIZE)

    def _grab_floating(self) -> None:
        self.window.panels["ticket"].grab().toImage().save(str(self.out / "ticket_floating.png"))

    def _grab(self, w: int, h: int) -> None:
        send = self.window.panels["ticket"].form.send_button
        self.shots[f"send_visible_{w}x{h}"] = not send.visibleRegion().isEmpty()
        self.window.grab().toImage().save(str(self.out / f"ticket_{w}x{h}.png"))
        self.window.panels["ticket"].grab().toImage().save(str(self.out / f"ticket_panel_{w}x{h}.png"))


if __name__ == "__main__":
    from tests.app.screenshot_driver import run_app

    sys.exit(run_app(Path(sys.argv[1]), _Shooter, seconds="20"))
