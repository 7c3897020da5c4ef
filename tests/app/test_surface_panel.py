"""SurfacePanel with qtbot on the simulated market: smiles, term structure, skew table, heat map."""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPalette

from app.models.skew_model import SkewTableModel
from app.panels.surface_panel import REFIT_MARKET_SECONDS, SurfacePanel
from app.widgets.gl_support import opengl_available
from app.widgets.smile_plot import SmileAxis
from spx_core.domain import ET
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.surface import chain_iv, fit_surface

# The offscreen platform plugin warns about size hints whenever a top-level window is shown, and
# about raise() when a dock is floated.
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints", "does not support raise")

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
    panel.on_batch(market.advance(REFIT_MARKET_SECONDS))  # enough market time for a refit
    qtbot.waitUntil(lambda: panel.fits > fits, timeout=30_000)
    assert panel.self_test_status()[0]


def test_skew_model_passes_qtmodeltester(qtmodeltester, panel):
    qtmodeltester.check(panel.skew_model, force_py=True)
    model = panel.skew_model
    row = 0
    texts = [model.data(model.index(row, c)) for c in range(model.columnCount())]
    atm = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())].index("ATM IV")
    assert texts[atm].endswith("%") and texts[1].isdigit()
    empty = SkewTableModel()
    qtmodeltester.check(empty, force_py=True)


# --- colours, legend, axes -------------------------------------------------------------------------------
def _curve_colour(panel, key) -> str:
    return panel.smile._items[key].curve.opts["pen"].color().name()


def _rgb_distance(a: str, b: str) -> float:
    ca, cb = QColor(a), QColor(b)
    return float(np.sqrt((ca.red() - cb.red()) ** 2 + (ca.green() - cb.green()) ** 2 + (ca.blue() - cb.blue()) ** 2))


def test_every_ticked_expiry_gets_its_own_colour(panel):
    keys = list(panel.result.smiles)
    panel.set_checked_expiries(set(keys))
    colours = [_curve_colour(panel, k) for k in keys]
    assert len(set(colours)) == len(keys) > 30  # pairwise distinct, however many are ticked
    # a few expiries far apart (the old palette gave 2d and 86d the same colour): clearly different
    by_days = sorted(keys, key=lambda k: panel.result.days[k])
    lines = [panel.smile._items[k].curve.opts["pen"].style() for k in by_days]
    assert all(a != b for a, b in zip(lines, lines[1:], strict=False))  # many: neighbours differ in style too
    few = {by_days[i] for i in (1, 9, 20, 30, 45)}
    panel.set_checked_expiries(few)
    colours = [_curve_colour(panel, k) for k in few]
    assert min(_rgb_distance(a, b) for i, a in enumerate(colours) for b in colours[i + 1:]) > 60
    # the expiry list's swatch is the smile's colour
    for i in range(panel.expiry_list.count()):
        item = panel.expiry_list.item(i)
        key = item.data(Qt.ItemDataRole.UserRole)
        if key in few:
            swatch = item.icon().pixmap(12, 12).toImage().pixelColor(6, 6).name()
            assert swatch == _curve_colour(panel, key)


def _legend_colours(plot_widget) -> set[str]:
    legend = plot_widget.getPlotItem().legend
    return {label.item.defaultTextColor().name() if "color" not in label.item.toHtml() else
            re.search(r"color:\s*(#[0-9a-fA-F]{6})", label.item.toHtml()).group(1).lower()
            for _sample, label in legend.items}


def test_legend_text_follows_a_theme_switch(panel, qapp, qtbot):
    from app.main_window import apply_theme

    try:
        for theme in ("dark", "light", "dark"):
            apply_theme(qapp, theme)
            qtbot.wait(50)
            text = panel.smile.palette().color(QPalette.ColorRole.WindowText).name()
            assert _legend_colours(panel.smile) == {text}, theme
            assert _legend_colours(panel.term) == {text}, theme
    finally:
        qapp.setStyleSheet("")


def _tick_text_rects(plot_widget, name: str):
    axis = plot_widget.getPlotItem().getAxis(name)
    image = QImage(max(int(axis.width()), 1), max(int(axis.height()), 1), QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _axis_spec, _tick_specs, text_specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(rect, text) for rect, _flags, text in text_specs]


