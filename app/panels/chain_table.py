"""The chain's table view: columns sized to their content, the ATM row centred, copy as TSV, side captions.

:class:`ChainTable` is the ``QTableView`` of :class:`~app.panels.chain_panel.ChainPanel`. Columns are
as wide as their header and their widest value (never elided to "1,2…"); spare width is shared out so
the chain still fills the panel. After every model reset (new expiry, re-centre, strike window,
columns) it scrolls the ATM row to the middle of the viewport. :class:`SideCaptions` writes "CALLS"
and "PUTS" over the two column groups: captions that follow the columns, not buttons.

Strategy builder: a Ctrl-click on a bid cell emits ``leg_clicked(contract, -1)`` (sell), on an ask cell
``leg_clicked(contract, +1)`` (buy); :meth:`ChainTable.set_marked_legs` frames the bid..ask cells of the
builder's legs (green bought, red sold), painted over the cells so the model and its per-cell cost stay
as they are.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPoint, QRect, Qt, Signal
from PySide6.QtGui import QAction, QColor, QFont, QFontMetrics, QGuiApplication, QKeySequence, QPainter, QPalette, QPen
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QStyle, QTableView, QWidget

from app.models.chain_data import ChainField
from app.models.chain_model import ChainModel
from app.models.chain_text import STRIKE, header_text, tsv, widest_texts

__all__ = ["ChainTable", "SideCaptions"]

_PAD = 2  # breathing room per cell beyond the style's text margins (pixels)


class ChainTable(QTableView):
    """Calls | strike | puts view over a :class:`ChainModel`.

    Events (Qt signals):
        leg_clicked(OptionContract, int): Ctrl-click on a bid (-1, sell) or ask (+1, buy) cell.
    """

    leg_clicked = Signal(object, int)

    def __init__(self, model: ChainModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self._chain = model
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.verticalHeader().setVisible(False)
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)  # exact centring
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        header = self.horizontalHeader()
        header.setHighlightSections(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # widths come from the content
        header.setMinimumSectionSize(8)
        self._needed: list[int] = []  # per column: content width at the last fit (pixels)
        self._chars: list[int] = []  # per column: longest text at the last fit (characters)
        self._scroll_pending = False
        self.copy_action = QAction("&Copy", self)
        self.copy_action.setShortcut(QKeySequence.StandardKey.Copy)
        self.copy_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.copy_action.triggered.connect(self.copy_selection)
        self.addAction(self.copy_action)
        model.modelReset.connect(self._after_reset)
        self._marked: tuple = ()  # the builder's legs (spx_core.strategies.Leg) framed in the table

    # --- column widths ------------------------------------------------------------------------------
    def needed_widths(self, texts: list[list[str]] | None = None) -> list[int]:
        """Per column: the width that shows its header and its widest value over the shown strikes."""
        texts = self._widest() if texts is None else texts
        margin = 2 * (self.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, self) + 1) + _PAD
        plain = self.fontMetrics()
        bold_font, italic_font = QFont(self.font()), QFont(self.font())
        bold_font.setBold(True)
        italic_font.setItalic(True)
        bold, italic = QFontMetrics(bold_font), QFontMetrics(italic_font)
        header = self.horizontalHeader()
        out = []
        for c, ((side, _field), lines) in enumerate(zip(self._chain.columns, texts, strict=True)):
            metrics = (bold,) if side == STRIKE else (plain, italic)
            value = max(fm.horizontalAdvance(line) for line in lines for fm in metrics)
            out.append(max(value + margin, header.sectionSizeFromContents(c).width() + _PAD))
        return out

    def _widest(self) -> list[list[str]]:
        lo, hi = self._chain.window()
        return widest_texts(self._chain.block, self._chain.columns, lo, hi)

    def fit_columns(self, *, grow_only: bool = False) -> None:
        """Size columns to their content; spare viewport width is shared out evenly.

        ``grow_only``: only act when a value outgrew its column. Digits share one width, so a text
        can only be wider than at the last fit when it has more characters: that cheap check runs
        after every tick, the font measuring only when it fires.
        """
        texts = self._widest()
        chars = [max(len(line) for line in lines) for lines in texts]
        same = len(chars) == len(self._chars) == len(self._needed)
        if grow_only and same and all(n <= m for n, m in zip(chars, self._chars, strict=True)):
            return
        needed = self.needed_widths(texts)
        if grow_only and same:  # while ticking columns only grow: they do not twitch
            needed = [max(a, b) for a, b in zip(needed, self._needed, strict=True)]
            chars = [max(a, b) for a, b in zip(chars, self._chars, strict=True)]
        self._chars, self._needed = chars, needed
        self._apply_widths()

    def _apply_widths(self) -> None:
        n = len(self._needed)
        if not n or n != self.model().columnCount():
            return
        spare = max(self.viewport().width() - sum(self._needed), 0)
        header = self.horizontalHeader()
        for c, width in enumerate(self._needed):
            header.resizeSection(c, width + spare // n + (1 if c < spare % n else 0))

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._apply_widths()

    # --- ATM row --------------------------------------------------------------------------------------
    def scroll_to_atm(self) -> bool:
        """Scroll the ATM row to the middle of the viewport (False when it is outside the window)."""
        row = self._chain.atm_row
        if row is None:
            return False
        strike_col = next((c for c, (side, _) in enumerate(self._chain.columns) if side == STRIKE), 0)
        self.doItemsLayout()  # a reset lays out lazily; the scroll range must be known now
        self.scrollTo(self._chain.index(row, strike_col), QAbstractItemView.ScrollHint.PositionAtCenter)
        return True

    def _after_reset(self) -> None:
        self.fit_columns()
        if self.isVisible() and self.viewport().height() > 0:
            self._scroll_pending = not self.scroll_to_atm()
        else:
            self._scroll_pending = True

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self._apply_widths()
        if self._scroll_pending:
            self._scroll_pending = not self.scroll_to_atm()

    # --- strategy builder legs -------------------------------------------------------------------------
    def mousePressEvent(self, event: Any) -> None:
        index = self.indexAt(event.position().toPoint())
        if (event.button() == Qt.MouseButton.LeftButton and event.modifiers() & Qt.KeyboardModifier.ControlModifier
                and index.isValid()):
            field = self._chain.columns[index.column()][1]
            contract = self._chain.contract_at(index)
            if contract is not None and field in (ChainField.BID, ChainField.ASK):
                self.leg_clicked.emit(contract, -1 if field == ChainField.BID else 1)
        super().mousePressEvent(event)

    def set_marked_legs(self, legs: tuple) -> None:
        """Frame these legs' bid..ask cells (``Leg`` objects; those of other expiries are ignored)."""
        self._marked = tuple(legs)
        self.viewport().update()

    def marked_cells(self) -> list[tuple[int, int, int, bool]]:
        """(row, first column, last column, bought) of every shown leg's bid..ask cells."""
        b = self._chain.block
        if b is None or not self._marked:
            return []
        out = []
        for leg in self._marked:
            c = leg.contract
            row = self._chain.row_of_strike(c.strike) if (c.root, c.expiry) == (b.root, b.expiry) else None
            if row is None:
                continue
            side = 0 if c.is_call else 1
            cols = [i for i, (s, f) in enumerate(self._chain.columns)
                    if s == side and f in (ChainField.BID, ChainField.MID, ChainField.ASK)]
            if cols:
                out.append((row, min(cols), max(cols), leg.ratio > 0))
        return out

    def paintEvent(self, event: Any) -> None:
        super().paintEvent(event)
        cells = self.marked_cells()
        if not cells:
            return
        painter = QPainter(self.viewport())
        for row, first, last, bought in cells:
            rect = self.visualRect(self._chain.index(row, first)).united(self.visualRect(self._chain.index(row, last)))
            painter.setPen(QPen(QColor(40, 190, 100) if bought else QColor(235, 80, 80), 2))
            painter.drawRect(rect.adjusted(1, 1, -1, -1))
        painter.end()

    # --- copy -------------------------------------------------------------------------------------------
    def selection_text(self) -> str:
        """The selected cells as tab-separated rows (the bounding block; unselected cells empty)."""
        indexes = self.selectionModel().selectedIndexes()
        if not indexes:
            return ""
        rows = sorted({i.row() for i in indexes})
        cols = sorted({i.column() for i in indexes})
        chosen = {(i.row(), i.column()) for i in indexes}
        r_all = list(range(rows[0], rows[-1] + 1))
        c_all = list(range(cols[0], cols[-1] + 1))
        cells = self._chain.texts(r_all, c_all)
        return tsv([[text if (r, c) in chosen else "" for c, text in zip(c_all, line, strict=True)]
                    for r, line in zip(r_all, cells, strict=True)])

    def row_text(self, row: int) -> str:
        """One row with a header line naming each column (calls first), tab-separated."""
        model = self._chain
        names = [header_text(f) if side == STRIKE else f"{'Call' if side == 0 else 'Put'} {header_text(f)}"
                 for side, f in model.columns]
        return tsv([names, model.texts([row], list(range(model.columnCount())))[0]])

    def copy_selection(self) -> None:
        text = self.selection_text()
        if text:
            QGuiApplication.clipboard().setText(text)


