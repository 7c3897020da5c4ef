"""The implied-vol surface over (moneyness K/F, days to expiry): 3D with OpenGL, else a heat map.

Both views take the same grid through ``set_grid(moneyness, days, iv)``; the items are created once
and updated with ``setData`` afterwards. ``surface_grid`` samples a fitted ``VolSurface``; the grid's
days are geometric, so both views put days on a log scale and label it with ``surface_ticks``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QWidget

from app.widgets.dte_axis import dte_label, nice_dte_ticks
from app.widgets.plot_style import ThemedPlotWidget

__all__ = ["surface_grid", "surface_ticks", "SurfaceTicks", "SurfaceHeatMap", "make_surface_view", "SURFACE_CMAP"]

SURFACE_CMAP = "viridis"
_IV_STEPS = (0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 25.0, 50.0)


def surface_grid(surface: Any, *, n_money: int = 61, n_time: int = 40, min_days: float = 5.0,
                 moneyness: tuple[float, float] = (0.85, 1.10)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K/F grid, days grid, IV (n_money, n_time)) of a fitted surface.

    Expiries closer than ``min_days`` are left out: their smile in fixed moneyness is a spike that
    flattens every other expiry's detail. Days are spaced geometrically (dense where expiries are).
    """
    t_nodes, _ = surface.atm_term_structure()
    t_nodes = t_nodes[t_nodes * 365.0 >= min_days]
    if len(t_nodes) < 2:
        return np.zeros(0), np.zeros(0), np.zeros((0, 0))
    days = np.geomspace(t_nodes[0] * 365.0, t_nodes[-1] * 365.0, n_time)
    money = np.linspace(moneyness[0], moneyness[1], n_money)
    iv = surface.iv(k=np.log(money)[:, None], t=(days / 365.0)[None, :])
    return money, days, iv


@dataclass(frozen=True, slots=True)
class SurfaceTicks:
    """Axis ticks of a surface grid, each as (position in [0, 1] along its axis, label).

    ``iv_range`` (percent) is the colour and height range, widened to whole tick steps so the
    top and bottom ticks sit at its ends.
    """

    money: list[tuple[float, str]]
    days: list[tuple[float, str]]
    iv: list[tuple[float, str]]
    iv_range: tuple[float, float]


def surface_ticks(money: np.ndarray, days: np.ndarray, iv_pct: np.ndarray, *, days_px: float = 320.0,
                  label_px: float = 34.0) -> SurfaceTicks:
    """Ticks for K/F (every 5%), days (tenors on a log scale, ``days_px`` long, labels ``label_px``
    wide) and IV (3-8 round steps covering the finite IVs)."""
    m0, m1 = float(money[0]), float(money[-1])
    m_ticks = np.arange(np.ceil(m0 * 20 - 1e-9), np.floor(m1 * 20 + 1e-9) + 1) / 20.0
    money_ticks = [(float((m - m0) / (m1 - m0)), f"{m:.0%}") for m in m_ticks]
    d0, d1 = float(days[0]), float(days[-1])
    tenors = nice_dte_ticks(d0, d1, days_px, lambda _s: label_px)
    span = np.log(d1 / d0)
    days_ticks = [(float(np.log(d / d0) / span), dte_label(d)) for d in tenors]
    lo, hi = float(np.nanmin(iv_pct)), float(np.nanmax(iv_pct))
    step = next((s for s in _IV_STEPS if (hi - lo) / s <= 6), _IV_STEPS[-1])
    lo_n, hi_n = np.floor(lo / step) * step, np.ceil(hi / step) * step
    if hi_n <= lo_n:
        hi_n = lo_n + step
    values = np.arange(lo_n, hi_n + step / 2, step)
    iv_ticks = [(float((v - lo_n) / (hi_n - lo_n)), f"{v:g}%") for v in values]
    return SurfaceTicks(money_ticks, days_ticks, iv_ticks, (float(lo_n), float(hi_n)))


class SurfaceHeatMap(ThemedPlotWidget):
    """IV heat map: x = K/F (%), y = days to expiry (log scale), colour = IV (%), with a colour bar."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("surface_heatmap")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.addItem(self.image)
        plot = self.getPlotItem()
        plot.setLabel("bottom", "strike / forward K/F (%)")
        plot.setLabel("left", "days to expiry (log scale)")
        plot.setTitle("Implied vol surface (%)")
        self.colorbar = pg.ColorBarItem(colorMap=pg.colormap.get(SURFACE_CMAP), values=(10, 30), interactive=False,
                                        label="IV (%)")
        self.colorbar.setImageItem(self.image, insert_in=plot)
        self.ticks: SurfaceTicks | None = None
        self.is_3d = False

    def set_grid(self, money: np.ndarray, days: np.ndarray, iv: np.ndarray) -> None:
        if iv.size == 0:
            return
        z = np.nan_to_num(iv.T * 100.0, nan=float(np.nanmin(iv)) * 100.0)  # rows = days
        self.ticks = ticks = surface_ticks(money, days, z)
        lo, hi = ticks.iv_range
        self.image.setImage(z, autoLevels=False, levels=(lo, hi))
        self.colorbar.setLevels((lo, hi))
        # the image is drawn on a uniform grid of rows geometric in days: y is the row position
        n = len(days)
        self.image.setRect(QRectF(money[0] * 100, 0, (money[-1] - money[0]) * 100, n))
        plot = self.getPlotItem()
        plot.getAxis("left").setTicks([[(0.5 + f * (n - 1), s) for f, s in ticks.days]])
        plot.getAxis("bottom").setTicks([[(float(money[0] + f * (money[-1] - money[0])) * 100, s)
                                          for f, s in ticks.money]])

    def grab_image(self) -> QImage:
        return self.grab().toImage()


def make_surface_view(use_gl: bool, parent: QWidget | None = None) -> QWidget:
    if use_gl:
        from app.widgets.surface_3d import Surface3DView

        return Surface3DView(parent)
    return SurfaceHeatMap(parent)
