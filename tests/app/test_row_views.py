"""The panels' shared set-up (app/widgets/row_views.py) and SessionPanel's session swap, without a trading
session: a row's context menu acts on that row, a shortcut stays inside its panel, a replaced session's
signals no longer reach the panel."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QObject, QPoint, Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QSizePolicy,
    QTableView,
    QTreeView,
    QWidget,
)

from app.panels.session_panel import SessionPanel
from app.widgets.row_views import line_label, popup_row_menu, row_view, shortcut_action


def _model(rows: int = 3) -> QStandardItemModel:
    model = QStandardItemModel()
    for r in range(rows):
        model.appendRow([QStandardItem(f"r{r}"), QStandardItem(str(r))])
    return model


def test_row_view_selects_whole_single_rows(qtbot):
    model = _model()
    table = row_view(QTableView(), model, "orders")
    tree = row_view(QTreeView(), model, "trades")
    fills = row_view(QTableView(), model, "fills", select_rows=False)
    qtbot.addWidget(table)
    qtbot.addWidget(tree)
    qtbot.addWidget(fills)
    for view in (table, tree):
        assert view.selectionBehavior() is QAbstractItemView.SelectionBehavior.SelectRows
        assert view.selectionMode() is QAbstractItemView.SelectionMode.SingleSelection
    assert fills.selectionMode() is QAbstractItemView.SelectionMode.ExtendedSelection  # Qt's default, untouched
    assert table.objectName() == "orders" and table.model() is model and not table.verticalHeader().isVisible()
    assert table.verticalHeader().defaultSectionSize() == table.fontMetrics().height() + 6
    label = line_label("a long refusal")
    assert label.text() == "a long refusal" and label.sizePolicy().horizontalPolicy() is QSizePolicy.Policy.Ignored


@pytest.mark.qt_log_ignore("This plugin does not support")  # the offscreen platform cannot raise a popup
def test_row_menu_selects_the_row_under_the_pointer_and_enables_as_told(qtbot):
    table = row_view(QTableView(), _model(), "orders")
    qtbot.addWidget(table)
    table.resize(300, 200)
    table.show()
    pos = table.visualRect(table.model().index(2, 1)).center()
    menu = popup_row_menu(table, table, pos, [("Cancel", lambda: None), ("Modify", lambda: None)],
                          enabled=lambda: table.selectionModel().selectedRows()[0].row() == 2)
    assert [r.row() for r in table.selectionModel().selectedRows()] == [2]
    assert [a.text() for a in menu.actions()] == ["Cancel", "Modify"] and all(a.isEnabled() for a in menu.actions())
    menu.close()
    below = QPoint(5, table.viewport().height() - 2)  # past the last row
    assert popup_row_menu(table, table, below, [("Cancel", lambda: None)], enabled=lambda: True) is None


def test_shortcut_action_fires_only_with_the_focus_inside(qtbot):
    panel = QWidget()
    qtbot.addWidget(panel)
    hits = []
    action = shortcut_action(panel, "Close", ["Ctrl+W", "Ctrl+Q"], lambda: hits.append(1))
    assert action in panel.actions() and len(action.shortcuts()) == 2
    assert action.shortcutContext() is Qt.ShortcutContext.WidgetWithChildrenShortcut
    action.trigger()
    assert hits == [1]


class _Session(QObject):
    order_changed = Signal(object)


class _Probe(SessionPanel):
    def __init__(self) -> None:
        super().__init__(job_name="probe", refresh_seconds=1.0)
        self.seen: list = []
        self.shown: list = []

    def session_slots(self):
        return {"order_changed": self.seen.append}

    def session_changed(self, session):
        self.shown.append(session)


def test_session_panel_swaps_connections(qtbot):
    panel = _Probe()
    qtbot.addWidget(panel)
    first, second = _Session(), _Session()
    panel.set_session(first)
    first.order_changed.emit("a")
    panel.set_session(second)
    first.order_changed.emit("stale")  # the replaced session no longer reaches the panel
    second.order_changed.emit("b")
    panel.set_session(None)
    second.order_changed.emit("stale")
    assert panel.seen == ["a", "b"] and panel.shown == [first, second, None] and panel.session is None
    panel.shutdown()