class SideCaptions(QWidget):
    """"CALLS" and "PUTS" centred over their column groups, following column widths and scrolling."""

    def __init__(self, table: ChainTable, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._table = table
        font = QFont(self.font())
        font.setLetterSpacing(QFont.SpacingType.AbsoluteSpacing, 2.0)
        font.setPointSizeF(max(font.pointSizeF() * 0.85, 7.0))
        self.setFont(font)
        self.setFixedHeight(QFontMetrics(font).height() + 2)
        self.setToolTip("Calls on the left, puts on the right of the strike column")
        header = table.horizontalHeader()
        header.sectionResized.connect(self.update)
        header.geometriesChanged.connect(self.update)
        table.horizontalScrollBar().valueChanged.connect(self.update)
        table.model().modelReset.connect(self.update)

    def paintEvent(self, _event: Any) -> None:
        columns = self._table.model().columns
        strike = next((c for c, (side, _) in enumerate(columns) if side == STRIKE), None)
        if strike is None:
            return
        header = self._table.horizontalHeader()
        left = self.mapFromGlobal(self._table.viewport().mapToGlobal(QPoint(0, 0))).x()
        pos = [header.sectionViewportPosition(c) + left for c in range(len(columns))]
        painter = QPainter(self)
        painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
        view_x0, view_x1 = left, left + self._table.viewport().width()
        for text, first, last in (("CALLS", 0, strike - 1), ("PUTS", strike + 1, len(columns) - 1)):
            if last < first:
                continue
            # centred over the part of the group that is on screen
            x0, x1 = max(pos[first], view_x0), min(pos[last] + header.sectionSize(last), view_x1)
            if x1 <= x0:
                continue
            painter.drawText(QRect(x0, 0, x1 - x0, self.height()), Qt.AlignmentFlag.AlignCenter, text)
        painter.end()
