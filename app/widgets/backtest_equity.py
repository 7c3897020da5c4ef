"""Equity curve (dollars) above its drawdown (percent below the running peak), sharing one ET date axis.

One run (:meth:`EquityDrawdownChart.set_equity`) or several stored runs overlaid for comparison
(:meth:`EquityDrawdownChart.set_runs`), each in its own colour, named in the legend, with its own drawdown
line in the lower pane (one run: the drawdown is a filled red area). Trade entries (yellow triangles) and exits
(green / red / grey dots by the trade's P&L) can be marked on the first run's curve. Moving the mouse shows a
crosshair in both panes and a readout "date · equity · drawdown" of every run at that time (the last stamp at
or before it: equity is a step function of the stamps, nothing is interpolated; a run that ended more than a
day earlier is left out).

Input equity is a ``pd.Series`` of dollars on UTC stamps (a run's ``equity``); non-finite values are dropped
and counted in the readout, an empty run shows "no data" instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.widgets.backtest_common import (
    NO_DATA,
    DollarAxis,
    PercentAxis,
    PngExport,
    et_axis,
    et_seconds,
    finite_series,
    fmt_money,
    fmt_pct,
)
from app.widgets.plot_style import PALETTE, ThemedPlotWidget
from spx_core.backtest.metrics import drawdown

__all__ = ["EquityDrawdownChart", "RunCurve", "run_colour"]

LOSS_COLOR = "#e15759"
WIN_COLOR = "#59a14f"
SCRATCH_COLOR = "#9aa5b1"
ENTRY_COLOR = "#edc948"
AXIS_WIDTH = 84  # px: both panes' left axes, so their plot areas (and dates) line up
LEGEND_ROW = 18  # px per row of the legend strip above the equity pane
_DAY = 86_400.0
_STYLES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine)


def run_colour(i: int) -> tuple[str, Qt.PenStyle]:
    """The ``i``-th compared run's colour and line style: ten Tableau colours, then dashed, then dotted."""
    return PALETTE[i % len(PALETTE)], _STYLES[(i // len(PALETTE)) % len(_STYLES)]


@dataclass(frozen=True, slots=True, eq=False)
class RunCurve:
    """One drawn run: ``x`` ET seconds, ``equity`` dollars, ``drawdown`` percent (<= 0), non-finite stamps
    ``dropped``."""

    label: str
    x: np.ndarray
    equity: np.ndarray
    drawdown: np.ndarray
    colour: str
    dropped: int
    starting_cash: float | None

    def index_at(self, x: float) -> int:
        """Position of the last stamp at or before ``x`` (-1 before the first)."""
        return int(np.searchsorted(self.x, x, side="right")) - 1


def _run_curve(i: int, label: str, equity: pd.Series, starting_cash: float | None) -> RunCurve | None:
    clean, dropped = finite_series(equity)
    if clean.empty:
        return None
    dd = drawdown(clean, starting_cash=starting_cash).to_numpy() * 100.0
    return RunCurve(label, et_seconds(clean.index), clean.to_numpy(), dd, run_colour(i)[0], dropped, starting_cash)


class EquityDrawdownChart(PngExport, QWidget):
    """See the module docstring. ``runs`` is what is drawn; ``clear(reason)`` empties it and says why."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("backtest_equity_chart")
        self.runs: list[RunCurve] = []
        self.equity_plot = ThemedPlotWidget(axisItems={"bottom": et_axis(), "left": DollarAxis()})
        self.drawdown_plot = ThemedPlotWidget(axisItems={"bottom": et_axis(), "left": PercentAxis()})
        eq, dd = self.equity_plot.getPlotItem(), self.drawdown_plot.getPlotItem()
        dd.setXLink(eq)
        self.drawdown_plot.setMinimumHeight(110)  # its axis title fits, and a few ticks
        for plot, label in ((eq, "equity ($)"), (dd, "drawdown (%)")):
            plot.showGrid(x=True, y=True, alpha=0.15)
            plot.setMenuEnabled(False)
            plot.setLabel("left", label)
            plot.getAxis("left").setWidth(AXIS_WIDTH)
            # a year of 5-minute stamps is ~20k points a run: pyqtgraph draws about ten per pixel column, and
            # "peak" keeps each bin's low and high so the deepest drawdown and the equity's extremes still show
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
        eq.getAxis("bottom").setStyle(showValues=False)  # the dates are read under the drawdown pane
        self.legend = self._build_legend(eq)
        dd.getAxis("left").setStyle(hideOverlappingLabels=True)  # "0%" at the pane's top edge would be cut in half
        self._equity_items: list[pg.PlotDataItem] = []
        self._drawdown_items: list[pg.PlotDataItem] = []
        self.entries = pg.ScatterPlotItem(symbol="t1", size=9, brush=pg.mkBrush(ENTRY_COLOR), pen=pg.mkPen("#333"))
        self.exits = pg.ScatterPlotItem(symbol="o", size=8, pen=pg.mkPen("#333"))
        for item in (self.entries, self.exits):
            eq.addItem(item)
        self.crosshairs = [pg.InfiniteLine(angle=90, pen=pg.mkPen("#888888", style=Qt.PenStyle.DashLine))
                           for _ in range(2)]
        for plot, line in zip((eq, dd), self.crosshairs, strict=True):
            plot.addItem(line, ignoreBounds=True)
        self.message = pg.TextItem("", anchor=(0.5, 0.5), color="#999999")
        eq.addItem(self.message, ignoreBounds=True)
        self._build_marks(eq, dd)
        self.readout = QLabel(" ")
        self.readout.setObjectName("equity_readout")
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.readout.setContentsMargins(6, 2, 6, 2)
        self.readout.setToolTip("Move the mouse over the chart: date -> equity and drawdown of each run")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.equity_plot, 3)
        layout.addWidget(self.drawdown_plot, 1)
        layout.addWidget(self.readout)
        # one proxy per pane: a scene position means something only in the scene it came from
        self._mouse = [pg.SignalProxy(w.scene().sigMouseMoved, rateLimit=30, slot=partial(self._on_mouse, w))
                       for w in (self.equity_plot, self.drawdown_plot)]
        self.clear()

    def _build_marks(self, eq: pg.PlotItem, dd: pg.PlotItem) -> None:
        """The starting cash as a dotted line (what the run is measured against) and the deepest drawdown as a
        dot with its depth and date (one run)."""
        self.cash_line = pg.InfiniteLine(angle=0, pen=pg.mkPen("#9aa5b1", width=1, style=Qt.PenStyle.DotLine),
                                         label="", labelOpts={"position": 0.98, "color": "#9aa5b1",
                                                              "anchors": [(1, 1), (1, 1)]})  # right: every
        # curve starts at the cash, so a label at the left end always sat on it
        eq.addItem(self.cash_line, ignoreBounds=True)
        self.max_drawdown_dot = pg.ScatterPlotItem(size=8, brush=pg.mkBrush(LOSS_COLOR), pen=pg.mkPen("#eeeeee"))
        # white on a dark box: readable on the red fill and on either theme
        self.max_drawdown_label = pg.TextItem("", color="#ffffff", fill=pg.mkBrush(0, 0, 0, 170))
        dd.addItem(self.max_drawdown_dot)
        dd.addItem(self.max_drawdown_label, ignoreBounds=True)

    @staticmethod
    def _build_legend(plot: pg.PlotItem) -> pg.LegendItem:
        # in a strip of its own above the plot area (the title's row, as PayoffPlot does): inside the view it hid
        # the first months of the compared curves, which all start at the starting cash at the top left
        legend = pg.LegendItem(labelTextSize="8pt", frame=False, horSpacing=14, verSpacing=-4)
        legend.layout.setContentsMargins(2, 0, 2, 0)
        legend.setParentItem(plot)
        legend.anchor(itemPos=(0.0, 0.0), parentPos=(0.0, 0.0), offset=(AXIS_WIDTH, 0))
        plot.legend = legend  # the theme colours the legend it finds there
        return legend

    # --- API ------------------------------------------------------------------------------------------
    def set_equity(self, equity: pd.Series | None, *, trades: Iterable[Any] = (),
                   starting_cash: float | None = None, label: str = "equity") -> None:
        """One run: its equity (dollars, UTC stamps), optional trades to mark (``entry_ns``, ``exit_ns``,
        ``pnl``) and its starting cash (the first drawdown peak)."""
        self.set_runs([(label, equity, starting_cash)])
        self.set_trades(trades)

    def set_runs(self, runs: Sequence[tuple[str, pd.Series | None] | tuple[str, pd.Series | None, float | None]]
                 ) -> None:
        """Overlay several runs: ``(label, equity)`` or ``(label, equity, starting_cash)`` each; trade markers
        are cleared (call :meth:`set_trades` for the first run's). Empty runs are left out (and named in the
        readout); none left: "no data"."""
        curves, empty = [], []
        for run in runs:
            label, equity = run[0], run[1]
            cash = run[2] if len(run) > 2 else None
            curve = _run_curve(len(curves), label, equity, cash)
            if curve is None:
                empty.append(label)
            else:
                curves.append(curve)
        self.set_trades(())
        for line in self.crosshairs:  # it pointed into the previous runs
            line.setVisible(False)
        if not curves:
            self.clear(f"{NO_DATA}: {', '.join(empty)} empty" if len(empty) > 1 else NO_DATA)
            return
        self.runs = curves
        self.message.setText("")
        self._draw_runs()
        self._set_axes_visible(True)
        self._fit_range()
        self._show_marks()
        notes = [f"{c.label}: {c.dropped} non-finite equity value(s) skipped" for c in curves if c.dropped]
        notes += [f"{label}: no data" for label in empty]
        self.readout.setText(" · ".join(notes) or " ")

    def set_trades(self, trades: Iterable[Any]) -> None:
        """Mark trade entries and exits on the first run's curve, at its equity of the last stamp at or before
        each time (times before the run's first stamp are left out)."""
        entries_x, exits_x, exit_pnl = [], [], []
        for t in trades:
            entries_x.append(t.entry_ns)
            if t.exit_ns is not None:
                exits_x.append(t.exit_ns)
                exit_pnl.append(float(t.pnl))
        if not self.runs:
            self.entries.setData([], [])
            self.exits.setData([], [])
            return
        run = self.runs[0]
        ex, ey, _ = self._on_curve(run, entries_x)
        self.entries.setData(ex, ey)
        xx, xy, keep = self._on_curve(run, exits_x)
        colours = [WIN_COLOR if p > 0 else LOSS_COLOR if p < 0 else SCRATCH_COLOR
                   for p, k in zip(exit_pnl, keep, strict=True) if k]
        self.exits.setData(xx, xy, brush=[pg.mkBrush(c) for c in colours])

    def clear(self, reason: str = NO_DATA) -> None:
        """Empty both panes and say ``reason`` in the middle of the equity pane."""
        self.runs = []
        self._draw_runs()
        self.entries.setData([], [])
        self.exits.setData([], [])
        for line in self.crosshairs:
            line.setVisible(False)
        self.readout.setText(" ")
        for plot in (self.equity_plot, self.drawdown_plot):
            plot.getPlotItem().setRange(xRange=(0.0, 1.0), yRange=(0.0, 1.0), padding=0)
        self._set_axes_visible(False)  # empty date axes would read 1970
        self._show_marks()
        self.message.setText(reason)
        self.message.setPos(0.5, 0.5)

    @property
    def message_text(self) -> str:
        return self.message.textItem.toPlainText()

    @property
    def equity_items(self) -> list[pg.PlotDataItem]:
        """The drawn equity curves, one per run, in ``runs`` order."""
        return self._equity_items[: len(self.runs)]

    @property
    def drawdown_items(self) -> list[pg.PlotDataItem]:
        return self._drawdown_items[: len(self.runs)]

    def readout_at(self, x: float) -> str:
        """The hover text at ``x`` (ET seconds): the date, then each run's equity and drawdown at that time."""
        when = pd.Timestamp(int(x * 1e9)).strftime("%Y-%m-%d %H:%M ET")
        parts = []
        for run in self.runs:
            i = run.index_at(x)
            if i < 0 or x > run.x[-1] + _DAY:  # before the run, or a day past its end: it says nothing there
                continue
            money, dd = fmt_money(float(run.equity[i])), fmt_pct(float(run.drawdown[i]) / 100.0, sign=False)
            parts.append(f"equity {money} · drawdown {dd}" if len(self.runs) == 1 else f"{run.label} {money} ({dd})")
        return " · ".join([when, *parts]) if parts else f"{when} · before the run"

    def show_crosshair(self, x: float) -> None:
        """Crosshair at ``x`` (ET seconds) in both panes and its readout (the mouse calls this)."""
        if not self.runs:
            return
        for line in self.crosshairs:
            line.setPos(x)
            line.setVisible(True)
        self.readout.setText(self.readout_at(x))

    # --- drawing --------------------------------------------------------------------------------------
    def _draw_runs(self) -> None:
        eq, dd = self.equity_plot.getPlotItem(), self.drawdown_plot.getPlotItem()
        while len(self._equity_items) < len(self.runs):  # items made once, reused by later runs
            self._equity_items.append(eq.plot())
            self._drawdown_items.append(dd.plot(fillLevel=0.0))
        self._layout_legend()
        single = len(self.runs) == 1
        for i, (e_item, d_item) in enumerate(zip(self._equity_items, self._drawdown_items, strict=True)):
            if i >= len(self.runs):
                for item in (e_item, d_item):
                    item.setData(np.zeros(0), np.zeros(0))
                    item.setVisible(False)
                continue
            run = self.runs[i]
            colour, style = run_colour(i)
            one_point = len(run.x) == 1  # a line needs two points: show the lone stamp as a dot
            e_item.setData(run.x, run.equity, pen=pg.mkPen(colour, width=2, style=style),
                           symbol="o" if one_point else None, symbolBrush=colour, symbolSize=7)
            d_colour = LOSS_COLOR if single else colour
            d_item.setData(run.x, run.drawdown, pen=pg.mkPen(d_colour, width=1.5 if single else 1.2, style=style),
                           symbol="o" if one_point else None, symbolBrush=d_colour, symbolSize=6)
            # one run: its drawdown a filled red area; compared runs: lines only (overlapping fills turn to mud)
            d_item.setFillLevel(0.0 if single else None)
            d_item.setFillBrush(pg.mkBrush(d_colour + "70") if single else None)
            for item in (e_item, d_item):
                item.setVisible(True)
            self.legend.addItem(e_item, run.label)
        self.legend.setVisible(bool(self.runs))

    def _show_marks(self) -> None:
        cash = {r.starting_cash for r in self.runs}
        shared = next(iter(cash)) if len(cash) == 1 else None
        self.cash_line.setVisible(shared is not None)
        if shared is not None:
            self.cash_line.setValue(shared)
            self.cash_line.label.setFormat(f"starting cash {fmt_money(shared)}")  # after setVisible (see there)
        run = self.runs[0] if len(self.runs) == 1 else None
        i = int(np.argmin(run.drawdown)) if run is not None else -1
        shown = run is not None and bool(run.drawdown[i] < 0.0)
        self.max_drawdown_label.setVisible(shown)
        if not shown:
            self.max_drawdown_dot.setData([], [])
            return
        x, depth = float(run.x[i]), float(run.drawdown[i])
        self.max_drawdown_dot.setData([x], [depth])
        when = pd.Timestamp(int(x * 1e9)).strftime("%Y-%m-%d")
        self.max_drawdown_label.setText(f"max drawdown {depth:.1f}% ({fmt_money(float(run.equity[i]))}) {when}")
        right_half = x > (run.x[0] + run.x[-1]) / 2.0  # the text runs away from the nearer edge
        self.max_drawdown_label.setAnchor((1.0, 1.0) if right_half else (0.0, 1.0))
        self.max_drawdown_label.setPos(x, depth)

    def _layout_legend(self) -> None:
        """Columns by how long the labels are; the strip above the plot as high as the legend's rows."""
        self.legend.clear()
        n = len(self.runs)
        longest = max((len(r.label) for r in self.runs), default=0)
        cols = 1 if n <= 1 else (2 if longest > 28 else 3)
        self.legend.setColumnCount(cols)
        rows = max(math.ceil(n / cols), 1)
        self.equity_plot.getPlotItem().layout.setRowFixedHeight(0, LEGEND_ROW * rows + 4)

    def _fit_range(self) -> None:
        x = np.concatenate([r.x for r in self.runs])
        cash = [r.starting_cash for r in self.runs if r.starting_cash is not None and np.isfinite(r.starting_cash)]
        y = np.concatenate([r.equity for r in self.runs] + [np.asarray(cash, dtype=np.float64)])  # cash in view
        d = np.concatenate([r.drawdown for r in self.runs])
        x0, x1 = float(x.min()), float(x.max())
        if x1 - x0 < _DAY:  # one stamp (or one session): a day wide, centred
            mid = (x0 + x1) / 2.0
            x0, x1 = mid - _DAY / 2.0, mid + _DAY / 2.0
        y0, y1 = float(y.min()), float(y.max())
        pad = max(y1 - y0, 0.01 * max(abs(y0), abs(y1)), 1.0) * 0.08  # flat: +-0.08% of the equity
        eq = self.equity_plot.getPlotItem()
        eq.setXRange(x0, x1, padding=0.02)
        eq.setYRange(y0 - pad, y1 + pad, padding=0)
        low = min(float(d.min()), -0.5)
        self.drawdown_plot.getPlotItem().setYRange(low * 1.08, -low * 0.04, padding=0)

    def _set_axes_visible(self, visible: bool) -> None:
        self.drawdown_plot.getPlotItem().getAxis("bottom").setStyle(showValues=visible)
        for plot in (self.equity_plot, self.drawdown_plot):
            plot.getPlotItem().getAxis("left").setStyle(showValues=visible)

    @staticmethod
    def _on_curve(run: RunCurve, stamps_ns: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``stamps_ns`` (UTC ns) -> (ET seconds, the run's equity at the last stamp at or before each), leaving
        out stamps before the run; and which stamps were kept."""
        if not stamps_ns:
            return np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool)
        x = et_seconds(pd.to_datetime(np.asarray(stamps_ns, dtype=np.int64), utc=True))
        i = np.searchsorted(run.x, x, side="right") - 1
        keep = i >= 0
        return x[keep], run.equity[i[keep]], keep

    def _on_mouse(self, widget: pg.PlotWidget, event: tuple[Any, ...]) -> None:
        vb = widget.getPlotItem().vb
        pos = event[0]
        if self.runs and vb.sceneBoundingRect().contains(pos):
            self.show_crosshair(float(vb.mapSceneToView(QPointF(pos)).x()))
