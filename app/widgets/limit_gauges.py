"""Limit gauges: each limit of the active profile as a bar of use vs limit, amber from 80%, red from 100%.

Fed with ``LimitUse`` rows (``spx_core.risk.usage``: name, label, value, limit, pct, unit); a figure that is not
known (NaN) shows an empty grey bar and "unknown", never a zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

__all__ = ["AMBER_PCT", "RED_PCT", "GaugeBar", "LimitGauges", "gauge_color", "use_text"]

AMBER_PCT = 80.0
RED_PCT = 100.0
GREEN = QColor("#59a14f")
AMBER = QColor("#f2a72b")
RED = QColor("#e15759")
GREY = QColor("#9a9a9a")


def gauge_color(pct: float) -> QColor:
    """Green below 80% of the limit, amber from 80%, red from 100% (at the limit the gate refuses); grey unknown."""
    if not math.isfinite(pct):
        return QColor(GREY)
    return QColor(RED if pct >= RED_PCT else AMBER if pct >= AMBER_PCT else GREEN)


def _figure(v: float, unit: str) -> str:
    if not math.isfinite(v):
        return "?"
    if unit == "$":
        return f"${v:,.0f}"
    if unit == "%":
        return f"{v:.1f}%"
    return f"{v:,.4g}{unit}" if unit else f"{v:,.4g}"


def use_text(use: Any) -> str:
    """"$1,200 / $5,000 (24%)"; "unknown / $5,000" when the figure is not known."""
    pct = float(use.pct)
    if not math.isfinite(float(use.value)):
        return f"unknown / {_figure(float(use.limit), use.unit)}"
    return f"{_figure(float(use.value), use.unit)} / {_figure(float(use.limit), use.unit)} ({pct:.0f}%)"


class GaugeBar(QWidget):
    """A horizontal bar filled to ``pct`` (capped at the width) in :func:`gauge_color`; a tick marks 80%."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pct = math.nan
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(120, self.fontMetrics().height())

    def set_pct(self, pct: float) -> None:
        self.pct = float(pct)
        self.update()

    @property
    def color(self) -> QColor:
        return gauge_color(self.pct)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        r = QRectF(self.rect()).adjusted(0.5, 2.5, -0.5, -2.5)
        pal = self.palette()
        p.setPen(pal.color(pal.ColorRole.Mid))
        p.setBrush(pal.color(pal.ColorRole.Base))
        p.drawRect(r)
        if math.isfinite(self.pct):
            frac = min(max(self.pct, 0.0), 100.0) / 100.0
            p.fillRect(QRectF(r.left(), r.top(), r.width() * frac, r.height()), self.color)
        x = r.left() + r.width() * AMBER_PCT / 100.0
        p.setPen(pal.color(pal.ColorRole.WindowText))
        p.drawLine(int(x), int(r.top()), int(x), int(r.bottom()))
        p.end()


class LimitGauges(QWidget):
    """One row per limit: its label, a :class:`GaugeBar` and "value / limit (pct%)"; or a message."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Limits")
        self._body = QWidget()
        column = QVBoxLayout(self._body)
        column.setContentsMargins(0, 0, 0, 0)
        self._grid = QGridLayout()
        column.addLayout(self._grid)
        column.addStretch(1)  # few limits sit at the top, not spread over the height
        self._grid.setVerticalSpacing(2)
        self._grid.setColumnStretch(1, 1)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self._grid.addWidget(self.message, 0, 0, 1, 3)
        scroll = QScrollArea()
        scroll.setWidget(self._body)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(scroll, 1)
        self.bars: dict[str, GaugeBar] = {}
        self.texts: dict[str, QLabel] = {}
        self._rows: list[QWidget] = []

    def set_message(self, text: str) -> None:
        """Show ``text`` instead of gauges (no guard yet, no profile)."""
        self._clear()
        self.message.setText(text)
        self.message.show()

    def set_usage(self, usage: Sequence[Any], profile_name: str = "") -> None:
        """One gauge per ``LimitUse``, worst first so what is near its limit is seen without scrolling."""
        self._clear()
        self.title.setText(f"Limits — profile “{profile_name}”" if profile_name else "Limits")
        if not usage:
            self.set_message("the active limit profile sets no limits")
            return
        self.message.hide()
        ordered = sorted(usage, key=lambda u: -float(u.pct) if math.isfinite(float(u.pct)) else math.inf)
        for row, use in enumerate(ordered, start=1):
            label, bar, text = QLabel(use.label), GaugeBar(), QLabel(use_text(use))
            bar.set_pct(float(use.pct))
            bar.setToolTip(f"{use.label}: {use_text(use)}")
            text.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            for col, w in enumerate((label, bar, text)):
                self._grid.addWidget(w, row, col)
                self._rows.append(w)
            self.bars[use.name] = bar
            self.texts[use.name] = text

    def _clear(self) -> None:
        for w in self._rows:
            self._grid.removeWidget(w)
            w.deleteLater()
        self._rows.clear()
        self.bars.clear()
        self.texts.clear()
