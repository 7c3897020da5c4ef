"""ATM term structure: fitted ATM IV (%) against days to expiry on a log axis with tenor ticks.

SPXW (PM-settled) expiries are circles, AM-settled SPX squares; the line joins them in time order.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from app.widgets.dte_axis import DteAxis
from app.widgets.plot_style import PALETTE, ThemedPlotWidget

__all__ = ["TermStructurePlot"]


class TermStructurePlot(ThemedPlotWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, axisItems={"bottom": DteAxis()})
        self.setObjectName("term_plot")
        plot = self.getPlotItem()
        plot.setLabel("bottom", "days to expiry (log scale)")
        plot.setLabel("left", "ATM IV (%)")
        plot.setTitle("ATM term structure")
        plot.showGrid(x=True, y=True, alpha=0.15)
        self.curve = pg.PlotDataItem(pen=pg.mkPen(PALETTE[0], width=2))
        self.pm = pg.PlotDataItem(pen=None, symbol="o", symbolSize=6, symbolPen=None,
                                  symbolBrush=pg.mkBrush(PALETTE[0]), name="SPXW (PM)")
        self.am = pg.PlotDataItem(pen=None, symbol="s", symbolSize=8, symbolPen=None,
                                  symbolBrush=pg.mkBrush(PALETTE[1]), name="SPX (AM)")
        # top-left: an index term structure usually rises from the front month, leaving that corner empty
        self.legend = plot.addLegend(offset=(6, 6), labelTextSize="8pt")
        for item in (self.curve, self.pm, self.am):
            plot.addItem(item)

    def set_term(self, days: np.ndarray, atm_iv: np.ndarray, is_am: np.ndarray) -> None:
        """Fitted ATM IV (fraction) per expiry; only days > 0 can be drawn on the log axis."""
        keep = days > 0
        x, y, am = np.log10(days[keep]), atm_iv[keep] * 100.0, is_am[keep]
        order = np.argsort(x, kind="stable")
        self.curve.setData(x[order], y[order])
        self.pm.setData(x[~am], y[~am])
        self.am.setData(x[am], y[am])

    def days_of(self) -> np.ndarray:
        """Days to expiry of the drawn points (the x data is log10 days)."""
        x, _ = self.curve.getData()
        return np.zeros(0) if x is None else 10.0 ** np.asarray(x)
