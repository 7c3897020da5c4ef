"""The order ticket's widgets: legs table, package prices, terms, price row, figures, verdict, Send, status,
the risk what-if.

:class:`TicketForm` only shows what it is given and reports what the trader did (signals); the order, its
price and its verdict live in :class:`~app.panels.ticket_panel.TicketPanel`. Setting values from the panel
never echoes back as a user edit (signals are blocked while the panel writes).

Events (Qt signals):
    terms_changed(): side, quantity, type or TIF changed (read them with :meth:`terms`).
    mode_chosen(PriceMode): Mid / Natural / Custom clicked.
    step_requested(int): -1 / +1 tick clicked.
    limit_typed(float): a limit typed in the price box (points per unit).
    send_requested(): the Send button.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QLocale, Qt, Signal
from PySide6.QtGui import QDoubleValidator, QFont
from PySide6.QtWidgets import (QAbstractItemView, QButtonGroup, QComboBox, QGridLayout, QHBoxLayout, QHeaderView,
                               QLabel, QLineEdit, QPushButton, QSizePolicy, QSpinBox, QTableView, QToolButton,
                               QVBoxLayout, QWidget)

from app.models.ticket_legs import TicketColumn, TicketLegsModel
from app.models.ticket_model import MAX_QUANTITY, PackageQuote, PriceMode, TicketOrder
from app.models.ticket_risk import RISK_FIGURES
from app.models.ticket_text import FIGURES, package_texts, premium_text
from spx_core.execution.orders import OrderType, Side, TimeInForce

__all__ = ["TicketForm"]

_COLOURS = {"ok": "#2eaa5c", "warn": "#e6a117", "bad": "#e14b4b", "idle": "#888888"}
_WIDE = ("commission", "what_if")  # figures whose text needs a whole row (wrapped when even that is short)
_PACKAGE_TIP = ("Points per unit: what one unit of the legs as written costs to buy (natural: what crossing every "
                "leg's spread pays for a buy or receives for a sell)")


class TicketForm(QWidget):
    """See the module docstring."""

    terms_changed = Signal()
    mode_chosen = Signal(object)
    step_requested = Signal(int)
    limit_typed = Signal(float)
    send_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title_label = QLabel()
        font = QFont(self.title_label.font())
        font.setBold(True)
        self.title_label.setFont(font)
        self.title_label.setWordWrap(True)
        self.title_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.legs_model = TicketLegsModel(self)
        self.table = self._build_table()
        self.package = {k: QLabel("–") for k in ("bid", "ask", "mid", "natural")}
        package = QHBoxLayout()
        package.addWidget(QLabel("Package"))
        for key, label in self.package.items():
            label.setToolTip(_PACKAGE_TIP)
            package.addWidget(QLabel(key))
            package.addWidget(label)
        package.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.title_label)
        layout.addWidget(self.table)
        layout.addLayout(package)
        layout.addLayout(self._build_terms())
        layout.addLayout(self._build_price())
        layout.addWidget(self._build_send())  # the verdict and Send stay in view on a short dock
        layout.addLayout(self._build_figures())
        layout.addWidget(self._build_risk())
        layout.addStretch(1)

    # --- building -----------------------------------------------------------------------------------------
    def _build_table(self) -> QTableView:
        table = QTableView()
        table.setModel(self.legs_model)
        table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
        table.setShowGrid(False)
        table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(TicketColumn.CONTRACT, QHeaderView.ResizeMode.Stretch)
        for signal in (self.legs_model.modelReset, self.legs_model.dataChanged):
            signal.connect(self._fit_table)
        return table

    def _build_terms(self) -> QHBoxLayout:
        self.side_combo = QComboBox()
        self.side_combo.addItems(["Buy", "Sell"])
        self.side_combo.setToolTip("BUY pays the limit per unit, SELL receives it (legs as written above)")
        self.quantity_spin = QSpinBox()
        self.quantity_spin.setRange(1, MAX_QUANTITY)
        self.quantity_spin.setPrefix("Qty ")
        self.quantity_spin.setToolTip("Units of the structure (Ctrl+Enter sends)")
        self.type_combo = QComboBox()
        self.type_combo.addItems([t.value for t in OrderType])
        self.type_combo.setToolTip("LMT at the price below, or MKT")
        self.tif_combo = QComboBox()
        self.tif_combo.addItems([t.value for t in TimeInForce])
        self.tif_combo.setToolTip("DAY expires at the session close; GTC works until cancelled")
        row = QHBoxLayout()
        for combo in (self.side_combo, self.type_combo, self.tif_combo):
            combo.currentIndexChanged.connect(lambda _i: self.terms_changed.emit())
        self.quantity_spin.valueChanged.connect(lambda _v: self.terms_changed.emit())
        for w in (self.side_combo, self.quantity_spin, self.type_combo, self.tif_combo):
            row.addWidget(w)
        row.addStretch(1)
        return row

    def _build_price(self) -> QHBoxLayout:
        self.mode_group = QButtonGroup(self)
        self.mode_buttons: dict[PriceMode, QToolButton] = {}
        row = QHBoxLayout()
        for mode in PriceMode:
            button = QToolButton()
            button.setText(mode.value.title())
            button.setCheckable(True)
            self.mode_group.addButton(button)
            button.clicked.connect(lambda _=False, m=mode: self.mode_chosen.emit(m))
            self.mode_buttons[mode] = button
            row.addWidget(button)
        self.down_button, self.up_button = QToolButton(), QToolButton()
        for button, text, ticks in ((self.down_button, "−", -1), (self.up_button, "+", 1)):
            button.setText(text)
            button.setToolTip(f"{'Lower' if ticks < 0 else 'Raise'} the limit by one tick")
            button.clicked.connect(lambda _=False, t=ticks: self.step_requested.emit(t))
        # a line edit, not a spin box: its arrows would step by cents across the tick grid (the -/+ buttons step
        # by ticks), and a button-less spin box draws no text under the app's style sheet
        self.limit_edit = QLineEdit()
        self._shown_limit = ""  # the text the ticket last showed (an unchanged box is no custom price)
        validator = QDoubleValidator(-99_999.0, 99_999.0, 2, self.limit_edit)
        validator.setNotation(QDoubleValidator.Notation.StandardNotation)
        validator.setLocale(QLocale.c())  # "1.45" whatever the system locale's decimal mark
        self.limit_edit.setValidator(validator)
        self.limit_edit.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.limit_edit.setMaximumWidth(self.limit_edit.fontMetrics().horizontalAdvance("-9,999.00") + 16)
        self.limit_edit.setToolTip("Limit per unit (points; rounded to the tick: combos 0.05, SPX singles 0.05 "
                                   "below 3.00 and 0.10 from 3.00); Enter applies it")
        self.limit_edit.editingFinished.connect(self._on_limit_edited)
        self.premium_label = QLabel()
        row.addSpacing(6)
        row.addWidget(self.down_button)
        row.addWidget(self.limit_edit)
        row.addWidget(self.up_button)
        row.addWidget(self.premium_label, 1)
        return row

    def _build_figures(self) -> QGridLayout:
        """Name/value pairs two to a row (the charges and the broker's what-if, long texts, on rows of their own)."""
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(1)
        self.figures: dict[str, QLabel] = {}
        row = col = 0
        for key, name, tip in FIGURES:
            title, value = QLabel(name), QLabel("–")
            for label in (title, value):
                label.setToolTip(tip)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            value.setWordWrap(key in _WIDE)
            if key in _WIDE and col:
                row, col = row + 1, 0
            grid.addWidget(title, row, col)
            grid.addWidget(value, row, col + 1, 1, 3 if key in _WIDE else 1)
            row, col = (row + 1, 0) if key in _WIDE or col else (row, 2)
            self.figures[key] = value
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        return grid

    def _build_risk(self) -> QWidget:
        """The risk what-if: a title, one row per figure ("before → after (change)"), the method or why not."""
        self.risk_box = box = QWidget()
        box.setObjectName("ticket_risk")
        grid = QGridLayout(box)
        grid.setContentsMargins(0, 6, 0, 0)
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(1)
        title = QLabel("Risk what-if: the book before → after this order fills (dollars)")
        font = QFont(title.font())
        font.setBold(True)
        title.setFont(font)
        grid.addWidget(title, 0, 0, 1, 2)
        self.risk: dict[str, QLabel] = {}
        for row, (key, name, tip) in enumerate(RISK_FIGURES, start=1):
            name_label, value = QLabel(name), QLabel("–")
            name_label.setToolTip(tip)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            value.setWordWrap(True)  # a narrow dock wraps the scenario's name rather than cutting it off
            grid.addWidget(name_label, row, 0)
            grid.addWidget(value, row, 1)
            self.risk[key] = value
        self.risk_note = QLabel("")
        self.risk_note.setWordWrap(True)
        self.risk_note.setObjectName("ticket_risk_note")
        self.risk_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        grid.addWidget(self.risk_note, len(RISK_FIGURES) + 1, 0, 1, 2)
        grid.setColumnStretch(1, 1)
        return box

    def _build_send(self) -> QWidget:
        self.verdict_label = QLabel()
        self.verdict_label.setWordWrap(True)
        self.verdict_label.setToolTip("The pre-trade gate's verdict on this order now (it is asked again on every "
                                      "change and before sending)")
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("ticket_send")
        self.send_button.setToolTip("Send the order (Ctrl+Enter)")
        self.send_button.clicked.connect(self.send_requested)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box = QWidget()
        layout = QGridLayout(box)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(self.verdict_label, 0, 0)
        layout.addWidget(self.send_button, 0, 1)
        layout.addWidget(self.status_label, 1, 0, 1, 2)
        layout.setColumnStretch(0, 1)
        return box

    def _on_limit_edited(self) -> None:
        text = self.limit_edit.text().strip()
        self.limit_edit.setModified(False)
        if text and text != self._shown_limit:
            self.limit_typed.emit(float(text))

    def _fit_table(self, *_: Any) -> None:
        """Every leg on screen without scrolling; the Quote column only when a leg has something to say."""
        self.table.setColumnHidden(TicketColumn.NOTE, not self.legs_model.has_notes())
        rows = max(self.legs_model.rowCount(), 1)
        self.table.setFixedHeight(self.table.horizontalHeader().sizeHint().height()
                                  + rows * self.table.verticalHeader().defaultSectionSize()
                                  + 2 * self.table.frameWidth())

    # --- showing ------------------------------------------------------------------------------------------
    def terms(self) -> dict[str, Any]:
        """The side, quantity, type and TIF as set (``TicketOrder.with_changes`` keywords)."""
        return {"side": Side.BUY if self.side_combo.currentIndex() == 0 else Side.SELL,
                "quantity": self.quantity_spin.value(), "order_type": OrderType(self.type_combo.currentText()),
                "tif": TimeInForce(self.tif_combo.currentText())}

    def set_order(self, order: TicketOrder, title: str) -> None:
        """Show a newly opened order's terms (no ``terms_changed`` echo)."""
        self.title_label.setText(title)
        widgets = (self.side_combo, self.quantity_spin, self.type_combo, self.tif_combo)
        for w in widgets:
            w.blockSignals(True)
        self.side_combo.setCurrentIndex(0 if order.side is Side.BUY else 1)
        self.quantity_spin.setValue(order.quantity)
        self.type_combo.setCurrentText(order.order_type.value)
        self.tif_combo.setCurrentText(order.tif.value)
        for w in widgets:
            w.blockSignals(False)

    def show_quote(self, quote: PackageQuote) -> None:
        self.legs_model.set_lines(quote.legs)
        for key, text in package_texts(quote).items():
            self.package[key].setText(text)

    def show_price(self, order: TicketOrder, limit: float, mode: PriceMode) -> None:
        market = order.order_type is OrderType.MKT
        for w in (*self.mode_buttons.values(), self.limit_edit, self.down_button, self.up_button):
            w.setEnabled(not market)
        self.mode_buttons[mode].setChecked(True)
        text = f"{limit:.2f}" if math.isfinite(limit) else ""
        if text != self.limit_edit.text() and not (self.limit_edit.hasFocus() and self.limit_edit.isModified()):
            self.limit_edit.setText(text)  # (never under the trader's typing)
        self._shown_limit = text
        self.premium_label.setText(premium_text(order, limit))

    def show_figures(self, texts: dict[str, str]) -> None:
        for key, text in texts.items():
            self.figures[key].setText(text)

    def show_risk(self, texts: dict[str, str], note: str, tooltip: str) -> None:
        """The risk what-if's figures, its one-line note and the every-stress tooltip (on the whole block)."""
        for key, text in texts.items():
            self.risk[key].setText(text)
            self.risk[key].setToolTip(tooltip)
        self.risk_note.setText(note)
        self.risk_box.setToolTip(tooltip)

    def set_verdict(self, colour: str, text: str) -> None:
        self.verdict_label.setText(text)
        self.verdict_label.setStyleSheet(f"color: {_COLOURS[colour]};")

    def set_status(self, colour: str, text: str) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet(f"color: {_COLOURS[colour]};")

    def show_empty(self) -> None:
        self.title_label.setText("No order: double-click a bid (sell) or an ask (buy) in the option chain, or "
                                 "Trade a structure from the scanner or the builder")
        self.set_verdict("idle", "")
        self.send_button.setEnabled(False)
        for label in (*self.figures.values(), *self.risk.values()):
            label.setText("–")
        self.risk_note.setText("")
