"""Smile chart: per shown expiry, bid/ask IV bars, mid IV points and the fitted SVI curve.

x is chosen with :meth:`SmilePlot.set_x_axis`: log-moneyness ln(K/F), strike, or delta (Black forward
delta from the point's own IV, laid out put wing -> call wing: 10P, 25P, ATM, 25C, 10C). y is implied
vol (%). Items are created once per expiry and updated with ``setData``; each expiry keeps the
colour and line style the panel gives it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from app.widgets.plot_style import SeriesStyle, ThemedPlotWidget

__all__ = ["SmileAxis", "SmileData", "SmilePlot", "smile_x"]


class SmileAxis(enum.Enum):
    """What the smile's x axis shows (value: the axis title)."""

    LOG_MONEYNESS = "log-moneyness ln(K/F)"
    STRIKE = "strike"
    DELTA = "delta (put wing \u2190 ATM \u2192 call wing)"

    @property
    def short(self) -> str:
        return {SmileAxis.LOG_MONEYNESS: "ln(K/F)", SmileAxis.STRIKE: "Strike", SmileAxis.DELTA: "Delta"}[self]


@dataclass(frozen=True, slots=True, eq=False)
class SmileData:
    """One expiry's smile, ready to draw (IVs as fractions; NaN bid/ask IV = no bar on that side)."""

    label: str
    k: np.ndarray  # ln(K/F) of the quotes
    iv_bid: np.ndarray
    iv_mid: np.ndarray
    iv_ask: np.ndarray
    k_fit: np.ndarray
    iv_fit: np.ndarray
    forward: float  # index points
    t: float  # years to expiry


def smile_x(axis: SmileAxis, k: np.ndarray, iv: np.ndarray, forward: float, t: float) -> np.ndarray:
    """x coordinates of points at log-moneyness ``k`` with implied vol ``iv`` (fraction) on ``axis``.

    Delta is the put-side share N(-d1) of the Black forward delta: 0 at the far put wing, 0.5 at the
    money, 1 at the far call wing, so 25-delta put sits at 0.25 and 25-delta call at 0.75.
    """
    if axis is SmileAxis.STRIKE:
        return forward * np.exp(k)
    if axis is SmileAxis.DELTA:
        from scipy.special import ndtr  # ~0.3 s to import: not on the start-up path

        sd = iv * np.sqrt(max(t, 1e-9))
        with np.errstate(divide="ignore", invalid="ignore"):
            d1 = -k / sd + 0.5 * sd
        return ndtr(-d1)
    return np.asarray(k, dtype=float)


_DELTA_TICKS = [(0.10, "10P"), (0.25, "25P"), (0.5, "ATM"), (0.75, "25C"), (0.90, "10C")]


class _SmileItems:
    def __init__(self, plot: pg.PlotItem, style: SeriesStyle) -> None:
        self.bars = pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), top=np.zeros(0), bottom=np.zeros(0), beam=0.0)
        self.points = pg.ScatterPlotItem(size=5)
        self.curve = pg.PlotDataItem()
        self.set_style(style)
        for item in (self.bars, self.points, self.curve):
            plot.addItem(item)

    def set_style(self, style: SeriesStyle) -> None:
        self.style = style
        self.bars.setData(pen=pg.mkPen(pg.mkColor(style.color).lighter(110), width=1))
        self.points.setPen(pg.mkPen(style.color, width=1))
        self.points.setBrush(pg.mkBrush(style.color))
        self.curve.setPen(pg.mkPen(style.color, width=2, style=style.line))

    def set_visible(self, visible: bool) -> None:
        for item in (self.bars, self.points, self.curve):
            item.setVisible(visible)


class SmilePlot(ThemedPlotWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("smile_plot")
        plot = self.getPlotItem()
        plot.getAxis("bottom").enableAutoSIPrefix(False)
        plot.setLabel("left", "implied vol (%)")
        # short enough for a 300 px wide chart; what the marks mean is in the tooltip
        plot.setTitle("Smile")
        self.setToolTip("Bars: bid/ask IV; points: mid IV; lines: SVI fit")
        plot.showGrid(x=True, y=True, alpha=0.15)
        # top-right: an equity-index smile falls to the right and leaves that corner empty
        self.legend = plot.addLegend(offset=(-6, 6), labelTextSize="8pt", verSpacing=-6)
        self._items: dict[Any, _SmileItems] = {}
        self._data: dict[Any, SmileData] = {}
        self._shown: list[Any] = []
        self.x_axis = SmileAxis.LOG_MONEYNESS
        self._label_axis()

    def set_x_axis(self, axis: SmileAxis) -> None:
        """Redraw the shown smiles against ``axis``."""
        if axis is self.x_axis:
            return
        self.x_axis = axis
        self._label_axis()
        for key in self._shown:
            self._set_data(key)
        self.getPlotItem().enableAutoRange()

    def _label_axis(self) -> None:
        plot = self.getPlotItem()
        plot.setLabel("bottom", self.x_axis.value)
        plot.getAxis("bottom").setTicks([_DELTA_TICKS] if self.x_axis is SmileAxis.DELTA else None)

    def show_smiles(self, smiles: Mapping[Any, SmileData], styles: Mapping[Any, SeriesStyle]) -> None:
        """Draw these expiries (keyed, legend in days-to-expiry order), hide every other."""
        plot = self.getPlotItem()
        order = sorted(smiles, key=lambda key: smiles[key].t)
        for key in self._shown:
            self.legend.removeItem(self._items[key].curve)
            if key not in smiles:
                self._items[key].set_visible(False)
        for key in order:
            items = self._items.get(key)
            if items is None:
                items = self._items[key] = _SmileItems(plot, styles[key])
            elif items.style != styles[key]:
                items.set_style(styles[key])
            self._data[key] = smiles[key]
            self._set_data(key)
            items.set_visible(True)
            self.legend.addItem(items.curve, smiles[key].label)
        # many smiles: two legend columns keep the legend short enough to stay inside the chart
        self.legend.setColumnCount(2 if len(order) > 6 else 1)
        self._shown = order

    def _set_data(self, key: Any) -> None:
        smile, items = self._data[key], self._items[key]
        x = smile_x(self.x_axis, smile.k, smile.iv_mid, smile.forward, smile.t)
        y = smile.iv_mid * 100.0
        top = np.nan_to_num((smile.iv_ask - smile.iv_mid) * 100.0, nan=0.0).clip(min=0.0)
        bottom = np.nan_to_num((smile.iv_mid - smile.iv_bid) * 100.0, nan=0.0).clip(min=0.0)
        ok = np.isfinite(x) & np.isfinite(y)
        items.bars.setData(x=x[ok], y=y[ok], top=top[ok], bottom=bottom[ok])
        items.points.setData(x=x[ok], y=y[ok])
        x_fit = smile_x(self.x_axis, smile.k_fit, smile.iv_fit, smile.forward, smile.t)
        items.curve.setData(x_fit, smile.iv_fit * 100.0)

    @property
    def shown(self) -> set[Any]:
        return set(self._shown)

    def style_of(self, key: Any) -> SeriesStyle | None:
        items = self._items.get(key)
        return items.style if items is not None and key in self._shown else None

    def points_of(self, key: Any) -> tuple[np.ndarray, np.ndarray]:
        """(x on the current axis, mid IV %) drawn for an expiry (empty when not shown)."""
        items = self._items.get(key)
        if items is None or key not in self._shown:
            return np.zeros(0), np.zeros(0)
        return items.points.getData()
