"""IV surface as a shaded 3D mesh (pyqtgraph.opengl) with axis ticks in the scene and a colour bar.

The scene renders in its own native GL window (a ``QOpenGLWindow`` in a window container), not a
``QOpenGLWidget``:
    * one QOpenGLWidget anywhere in the main window, even hidden, makes Qt composite every repaint of
      every widget through OpenGL (0.15 of a core in llvmpipe under Xvfb while the chain ticks);
    * a hidden container unmaps its window, so a hidden tab renders nothing;
    * a QOpenGLWidget moved to another top-level window (dock floated, re-docked, Reset layout) gets a
      new context while pyqtgraph's items and shader caches keep ids from the old one (GL errors on
      every draw); the native window keeps its own context across re-parenting.
If the GL view cannot be built, the heat map is shown instead.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRect
from PySide6.QtGui import QFont, QImage, QPainter
from PySide6.QtWidgets import QHBoxLayout, QWidget

from app.widgets.color_bar import ColorBar
from app.widgets.surface_view import SURFACE_CMAP, SurfaceHeatMap, SurfaceTicks, surface_ticks

__all__ = ["Surface3DView"]

log = logging.getLogger(__name__)

_BOX = 10.0  # the scene spans [-BOX, BOX] in x (K/F) and y (log days) and [0, BOX] in z (IV)
_TEXT = (225, 225, 225, 255)
_AXIS = (0.75, 0.75, 0.75, 1.0)
_MAX_LABELS = 40


class Surface3DView(QWidget):
    """``set_grid(money, days, iv)``; ``grab_image()``; ``tick_labels()``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("surface_3d")
        self.is_3d = True
        self.ticks: SurfaceTicks | None = None
        self._grid: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.fallback: SurfaceHeatMap | None = None
        self.colorbar = ColorBar(SURFACE_CMAP, "IV (%)")
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(0)
        self._layout.addWidget(self.colorbar)
        try:
            self.view = self._build_view()
        except Exception as exc:  # noqa: BLE001 (a GL driver can fail in many ways: keep the app up)
            log.exception("3D surface view could not be built; showing the heat map instead")
            self._use_fallback(f"{type(exc).__name__}: {exc}")

    # --- GL view --------------------------------------------------------------------------------------
    def _build_view(self) -> Any:
        import pyqtgraph.opengl as gl  # needs PyOpenGL and a GL context: only imported when GL works
        from pyqtgraph.opengl.GLViewWidget import GLViewMixin
        from PySide6.QtOpenGL import QOpenGLWindow

        class GLViewWindow(GLViewMixin, QOpenGLWindow):
            """pyqtgraph's GL view as a window (the mixin is pyqtgraph's own GLViewWidget minus the widget)."""

            def rect(self) -> QRect:  # GLTextItem places its text in the view's rect (a QWidget method)
                return QRect(0, 0, self.width(), self.height())

        view = GLViewWindow()
        view.setObjectName("surface_gl_view")
        view.setBackgroundColor(pg.mkColor(18, 20, 26))
        view.setCameraPosition(distance=4.0 * _BOX, elevation=24, azimuth=-58)
        grid = gl.GLGridItem()
        grid.setSize(2 * _BOX, 2 * _BOX)
        grid.setSpacing(2, 2)
        grid.setColor((120, 120, 120, 70))
        view.addItem(grid)
        flat = dict(x=np.array([-1.0, 1.0]), y=np.array([-1.0, 1.0]), z=np.zeros((2, 2)))
        self.mesh = gl.GLSurfacePlotItem(**flat, smooth=True, drawEdges=False)
        # a coarse wireframe on top gives the eye the grid lines a dense mesh would turn into noise
        self.wire = gl.GLSurfacePlotItem(**flat, drawFaces=False, drawEdges=True, edgeColor=(0.05, 0.05, 0.05, 0.3))
        self.axes = gl.GLLinePlotItem(pos=np.zeros((2, 3)), mode="lines", color=_AXIS, width=1.5, antialias=True)
        for item in (self.mesh, self.wire, self.axes):
            view.addItem(item)
        font = QFont()
        font.setPointSize(9)
        self._labels = [gl.GLTextItem(color=_TEXT, font=font) for _ in range(_MAX_LABELS)]
        for item in self._labels:
            view.addItem(item)
        self.container = QWidget.createWindowContainer(view, self)
        self._layout.insertWidget(0, self.container, 1)
        self._fit_camera(view)
        return view

    def _fit_camera(self, view: Any) -> None:
        # the GL projection's field of view is vertical: a tall, narrow dock needs the camera further
        # back for the scene and its labels to fit the width. Measured on this widget (less the colour
        # bar): the native GL window is resized by its container after this widget, so its own size lags.
        width = max(self.width() - self.colorbar.width(), 1)
        aspect = width / max(self.height(), 1)
        view.setCameraPosition(distance=_BOX * max(3.3, 2.5 / aspect))

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        if self.fallback is None:
            self._fit_camera(self.view)

    def _use_fallback(self, reason: str) -> None:
        self.is_3d = False
        self.colorbar.hide()
        self.fallback = SurfaceHeatMap()
        self.fallback.setToolTip(f"3D view unavailable: {reason}")
        self._layout.insertWidget(0, self.fallback, 1)
        if self._grid is not None:
            self.fallback.set_grid(*self._grid)

    # --- data -----------------------------------------------------------------------------------------
    def set_grid(self, money: np.ndarray, days: np.ndarray, iv: np.ndarray) -> None:
        if iv.size == 0:
            return
        self._grid = (money, days, iv)
        if self.fallback is not None:
            self.fallback.set_grid(money, days, iv)
            return
        z = iv * 100.0
        self.ticks = ticks = surface_ticks(money, days, z)
        lo, hi = ticks.iv_range
        zn = np.clip((np.nan_to_num(z, nan=lo) - lo) / (hi - lo), 0.0, 1.0)
        x = np.linspace(-_BOX, _BOX, len(money))
        y = np.linspace(-_BOX, _BOX, len(days))  # days are geometric: y is log days
        colors = pg.colormap.get(SURFACE_CMAP).map(zn.ravel(), mode="float").reshape(*zn.shape, 4)
        self.mesh.setData(x=x, y=y, z=zn * _BOX, colors=colors)
        self.wire.setData(x=x[::6], y=y[::4], z=zn[::6, ::4] * _BOX + 0.02)
        self._draw_axes(ticks)
        self.colorbar.set_ticks(ticks.iv)

    def _draw_axes(self, ticks: SurfaceTicks) -> None:
        b, t = _BOX, 0.4  # t: tick mark length
        # K/F along the front edge, days along the right edge, IV up the front-left corner (nearest the
        # camera, so the surface never hides its labels)
        seg = [(-b, -b, 0), (b, -b, 0), (b, -b, 0), (b, b, 0), (-b, -b, 0), (-b, -b, b)]
        labels: list[tuple[str, tuple[float, float, float]]] = []
        for f, text in ticks.money:
            x = -b + 2 * b * f
            seg += [(x, -b, 0), (x, -b - t, 0)]
            labels.append((text, (x - 0.6, -b - 1.4, 0)))
        for f, text in ticks.days:
            y = -b + 2 * b * f
            seg += [(b, y, 0), (b + t, y, 0)]
            labels.append((text, (b + 0.8, y, 0)))
        # the colour bar has the full scale: the middle and top heights are enough here (the bottom
        # one would sit on the first K/F label)
        for f, text in (ticks.iv[len(ticks.iv) // 2], ticks.iv[-1]):
            z = b * f
            seg += [(-b, -b, z), (-b - t, -b - t, z)]
            labels.append((text, (-b - 1.6, -b - 1.6, z)))
        labels += [("strike / forward K/F", (-4.0, -b - 6.5, 0)), ("days to expiry", (b - 5.0, b + 2.0, 0)),
                   ("IV (%)", (-b - 1.6, -b - 1.6, b + 1.3))]
        self.axes.setData(pos=np.array(seg, dtype=float))
        for i, item in enumerate(self._labels):
            text, pos = labels[i] if i < len(labels) else ("", (0.0, 0.0, 0.0))
            item.setData(pos=np.array(pos, dtype=float), text=text)

    def tick_labels(self) -> list[str]:
        """The texts shown in the scene (for tests and the self-test)."""
        return [item.text for item in self._labels if item.text]

    def grab_image(self) -> QImage:
        if self.fallback is not None:
            return self.fallback.grab_image()
        # QWidget.grab() drops the scene's text (painted over the GL frame): compose the frame
        # (with its labels) and the colour bar instead
        frame = self.view.grabFramebuffer()
        bar = self.colorbar.grab().toImage()
        image = QImage(frame.width() + bar.width(), max(frame.height(), bar.height()), QImage.Format.Format_RGB32)
        image.fill(self.palette().color(self.palette().ColorRole.Window))
        painter = QPainter(image)
        painter.drawImage(0, 0, frame)
        painter.drawImage(frame.width(), 0, bar)
        painter.end()
        return image
