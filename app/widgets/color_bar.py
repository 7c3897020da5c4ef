"""A vertical colour bar with tick labels, for views that cannot host pyqtgraph's ColorBarItem (3D)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QLinearGradient, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

__all__ = ["ColorBar"]


class ColorBar(QWidget):
    """``set_ticks(ticks)`` with (position in [0, 1] from the bottom, label); colours from a pyqtgraph colormap
    (a name, or a ``pg.ColorMap`` built by the caller)."""

    def __init__(self, colormap: str | pg.ColorMap, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("color_bar")
        self._cmap = colormap if isinstance(colormap, pg.ColorMap) else pg.colormap.get(colormap)
        self.title = title
        self.ticks: list[tuple[float, str]] = []
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        fm = self.fontMetrics()
        widest = max([fm.horizontalAdvance(s) for _, s in self.ticks] + [fm.horizontalAdvance(self.title)])
        return QSize(max(widest + 28, 64), 200)

    def set_ticks(self, ticks: list[tuple[float, str]]) -> None:
        self.ticks = list(ticks)
        self.updateGeometry()
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        fm = self.fontMetrics()
        text = self.palette().color(self.palette().ColorRole.WindowText)
        top, bottom = fm.height() * 2.0, self.height() - fm.height()
        bar = QRectF(6, top, 14, max(bottom - top, 1.0))
        grad = QLinearGradient(bar.bottomLeft(), bar.topLeft())
        for pos in (i / 16 for i in range(17)):
            grad.setColorAt(pos, self._cmap.map(pos, mode="qcolor"))
        p.fillRect(bar, grad)
        p.setPen(text)
        p.drawRect(bar)
        p.drawText(QRectF(0, 0, self.width(), fm.height() * 1.5), Qt.AlignmentFlag.AlignCenter, self.title)
        for pos, label in self.ticks:
            y = bar.bottom() - pos * bar.height()
            p.drawLine(int(bar.right()), int(y), int(bar.right() + 4), int(y))
            p.drawText(QRectF(bar.right() + 6, y - fm.height() / 2, self.width(), fm.height()),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, label)
        p.end()
