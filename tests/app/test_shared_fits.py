"""The panels of one window fit each snapshot once: surface, scanner and market share the context's fits."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.context import AppContext
from app.panels.market_panel import MarketPanel
from app.panels.scanner_panel import ScannerPanel
from app.panels.surface_panel import SurfacePanel
from app.settings import AppSettings
from app.shared_fits import SharedFits
from spx_core.domain import ET
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.strategies.scanner import PRESETS

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints", "does not support raise")


def test_three_panels_showing_one_snapshot_fit_it_once(qtbot, qapp):
    context = AppContext(AppSettings(seed=3))
    batch = SimulatedMarket(SimulatorConfig(seed=5, start=datetime(2024, 3, 13, 11, 0, tzinfo=ET))).advance(1.0)
    surface, market, scanner = SurfacePanel(use_gl=False), MarketPanel(), ScannerPanel()
    panels = (surface, market, scanner)
    for p in panels:
        qtbot.addWidget(p)
        p.bind(context)
        p.show()
    scanner.form.set_params(next(iter(PRESETS.values())))
    scanner._params_settled()
    for p in panels:
        p.on_batch(batch)
    qtbot.waitUntil(lambda: all(p.results > 0 for p in panels), timeout=90_000)
    memo = context.fits.created
    assert memo is not None and memo.requests >= 3
    assert memo.fits == 1, f"{memo.fits} fits for one snapshot"
    assert scanner.outcome.surface is surface._result.surface  # the very same fit
    for p in panels:
        p.shutdown()


def test_a_panel_outside_a_window_has_its_own_fits(qapp):
    a, b = SurfacePanel(use_gl=False), SurfacePanel(use_gl=False)
    assert isinstance(a.shared_fits, SharedFits) and a.shared_fits is not b.shared_fits and a.shared_fits.created is None
    a.deleteLater()
    b.deleteLater()
