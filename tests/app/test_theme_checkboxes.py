"""Dark theme: an unticked check box has a visible edge, and a ticked one differs from it at a glance."""

from __future__ import annotations

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QCheckBox, QStyle, QStyleOptionButton, QWidget

from app.resources import style_path

BASE = QColor("#141a22")


def _indicator_contrast(box: QCheckBox) -> tuple[float, QColor]:
    """(largest luminance difference from the base inside the indicator, the indicator's centre colour)."""
    image = box.grab().toImage()
    opt = QStyleOptionButton()
    box.initStyleOption(opt)
    rect = box.style().subElementRect(QStyle.SubElement.SE_CheckBoxIndicator, opt, box)
    worst = 0.0
    for y in range(rect.top(), rect.bottom() + 1):
        for x in range(rect.left(), rect.right() + 1):
            c = QColor(image.pixel(x, y))
            worst = max(worst, abs(c.lightnessF() - BASE.lightnessF()))
    return worst, QColor(image.pixel(rect.center()))


def test_dark_theme_check_boxes_are_visible_ticked_or_not(qtbot):
    host = QWidget()
    host.setStyleSheet(style_path("dark").read_text())
    qtbot.addWidget(host)
    unticked, ticked = QCheckBox("allow flagged quotes", host), QCheckBox("ticked", host)
    ticked.move(0, 30)
    ticked.setChecked(True)
    host.resize(200, 60)
    host.show()
    qtbot.waitExposed(host)
    edge, _ = _indicator_contrast(unticked)
    assert edge > 0.3, f"unticked box edge differs from the panel by only {edge:.2f} in lightness"
    _, centre_off = _indicator_contrast(unticked)
    _, centre_on = _indicator_contrast(ticked)
    assert abs(centre_on.lightnessF() - centre_off.lightnessF()) > 0.3, "ticked and unticked look alike"