@pytest.mark.parametrize("width", [260, 420, 900])
def test_term_structure_tick_labels_never_overlap(panel, qtbot, width):
    panel.tabs.setCurrentIndex(_tab_of(panel, panel.term))
    panel.term.setFixedWidth(width)
    qtbot.wait(50)
    texts = _tick_text_rects(panel.term, "bottom")
    assert len(texts) >= 3, texts
    rects = sorted((r for r, _ in texts), key=lambda r: r.left())
    for a, b in zip(rects, rects[1:], strict=False):
        assert a.right() + 2 <= b.left(), [t for _, t in texts]
    labels = [t for _, t in texts]
    assert all(t.endswith(("h", "d", "y")) for t in labels), labels  # tenors, not "10^1"


def test_smile_x_axis_offers_strike_and_delta(panel, batch, qtbot):
    key = sorted(panel.smile.shown, key=lambda k: panel.result.days[k])[1]
    k, iv = panel.smile.points_of(key)
    combo = panel.x_axis_combo
    combo.setCurrentIndex(combo.findData(SmileAxis.STRIKE))
    strikes, iv_s = panel.smile.points_of(key)
    forward = panel.result.smiles[key].forward
    np.testing.assert_allclose(strikes, forward * np.exp(k), rtol=1e-12)
    assert set(np.round(strikes, 6)) <= set(np.round(batch.snapshot.strike, 6))
    np.testing.assert_array_equal(iv_s, iv)
    assert panel.smile.getPlotItem().getAxis("bottom").labelText == "strike"
    combo.setCurrentIndex(combo.findData(SmileAxis.DELTA))
    delta, _ = panel.smile.points_of(key)
    qtbot.wait(50)  # the view re-ranges on the next turn of the event loop
    order = np.argsort(k)
    assert np.all((delta > 0) & (delta < 1)) and np.all(np.diff(delta[order]) > 0)  # put wing -> call wing
    labels = [t for _, t in _tick_text_rects(panel.smile, "bottom")]
    assert "ATM" in labels and "25P" in labels and "25C" in labels


def test_heat_map_has_tenor_ticks_and_a_colour_bar(panel):
    view = panel.surface_view
    ticks = view.ticks
    assert [s for _, s in ticks.money][:2] == ["85%", "90%"] and len(ticks.money) == 6
    assert len(ticks.days) >= 3 and all(s.endswith(("d", "y")) for _, s in ticks.days)
    lo, hi = ticks.iv_range
    image = view.image.image
    assert lo <= np.nanmin(image) and np.nanmax(image) <= hi
    assert len(ticks.iv) >= 3 and ticks.iv[0] == (0.0, f"{lo:g}%") and ticks.iv[-1][0] == 1.0
    assert tuple(view.colorbar.levels()) == (lo, hi)


# --- layout in the real main window ------------------------------------------------------------------------
def _tab_of(panel, widget) -> int:
    return next(i for i in range(panel.tabs.count()) if panel.tabs.widget(i).isAncestorOf(widget)
                or panel.tabs.widget(i) is widget)


def _inside(widget, item) -> bool:
    scene_rect = item.sceneBoundingRect()
    if hasattr(item, "document"):  # a text item's box has an empty margin around the text itself
        m = item.document().documentMargin()
        scene_rect = scene_rect.adjusted(m, m, -m, -m)
    rect = widget.mapFromScene(scene_rect).boundingRect()
    return widget.viewport().rect().adjusted(-1, -1, 1, 1).contains(rect)


def _visible_in_window(widget) -> bool:
    window = widget.window()
    top_left = widget.mapTo(window, QPoint(0, 0))
    return widget.isVisible() and widget.width() > 50 and window.rect().contains(
        QRect(top_left, widget.size()))


def _check_plot_readable(plot_widget) -> list[str]:
    problems = []
    plot = plot_widget.getPlotItem()
    if not _visible_in_window(plot_widget):
        problems.append(f"{plot_widget.objectName()} not (fully) visible: {plot_widget.size()}")
    if not _inside(plot_widget, plot.titleLabel.item):
        problems.append(f"{plot_widget.objectName()} title cut off")
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        if not _inside(plot_widget, axis.label):
            problems.append(f"{plot_widget.objectName()} {name} axis title cut off")
        for rect, text in _tick_text_rects(plot_widget, name):
            if not _inside(plot_widget, _RectItem(axis.mapRectToScene(rect))):
                problems.append(f"{plot_widget.objectName()} {name} tick {text!r} cut off")
    if plot.legend is not None and plot.legend.items:
        view_rect = plot.vb.sceneBoundingRect().adjusted(-1, -1, 1, 1)
        if not view_rect.contains(plot.legend.sceneBoundingRect()):
            problems.append(f"{plot_widget.objectName()} legend outside the chart")
    return problems


