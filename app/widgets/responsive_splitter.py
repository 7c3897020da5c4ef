"""A splitter that lays its two panes side by side when wide and stacks them when narrow.

A dock can be 350 px wide (1280x720 screen) or 1,000 px (floated): a fixed side-by-side split
squeezes the main pane to nothing in the first case, a fixed stack wastes the second.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QSplitter, QWidget

__all__ = ["ResponsiveSplitter"]


class ResponsiveSplitter(QSplitter):
    """Horizontal at ``min_side_by_side`` px and wider, else vertical; the first pane gets
    ``side_px`` (its width side by side, its height stacked), the second the rest."""

    def __init__(self, *, min_side_by_side: int, side_px: tuple[int, int], parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self._threshold = min_side_by_side
        self._side_px = side_px
        self.setChildrenCollapsible(False)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt API)
        wanted = Qt.Orientation.Horizontal if event.size().width() >= self._threshold else Qt.Orientation.Vertical
        if wanted != self.orientation() or event.oldSize().isEmpty():
            self.setOrientation(wanted)
            total = event.size().width() if wanted == Qt.Orientation.Horizontal else event.size().height()
            side = self._side_px[0] if wanted == Qt.Orientation.Horizontal else self._side_px[1]
            side = min(side, total // 3)
            self.setSizes([side, max(total - side, 1)])
        super().resizeEvent(event)
