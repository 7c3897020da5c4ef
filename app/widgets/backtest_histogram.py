"""Histogram of per-trade P&L (dollars): losers red left of zero, winners green right of it, counts on the bars.

The bin edges are laid on a grid through zero, so no bar mixes winners and losers; the bin width is numpy's
"auto" width (Freedman-Diaconis / Sturges), at most :data:`MAX_BINS` (and about 2 sqrt(n)) bins over the range,
rounded up to a round dollar figure. Scratches (P&L
exactly 0) are a grey bar of their own at zero. A solid line marks zero, a dashed one the mean P&L per trade
(labelled); the title line sums up the trades ("42 trades · 31 win 11 lose · mean +$38"). Trades without a
finite P&L are left out and counted in that line.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.widgets.backtest_common import NO_DATA, DollarAxis, PngExport, fmt_money
from app.widgets.plot_style import PALETTE, ThemedPlotWidget

__all__ = ["PnlBins", "PnlHistogram", "pnl_bins"]

WIN_COLOR = "#59a14f"
LOSS_COLOR = "#e15759"
SCRATCH_COLOR = "#9aa5b1"
MEAN_COLOR = PALETTE[1]
MAX_BINS = 40  # more bars than this and their count labels run into each other
MAX_LABELS = 40


@dataclass(frozen=True, slots=True, eq=False)
class PnlBins:
    """``edges`` (dollars, one more than the bars) with 0 among them; ``losers`` / ``winners`` counts per bin;
    ``scratches`` trades at exactly 0."""

    edges: np.ndarray
    losers: np.ndarray
    winners: np.ndarray
    scratches: int

    @property
    def width(self) -> float:
        return float(self.edges[1] - self.edges[0])


def pnl_bins(pnl: np.ndarray) -> PnlBins:
    """Bins for finite ``pnl`` (at least one value) on a grid through zero (module docstring)."""
    pnl = np.asarray(pnl, dtype=np.float64)
    lo, hi = min(float(pnl.min()), 0.0), max(float(pnl.max()), 0.0)
    span = hi - lo
    if span <= 0.0:  # every trade a scratch
        width = 1.0
    else:
        auto = np.histogram_bin_edges(pnl, bins="auto")
        width = float(auto[1] - auto[0]) if len(auto) > 1 and auto[1] > auto[0] else span
        # at most MAX_BINS bars, and about 2 sqrt(n) for few trades (one trade: a few bars, not forty slivers)
        width = max(width, span / min(MAX_BINS, max(4, math.ceil(2.0 * math.sqrt(pnl.size)))))
        width = _nice(width)
    start = math.floor(lo / width) * width
    stop = math.ceil(hi / width) * width
    if stop <= start:
        stop = start + width
    edges = start + width * np.arange(round((stop - start) / width) + 1)
    edges[np.argmin(np.abs(edges))] = 0.0  # exact zero (floating steps can land at 1e-13)
    # losers are binned by size, like winners: mirrored edges put a value on an edge in the bar farther from
    # zero on both sides (+50 in the 50..100 bar, -50 in the -100..-50 bar with a $50 width)
    losers = np.histogram(-pnl[pnl < 0], bins=-edges[::-1])[0][::-1]
    winners = np.histogram(pnl[pnl > 0], bins=edges)[0]
    return PnlBins(edges, losers.astype(int), winners.astype(int), int(np.count_nonzero(pnl == 0.0)))


def _nice(width: float) -> float:
    """``width`` rounded up to 1, 2, 2.5 or 5 times a power of ten (bars at $25 or $50, not $37.42)."""
    power = 10.0 ** math.floor(math.log10(width))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if width <= step * power * (1 + 1e-9):
            return step * power
    return 10.0 * power


class PnlHistogram(PngExport, QWidget):
    """See the module docstring. :meth:`set_trades` (objects with ``pnl``, closed ones) or :meth:`set_pnl`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("backtest_pnl_histogram")
        self.bins: PnlBins | None = None
        self.pnl = np.zeros(0)
        self.plot_widget = ThemedPlotWidget(axisItems={"bottom": DollarAxis("bottom")})
        plot = self.plot_widget.getPlotItem()
        plot.showGrid(x=False, y=True, alpha=0.15)
        plot.setMenuEnabled(False)
        plot.setLabel("bottom", "P&L per trade ($, net of costs)")
        plot.setLabel("left", "trades")
        plot.getAxis("left").enableAutoSIPrefix(False)
        self.loser_bars = pg.BarGraphItem(x0=[], x1=[], height=[], brush=LOSS_COLOR, pen=pg.mkPen("#00000060"))
        self.winner_bars = pg.BarGraphItem(x0=[], x1=[], height=[], brush=WIN_COLOR, pen=pg.mkPen("#00000060"))
        self.scratch_bar = pg.BarGraphItem(x0=[], x1=[], height=[], brush=SCRATCH_COLOR, pen=pg.mkPen("#00000060"))
        for item in (self.loser_bars, self.winner_bars, self.scratch_bar):
            plot.addItem(item)
        self.zero_line = pg.InfiniteLine(pos=0.0, angle=90, pen=pg.mkPen("#888888", width=1.5))
        self.mean_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(MEAN_COLOR, width=2, style=Qt.PenStyle.DashLine),
                                         label="", labelOpts={"position": 0.93, "color": MEAN_COLOR,
                                                              "anchors": [(0, 0), (1, 0)]})
        # no fill behind the label: orange reads on both themes, a dark box did not on the light one; the bars
        # stay below 82% of the height (_fit_range), so nothing runs under it
        self.zero_line.setZValue(-1)  # under the bars and the scratches' count, which sit on zero
        for line in (self.zero_line, self.mean_line):
            plot.addItem(line)
        self.count_labels: list[pg.TextItem] = []
        self.message = pg.TextItem("", anchor=(0.5, 0.5), color="#999999")
        plot.addItem(self.message, ignoreBounds=True)
        self.summary = QLabel(" ")
        self.summary.setObjectName("pnl_summary")
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.summary.setContentsMargins(6, 2, 6, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.summary)
        layout.addWidget(self.plot_widget, 1)
        self.clear()

    def set_trades(self, trades: Iterable[Any]) -> None:
        """The closed trades' ``pnl`` (open trades, ``exit_ns`` None, have no realized P&L yet)."""
        self.set_pnl([float(t.pnl) for t in trades if getattr(t, "exit_ns", 0) is not None])

    def set_pnl(self, pnl: Iterable[float]) -> None:
        """Per-trade P&L in dollars; non-finite values are left out (and counted)."""
        values = np.asarray(list(pnl), dtype=np.float64)
        finite = values[np.isfinite(values)]
        skipped = len(values) - len(finite)
        if finite.size == 0:
            self.clear(NO_DATA if skipped == 0 else f"{NO_DATA}: {skipped} trade(s) without a finite P&L")
            return
        self.pnl = finite
        self.bins = bins = pnl_bins(finite)
        left, right = bins.edges[:-1], bins.edges[1:]
        self.loser_bars.setOpts(x0=left, x1=right, height=bins.losers)
        self.winner_bars.setOpts(x0=left, x1=right, height=bins.winners)
        sw = bins.width * 0.3  # scratches: a narrow bar centred on zero, in front of its neighbours
        self.scratch_bar.setOpts(x0=[-sw / 2], x1=[sw / 2], height=[bins.scratches])
        self.scratch_bar.setVisible(bins.scratches > 0)
        for item in (self.zero_line, self.mean_line, self.loser_bars, self.winner_bars):
            item.setVisible(True)
        mean = float(finite.mean())
        self.mean_line.setPos(mean)
        self.mean_line.label.setFormat(f"mean {fmt_money(mean, sign=True)}")  # after setVisible: a hidden label
        # keeps its old text
        self._label_counts(bins)
        self.message.setText("")
        self.summary.setText(self._summary(finite, skipped))
        self._fit_range(bins)
        for name in ("bottom", "left"):
            self.plot_widget.getPlotItem().getAxis(name).setStyle(showValues=True)

    def clear(self, reason: str = NO_DATA) -> None:
        self.bins, self.pnl = None, np.zeros(0)
        for bars in (self.loser_bars, self.winner_bars, self.scratch_bar):
            bars.setOpts(x0=[], x1=[], height=[])
        for item in (self.zero_line, self.mean_line, self.scratch_bar):
            item.setVisible(False)
        self._label_counts(None)
        self.summary.setText(" ")
        plot = self.plot_widget.getPlotItem()
        plot.setRange(xRange=(0.0, 1.0), yRange=(0.0, 1.0), padding=0)
        for name in ("bottom", "left"):  # an empty chart's 0..1 would read as dollars and trades
            plot.getAxis(name).setStyle(showValues=False)
        self.message.setText(reason)
        self.message.setPos(0.5, 0.5)

    @property
    def message_text(self) -> str:
        return self.message.textItem.toPlainText()

    @property
    def shown_counts(self) -> list[tuple[float, str]]:
        """(x, text) of every visible count label."""
        return [(float(t.pos().x()), t.textItem.toPlainText()) for t in self.count_labels if t.isVisible()]

    @staticmethod
    def _summary(pnl: np.ndarray, skipped: int) -> str:
        wins, losses = int((pnl > 0).sum()), int((pnl < 0).sum())
        text = (f"{len(pnl)} trade{'s' if len(pnl) != 1 else ''} · {wins} won {losses} lost"
                f"{f' {len(pnl) - wins - losses} flat' if len(pnl) > wins + losses else ''}"
                f" · win rate {wins / len(pnl):.0%} · mean {fmt_money(float(pnl.mean()), sign=True)}"
                f" · median {fmt_money(float(np.median(pnl)), sign=True)}"
                f" · best {fmt_money(float(pnl.max()), sign=True)} · worst {fmt_money(float(pnl.min()), sign=True)}")
        return text + (f" · {skipped} without a finite P&L skipped" if skipped else "")

    def _label_counts(self, bins: PnlBins | None) -> None:
        wanted: list[tuple[float, int, str]] = []
        if bins is not None:
            mids = (bins.edges[:-1] + bins.edges[1:]) / 2.0
            for counts, colour in ((bins.losers, LOSS_COLOR), (bins.winners, WIN_COLOR)):
                wanted += [(float(m), int(c), colour) for m, c in zip(mids, counts, strict=True) if c > 0]
            if bins.scratches:
                wanted.append((0.0, bins.scratches, SCRATCH_COLOR))
        wanted = wanted[:MAX_LABELS]
        plot = self.plot_widget.getPlotItem()
        while len(self.count_labels) < len(wanted):
            label = pg.TextItem("", anchor=(0.5, 1.0))
            plot.addItem(label)
            self.count_labels.append(label)
        for i, label in enumerate(self.count_labels):
            label.setVisible(i < len(wanted))
            if i < len(wanted):
                x, count, colour = wanted[i]
                label.setText(str(count), color=colour)
                label.setPos(x, count)

    def _fit_range(self, bins: PnlBins) -> None:
        plot = self.plot_widget.getPlotItem()
        top = max(int(bins.losers.max(initial=0)), int(bins.winners.max(initial=0)), bins.scratches, 1)
        mean = float(self.pnl.mean())
        lo, hi = min(float(bins.edges[0]), mean), max(float(bins.edges[-1]), mean)
        plot.setXRange(lo, hi, padding=0.04)
        plot.setYRange(0.0, top * 1.22 + 0.5, padding=0)  # room for the count labels and the mean's label
