"""Days-to-expiry axis on a log scale with trader tick labels (6h, 1d, 7d, 30d, 3m-style 90d, 1y).

The plot's x data is ``log10(days)``. pyqtgraph's own log mode labels decades (1, 10^1, 10^2) and
fills them with unlabeled or overlapping minor ticks; here the ticks are the tenors traders read,
added in order of importance while their labels fit the axis' current pixel width without touching.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont, QFontMetrics

__all__ = ["DteAxis", "dte_label", "nice_dte_ticks"]

#: Candidate tenors in days, most important first: the first that fit are kept.
_PRIORITY = (1.0, 7.0, 30.0, 90.0, 365.0, 180.0, 730.0, 14.0, 60.0, 3.0, 1825.0, 0.25, 0.5, 1095.0, 2.0, 5.0, 21.0,
             45.0, 120.0, 270.0, 547.5, 1460.0, 10.0, 3650.0, 0.1)
_PAD_PX = 8.0  # free pixels between neighbouring labels


def dte_label(days: float) -> str:
    """'6h' below a day, '30d' below a year, then '1y', '1.5y'."""
    if days < 1.0:
        return f"{days * 24:.0f}h"
    if days < 365.0:
        return f"{days:g}d"
    return f"{days / 365.0:g}y"


def nice_dte_ticks(lo_days: float, hi_days: float, length_px: float, text_width) -> list[float]:
    """Tenors (days) within [lo, hi] whose labels fit ``length_px`` on a log axis without overlapping.

    ``text_width(label) -> px``. Ticks are taken in order of importance (1d, 7d, 30d, 90d, 1y, ...),
    each only if it keeps ``_PAD_PX`` free pixels to every label already taken.
    """
    if not (lo_days > 0 and hi_days > lo_days and length_px > 0):
        return []
    a, b = np.log10(lo_days), np.log10(hi_days)
    taken: list[tuple[float, float, float]] = []  # (days, centre px, half width px)
    for days in _PRIORITY:
        if not lo_days <= days <= hi_days:
            continue
        x = (np.log10(days) - a) / (b - a) * length_px
        half = text_width(dte_label(days)) / 2.0
        if x - half < 0 or x + half > length_px:  # a label hanging off the axis end gets clipped
            continue
        if all(abs(x - ox) >= half + oh + _PAD_PX for _, ox, oh in taken):
            taken.append((days, x, half))
    return sorted(d for d, _, _ in taken)


class DteAxis(pg.AxisItem):
    """Bottom axis over ``log10(days)`` data, labelled in tenors that never overlap."""

    def __init__(self, orientation: str = "bottom", **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)

    def _metrics(self) -> QFontMetrics:
        font = self.style.get("tickFont") or QFont()
        return QFontMetrics(font)

    def tickValues(self, minVal: float, maxVal: float, size: float):  # noqa: N802 (pyqtgraph API)
        metrics = self._metrics()
        days = nice_dte_ticks(10.0 ** minVal, 10.0 ** maxVal, size, lambda s: metrics.horizontalAdvance(s))
        return [(1.0, [float(np.log10(d)) for d in days])]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph API)
        return [dte_label(round(10.0 ** v, 6)) for v in values]  # 10**log10(365) is 364.99999...
