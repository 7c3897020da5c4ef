"""Screenshots of the order ticket in the real app under Xvfb: an iron condor sent to the paper broker.

The test starts ``Xvfb :N`` and runs this module as the driver in a subprocess (``python -m
tests.app.test_screenshots_ticket OUT``, xcb platform): it launches the app through its entry point
(``--source sim --seed 7 --self-test``), waits for the chain and the trading session, opens the ticket on an
SPXW iron condor about a week out (short strikes 0.6 expected moves out, 20 wide) the way the scanner's and
the builder's Trade do (``AppContext.request_trade``), waits for its figures and the gate's verdict, sends it
at the natural price (Send) and waits for the paper fill and the risk what-if of the book holding it (the real S&P 500
and VIX daily closes of ``shared/data/index_daily``, when present, are imported into the app's database first, so
VaR has a history); then for 1280x720 and 1920x1080 (after Reset
layout, the ticket raised) saves the window and the ticket dock, and the ticket floated at 600x560
(``ticket_floating.png``: every figure in view). ``shots.json`` records what the ticket
showed. With ``SPX_UPDATE_SCREENSHOTS=1`` the PNGs are copied to ``resources/screenshots/ticket*.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.app.screenshot_driver import (
    PANEL_SETTLE_MS,
    REPO,
    SIZES,
    CondorShooter,
    Step,
    driver_shots,
    update_screenshots,
)

FLOAT_SIZE = (600, 560)
#: the daily closes: the data folder beside the repository (main) or beside the worktrees' folder (a worktree)
DAILY = next((d for d in (REPO.parent / "shared" / "data" / "index_daily",
                          REPO.parent.parent / "shared" / "data" / "index_daily") if d.exists()), None)


# --- the test ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ticket_shots(xvfb_display_module, tmp_path_factory):
    out, shots, _ = driver_shots("tests.app.test_screenshots_ticket", xvfb_display_module, tmp_path_factory, gl=False)
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
    risk = shots["risk"]  # the book holding the filled condor, before → after a second one
    assert all("→" in risk[k] for k in ("named", "matrix")), risk
    if DAILY is not None:  # the real daily closes give VaR a history
        assert "→" in risk["var95"] and "→" in risk["es95"], risk
        assert shots["risk_note"].startswith("VaR/ES historical"), shots["risk_note"]
    assert "VIX to 50" in shots["risk_tip"] or "SPX" in shots["risk_tip"], shots["risk_tip"]
    floating = QImage(str(out / "ticket_floating.png"))
    assert floating.width() > 500 and floating.height() > 450
    for w, h in SIZES:
        image = QImage(str(out / f"ticket_{w}x{h}.png"))
        assert (image.width(), image.height()) == (w, h)
        panel = QImage(str(out / f"ticket_panel_{w}x{h}.png"))
        assert panel.width() > 300 and panel.height() > 200
        assert shots[f"send_visible_{w}x{h}"], "the Send button is scrolled out of the ticket's dock"
    update_screenshots(out.glob("ticket*.png"))


# --- the driver (runs in the app's process) -------------------------------------------------------------------
class _Shooter(CondorShooter):
    """Polls the window; once the chain and the session are up, opens the condor, sends it, takes the pictures."""

    def _stopped(self) -> None:
        if self.stage != "finish":
            self.shots.setdefault("errors", []).append(f"timed out at stage {self.stage}")

    def _chain_ready(self) -> bool:
        return self.window.context.trading is not None

    def _open_condor(self, condor) -> None:
        self.window.context.request_trade(condor)  # what the scanner's and the builder's Trade buttons do

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
        ticket = self.window.panels["ticket"]
        risk = ticket.risk
        if risk is None or risk.before is None or not risk.request.book:
            return False  # the what-if of the book holding the fill is still computing
        self.shots.update(status=status, risk={k: v.text() for k, v in ticket.form.risk.items()},
                          risk_note=ticket.form.risk_note.text(), risk_tip=ticket.form.risk_box.toolTip())
        self.stage = "finish"
        return True

    def _script(self) -> list[Step]:
        dock = self.window.docks["ticket"]  # the default layout has the surface in front of it
        steps: list[Step] = []
        for w, h in SIZES:
            steps += [(lambda w=w, h=h: self._resize_and_reset(w, h, dock), PANEL_SETTLE_MS),
                      (lambda w=w, h=h: self._grab_sized(w, h), 0)]
        return steps + [(self._float, PANEL_SETTLE_MS), (self._grab_floating, 0), (lambda: dock.setFloating(False), 300)]

    def _finish(self) -> None:
        self.shots.setdefault("status", self.window.panels["ticket"].form.status_label.text())
        super()._finish()

    def _float(self) -> None:  # the whole ticket at the size a trader would give a floating ticket
        dock = self.window.docks["ticket"]
        dock.setFloating(True)
        dock.resize(*FLOAT_SIZE)

    def _grab_floating(self) -> None:
        self.window.panels["ticket"].grab().toImage().save(str(self.out / "ticket_floating.png"))

    def _grab_sized(self, w: int, h: int) -> None:
        send = self.window.panels["ticket"].form.send_button
        self.shots[f"send_visible_{w}x{h}"] = not send.visibleRegion().isEmpty()
        self.window.grab().toImage().save(str(self.out / f"ticket_{w}x{h}.png"))
        self.window.panels["ticket"].grab().toImage().save(str(self.out / f"ticket_panel_{w}x{h}.png"))


def _import_daily_history() -> None:
    """The real daily closes into the app's database (the folder SPX_TERMINAL_HOME points at)."""
    if DAILY is None:
        return  # the what-if then says there is no history and how to import one
    from spx_core.cli.main import main as spx_data
    from spx_core.paths import database_path

    spx_data(["import", "--db", str(database_path()), str(DAILY / "sp500.csv.gz"), str(DAILY / "vix.csv.gz")])


if __name__ == "__main__":
    from tests.app.screenshot_driver import run_app

    _import_daily_history()
    sys.exit(run_app(Path(sys.argv[1]), _Shooter, seconds="20"))
