"""SurfacePanel with qtbot on the simulated market: smiles, term structure, skew table, heat map."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.models.skew_model import SkewTableModel
from app.panels.surface_panel import SurfacePanel
from app.widgets.gl_support import opengl_available
from spx_core.domain import ET
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.surface import chain_iv, fit_surface

# The offscreen platform plugin warns about size hints whenever a top-level window is shown.
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")

START = datetime(2024, 3, 13, 11, 0, tzinfo=ET)


@pytest.fixture(scope="module")
def batch():
    return SimulatedMarket(SimulatorConfig(seed=5, start=START)).advance(1.0)


@pytest.fixture
def panel(qtbot, batch):
    p = SurfacePanel(refit_seconds=0.05, use_gl=False)
    qtbot.addWidget(p)
    p.resize(1300, 800)
    p.show()
    p.on_batch(batch)
    qtbot.waitUntil(lambda: p.result is not None, timeout=30_000)
    yield p
    p.shutdown()


def test_offscreen_platform_has_no_opengl(qapp):
    available, why = opengl_available()
    assert not available and "offscreen" in why


def test_panel_fits_and_draws_everything(panel, batch):
    ok, message = panel.self_test_status()
    assert ok, message
    surface = panel.result.surface
    fitted = [f for f in surface.expiries if f.fitted]
    assert panel.skew_model.rowCount() == len(fitted) > 10
    assert len(panel.smile.shown) == 3  # defaults: about a week, a month and a quarter out
    days = sorted(panel.result.days[k] for k in panel.smile.shown)
    assert days[0] < 14 and 20 < days[1] < 45 and days[2] > 60
    # the term structure holds one point per fitted expiry
    x, _ = panel.term.curve.getData()
    assert len(x) == len([f for f in fitted if f.t > 0])
    # heat map: moneyness x days grid, finite vols in a sane range
    image = panel.surface_view.image.image
    assert image.shape == (40, 61) and np.isfinite(image).all() and 3 < np.median(image) < 80
    assert "fitted" in panel.status_label.text()


def test_smile_points_are_the_chain_mid_ivs(panel, batch):
    key = sorted(panel.smile.shown, key=lambda k: panel.result.days[k])[1]
    k, iv_pct = panel.smile.points_of(key)
    assert len(k) > 20
    civ = chain_iv(batch.snapshot)
    surface = fit_surface(civ)
    e = next(i for i, f in enumerate(surface.expiries) if (f.root, f.expiry) == key)
    rows = (civ.expiry_index == e) & np.isfinite(civ.iv_mid)
    # each drawn point is one of the chain's (k, mid IV) pairs of that expiry
    lookup = dict(zip(np.round(civ.k[rows], 12), civ.iv_mid[rows] * 100, strict=False))
    for kk, vv in zip(k[:10], iv_pct[:10], strict=True):
        assert lookup[round(float(kk), 12)] == pytest.approx(vv, rel=1e-12)
    # the fitted curve stays close to the mid IVs (simulated quotes come from a smooth surface)
    fit_iv = surface.expiries[e].iv(k) * 100
    assert np.median(np.abs(fit_iv - iv_pct)) < 0.5


def test_unticking_an_expiry_hides_its_smile(panel, qtbot):
    shown = panel.smile.shown
    for i in range(panel.expiry_list.count()):
        item = panel.expiry_list.item(i)
        if item.data(Qt.ItemDataRole.UserRole) in shown:
            item.setCheckState(Qt.CheckState.Unchecked)
            break
    assert len(panel.smile.shown) == len(shown) - 1
    panel.set_checked_expiries(set())
    assert panel.smile.shown == set()
    assert not panel.self_test_status()[0]


def test_refits_keep_running_on_new_batches(panel, qtbot):
    market = SimulatedMarket(SimulatorConfig(seed=5, start=START))
    market.advance(1.0)
    fits = panel.fits
    panel.on_batch(market.advance(5.0))
    qtbot.waitUntil(lambda: panel.fits > fits, timeout=30_000)
    assert panel.self_test_status()[0]


def test_skew_model_passes_qtmodeltester(qtmodeltester, panel):
    qtmodeltester.check(panel.skew_model, force_py=True)
    model = panel.skew_model
    row = 0
    texts = [model.data(model.index(row, c)) for c in range(model.columnCount())]
    assert texts[3].endswith("%") and texts[1].isdigit()
    empty = SkewTableModel()
    qtmodeltester.check(empty, force_py=True)
