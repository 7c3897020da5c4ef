"""Payoff chart of one structure: P&L at expiry and at T+0, breakevens, expected-move bands, spot, density.

Shared by the scanner (the selected candidate) and the strategy builder. What it draws:
    * the P&L at expiry and at T+0 (dollars per 1 unit of the structure against the primary
      underlying's price), distinct colours, in the legend;
    * the expiry P&L filled green where it is a profit and red where it is a loss;
    * breakevens as labelled vertical lines; the spot as a labelled dashed line and a dot on the T+0 curve;
    * the +-1 and +-2 standard-deviation expected moves as shaded bands;
    * the risk-neutral density of the price at expiry shaded beneath, on its own right-hand axis
      (% per index point), scaled to the lower third of the chart so it never hides the P&L;
    * a crosshair that follows the mouse with a readout "price -> P&L at expiry / T+0" under the chart.

Every item is created once and updated with ``setData`` (pyqtgraph's idiom). The core types come in
through :meth:`PayoffPlot.show_payoff` (``PayoffCurves``, ``RiskNeutralDensity``, ``ExpectedMove``,
read by attribute so this module does not import them); :meth:`PayoffPlot.show_arrays` takes plain arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.widgets.plot_style import PALETTE, ThemedPlotWidget

__all__ = ["PayoffArrays", "PayoffPlot", "with_zero_crossings"]

EXPIRY_COLOR = PALETTE[0]  # blue
T0_COLOR = PALETTE[1]  # orange
PROFIT_COLOR = "#59a14f"
LOSS_COLOR = "#e15759"
DENSITY_COLOR = "#9aa5b1"
BAND_COLOR = "#b07aa1"
LEGEND_HEIGHT = 22  # px: the legend's strip above the plot area
LABEL_ROW = 23  # px between the rows of line labels under the top of the plot area
_LABEL_ANCHORS = [(0, 0), (1, 0)]  # a line label hangs below its position (right of the line, left near the edge)
_DENSITY_SHARE = 0.33  # the density's peak reaches a third of the chart height


@dataclass(frozen=True, slots=True, eq=False)
class PayoffArrays:
    """What the chart draws, in plain arrays (dollars per 1 unit; prices in index points).

    ``t0`` None: no T+0 curve. ``density`` (price grid, pdf per index point) None: no density.
    ``sd1``/``sd2`` (low, high) None: no band.
    """

    prices: np.ndarray
    expiry: np.ndarray
    t0: np.ndarray | None
    spot: float
    breakevens: tuple[float, ...] = ()
    density: tuple[np.ndarray, np.ndarray] | None = None
    sd1: tuple[float, float] | None = None
    sd2: tuple[float, float] | None = None


def with_zero_crossings(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` with a point inserted where ``y`` changes sign, so a fill split at zero has no gaps."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2:
        return x, y
    y0, y1 = y[:-1], y[1:]
    cross = np.flatnonzero((y0 * y1 < 0) & np.isfinite(y0) & np.isfinite(y1))
    if len(cross) == 0:
        return x, y
    xc = x[cross] - y0[cross] * (x[cross + 1] - x[cross]) / (y1[cross] - y0[cross])
    return np.insert(x, cross + 1, xc), np.insert(y, cross + 1, 0.0)


def _money(value: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    return f"{'+' if value >= 0 else '-'}${abs(value):,.0f}"


class PayoffPlot(QWidget):
    """The payoff chart (see the module docstring). ``clear(reason)`` empties it and says why."""

    def __init__(self, parent: QWidget | None = None, *, underlying: str = "SPX") -> None:
        super().__init__(parent)
        self.setObjectName("payoff_plot")
        self._data: PayoffArrays | None = None
        self.plot_widget = ThemedPlotWidget()
        self.plot_widget.setObjectName("payoff_chart")
        plot = self.plot_widget.getPlotItem()
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setLabel("left", "P&L ($ per 1 unit)")
        for name in ("left", "bottom"):
            plot.getAxis(name).enableAutoSIPrefix(False)
        plot.setMenuEnabled(False)
        self.legend = self._build_legend(plot)
        self._build_density_axis(plot)
        self._build_items(plot)
        self.readout = QLabel(" ")
        self.readout.setObjectName("payoff_readout")
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.readout.setToolTip("Move the mouse over the chart: index price -> P&L at expiry and at T+0")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.plot_widget, 1)
        layout.addWidget(self.readout)
        self._mouse = pg.SignalProxy(plot.scene().sigMouseMoved, rateLimit=30, slot=self._on_mouse)
        self.set_underlying(underlying)
        self.clear("no structure selected")

    # --- construction --------------------------------------------------------------------------------
    @staticmethod
    def _build_legend(plot: pg.PlotItem) -> pg.LegendItem:
        # One row in a strip of its own above the plot area (the title's row, unused): inside the view a
        # corner legend covered the spot and breakeven labels whenever they stood near that corner.
        legend = pg.LegendItem(labelTextSize="8pt", colCount=3, frame=False, horSpacing=4)
        legend.layout.setContentsMargins(2, 0, 2, 0)  # (9 px by default: the strip would double)
        legend.setParentItem(plot)
        legend.anchor(itemPos=(0.5, 0.0), parentPos=(0.5, 0.0), offset=(0, 0))
        plot.legend = legend  # the theme colours the legend it finds there
        plot.layout.setRowFixedHeight(0, LEGEND_HEIGHT)
        return legend

    def _build_density_axis(self, plot: pg.PlotItem) -> None:
        # second ViewBox on the right axis sharing x (pyqtgraph's MultiplePlotAxes recipe)
        self.density_view = pg.ViewBox()
        self.density_view.setMouseEnabled(x=False, y=False)
        plot.showAxis("right")
        plot.scene().addItem(self.density_view)
        right = plot.getAxis("right")
        right.linkToView(self.density_view)
        right.setLabel("density (% per pt)")
        right.enableAutoSIPrefix(False)
        self.density_view.setXLink(plot)
        self.density_view.setZValue(-10)  # beneath the P&L curves
        plot.vb.sigResized.connect(self._sync_views)
        self.density_curve = pg.PlotDataItem(pen=pg.mkPen(DENSITY_COLOR, width=1), fillLevel=0.0,
                                             brush=pg.mkBrush(pg.mkColor(DENSITY_COLOR + "55")))
        self.density_view.addItem(self.density_curve)

    def _sync_views(self) -> None:
        self.density_view.setGeometry(self.plot_widget.getPlotItem().vb.sceneBoundingRect())
        self._place_labels()

    def _place_labels(self) -> None:
        """Spot label in the top row of the plot area, breakevens alternating in the two rows below it:
        rows in pixels (fractions of the height overlapped on a small chart and poked out of a short one)."""
        height = self.plot_widget.getPlotItem().vb.height()
        if height <= 0:
            return

        def position(row: int) -> float:
            return max(1.0 - (2 + row * LABEL_ROW) / height, 0.05)

        self.spot_line.label.setPosition(position(0))
        for i, line in enumerate(self._breakeven_lines):
            line.label.setPosition(position(1 + i % 2))

    def _build_items(self, plot: pg.PlotItem) -> None:
        self.sd2_band = self._band(plot, "\u00b12\u03c3", 28)
        self.sd1_band = self._band(plot, "\u00b11\u03c3", 45)
        self.zero_line = pg.InfiniteLine(pos=0.0, angle=0, pen=pg.mkPen("#888888", width=1))
        plot.addItem(self.zero_line)
        self.profit_fill = pg.PlotDataItem(pen=None, fillLevel=0.0, brush=pg.mkBrush(PROFIT_COLOR + "60"))
        self.loss_fill = pg.PlotDataItem(pen=None, fillLevel=0.0, brush=pg.mkBrush(LOSS_COLOR + "60"))
        for fill in (self.profit_fill, self.loss_fill):
            plot.addItem(fill)
        self.expiry_curve = plot.plot(pen=pg.mkPen(EXPIRY_COLOR, width=2), name="At expiry")
        self.t0_curve = plot.plot(pen=pg.mkPen(T0_COLOR, width=2, style=Qt.PenStyle.DashLine), name="T+0 (now)")
        self.spot_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#dddd55", width=1, style=Qt.PenStyle.DashLine),
                                         label="spot", labelOpts={"position": 0.96, "color": "#cccc44",
                                                                      "anchors": _LABEL_ANCHORS})
        self.spot_dot = pg.ScatterPlotItem(size=8, brush=pg.mkBrush("#dddd55"), pen=pg.mkPen("#333333"))
        plot.addItem(self.spot_line)
        plot.addItem(self.spot_dot)
        self._breakeven_lines: list[pg.InfiniteLine] = []
        self.crosshair = pg.InfiniteLine(angle=90, pen=pg.mkPen("#888888", width=1, style=Qt.PenStyle.DashLine))
        self.crosshair.setVisible(False)
        plot.addItem(self.crosshair, ignoreBounds=True)
        self.message = pg.TextItem("", anchor=(0.5, 0.5), color="#999999")
        plot.addItem(self.message, ignoreBounds=True)

    @staticmethod
    def _band(plot: pg.PlotItem, text: str, alpha: int) -> pg.LinearRegionItem:
        band = pg.LinearRegionItem(movable=False, brush=pg.mkBrush(pg.mkColor(BAND_COLOR + f"{alpha:02x}")),
                                   pen=pg.mkPen(pg.mkColor(BAND_COLOR + "90"), width=1))
        band.setZValue(-20)
        for line, sign in zip(band.lines, ("-", "+"), strict=True):
            # keep a Python reference: PySide would otherwise free the label under its parent line
            line.label = pg.InfLineLabel(line, text.replace("\u00b1", sign), position=0.04, color=BAND_COLOR)
        plot.addItem(band, ignoreBounds=True)
        return band

    def set_underlying(self, underlying: str) -> None:
        self.plot_widget.getPlotItem().setLabel("bottom", f"{underlying} index price (pts)")

    # --- API ------------------------------------------------------------------------------------------
    def show_payoff(self, curves: Any, *, spot: float, breakevens: Sequence[float] = (),
                    density: Any | None = None, moves: Any | None = None) -> None:
        """Draw a structure's ``PayoffCurves`` (dollars per unit: ``prices``, ``expiry``, ``t0``),
        optionally a ``RiskNeutralDensity`` (``price``, ``pdf``) and an ``ExpectedMove``
        (``sd1_low/high``, ``sd2_low/high``) of the same expiry."""
        dens = None
        if density is not None:
            dens = (np.asarray(density.price, float), np.asarray(density.pdf, float))
        sd1 = sd2 = None
        if moves is not None:
            sd1 = (float(moves.sd1_low), float(moves.sd1_high))
            sd2 = (float(moves.sd2_low), float(moves.sd2_high))
        t0 = getattr(curves, "t0", None)
        self.show_arrays(PayoffArrays(np.asarray(curves.prices, float), np.asarray(curves.expiry, float),
                                      None if t0 is None else np.asarray(t0, float), float(spot),
                                      tuple(float(b) for b in breakevens), dens, sd1, sd2))

    def show_arrays(self, data: PayoffArrays) -> None:
        """Draw ``data`` (replaces what was shown)."""
        if len(data.prices) < 2:
            self.clear("no payoff grid")
            return
        self._data = data
        self.message.setText("")
        xs, ys = with_zero_crossings(data.prices, data.expiry)
        self.expiry_curve.setData(data.prices, data.expiry)
        self.profit_fill.setData(xs, np.maximum(ys, 0.0))
        self.loss_fill.setData(xs, np.minimum(ys, 0.0))
        has_t0 = data.t0 is not None and np.isfinite(data.t0).any()
        self.t0_curve.setData(data.prices, data.t0 if has_t0 else np.full(len(data.prices), np.nan))
        self._set_legend(has_t0)
        self._show_spot(data, has_t0)
        self._show_breakevens(data.breakevens)
        self._show_band(self.sd1_band, data.sd1)
        self._show_band(self.sd2_band, data.sd2)
        self._show_density(data)
        for item in (self.zero_line, self.expiry_curve, self.profit_fill, self.loss_fill):
            item.setVisible(True)
        self._fit_range(data)

    def clear(self, reason: str) -> None:
        """Empty the chart and say ``reason`` in its middle (e.g. "no candidate selected")."""
        self._data = None
        empty = np.zeros(0)
        for item in (self.expiry_curve, self.t0_curve, self.profit_fill, self.loss_fill, self.density_curve):
            item.setData(empty, empty)
        self.spot_dot.setData([], [])
        for item in (self.spot_line, self.sd1_band, self.sd2_band, self.crosshair, self.zero_line):
            item.setVisible(False)
        self._show_breakevens(())
        self.legend.clear()
        self.readout.setText(" ")
        plot = self.plot_widget.getPlotItem()
        plot.setXRange(0.0, 1.0, padding=0)
        plot.setYRange(0.0, 1.0, padding=0)
        self.message.setText(reason)
        self.message.setPos(0.5, 0.5)

    @property
    def data(self) -> PayoffArrays | None:
        """What is drawn (None when cleared)."""
        return self._data

    @property
    def message_text(self) -> str:
        return self.message.textItem.toPlainText()

    @property
    def breakeven_positions(self) -> list[float]:
        return [line.value() for line in self._breakeven_lines if line.isVisible()]

    def value_at(self, price: float) -> tuple[float, float]:
        """(P&L at expiry, P&L at T+0) in dollars per unit at ``price`` (linear between grid points)."""
        d = self._data
        if d is None:
            return float("nan"), float("nan")
        at_expiry = float(np.interp(price, d.prices, d.expiry))
        t0 = float(np.interp(price, d.prices, d.t0)) if d.t0 is not None else float("nan")
        return at_expiry, t0

    def readout_at(self, price: float) -> str:
        """The crosshair's text at ``price``: the price, P&L at expiry and at T+0."""
        at_expiry, t0 = self.value_at(price)
        text = f"{price:,.2f} \u2192 expiry {_money(at_expiry)}"
        return text + (f" \u00b7 T+0 {_money(t0)}" if np.isfinite(t0) else "")

    def show_crosshair(self, price: float) -> None:
        """Put the crosshair at ``price`` and show its readout (the mouse calls this)."""
        if self._data is None:
            return
        self.crosshair.setPos(price)
        self.crosshair.setVisible(True)
        self.readout.setText(self.readout_at(price))

    # --- drawing helpers ------------------------------------------------------------------------------
    def _set_legend(self, has_t0: bool) -> None:
        self.legend.clear()
        self.legend.addItem(self.expiry_curve, "At expiry")
        if has_t0:
            self.legend.addItem(self.t0_curve, "T+0 (now)")
        self.legend.addItem(self.density_curve, "RN density")
        self.density_curve.setVisible(True)

    def _show_spot(self, data: PayoffArrays, has_t0: bool) -> None:
        ok = np.isfinite(data.spot)
        self.spot_line.setVisible(bool(ok))
        if not ok:
            self.spot_dot.setData([], [])
            return
        self.spot_line.setPos(data.spot)
        self.spot_line.label.setFormat(f"spot {data.spot:,.2f}")
        curve = data.t0 if has_t0 else data.expiry
        self.spot_dot.setData([data.spot], [float(np.interp(data.spot, data.prices, curve))])

    def _show_breakevens(self, breakevens: Sequence[float]) -> None:
        plot = self.plot_widget.getPlotItem()
        shown = [b for b in breakevens if np.isfinite(b)]
        while len(self._breakeven_lines) < len(shown):
            line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#dddddd", width=1, style=Qt.PenStyle.DashDotLine),
                                   label="", labelOpts={"position": 0.86, "color": "#dddddd",
                                                        "fill": pg.mkBrush(0, 0, 0, 120), "anchors": _LABEL_ANCHORS})
            plot.addItem(line)
            self._breakeven_lines.append(line)
        for i, line in enumerate(self._breakeven_lines):
            if i < len(shown):
                line.setPos(shown[i])
                line.label.setFormat(f"BE {shown[i]:,.1f}")
            line.setVisible(i < len(shown))
        self._place_labels()  # staggered rows: close breakevens stay readable

    @staticmethod
    def _show_band(band: pg.LinearRegionItem, bounds: tuple[float, float] | None) -> None:
        ok = bounds is not None and all(np.isfinite(bounds))
        band.setVisible(bool(ok))
        if ok:
            band.setRegion(bounds)

    def _show_density(self, data: PayoffArrays) -> None:
        if data.density is None:
            self.density_curve.setData(np.zeros(0), np.zeros(0))
            self.density_curve.setVisible(False)
            self.legend.removeItem(self.density_curve)
            return
        price, pdf = data.density
        keep = (price >= data.prices[0]) & (price <= data.prices[-1]) & np.isfinite(pdf)
        pct = pdf[keep] * 100.0  # % of probability per index point
        self.density_curve.setData(price[keep], pct)
        peak = float(pct.max()) if pct.size else 0.0
        self.density_view.setYRange(0.0, peak / _DENSITY_SHARE if peak > 0 else 1.0, padding=0)

    def _fit_range(self, data: PayoffArrays) -> None:
        plot = self.plot_widget.getPlotItem()
        plot.setXRange(float(data.prices[0]), float(data.prices[-1]), padding=0.01)
        values = [data.expiry] + ([data.t0] if data.t0 is not None else [])
        y = np.concatenate([v[np.isfinite(v)] for v in values] + [np.zeros(1)])
        lo, hi = float(y.min()), float(y.max())
        span = max(hi - lo, 1.0)
        # room below for the density (it fills the lower third) and above for the spot and breakeven labels
        plot.setYRange(lo - 0.12 * span, hi + 0.18 * span, padding=0)

    def _on_mouse(self, event: tuple[Any, ...]) -> None:
        pos = event[0]
        vb = self.plot_widget.getPlotItem().vb
        if self._data is None or not vb.sceneBoundingRect().contains(pos):
            return
        self.show_crosshair(float(vb.mapSceneToView(QPointF(pos)).x()))
