"""Strategy builder: the legs picked in the chain as one structure, its price, greeks, odds and payoff.

Legs come from :class:`~app.context.AppContext` (Ctrl-click a bid to sell or an ask to buy in the
chain, or right-click "Add to builder"); here the user changes a leg's side or quantity, removes a
leg (the ✕ column or Delete) or clears them all, or sends them to the order ticket ("Trade", once a ticket
listens). The panel shows:

* the recognised structure's name and kind ("SPXW 2024-03-15 5700/5675 put credit vertical (25 wide)");
* the legs table (:class:`~app.models.builder_model.LegsModel`): quote, IV and delta per leg, and
  "not listed" / "flagged: ..." where a leg's quote cannot be used;
* the net price at bid / ask / mid / natural (points, positive = credit), dollar greeks, max profit
  and loss ("unlimited" when so), breakevens, return on risk, margin, POP under the fitted surface's
  density and lognormal, EV, and the touch probability of each short strike; NaN prices say why;
* the payoff chart (:class:`~app.widgets.payoff_plot.PayoffPlot`): expiry and T+n curves; the "T+"
  and "IV shift" spin boxes re-price the T+n curve off the fitted surface.

Feeding (:class:`~app.panels.base.LivePanel`): batches are buffered; once a second (at once after an
edit) a worker runs :func:`~app.models.builder_data.compute_builder` on the latest snapshot per
underlying, so a burst of batches costs one valuation.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QFont, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDockWidget, QDoubleSpinBox, QGridLayout, QHBoxLayout,
                               QFrame, QHeaderView, QLabel, QPushButton, QScrollArea, QSizePolicy, QSpinBox,
                               QSplitter, QStyledItemDelegate, QStyleOptionViewItem, QTableView, QVBoxLayout,
                               QWidget)

from app.models.builder_data import BuilderResult, BuilderView, MarketCache, compute_builder
from app.models.builder_model import MAX_QTY, LegColumn, LegsModel, without
from app.models.builder_text import FIGURES, WIDE_FIGURES, figure_texts
from app.panels.base import Job, LivePanel
from app.widgets.payoff_plot import PayoffPlot
from spx_core.domain import ChainSnapshot
from spx_core.marketdata.source import QuoteBatch

if TYPE_CHECKING:
    from app.context import AppContext
    from spx_core.strategies.structure import Leg

__all__ = ["BuilderPanel"]

_NARROW = 620  # below this width the figures are laid out three per row instead of four
_CHART_SHARE = 0.45  # the figures take at most this much less of the height by default: the chart the rest
_MAX_IV_SHIFT = 50.0  # vol points
_MAX_ROWS = 8  # legs shown without scrolling
_VERY_NARROW = 480  # below this width the legs table also drops the Side and IV columns, and two figures a row


class _LegDelegate(QStyledItemDelegate):
    """Editors of the legs table: a Buy/Sell combo for the side, a spin box for the quantity."""

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem,
                     index: QModelIndex | QPersistentModelIndex) -> QWidget:
        if index.column() == LegColumn.SIDE:
            combo = QComboBox(parent)
            combo.addItems(["Buy", "Sell"])
            return combo
        spin = QSpinBox(parent)  # signed: -2 sells two (0 is refused: the leg stays as it was)
        spin.setRange(-MAX_QTY, MAX_QTY)
        return spin

    def setEditorData(self, editor: QWidget, index: QModelIndex | QPersistentModelIndex) -> None:
        value = index.data(Qt.ItemDataRole.EditRole)
        if isinstance(editor, QComboBox):
            editor.setCurrentText(str(value))
        else:
            editor.setValue(int(value))

    def setModelData(self, editor: QWidget, model: Any, index: QModelIndex | QPersistentModelIndex) -> None:
        value = editor.currentText() if isinstance(editor, QComboBox) else editor.value()
        model.setData(index, value, Qt.ItemDataRole.EditRole)


class BuilderPanel(LivePanel):
    """See the module docstring.

    Events (Qt signals):
        legs_edited(tuple[Leg, ...]): the user changed the legs here (published to the context by ``bind``).
    """

    legs_edited = Signal(object)

    def __init__(self, parent: QWidget | None = None, *, refresh_seconds: float = 1.0) -> None:
        super().__init__(parent, job_name="strategy builder", refresh_seconds=refresh_seconds)
        self.setObjectName("builder_panel")
        self.model = LegsModel(self)
        self.model.legs_edited.connect(self._edited)
        self._snapshots: dict[str, ChainSnapshot] = {}  # latest per underlying (SPX, SPY)
        self._caches: dict[str, MarketCache] = {}
        self.result: BuilderResult | None = None
        self._build_ui()

    # --- UI ------------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.title_label = QLabel()
        font = QFont(self.title_label.font())
        font.setBold(True)
        self.title_label.setFont(font)
        self.title_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.title_label.setWordWrap(True)  # "SPXW 2024-03-15 5740/5765/5835/5860 iron condor (25 wide)"
        self.title_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.clear_button = QPushButton("Clear legs")
        self.clear_button.setToolTip("Remove every leg from the builder")
        self.clear_button.clicked.connect(lambda: self._edited(()))
        self.trade_button = QPushButton("Trade")
        self.trade_button.setObjectName("builder_trade")
        self.trade_button.setToolTip("Open the order ticket on these legs")
        self.trade_button.setEnabled(False)
        self.trade_button.clicked.connect(self.trade)
        top = QHBoxLayout()
        top.addWidget(self.title_label, 1)
        top.addWidget(self.trade_button, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.clear_button, 0, Qt.AlignmentFlag.AlignTop)
        self.table = self._build_table()
        self.figures = {key: QLabel("–") for key, *_ in FIGURES}
        self.figure_names = {key: QLabel(name) for key, name, *_ in FIGURES}
        for key, _name, tip in FIGURES:
            for label in (self.figures[key], self.figure_names[key]):
                label.setToolTip(tip)
            self.figures[key].setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.figures[key].setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            # a long value must not widen the dock (the window would outgrow a 1280 px screen)
            self.figures[key].setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        for key in WIDE_FIGURES:
            self.figures[key].setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(10)
        self.grid.setVerticalSpacing(1)
        self._columns = 0
        self._layout_figures(4)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setStyleSheet("color: #e6a117;")
        summary = QWidget()
        layout = QVBoxLayout(summary)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(3)
        layout.addLayout(top)
        layout.addWidget(self.table)
        layout.addLayout(self.grid)
        layout.addWidget(self.status_label)
        layout.addStretch(1)
        self.summary = summary
        summary.installEventFilter(self)  # its layout requests (a new title, legs, a reason) re-split
        # the figures above, the chart below, split by a handle the trader can drag: on a 720 px screen the
        # figures fitted whole left the chart ~170 px; dragged up, the figures scroll
        self.summary_scroll = QScrollArea()
        self.summary_scroll.setWidget(summary)
        self.summary_scroll.setWidgetResizable(True)
        self.summary_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.summary_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.summary_scroll)
        self.splitter.addWidget(self._build_chart())
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(1, 1)  # a taller dock grows the chart
        self._user_split = False  # the trader dragged the handle: keep their split
        self.splitter.splitterMoved.connect(self._on_split_moved)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.addWidget(self.splitter)
        self._show_empty()

    def _build_table(self) -> QTableView:
        table = QTableView()
        table.setModel(self.model)
        table.setItemDelegate(_LegDelegate(table))
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                              | QAbstractItemView.EditTrigger.EditKeyPressed
                              | QAbstractItemView.EditTrigger.SelectedClicked)
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
        table.setShowGrid(False)
        table.setWordWrap(False)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)
        table.setTextElideMode(Qt.TextElideMode.ElideLeft)  # a narrow contract keeps its strike and right
        table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header.setHighlightSections(False)
        table.clicked.connect(self._on_clicked)
        for signal in (self.model.modelReset, self.model.dataChanged):
            signal.connect(self._fit_table)
        remove = QAction("Remove leg", table)
        remove.setShortcut(QKeySequence.StandardKey.Delete)
        remove.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        remove.triggered.connect(self._remove_selected)
        table.addAction(remove)
        return table

    def _fit_table(self, *_: Any) -> None:
        """Every leg on screen without scrolling (up to ``_MAX_ROWS``); the Quote column only when a leg
        has a problem to report."""
        self.table.setColumnHidden(LegColumn.NOTE, not self.model.has_notes())
        # narrow: the signed, coloured Qty says the side; a leg's mid is its bid/ask average (the net mid is
        # below) and its IV is in the chain beside the framed cells; contract, prices, delta and ✕ stay
        narrow = self.width() < _NARROW
        for col in (LegColumn.MID, LegColumn.SIDE, LegColumn.IV):
            self.table.setColumnHidden(col, narrow if col == LegColumn.MID else self.width() < _VERY_NARROW)
        # too narrow for every column: the contract gives up width (elided on the left) rather than a
        # scroll bar hiding delta and the remove column
        table, header = self.table, self.table.horizontalHeader()
        shown = [c for c in LegColumn if not table.isColumnHidden(c)]
        needed = sum(max(table.sizeHintForColumn(c), header.sectionSizeHint(c)) for c in shown)
        squeeze = needed > table.viewport().width()
        header.setSectionResizeMode(LegColumn.CONTRACT, QHeaderView.ResizeMode.Stretch if squeeze
                                    else QHeaderView.ResizeMode.ResizeToContents)
        rows = min(max(self.model.rowCount(), 1), _MAX_ROWS)
        height = (self.table.horizontalHeader().height() + rows * self.table.verticalHeader().defaultSectionSize()
                  + 2 * self.table.frameWidth())
        self.table.setFixedHeight(height)
        self._default_split()  # the legs' rows changed the height the figures need

    def _build_chart(self) -> QWidget:
        self.days_spin = QSpinBox()
        self.days_spin.setPrefix("T+")
        self.days_spin.setSuffix(" d")
        self.days_spin.setRange(0, 0)
        self.days_spin.setToolTip("Price the T+ curve this many calendar days from now (up to the front expiry)")
        self.iv_spin = QDoubleSpinBox()
        self.iv_spin.setRange(-_MAX_IV_SHIFT, _MAX_IV_SHIFT)
        self.iv_spin.setSingleStep(1.0)
        self.iv_spin.setDecimals(1)
        self.iv_spin.setPrefix("IV ")
        self.iv_spin.setSuffix(" vol pts")
        self.iv_spin.setToolTip("Parallel shift of every implied vol for the T+ curve (vol points: +2 = 20% -> 22%)")
        for spin in (self.days_spin, self.iv_spin):
            spin.setKeyboardTracking(False)  # typing "15" re-prices once, not for "1" then "15"
            spin.valueChanged.connect(lambda _v: self.refresh(full=True))
        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(QLabel("What-if"))
        controls.addWidget(self.days_spin)
        controls.addWidget(self.iv_spin)
        controls.addStretch(1)
        self.plot = PayoffPlot()
        self.plot.setMinimumHeight(160)
        chart = QWidget()
        layout = QVBoxLayout(chart)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(controls)
        layout.addWidget(self.plot, 1)
        return chart

    def _layout_figures(self, columns: int) -> None:
        """Name/value pairs, ``columns`` pairs per row, in :data:`FIGURES` order."""
        if columns == self._columns:
            return
        self._columns = columns
        short = [key for key, *_ in FIGURES if key not in WIDE_FIGURES]
        for i, key in enumerate(short):
            row, col = divmod(i, columns)
            self.grid.addWidget(self.figure_names[key], row, 2 * col)
            self.grid.addWidget(self.figures[key], row, 2 * col + 1)
        first = -(-len(short) // columns)  # rows taken by the short figures
        for row, key in enumerate(WIDE_FIGURES, start=first):
            self.grid.addWidget(self.figure_names[key], row, 0)
            self.grid.addWidget(self.figures[key], row, 1, 1, 2 * columns - 1)
        for c in range(8):
            self.grid.setColumnStretch(c, 1 if c % 2 and c < 2 * columns else 0)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        width = self.width()
        self._layout_figures(2 if width < _VERY_NARROW else 3 if width < _NARROW else 4)
        self._fit_table()

    def eventFilter(self, watched: Any, event: Any) -> bool:  # noqa: N802 (Qt API)
        if watched is self.summary and event.type() == QEvent.Type.LayoutRequest:
            QTimer.singleShot(0, self, self._default_split)  # once the layout has the new size
        return super().eventFilter(watched, event)

    def _on_split_moved(self, *_: Any) -> None:
        self._user_split = True

    def _default_split(self) -> None:
        """The figures as tall as they need (at most ``_CHART_SHARE`` of the height), the chart the rest."""
        if self._user_split or not hasattr(self, "splitter"):  # (model signals during construction)
            return
        total = sum(self.splitter.sizes())
        if total <= 0:
            return
        layout = self.summary.layout()
        width = self.summary_scroll.viewport().width()
        needed = max(layout.totalHeightForWidth(width) if layout.hasHeightForWidth() else 0,
                     self.summary.minimumSizeHint().height())
        top = min(needed, int(total * _CHART_SHARE))
        self.splitter.setSizes([top, total - top])

    # --- legs ------------------------------------------------------------------------------------------
    @property
    def legs(self) -> tuple[Leg, ...]:
        return self.model.legs

    def set_legs(self, legs: tuple[Leg, ...]) -> None:
        """Show these legs (the context's ``legs_changed``); re-values at once and, when the builder's dock
        is a tab behind another, brings it to the front (the trader just picked a leg in the chain)."""
        grew = len(legs) > len(self.model.legs)
        self.model.set_legs(legs)
        self._update_trade_button()
        dock = self.parentWidget()
        # a dock tabbed behind another stays "visible" with an empty visible region; a closed one is hidden
        if grew and isinstance(dock, QDockWidget) and self.isVisible() and self.visibleRegion().isEmpty():
            dock.raise_()
        if not legs:
            self._show_empty()
        else:
            self.title_label.setText(f"{len(legs)} leg{'s' if len(legs) > 1 else ''}: valuing…")
        self.refresh(full=True)

    def trade(self) -> None:
        """The legs as one structure to the order ticket (``AppContext.request_trade``)."""
        if not self.legs or self.context is None or not self.context.ticket_available:
            return
        from spx_core.strategies.recognize import recognize

        result = self.result
        self.context.request_trade(result.structure if result is not None and result.legs == self.legs
                                   else recognize(self.legs))

    def _update_trade_button(self, *_: object) -> None:
        self.trade_button.setEnabled(bool(self.legs) and self.context is not None and self.context.ticket_available)

    def _edited(self, legs: tuple[Leg, ...]) -> None:
        if self.context is not None:
            self.context.set_legs(legs)  # comes back through legs_changed -> set_legs
        else:
            self.set_legs(legs)
        self.legs_edited.emit(legs)

    def _on_clicked(self, index: QModelIndex) -> None:
        if index.column() == LegColumn.REMOVE:
            self._edited(without(self.legs, self.legs[index.row()].contract))

    def _remove_selected(self) -> None:
        rows = {i.row() for i in self.table.selectionModel().selectedIndexes()}
        doomed = {self.legs[r].contract for r in rows}
        if doomed:
            self._edited(tuple(leg for leg in self.legs if leg.contract not in doomed))

    def view(self) -> BuilderView:
        return BuilderView(float(self.days_spin.value()), float(self.iv_spin.value()))

    # --- LivePanel hooks -------------------------------------------------------------------------------
    @classmethod
    def create(cls, context: AppContext) -> BuilderPanel:
        return cls()

    def bind(self, context: AppContext) -> None:
        super().bind(context)
        context.legs_changed.connect(self.set_legs)
        context.ticket_changed.connect(self._update_trade_button)
        if context.legs:
            self.set_legs(context.legs)
        self._update_trade_button()

    def on_batch(self, batch: QuoteBatch) -> None:
        super().on_batch(batch)
        for b in (batch, *batch.companions):  # the simulator's SPY rides along with SPX
            self._snapshots[b.snapshot.underlying] = b.snapshot

    def job(self, batch: QuoteBatch) -> Job | None:
        self._snapshots.setdefault(batch.snapshot.underlying, batch.snapshot)
        if not self.legs:
            return None
        return Job(compute_builder,
                   (dict(self._snapshots), self.legs, self.view(), dict(self._caches), self.shared_fits))

    def status_message(self, text: str) -> None:
        self._set_status(text)

    def _set_status(self, text: str) -> None:
        """The reason line: shown only when there is something to say (it would leave a gap)."""
        self.status_label.setText(text)
        self.status_label.setVisible(bool(text))
        self._default_split()

    def show_result(self, result: BuilderResult) -> None:
        self._caches = {**self._caches, **result.caches}  # keep the others' fits warm for the next legs
        if result.legs != self.legs:
            return  # the legs changed meanwhile: a job on the new legs follows
        self.result = result
        self.model.set_quotes(result.quotes)
        self.title_label.setText(_title(result))
        texts, reason = figure_texts(result)
        for key, text in texts.items():
            self.figures[key].setText(text)
        self._set_status(reason)
        front = result.front_days
        self.days_spin.setMaximum(max(int(front) - 1, 0) if math.isfinite(front) else 0)
        self._show_chart(result)

    def _show_chart(self, result: BuilderResult) -> None:
        self.plot.set_underlying(result.structure.underlying)
        curves = result.curves
        if curves is None or curves.reason:
            # the chart says it in a few words; the reason line above has the legs and quotes
            why = curves.reason if curves is not None else "the payoff could not be computed"
            self.plot.clear(f"no payoff: {why.split(' (')[0]}")
            return
        breakevens = result.value.breakevens if result.value is not None else ()
        self.plot.show_payoff(curves, spot=result.spot, breakevens=breakevens, density=result.density,
                              moves=result.move)

    def _show_empty(self) -> None:
        self.title_label.setText("No legs: Ctrl-click a bid (sell) or an ask (buy) in the option chain")
        for label in self.figures.values():
            label.setText("–")
        self._set_status("")
        self.result = None
        self.plot.clear("add legs from the option chain")

    def health(self) -> tuple[bool, str]:
        """(ok, message): with no legs there is nothing to value (ok); with legs, a result is shown."""
        if not self.legs:
            return True, "builder: no legs"
        if self.result is None:
            return False, f"builder: {len(self.legs)} legs not valued yet"
        return True, f"builder: {self.result.structure.name}"


def _title(result: BuilderResult) -> str:
    s = result.structure
    kind = s.kind.value
    return s.name if kind in s.name else f"{s.name} ({kind})"
