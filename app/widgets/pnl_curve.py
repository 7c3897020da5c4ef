"""The whole book's P&L against the SPX price, at T+0 and at expiry: the payoff chart fed with the book's curve.

The same chart as the builder's and the scanner's (:class:`~app.widgets.payoff_plot.PayoffPlot`: expiry P&L
filled green/red, T+0 curve, zero line, spot line and dot, crosshair readout), so a trader reads the book the
way a single structure is read; only the axis says "the book", and the breakevens are where the expiry curve
crosses zero.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QWidget

from app.widgets.payoff_plot import PayoffArrays, PayoffPlot

__all__ = ["BookPnlCurve", "zero_crossings"]


def zero_crossings(x: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
    """Where ``y`` (sampled at ``x``) changes sign, linearly interpolated."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2:
        return ()
    y0, y1 = y[:-1], y[1:]
    i = np.flatnonzero((y0 * y1 < 0) & np.isfinite(y0) & np.isfinite(y1))
    return tuple(float(v) for v in x[i] - y0[i] * (x[i + 1] - x[i]) / (y1[i] - y0[i]))


class BookPnlCurve(PayoffPlot):
    """:meth:`show_curve` draws the book's curve; ``clear(reason)`` says why there is none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, underlying="SPX")
        self.setObjectName("book_pnl_curve")
        plot = self.plot_widget.getPlotItem()
        plot.setLabel("left", "P&L of the book ($)")
        plot.hideAxis("right")  # the payoff chart's density axis: the book's curve has no density

    def show_curve(self, spots: np.ndarray, t0: np.ndarray, expiry: np.ndarray, spot: float) -> None:
        """``spots`` (SPX points), the book's P&L in dollars at T+0 and at expiry, the current ``spot``."""
        spots, expiry = np.asarray(spots, float), np.asarray(expiry, float)
        self.show_arrays(PayoffArrays(spots, expiry, np.asarray(t0, float), float(spot),
                                      zero_crossings(spots, expiry)))
