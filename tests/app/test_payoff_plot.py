"""PayoffPlot: curves, profit/loss fills, breakevens, bands, spot, density and the crosshair readout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from app.widgets.payoff_plot import PayoffArrays, PayoffPlot, with_zero_crossings
from spx_core.domain import OptionContract, Right, Root
from spx_core.strategies.structure import Leg, Structure, StructureKind

# the offscreen platform warns about size hints whenever a top-level widget is shown
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")

EXPIRY = date(2024, 3, 22)


@dataclass(frozen=True)
class _Curves:  # the PayoffCurves fields the chart reads
    prices: np.ndarray
    expiry: np.ndarray
    t0: np.ndarray | None
    cost: float


@dataclass(frozen=True)
class _Density:  # the RiskNeutralDensity fields the chart reads
    price: np.ndarray
    pdf: np.ndarray


@dataclass(frozen=True)
class _Moves:  # the ExpectedMove fields the chart reads
    sd1_low: float
    sd1_high: float
    sd2_low: float
    sd2_high: float


def _put_credit_vertical() -> Structure:
    short = OptionContract(Root.SPXW, EXPIRY, 5000.0, Right.PUT)
    long = OptionContract(Root.SPXW, EXPIRY, 4975.0, Right.PUT)
    return Structure((Leg(short, -1), Leg(long, 1)), StructureKind.VERTICAL, "25-wide put credit vertical")


@pytest.fixture
def curves():
    structure = _put_credit_vertical()
    prices = np.linspace(4900.0, 5100.0, 300)  # 4995 (the breakeven) is not a grid point
    credit = 500.0  # $5.00 credit per unit
    expiry = structure.expiry_value(prices) + credit
    t0 = 0.6 * expiry + 0.4 * np.interp(prices, [4900, 5100], [expiry[0], expiry[-1]])  # smoother, same ends
    return _Curves(prices, expiry, t0, -credit)


@pytest.fixture
def density(curves):
    price = np.linspace(4700.0, 5300.0, 1201)
    pdf = np.exp(-0.5 * ((price - 5010.0) / 40.0) ** 2) / (40.0 * np.sqrt(2 * np.pi))
    return _Density(price, pdf)


@pytest.fixture
def plot(qtbot):
    p = PayoffPlot()
    qtbot.addWidget(p)
    p.resize(700, 420)
    p.show()
    return p


def test_starts_cleared_with_a_reason(plot):
    assert plot.data is None
    assert plot.message_text == "no structure selected"
    x, _ = plot.expiry_curve.getData()
    assert x is None or len(x) == 0


def test_draws_both_curves_breakevens_bands_spot_and_density(plot, curves, density):
    plot.show_payoff(curves, spot=5012.5, breakevens=[4995.0], density=density,
                     moves=_Moves(4970.0, 5050.0, 4930.0, 5090.0))
    assert plot.message_text == ""
    x, y = plot.expiry_curve.getData()
    assert np.array_equal(x, curves.prices) and np.array_equal(y, curves.expiry)
    _, t0 = plot.t0_curve.getData()
    assert np.array_equal(t0, curves.t0)
    assert plot.expiry_curve.opts["pen"].color() != plot.t0_curve.opts["pen"].color()
    assert [label.text for _, label in plot.legend.items] == ["At expiry", "T+0 (now)", "RN density"]
    assert plot.breakeven_positions == [4995.0]
    assert plot.sd1_band.isVisible() and plot.sd1_band.getRegion() == (4970.0, 5050.0)
    assert plot.sd2_band.getRegion() == (4930.0, 5090.0)
    assert plot.spot_line.isVisible() and plot.spot_line.value() == 5012.5
    assert "5,012.50" in plot.spot_line.label.format
    dx, dy = plot.density_curve.getData()
    assert dx.min() >= 4900.0 and dx.max() <= 5100.0  # clipped to the payoff's price range
    assert dy.max() == pytest.approx(100.0 / (40.0 * np.sqrt(2 * np.pi)), rel=1e-3)  # % per point
    lo, hi = plot.density_view.viewRange()[1]
    assert lo == 0.0 and dy.max() / hi == pytest.approx(0.33)  # the lower third of the chart
    axis = plot.plot_widget.getPlotItem().getAxis("left").labelText
    assert "$" in axis and "per 1 unit" in axis


def test_profit_fill_is_above_zero_and_loss_fill_below_with_exact_crossings(plot, curves):
    plot.show_payoff(curves, spot=5010.0, breakevens=[4995.0])
    px, py = plot.profit_fill.getData()
    _, ly = plot.loss_fill.getData()
    assert (py >= 0).all() and (ly <= 0).all()
    assert py.max() == pytest.approx(500.0) and ly.min() == pytest.approx(-2000.0)
    # the fills meet the zero line at the breakeven itself, not at the nearest grid point
    assert np.isclose(px[py == 0], 4995.0, atol=1e-9).any()
    assert plot.profit_fill.opts["fillBrush"].color().green() > plot.profit_fill.opts["fillBrush"].color().red()
    assert plot.loss_fill.opts["fillBrush"].color().red() > plot.loss_fill.opts["fillBrush"].color().green()


def test_with_zero_crossings_inserts_interpolated_roots():
    x, y = with_zero_crossings(np.array([0.0, 1.0, 2.0, 3.0]), np.array([-1.0, 1.0, 3.0, -3.0]))
    assert list(x) == [0.0, 0.5, 1.0, 2.0, 2.5, 3.0]
    assert list(y) == [-1.0, 0.0, 1.0, 3.0, 0.0, -3.0]


def test_crosshair_readout_interpolates_pnl(plot, curves):
    plot.show_payoff(curves, spot=5010.0, breakevens=[4995.0])
    at_expiry, t0 = plot.value_at(4987.5)
    assert at_expiry == pytest.approx(-750.0)  # 12.5 points into the 25-wide loss zone, $5 credit
    assert t0 == pytest.approx(float(np.interp(4987.5, curves.prices, curves.t0)))
    text = plot.readout_at(4987.5)
    assert text.startswith("4,987.50") and "expiry -$750" in text and "T+0" in text
    # the mouse moves the crosshair to the price under it
    vb = plot.plot_widget.getPlotItem().vb
    scene = vb.mapViewToScene(QPointF(5050.0, 0.0))
    plot._on_mouse((scene,))
    assert plot.crosshair.isVisible() and plot.crosshair.value() == pytest.approx(5050.0, abs=1.0)
    assert plot.readout.text().startswith("5,05") and "expiry +$500" in plot.readout.text()


def test_without_t0_density_or_moves_only_the_expiry_curve_shows(plot, curves):
    plot.show_payoff(_Curves(curves.prices, curves.expiry, None, curves.cost), spot=float("nan"))
    assert [label.text for _, label in plot.legend.items] == ["At expiry"]
    assert not plot.sd1_band.isVisible() and not plot.spot_line.isVisible()
    assert not plot.density_curve.isVisible() and plot.breakeven_positions == []
    assert plot.readout_at(5050.0) == "5,050.00 \u2192 expiry +$500"


def test_clear_hides_everything_and_says_why(plot, curves, density):
    plot.show_payoff(curves, spot=5010.0, breakevens=[4995.0], density=density,
                     moves=_Moves(4970.0, 5050.0, 4930.0, 5090.0))
    plot.show_crosshair(5000.0)
    plot.clear("no candidate selected")
    assert plot.data is None and plot.message_text == "no candidate selected"
    assert plot.breakeven_positions == [] and not plot.sd1_band.isVisible()
    assert not plot.crosshair.isVisible() and plot.readout.text().strip() == ""
    x, _ = plot.density_curve.getData()
    assert (x is None or len(x) == 0) and len(plot.legend.items) == 0
    plot.show_crosshair(5000.0)  # nothing to read out
    assert not plot.crosshair.isVisible()


def test_breakeven_lines_are_reused_across_structures(plot, curves):
    plot.show_arrays(PayoffArrays(curves.prices, curves.expiry, None, 5000.0, (4950.0, 5050.0)))
    plot.show_arrays(PayoffArrays(curves.prices, curves.expiry, None, 5000.0, (4990.0,)))
    assert plot.breakeven_positions == [4990.0]
    assert len(plot._breakeven_lines) == 2  # created once, hidden when not needed
    assert plot._breakeven_lines[0].label.format == "BE 4,990.0"


def test_follows_the_theme_palette(plot, curves):
    from PySide6.QtGui import QColor, QPalette

    plot.show_payoff(curves, spot=5010.0)
    pal = plot.plot_widget.palette()
    pal.setColor(QPalette.ColorRole.Base, QColor("#fafafa"))
    pal.setColor(QPalette.ColorRole.WindowText, QColor("#101010"))
    plot.plot_widget.setPalette(pal)
    axis = plot.plot_widget.getPlotItem().getAxis("left")
    assert axis.textPen().color().name() == "#101010"


@pytest.mark.parametrize("spot", [4905.0, 5000.0, 5095.0])  # the labels at the left edge, middle, right edge
def test_legend_never_covers_the_spot_or_breakeven_labels(qtbot, curves, density, spot):
    # the builder's chart at 1280x720: a small chart where a corner legend covered the labels
    p = PayoffPlot()
    qtbot.addWidget(p)
    p.resize(320, 200)
    p.show()
    p.show_payoff(curves, spot=spot, breakevens=[4910.0, 4995.0, 5090.0], density=density,
                  moves=_Moves(4970.0, 5050.0, 4930.0, 5090.0))
    qtbot.wait(20)
    legend = p.legend.sceneBoundingRect()
    assert legend.width() > 0 and len(p.legend.items) == 3
    view = p.plot_widget.getPlotItem().vb.sceneBoundingRect()
    assert not legend.intersects(view)  # outside the plot area: no label inside it can collide
    labels = [p.spot_line.label] + [line.label for line in p._breakeven_lines if line.isVisible()]
    assert len(labels) == 4
    for label in labels:
        assert not legend.intersects(label.sceneBoundingRect()), label.format
        assert label.sceneBoundingRect().top() >= view.top() - 0.5, label.format  # inside the plot area
    rects = [label.sceneBoundingRect() for label in labels[:3]]  # spot 4905/5000/5095 vs BE 4910, 4995
    assert not rects[0].intersects(rects[1]) and not rects[0].intersects(rects[2])  # stacked rows
    scene = p.plot_widget.sceneRect()
    assert scene.contains(legend)  # and not cut off at the top
