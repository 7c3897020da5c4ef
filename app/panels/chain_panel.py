"""Option chain panel: expiry selector, calls | strike | puts table, strike window, column chooser.

Events (Qt signals):
    contract_selected(OptionContract): the user selected a call or put cell.
    strike_window_changed(int): the user changed the number of strikes shown (for settings).
    columns_changed(list[str]): the user changed the visible columns (ChainField names, for settings).

Feeding (:class:`~app.panels.base.LivePanel`): ``on_batch`` only buffers; a 10 Hz refresh computes
the selected expiry's IVs and greeks (``spx_core.surface.chain_iv``) in a worker thread and applies
the result on the GUI thread, so a burst of batches costs one table update.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QModelIndex, Qt, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QMenu, QPushButton,
                               QSpinBox, QTableView, QToolButton, QVBoxLayout, QWidget)

from app.models.chain_data import VISIBLE_FIELDS, ChainField, expiry_subsnapshot
from app.models.chain_model import FIELD_LABELS, STRIKE, ChainModel
from app.panels.base import Job, LivePanel
from spx_core.domain import ET, ChainSnapshot, ExpirySlice, Root
from spx_core.marketdata.source import QuoteBatch

if TYPE_CHECKING:
    from app.context import AppContext
    from app.settings import AppSettings

__all__ = ["ChainPanel", "DEFAULT_FIELDS"]

log = logging.getLogger(__name__)

DEFAULT_FIELDS: tuple[ChainField, ...] = (ChainField.BID, ChainField.ASK, ChainField.IV, ChainField.DELTA,
                                          ChainField.GAMMA, ChainField.THETA, ChainField.VEGA, ChainField.VOLUME,
                                          ChainField.OI)
_SAMPLES = {ChainField.BID: "9,999.99", ChainField.MID: "9,999.99", ChainField.ASK: "9,999.99",
            ChainField.IV: "199.99%", ChainField.DELTA: "+0.999", ChainField.GAMMA: "0.0000",
            ChainField.THETA: "-99.99", ChainField.VEGA: "99.99", ChainField.VOLUME: "99,999",
            ChainField.OI: "999,999", None: "99,999"}


@dataclass(frozen=True, slots=True, eq=False)
class _ChainResult:
    key: tuple[Root, date]
    snapshot: ChainSnapshot
    civ: Any
    changed: np.ndarray | None
    seconds: float


def compute_expiry_chain(snapshot: ChainSnapshot, key: tuple[Root, date],
                         changed: np.ndarray | None) -> _ChainResult | None:
    """Worker-thread job: one expiry's sub-snapshot and its IV/greeks (None if the expiry is gone)."""
    from spx_core.surface import chain_iv  # scipy-heavy: imported off the start-up path

    t0 = time.perf_counter()
    sl = next((s for s in snapshot.expiries() if (s.root, s.expiry) == key), None)
    if sl is None:
        return None
    sub = expiry_subsnapshot(snapshot, sl)
    civ = chain_iv(sub)
    sub_changed = None
    if changed is not None:
        sub_changed = changed[(changed >= sl.start) & (changed < sl.stop)] - sl.start
    return _ChainResult(key, sub, civ, sub_changed, time.perf_counter() - t0)


def expiry_label(sl: ExpirySlice, today: date) -> str:
    """``Fri 2024-01-19 · 12 DTE · SPX AM`` for the expiry selector."""
    dte = (sl.expiry - today).days
    return f"{sl.expiry:%a %Y-%m-%d}  ·  {dte} DTE  ·  {sl.root.value} {sl.settlement.value}"


