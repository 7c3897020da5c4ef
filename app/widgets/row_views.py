"""Set-up the panels' tables, trees and toolbars share: a view that selects one whole row (an order, a trade, a
candidate), a one-line label that never widens its dock, a panel-wide shortcut and a row's context menu.

Written once so the blotter, the positions and the scanner behave alike (same row height, same selection, the
same keyboard scope) and a fix to one reaches all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from PySide6.QtCore import QAbstractItemModel, QPoint, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QMenu,
    QSizePolicy,
    QTableView,
    QTreeView,
    QWidget,
)

__all__ = ["line_label", "popup_row_menu", "row_view", "shortcut_action"]

V = TypeVar("V", QTableView, QTreeView)


def row_view(view: V, model: QAbstractItemModel, name: str, *, select_rows: bool = True) -> V:
    """``view`` over ``model`` (object name ``name``): columns sized to their contents and, with ``select_rows``,
    one whole row selected at a time. A table also loses its row numbers, does not wrap and gets rows one
    text line high (+6 px), so a short dock still shows several orders or candidates."""
    view.setObjectName(name)
    view.setModel(model)
    if select_rows:
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    if isinstance(view, QTableView):
        view.verticalHeader().setVisible(False)
        view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 6)
        view.setWordWrap(False)
        header = view.horizontalHeader()
    else:
        header = view.header()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    return view


def line_label(text: str = "") -> QLabel:
    """A one-line label (status, account, detail) that is cut rather than widen its dock: a long refusal
    reason must not push the window wider than the screen."""
    label = QLabel(text)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return label


def shortcut_action(panel: QWidget, text: str, keys: Sequence[QKeySequence | str],
                    slot: Callable[[], object]) -> QAction:
    """An action on ``panel`` triggered by any of ``keys`` while the focus is inside the panel only (another
    dock's Del or Ctrl+W must not cancel an order or close a trade here)."""
    action = QAction(text, panel)
    action.setShortcuts([QKeySequence(k) for k in keys])
    action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    action.triggered.connect(slot)
    panel.addAction(action)
    return action


def popup_row_menu(panel: QWidget, view: QTableView | QTreeView, pos: QPoint, items: Sequence[tuple[str, Callable[[], object]]],
                   *, enabled: Callable[[], bool]) -> QMenu | None:
    """The context menu of the row under ``pos`` (``view``'s viewport coordinates): that row is selected first
    (so the actions act on it), then ``items`` (text, slot) pop up, enabled as ``enabled()`` says for the
    selected row. None outside any row."""
    index = view.indexAt(pos)
    if not index.isValid():
        return None
    view.setCurrentIndex(index)
    menu = QMenu(panel)
    on = enabled()
    for text, slot in items:
        menu.addAction(text, slot).setEnabled(on)
    menu.popup(view.viewport().mapToGlobal(pos))
    return menu