class _RectItem:
    def __init__(self, rect) -> None:
        self._rect = rect

    def sceneBoundingRect(self):  # noqa: N802 (mimics QGraphicsItem)
        return self._rect


def _check_table_readable(table) -> list[str]:
    problems = []
    model, fm = table.model(), table.fontMetrics()
    header_fm = table.horizontalHeader().fontMetrics()
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    table.horizontalScrollBar().setValue(0)
    for c, name in enumerate(headers):
        width = table.columnWidth(c)
        texts = [model.data(model.index(r, c)) for r in range(model.rowCount())]
        widest = max([fm.horizontalAdvance(str(t)) for t in texts if t is not None], default=0)
        if widest + 6 > width or header_fm.horizontalAdvance(name) + 6 > width:
            problems.append(f"skew column {name!r} elided: text {widest}px, header in {width}px")
        if name in ("Expiry", "DTE", "ATM IV", "RR25", "BF25"):
            right = table.columnViewportPosition(c) + width
            if table.columnViewportPosition(c) < 0 or right > table.viewport().width():
                problems.append(f"skew column {name!r} outside the visible table ({right} > "
                                f"{table.viewport().width()} px)")
    if not _visible_in_window(table) or table.viewport().height() < 4 * table.rowHeight(0):
        problems.append(f"skew table too small to read: {table.viewport().size()}")
    return problems


@pytest.fixture
def main_window(qtbot, qloop, run_async, batch):
    from app.main_window import MainWindow
    from app.settings import AppSettings

    w = MainWindow(AppSettings(seed=3))
    yield w
    run_async(w.shutdown())
    w.close()
    w.deleteLater()


@pytest.mark.parametrize("size, reset", [((1280, 720), False), ((1920, 1080), True)],
                         ids=["1280x720", "1920x1080-reset"])
def test_surface_panel_is_readable_in_the_main_window(main_window, qtbot, batch, size, reset):
    w = main_window
    w.resize(*size)
    w.show()
    qtbot.wait(300)  # the window's default split runs after show
    if reset:
        w.reset_layout()
    panel = w.panels["surface"]
    panel.on_batch(batch)
    panel.refresh(full=True)
    qtbot.waitUntil(lambda: panel.result is not None, timeout=30_000)
    qtbot.wait(100)
    problems = []
    for widget in (panel.smile, panel.term, panel.skew_table):
        panel.tabs.setCurrentIndex(_tab_of(panel, widget))
        qtbot.wait(50)
        problems += _check_table_readable(widget) if widget is panel.skew_table else _check_plot_readable(widget)
    label = panel.status_label  # the fit summary under the tabs (a QLabel cuts what does not fit)
    if label.fontMetrics().horizontalAdvance(label.text()) > label.contentsRect().width():
        problems.append(f"status line cut off: {label.text()!r} in {label.contentsRect().width()} px")
    assert not problems, problems


def _coloured_share(image) -> float:
    hits = total = 0
    for y in range(0, image.height(), 4):
        for x in range(0, image.width(), 4):
            c = image.pixelColor(x, y)
            total += 1
            hits += max(c.red(), c.green(), c.blue()) - min(c.red(), c.green(), c.blue()) > 60
    return hits / max(total, 1)


def test_heat_map_survives_floating_redocking_and_reset_layout(main_window, qtbot, batch):
    w = main_window
    w.resize(1600, 1000)
    w.show()
    panel = w.panels["surface"]
    panel.on_batch(batch)
    panel.refresh(full=True)
    qtbot.waitUntil(lambda: panel.result is not None, timeout=30_000)
    dock = panel.parentWidget()
    for step in ("float", "redock", "float", "reset"):
        if step == "reset":
            w.reset_layout()
        else:
            dock.setFloating(step == "float")
        qtbot.wait(100)
        image = panel.grab_surface()
        assert _coloured_share(image) > 0.1, f"heat map blank after {step}"
        assert dock.isFloating() == (step == "float")
    assert panel.self_test_status()[0]


def test_a_dock_floated_before_the_late_default_split_is_not_saved_as_the_default(main_window, qtbot):
    """The window re-splits its docks 250 ms after showing and saves that as the default layout; a dock the user
    floated before then must not become part of the default (Reset layout left it floating, a flaky CI failure)."""
    w = main_window
    w.show()
    qtbot.waitExposed(w)
    dock = w.panels["surface"].parentWidget()
    dock.setFloating(True)
    w._default_split()  # what the 250 ms timer does
    w.reset_layout()
    qtbot.wait(50)
    assert not dock.isFloating()