class ChainPanel(LivePanel):
    contract_selected = Signal(object)
    strike_window_changed = Signal(int)
    columns_changed = Signal(list)

    def __init__(self, parent: QWidget | None = None, *, strike_window: int = 30,
                 fields: tuple[ChainField, ...] | list[ChainField] = DEFAULT_FIELDS, refresh_hz: float = 10.0) -> None:
        super().__init__(parent, job_name="chain IV", refresh_seconds=1.0 / refresh_hz)
        self.setObjectName("chain_panel")
        self.model = ChainModel(fields=fields, window=strike_window, parent=self)
        self._fields = [f for f in VISIBLE_FIELDS if f in set(fields)]
        self._key: tuple[Root, date] | None = None
        self._build_ui(strike_window)

    # --- UI ---------------------------------------------------------------------------------------
    def _build_ui(self, strike_window: int) -> None:
        self.expiry_combo = QComboBox()
        self.expiry_combo.setMinimumContentsLength(34)
        self.expiry_combo.setToolTip("Expiry: date, days to expiry, root and settlement (AM = SOQ, PM = close)")
        self.expiry_combo.currentIndexChanged.connect(self._on_expiry_chosen)
        self.window_spin = QSpinBox()
        self.window_spin.setRange(5, 400)
        self.window_spin.setValue(strike_window)
        self.window_spin.setSuffix(" strikes")
        self.window_spin.setToolTip("How many strikes around the money to show")
        self.window_spin.valueChanged.connect(self.set_strike_window)
        self.recenter_button = QPushButton("Re-centre")
        self.recenter_button.setToolTip("Centre the strike window on the current at-the-money strike")
        self.recenter_button.clicked.connect(self.model.recenter)
        self.columns_button = QToolButton()
        self.columns_button.setText("Columns")
        self.columns_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.columns_button)
        self._column_actions: dict[ChainField, QAction] = {}
        for field in VISIBLE_FIELDS:
            action = QAction(FIELD_LABELS[field], menu, checkable=True)
            action.setChecked(field in self._fields)
            action.toggled.connect(self._on_columns_toggled)
            menu.addAction(action)
            self._column_actions[field] = action
        self.columns_button.setMenu(menu)
        self.info_label = QLabel("waiting for market data…")
        self.info_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top = QHBoxLayout()
        top.addWidget(QLabel("Expiry"))
        top.addWidget(self.expiry_combo, 1)
        top.addWidget(self.window_spin)
        top.addWidget(self.recenter_button)
        top.addWidget(self.columns_button)
        sides = QHBoxLayout()
        calls, puts = QLabel("◀  CALLS"), QLabel("PUTS  ▶")
        for label in (calls, puts):
            label.setStyleSheet("font-weight: 600; letter-spacing: 1px;")
        sides.addWidget(calls)
        sides.addStretch(1)
        sides.addWidget(self.info_label)
        sides.addStretch(1)
        sides.addWidget(puts)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(False)
        self.table.setWordWrap(False)
        self.table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.horizontalHeader().setHighlightSections(False)
        # columns share the panel's width (the chain is the panel's content); never narrower than a value
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().currentChanged.connect(self._on_current_changed)
        self.model.modelReset.connect(self._size_columns)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addLayout(sides)
        layout.addWidget(self.table, 1)
        self._size_columns()

    def _size_columns(self) -> None:
        fm = self.table.fontMetrics()
        header = self.table.horizontalHeader()
        widths = [max(fm.horizontalAdvance(_SAMPLES[field]), fm.horizontalAdvance("Strike" if side == STRIKE
                                                                                 else FIELD_LABELS[field])) + 14
                  for side, field in self.model.columns]
        header.setMinimumSectionSize(min(widths))
        self.table.setMinimumWidth(min(sum(widths) + 4, 900))

    # --- LivePanel hooks ---------------------------------------------------------------------------
    @classmethod
    def create(cls, context: AppContext) -> ChainPanel:
        return cls(strike_window=context.settings.strike_window, fields=context.settings.chain_fields)

    def bind(self, context: AppContext) -> None:
        super().bind(context)
        self.contract_selected.connect(context.select_contract)
        self.computed.connect(lambda _s: self._key is not None and context.select_expiry(self._key))
        self.strike_window_changed.connect(lambda n: context.request_settings(strike_window=n))
        self.columns_changed.connect(lambda names: context.request_settings(chain_columns=tuple(names)))
        context.settings_changed.connect(self._follow_settings)

    def _follow_settings(self, settings: AppSettings) -> None:
        self.set_strike_window(settings.strike_window)
        self.set_visible_fields(settings.chain_fields)

    def menu_actions(self) -> list[QAction]:
        recenter = QAction("&Re-centre chain", self)
        recenter.setShortcut("Ctrl+R")
        recenter.triggered.connect(self.model.recenter)
        return [recenter]

    def on_tick(self) -> None:
        self.model.advance_flash()

    def job(self, batch: QuoteBatch) -> Job | None:
        changed: np.ndarray | None = batch.changed
        if batch.layout_changed or self.expiry_combo.count() == 0:
            self._refresh_expiries(batch.snapshot)
            changed = None  # re-read everything
        return None if self._key is None else Job(compute_expiry_chain, (batch.snapshot, self._key, changed))

    def status_message(self, text: str) -> None:
        self.info_label.setText(text)

    def show_result(self, result: _ChainResult | None) -> None:
        if result is None or result.key != self._key:
            return
        self.model.set_chain(result.snapshot, result.civ, changed=result.changed)
        self._update_info()

    def _refresh_expiries(self, snapshot: ChainSnapshot) -> None:
        slices = snapshot.expiries()
        today = snapshot.time.astimezone(ET).date()
        keys = [(s.root, s.expiry) for s in slices]
        current = self._key
        self.expiry_combo.blockSignals(True)
        self.expiry_combo.clear()
        for s in slices:
            self.expiry_combo.addItem(expiry_label(s, today), (s.root, s.expiry))
        if current not in keys:
            later = [i for i, s in enumerate(slices) if (s.expiry - today).days >= 1]
            current = keys[later[0] if later else 0] if keys else None
        if current is not None:
            self.expiry_combo.setCurrentIndex(keys.index(current))
        self.expiry_combo.blockSignals(False)
        self._key = current

    def _on_expiry_chosen(self, i: int) -> None:
        key = self.expiry_combo.itemData(i)
        if key is None or key == self._key:
            return
        self._key = key
        self.refresh(full=True)

    def _update_info(self) -> None:
        b = self.model.block
        if b is None:
            return
        iv = self.model.atm_iv()
        stamp = self.model.snapshot.time.astimezone(ET)
        self.info_label.setText(
            f"SPX {b.underlying:,.2f}    Fwd {b.forward:,.2f}    ATM IV {iv * 100:.2f}%    "
            f"T {b.t * 365.0:.2f} d    DF {b.discount:.5f}    {stamp:%H:%M:%S} ET")

    # --- user actions -----------------------------------------------------------------------------
    @Slot(int)
    def set_strike_window(self, n: int) -> None:
        if n != self.window_spin.value():
            self.window_spin.setValue(n)  # re-enters through valueChanged
            return
        if n != self.model.strike_window:
            self.model.set_strike_window(n)
            self.strike_window_changed.emit(n)

    def set_visible_fields(self, fields: list[ChainField] | list[str]) -> None:
        """Show these per-side columns (ChainField or their names, e.g. "BID")."""
        chosen = {ChainField[f] if isinstance(f, str) else ChainField(f) for f in fields}
        for field, action in self._column_actions.items():
            action.blockSignals(True)
            action.setChecked(field in chosen)
            action.blockSignals(False)
        self._on_columns_toggled()

    def visible_fields(self) -> list[ChainField]:
        return list(self._fields)

    def _on_columns_toggled(self, *_: Any) -> None:
        fields = [f for f, a in self._column_actions.items() if a.isChecked()]
        if fields == self._fields:
            return
        self._fields = fields
        self.model.set_fields(fields)
        self.columns_changed.emit([f.name for f in fields])

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        contract = self.model.contract_at(current)
        if contract is not None:
            self.contract_selected.emit(contract)

    def selected_expiry(self) -> tuple[Root, date] | None:
        return self._key

    def select_expiry(self, key: tuple[Root, date]) -> None:
        for i in range(self.expiry_combo.count()):
            if self.expiry_combo.itemData(i) == key:
                self.expiry_combo.setCurrentIndex(i)
                return
        raise KeyError(f"expiry {key} is not listed in the current chain")

    # --- health -----------------------------------------------------------------------------------
    def health(self) -> tuple[bool, str]:
        """(ok, message): the chain shows rows and the ATM strike has a finite implied vol."""
        b = self.model.block
        if b is None or self.model.rowCount() == 0:
            return False, "chain: no rows shown yet (no market data applied)"
        if self.model.atm_row is None:
            return False, "chain: the ATM strike is outside the strike window"
        atm_strike = b.strikes[self.model.atm_strike_index]
        iv = self.model.atm_iv()
        if not np.isfinite(iv):
            return False, f"chain: ATM strike {atm_strike:g} has no finite IV"
        return True, (f"chain: {b.root.value} {b.expiry} shows {self.model.rowCount()} strikes, "
                      f"ATM {atm_strike:g} IV {iv * 100:.2f}%")
