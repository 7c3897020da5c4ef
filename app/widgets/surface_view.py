"""The implied-vol surface drawn over (moneyness K/F, days to expiry): 3D with OpenGL, else a heat map.

Both views take the same grid through ``set_grid(moneyness, days, iv)``; the items are created once
and updated with ``setData`` afterwards. ``surface_grid`` samples a fitted ``VolSurface``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRect, QRectF
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QVBoxLayout, QWidget

__all__ = ["surface_grid", "SurfaceHeatMap", "Surface3DView", "make_surface_view"]

_CMAP = "viridis"
_BOX = 10.0  # the 3D scene spans [-BOX, BOX] in x and y and [0, BOX] in z


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


class SurfaceHeatMap(pg.PlotWidget):
    """IV heat map: x = K/F (%), y = days to expiry, colour = IV (%), with a colour bar."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("surface_heatmap")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.addItem(self.image)
        plot = self.getPlotItem()
        plot.setLabel("bottom", "strike / forward (%)")
        plot.setLabel("left", "days to expiry")
        plot.setTitle("Implied volatility surface (%)")
        self.colorbar = pg.ColorBarItem(colorMap=pg.colormap.get(_CMAP), values=(10, 30), interactive=False,
                                        label="IV %")
        self.colorbar.setImageItem(self.image, insert_in=plot)
        self.is_3d = False

    def set_grid(self, money: np.ndarray, days: np.ndarray, iv: np.ndarray) -> None:
        if iv.size == 0:
            return
        z = np.nan_to_num(iv.T * 100.0, nan=float(np.nanmin(iv)) * 100.0)  # rows = days
        lo, hi = np.nanpercentile(z, [1, 99])
        self.image.setImage(z, autoLevels=False, levels=(lo, hi))
        self.colorbar.setLevels((lo, hi))
        # the image is drawn on a uniform grid; rows are geometric in days, so label by row centres
        self.image.setRect(QRectF(money[0] * 100, 0, (money[-1] - money[0]) * 100, len(days)))
        ticks = [(i + 0.5, f"{days[i]:.0f}") for i in np.linspace(0, len(days) - 1, 6).astype(int)]
        self.getPlotItem().getAxis("left").setTicks([ticks])

    def grab_image(self) -> QImage:
        return self.grab().toImage()


class Surface3DView(QWidget):
    """IV surface as a shaded 3D mesh (pyqtgraph.opengl), axes labelled in the scene.

    The scene renders in its own native GL window (a ``QOpenGLWindow`` in a window container), not a
    ``QOpenGLWidget``: one QOpenGLWidget anywhere in the main window, even hidden or deleted, makes Qt
    composite every repaint of every widget through OpenGL (0.15 of a core in llvmpipe under Xvfb while
    the chain ticks). A hidden container unmaps its window, so a hidden tab renders nothing.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        import pyqtgraph.opengl as gl  # needs PyOpenGL and a GL context: only imported when GL works
        from pyqtgraph.opengl.GLViewWidget import GLViewMixin
        from PySide6.QtOpenGL import QOpenGLWindow

        class GLViewWindow(GLViewMixin, QOpenGLWindow):
            """pyqtgraph's GL view as a window (the mixin is pyqtgraph's own GLViewWidget minus the widget)."""

            def rect(self) -> QRect:  # GLTextItem places its text in the view's rect (a QWidget method)
                return QRect(0, 0, self.width(), self.height())

        self.setObjectName("surface_3d")
        self.view = GLViewWindow()
        self.view.setBackgroundColor(pg.mkColor(18, 20, 26))
        self.view.setCameraPosition(distance=3.9 * _BOX, elevation=28, azimuth=-60)
        grid = gl.GLGridItem()
        grid.setSize(2 * _BOX, 2 * _BOX)
        grid.setSpacing(2, 2)
        grid.setColor((120, 120, 120, 90))
        self.view.addItem(grid)
        self.mesh = gl.GLSurfacePlotItem(x=np.array([-1.0, 1.0]), y=np.array([-1.0, 1.0]), z=np.zeros((2, 2)),
                                         smooth=True, drawEdges=False)
        self.view.addItem(self.mesh)
        # a coarse wireframe on top gives the eye the grid lines a dense mesh would turn into noise
        self.wire = gl.GLSurfacePlotItem(x=np.array([-1.0, 1.0]), y=np.array([-1.0, 1.0]), z=np.zeros((2, 2)),
                                         drawFaces=False, drawEdges=True, edgeColor=(0.05, 0.05, 0.05, 0.3))
        self.view.addItem(self.wire)
        self._labels = [gl.GLTextItem(color=(220, 220, 220, 255)) for _ in range(9)]
        for item in self._labels:
            self.view.addItem(item)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QWidget.createWindowContainer(self.view, self))
        self.is_3d = True

    def set_grid(self, money: np.ndarray, days: np.ndarray, iv: np.ndarray) -> None:
        if iv.size == 0:
            return
        z = iv * 100.0
        lo, hi = float(np.nanmin(z)), float(np.nanmax(z))
        zn = np.clip((np.nan_to_num(z, nan=lo) - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
        x = np.linspace(-_BOX, _BOX, len(money))
        y = np.linspace(-_BOX, _BOX, len(days))
        colors = pg.colormap.get(_CMAP).map(zn.ravel(), mode="float").reshape(*zn.shape, 4)
        self.mesh.setData(x=x, y=y, z=zn * _BOX, colors=colors)
        self.wire.setData(x=x[::6], y=y[::4], z=zn[::6, ::4] * _BOX + 0.02)
        texts = [(f"K/F {money[0]:.0%}", (-_BOX, -_BOX - 1.5, 0)), (f"{money[-1]:.0%}", (_BOX, -_BOX - 1.5, 0)),
                 (f"{days[0]:.0f} d", (_BOX + 1, -_BOX, 0)), (f"{days[-1]:.0f} d", (_BOX + 1, _BOX, 0)),
                 ("days to expiry", (_BOX + 1.5, 0, 0)), ("strike / forward", (0, -_BOX - 2.5, 0)),
                 (f"IV {lo:.1f}%", (-_BOX - 1, _BOX + 1, 0)), (f"IV {hi:.1f}%", (-_BOX - 1, _BOX + 1, _BOX)),
                 ("IV (%) by K/F and days", (-_BOX, _BOX + 1, 1.3 * _BOX))]
        for item, (text, pos) in zip(self._labels, texts, strict=True):
            item.setData(pos=np.array(pos, dtype=float), text=text)

    def grab_image(self) -> QImage:
        return self.view.grabFramebuffer()


def make_surface_view(use_gl: bool, parent: QWidget | None = None) -> SurfaceHeatMap | Surface3DView:
    return Surface3DView(parent) if use_gl else SurfaceHeatMap(parent)
