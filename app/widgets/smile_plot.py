"""Smile and term-structure charts. Items are created once per expiry and updated with ``setData``.

Smile: x = log-moneyness ln(K/F), y = implied vol (%); per shown expiry, bid/ask IV error bars, mid
IV points and the fitted SVI curve, all in the expiry's colour. Term structure: fitted ATM IV (%)
against days to expiry on a log axis (SPXW circles, AM-settled SPX squares).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

__all__ = ["SmileData", "SmilePlot", "TermStructurePlot", "PALETTE", "apply_palette"]

#: Distinguishable on dark and light backgrounds (Tableau 10).
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")


def apply_palette(widget: pg.PlotWidget) -> None:
    """Follow the Qt palette (dark or light theme): background, axes and title in theme colours."""
    pal = widget.palette()
    text = pal.color(pal.ColorRole.WindowText)
    widget.setBackground(pal.color(pal.ColorRole.Base))
    plot = widget.getPlotItem()
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(text))
        axis.setTextPen(pg.mkPen(text))
    plot.titleLabel.setText(plot.titleLabel.text, color=text)
    if plot.legend is not None:
        plot.legend.setLabelTextColor(text)


@dataclass(frozen=True, slots=True, eq=False)
class SmileData:
    """One expiry's smile, ready to draw (IVs as fractions; NaN bid/ask IV = no bar on that side)."""

    label: str
    k: np.ndarray
    iv_bid: np.ndarray
    iv_mid: np.ndarray
    iv_ask: np.ndarray
    k_fit: np.ndarray
    iv_fit: np.ndarray


class _SmileItems:
    def __init__(self, plot: pg.PlotItem, color: str) -> None:
        pen = pg.mkPen(color, width=1)
        self.bars = pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), top=np.zeros(0), bottom=np.zeros(0), beam=0.0,
                                    pen=pg.mkPen(pg.mkColor(color).lighter(110), width=1))
        self.points = pg.ScatterPlotItem(size=5, pen=pen, brush=pg.mkBrush(color))
        self.curve = pg.PlotDataItem(pen=pg.mkPen(color, width=2))
        for item in (self.bars, self.points, self.curve):
            plot.addItem(item)

    def set_visible(self, visible: bool) -> None:
        for item in (self.bars, self.points, self.curve):
            item.setVisible(visible)


class SmilePlot(pg.PlotWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("smile_plot")
        plot = self.getPlotItem()
        plot.setLabel("bottom", "log-moneyness ln(K/F)")
        plot.getAxis("bottom").enableAutoSIPrefix(False)
        plot.setLabel("left", "implied vol (%)")
        plot.setTitle("Smile: bid/ask IV bars, mid IV points, SVI fit")
        plot.showGrid(x=True, y=True, alpha=0.15)
        self.legend = plot.addLegend(offset=(-10, 10), labelTextSize="8pt")
        self._items: dict[Any, _SmileItems] = {}
        self._shown: set[Any] = set()

    def show_smiles(self, smiles: dict[Any, SmileData], colors: dict[Any, str]) -> None:
        """Draw these expiries (keyed), hide every other; colours stay with their expiry."""
        plot = self.getPlotItem()
        for key, smile in smiles.items():
            items = self._items.get(key)
            if items is None:
                items = self._items[key] = _SmileItems(plot, colors[key])
            y = smile.iv_mid * 100.0
            top = np.nan_to_num((smile.iv_ask - smile.iv_mid) * 100.0, nan=0.0).clip(min=0.0)
            bottom = np.nan_to_num((smile.iv_mid - smile.iv_bid) * 100.0, nan=0.0).clip(min=0.0)
            items.bars.setData(x=smile.k, y=y, top=top, bottom=bottom)
            items.points.setData(x=smile.k, y=y)
            items.curve.setData(smile.k_fit, smile.iv_fit * 100.0)
            if key not in self._shown:
                self.legend.addItem(items.curve, smile.label)
            items.set_visible(True)
        for key in self._shown - set(smiles):
            self._items[key].set_visible(False)
            self.legend.removeItem(self._items[key].curve)
        self._shown = set(smiles)

    @property
    def shown(self) -> set[Any]:
        return set(self._shown)

    def points_of(self, key: Any) -> tuple[np.ndarray, np.ndarray]:
        """(k, mid IV %) drawn for an expiry (empty when not shown)."""
        items = self._items.get(key)
        if items is None or key not in self._shown:
            return np.zeros(0), np.zeros(0)
        return items.points.getData()


class TermStructurePlot(pg.PlotWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("term_plot")
        plot = self.getPlotItem()
        plot.setLabel("bottom", "days to expiry (log scale)")
        plot.setLabel("left", "ATM IV (%)")
        plot.setTitle("ATM term structure")
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setLogMode(x=True, y=False)
        self.curve = pg.PlotDataItem(pen=pg.mkPen(PALETTE[0], width=2))
        self.pm = pg.PlotDataItem(pen=None, symbol="o", symbolSize=6, symbolPen=None,
                                  symbolBrush=pg.mkBrush(PALETTE[0]), name="SPXW (PM)")
        self.am = pg.PlotDataItem(pen=None, symbol="s", symbolSize=8, symbolPen=None,
                                  symbolBrush=pg.mkBrush(PALETTE[1]), name="SPX (AM)")
        plot.addLegend(offset=(10, 10), labelTextSize="8pt")
        for item in (self.curve, self.pm, self.am):
            plot.addItem(item)

    def set_term(self, days: np.ndarray, atm_iv: np.ndarray, is_am: np.ndarray) -> None:
        """Fitted ATM IV (fraction) per expiry; days > 0 (log axis)."""
        keep = days > 0
        days, y, am = days[keep], atm_iv[keep] * 100.0, is_am[keep]
        order = np.argsort(days, kind="stable")
        # PlotDataItems take linear data and apply the axis' log mode themselves
        self.curve.setData(days[order], y[order])
        self.pm.setData(days[~am], y[~am])
        self.am.setData(days[am], y[am])
