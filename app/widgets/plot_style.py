"""Theme and series styling shared by the 2D charts (pyqtgraph).

``apply_palette`` re-colours a plot from the Qt palette (call it again on every theme switch).
``expiry_styles`` gives each shown expiry its own colour and line style, ordered by days to expiry,
so neighbouring expiries never share a colour however many are ticked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt

__all__ = ["PALETTE", "SeriesStyle", "ThemedPlotWidget", "apply_palette", "expiry_styles", "SERIES_COLORMAP"]

#: Fixed colours for charts with a few named series (Tableau 10): readable on dark and light themes.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")

#: Perceptual rainbow for expiries: short-dated blue ... long-dated red. Its darkest ends are cut off
#: (0.08-0.95) so every colour stays visible on both the dark and the light background.
SERIES_COLORMAP = "turbo"
_CMAP_RANGE = (0.08, 0.95)
_STYLES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine, Qt.PenStyle.DashDotLine)
#: Up to this many expiries, colour alone separates them; beyond it neighbours also differ in line style.
_COLOUR_ONLY = 8


@dataclass(frozen=True, slots=True)
class SeriesStyle:
    color: str  # "#rrggbb"
    line: Qt.PenStyle


def expiry_styles(days: Mapping[Any, float]) -> dict[Any, SeriesStyle]:
    """A distinct colour (and, when many, line style) per key, ordered by days to expiry.

    Colours are spread evenly over the colormap by rank, not by position in a fixed list, so the
    nearest and the farthest shown expiry are always at the two ends and no two keys share a colour.
    """
    keys = sorted(days, key=lambda k: (days[k], str(k)))
    n = len(keys)
    if n == 0:
        return {}
    cmap = pg.colormap.get(SERIES_COLORMAP)
    lo, hi = _CMAP_RANGE
    positions = np.linspace(lo, hi, n) if n > 1 else np.array([lo])
    out: dict[Any, SeriesStyle] = {}
    used: set[str] = set()
    for i, (key, pos) in enumerate(zip(keys, positions, strict=True)):
        color = cmap.map(float(pos), mode="qcolor")
        name = color.name()
        while name in used:  # hundreds of expiries: nudge to the next free 24-bit colour
            color.setBlue((color.blue() + 1) % 256)
            name = color.name()
        used.add(name)
        out[key] = SeriesStyle(name, _STYLES[i % len(_STYLES)] if n > _COLOUR_ONLY else Qt.PenStyle.SolidLine)
    return out


def apply_palette(widget: pg.PlotWidget) -> None:
    """Follow the Qt palette (dark or light theme): background, axes, title and legend in theme colours."""
    pal = widget.palette()
    text = pal.color(pal.ColorRole.WindowText)
    widget.setBackground(pal.color(pal.ColorRole.Base))
    plot = widget.getPlotItem()
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(text))
        axis.setTextPen(pg.mkPen(text))  # also re-renders the axis title in that colour
    plot.titleLabel.setText(plot.titleLabel.text, color=text)
    legend = plot.legend
    if legend is not None:
        legend.setLabelTextColor(text)
        # setLabelTextColor only stores the colour: labels already shown keep the old one until re-rendered
        for _sample, label in legend.items:
            label.setText(label.text, color=text)
        legend.setBrush(pg.mkBrush(_with_alpha(pal.color(pal.ColorRole.Base), 200)))


def _with_alpha(color: Any, alpha: int) -> Any:
    c = pg.mkColor(color)
    c.setAlpha(alpha)
    return c


class ThemedPlotWidget(pg.PlotWidget):
    """A PlotWidget that re-colours itself whenever its own palette changes (theme switch).

    Reacting in the chart itself, not in its panel, matters: after a style-sheet change a parent
    gets its PaletteChange before its children are re-polished, so it would read their old palette.
    """

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt API)
        super().changeEvent(event)
        ready = getattr(self, "plotItem", None) is not None  # Qt sends some before __init__ is done
        if ready and event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            apply_palette(self)

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        apply_palette(self)  # the style sheet is applied when a widget is first polished, before show
