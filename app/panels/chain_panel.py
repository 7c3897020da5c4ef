"""Option chain panel: underlying (SPX / SPY) and expiry selectors, calls | strike | puts table, strike window,
column chooser. SPY comes as the companion of the source's batches (the simulator lists it); its IVs and greeks
are the American model's.

The header shows the underlying, the expiry's forward and discount factor (the surface's own, see
``spx_core.surface.served``), ATM IV, the expected move (ATM straddle), time to expiry (h:mm on the
expiry day) and the call/put volume and open-interest totals. IVs and greeks of quotes that pin no
time value (zero bid, price at intrinsic) come from the OTM side or the fitted smile and are shown in
italics with a tooltip saying so. Right-click: copy, copy row, export CSV, re-centre, columns; Ctrl+C
copies the selection as tab-separated text. The chosen expiry is remembered (QSettings).
Strategy builder: Ctrl-click a bid (sell) or ask (buy) to add or remove that leg; right-click "Add to
builder (buy/sell)"; the builder's legs are framed in the table.
Order ticket: double-click a quote to trade that contract (the bid sells, any other cell of it buys).

Events (Qt signals):
    contract_selected(OptionContract): the user selected a call or put cell.
    strike_window_changed(int): the user changed the number of strikes shown (for settings).
    columns_changed(list[str]): the user changed the visible columns (ChainField names, for settings).
    leg_toggled(OptionContract, int): Ctrl-click on a bid (-1) or ask (+1): toggle that builder leg.
    leg_added(OptionContract, int): "Add to builder (buy)" (+1) or "(sell)" (-1) from the context menu.

Feeding (:class:`~app.panels.base.LivePanel`): ``on_batch`` only buffers; a 5 Hz refresh computes
the selected expiry's IVs and greeks (``spx_core.surface.served``) in a worker thread and applies
the result on the GUI thread, so a burst of batches costs one table update. (Each refresh also repaints
the fading bid/ask flashes: at 10 Hz those frames alone cost ~0.05 of a core at 1x.)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QModelIndex, QPoint, Qt, Signal, Slot
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QMenu, QMessageBox, QPushButton,
                               QSizePolicy, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from app.models.chain_data import VISIBLE_FIELDS, ChainField
from app.models.chain_model import FIELD_LABELS, ChainModel
from app.models.chain_text import csv_header, csv_rows, write_csv
from app.panels.base import Job, LivePanel
from app.panels.chain_table import ChainTable, SideCaptions
from spx_core.domain import ET, ChainSnapshot, ExpirySlice, Root, Settlement, default_calendar
from spx_core.marketdata.source import QuoteBatch

if TYPE_CHECKING:
    from app.context import AppContext
    from app.settings import AppSettings
    from spx_core.surface.served import ServedChain

__all__ = ["ChainPanel", "DEFAULT_FIELDS", "UNDERLYINGS", "compute_expiry_chain", "expiry_label", "time_left"]

log = logging.getLogger(__name__)

DEFAULT_FIELDS: tuple[ChainField, ...] = (ChainField.BID_SIZE, ChainField.BID, ChainField.ASK, ChainField.ASK_SIZE,
                                          ChainField.IV, ChainField.DELTA, ChainField.GAMMA, ChainField.THETA,
                                          ChainField.THETA_CLOSE, ChainField.VOLUME, ChainField.OI)
#: Underlyings the selector offers: the source's primary chain first, then companions it may carry.
UNDERLYINGS: tuple[str, ...] = ("SPX", "SPY")
#: QSettings key of the chosen expiry ("SPXW 2024-03-15"), restored on the next start.
EXPIRY_SETTING = "chain/expiry"


@dataclass(frozen=True, slots=True, eq=False)
class _ChainResult:
    key: tuple[Root, date]
    snapshot: ChainSnapshot
    served: ServedChain
    changed: np.ndarray | None
    seconds: float


def compute_expiry_chain(snapshot: ChainSnapshot, key: tuple[Root, date], changed: np.ndarray | None,
                         previous: ServedChain | None = None,
                         reference: ChainSnapshot | None = None) -> _ChainResult | None:
    """Worker-thread job: one expiry's served IVs/greeks (None if the expiry is gone).

    The forward and discount factor are implied from the whole snapshot (the surface's numbers);
    ``previous`` (the last result of this expiry) lends its slice fit (see ``serve_expiry``).
    ``reference``: for an American chain (SPY), the European chain of the same instant (SPX) whose parity
    gives the discount factor (``spx_core.surface.chain_iv.american_forward_config``); SPY's IVs and greeks
    are the American model's, its quotes in pennies.
    """
    from spx_core.surface.served import serve_expiry  # scipy-heavy: imported off the start-up path

    t0 = time.perf_counter()
    slices = snapshot.expiries()
    sl = next((s for s in slices if (s.root, s.expiry) == key), None)
    if sl is None:
        return None
    served = serve_expiry(snapshot, sl.root, sl.expiry, slices=slices, config=_serve_config(snapshot, sl, reference),
                          previous=previous if previous is not None and previous.key == key else None)
    sub_changed = None
    if changed is not None:
        sub_changed = changed[(changed >= sl.start) & (changed < sl.stop)] - sl.start
    return _ChainResult(key, served.snapshot, served, sub_changed, time.perf_counter() - t0)


def _serve_config(snapshot: ChainSnapshot, sl: ExpirySlice, reference: ChainSnapshot | None):
    from spx_core.surface.chain_iv import AMERICAN_ROOTS, american_forward_config
    from spx_core.surface.served import ServeConfig

    if sl.root not in AMERICAN_ROOTS:
        return None
    t = default_calendar().time_to_expiry(snapshot.time, sl.expiry, sl.settlement)
    forward = american_forward_config(reference, t) if reference is not None else None
    return ServeConfig(tick_small=0.01, tick_large=0.01, **({"forward": forward} if forward else {}))


def time_left(years: float) -> str:
    """``h:mm`` of a time to expiry in ACT/365 years ("expired" at or below zero)."""
    if not years > 0:
        return "expired"
    minutes = int(round(years * 365.0 * 24.0 * 60.0))
    return f"{minutes // 60}:{minutes % 60:02d}"


def expiry_label(sl: ExpirySlice, now: datetime) -> str:
    """``Fri 2024-01-19 · 12 DTE · SPX AM``; a same-day expiry shows the time left: ``0DTE 1:25 left``."""
    today = now.astimezone(ET).date()
    dte = (sl.expiry - today).days
    head = f"{sl.expiry:%a %Y-%m-%d}"
    if dte == 0 and sl.settlement is Settlement.PM:
        left = default_calendar().time_to_expiry(now, sl.expiry, sl.settlement)
        return f"{head}  ·  0DTE {time_left(left)} left  ·  {sl.root.value} {sl.settlement.value}"
    return f"{head}  ·  {dte} DTE  ·  {sl.root.value} {sl.settlement.value}"


def _num(value: float, spec: str, suffix: str = "") -> str:
    """A header number, "–" when it is not known (e.g. no two-sided ATM quote for the straddle)."""
    return f"{value:{spec}}{suffix}" if np.isfinite(value) else "–"


def _key_text(key: tuple[Root, date]) -> str:
    return f"{key[0].value} {key[1].isoformat()}"


def _parse_key(text: Any) -> tuple[Root, date] | None:
    try:
        root, day = str(text).split()
        return Root(root), date.fromisoformat(day)
    except (ValueError, TypeError):
        return None


class ChainPanel(LivePanel):
    contract_selected = Signal(object)
    strike_window_changed = Signal(int)
    columns_changed = Signal(list)
    leg_toggled = Signal(object, int)
    leg_added = Signal(object, int)

    def __init__(self, parent: QWidget | None = None, *, strike_window: int = 30,
                 fields: tuple[ChainField, ...] | list[ChainField] = DEFAULT_FIELDS, refresh_hz: float = 5.0) -> None:
        super().__init__(parent, job_name="chain IV", refresh_seconds=1.0 / refresh_hz)
        self.setObjectName("chain_panel")
        self.model = ChainModel(fields=fields, window=strike_window, parent=self)
        self._fields = [f for f in VISIBLE_FIELDS if f in set(fields)]
        self._key: tuple[Root, date] | None = None
        self._underlying = UNDERLYINGS[0]  # the chain shown: the source's primary (SPX) or a companion (SPY)
        self._served: ServedChain | None = None  # the last result: its slice fit is reused
        self._today_items: list[int] = []  # selector items expiring today (their time left is relabelled)
        self._build_ui(strike_window)

    # --- UI ---------------------------------------------------------------------------------------
    def _build_ui(self, strike_window: int) -> None:
        self.expiry_combo = QComboBox()
        self.expiry_combo.setMinimumContentsLength(30)
        self.expiry_combo.setToolTip("Expiry: date, days to expiry (h:mm left on the day), root and settlement "
                                     "(AM = SOQ, PM = close)")
        self.expiry_combo.currentIndexChanged.connect(self._on_expiry_chosen)
        self.window_spin = QSpinBox()
        self.window_spin.setRange(5, 400)
        self.window_spin.setValue(strike_window)
        self.window_spin.setSuffix(" strikes")
        self.window_spin.setToolTip("How many strikes around the money to show")
        self.window_spin.valueChanged.connect(self.set_strike_window)
        self.recenter_button = QPushButton("Re-centre")
        self.recenter_button.setToolTip("Centre the strike window on the at-the-money strike and scroll to it")
        self.recenter_button.clicked.connect(self.recenter)
        self.columns_menu = QMenu("Columns", self)
        self._column_actions: dict[ChainField, QAction] = {}
        for field in VISIBLE_FIELDS:
            action = QAction(FIELD_LABELS[field], self.columns_menu, checkable=True)
            action.setChecked(field in self._fields)
            action.toggled.connect(self._on_columns_toggled)
            self.columns_menu.addAction(action)
            self._column_actions[field] = action
        self.columns_button = QToolButton()
        self.columns_button.setText("Columns")
        self.columns_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.columns_button.setMenu(self.columns_menu)
        self.info_label = QLabel("waiting for market data…")
        self.totals_label = QLabel("Volume –     Open interest –")  # not empty: the table must not move
        self.info_label.setToolTip("EM: expected move, the ATM straddle (call mid + put mid at the strike nearest "
                                   "the forward). Forward and DF are the volatility surface's for this expiry.")
        for label in (self.info_label, self.totals_label):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            # a new text every tick must not re-run the panel's layout (that cost ~1 ms a tick)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.underlying_combo = QComboBox()
        self.underlying_combo.addItems(UNDERLYINGS)
        self.underlying_combo.setToolTip("Underlying: SPX (European; Black-76 IVs) or SPY (American; IVs and greeks "
                                         "from the Bjerksund-Stensland 2002 model)")
        self.underlying_combo.currentTextChanged.connect(self.set_underlying)
        top = QHBoxLayout()
        top.addWidget(self.underlying_combo)
        top.addWidget(QLabel("Expiry"))
        top.addWidget(self.expiry_combo, 1)
        top.addWidget(self.window_spin)
        top.addWidget(self.recenter_button)
        top.addWidget(self.columns_button)
        self.source_label = QLabel()  # what a live source streams ("IB: 98 of 240 contracts subscribed")
        self.source_label.setObjectName("chain_source_label")
        self.source_label.setToolTip("Contracts the IB source streams: the strike window of the nearest expiries, "
                                     "cut to the market-data line limit")
        self.source_label.setVisible(False)
        top.addWidget(self.source_label)
        self.table = ChainTable(self.model)
        self.table.selectionModel().currentChanged.connect(self._on_current_changed)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._show_context_menu)
        self.table.leg_clicked.connect(self.leg_toggled)
        self.table.doubleClicked.connect(self._trade_cell)
        self.captions = SideCaptions(self.table)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addLayout(top)
        layout.addWidget(self.info_label)
        layout.addWidget(self.totals_label)
        layout.addWidget(self.captions)
        layout.addWidget(self.table, 1)
        self.table.fit_columns()

    def _show_context_menu(self, pos: QPoint) -> None:
        self.context_menu(self.table.indexAt(pos)).popup(self.table.viewport().mapToGlobal(pos))

    def context_menu(self, index: QModelIndex) -> QMenu:
        """Copy, copy row, export CSV, re-centre, columns (``index``: the cell right-clicked)."""
        menu = QMenu(self)
        menu.addAction(self.table.copy_action)
        row = QAction("Copy &row", menu)
        row.setEnabled(index.isValid())
        row.triggered.connect(lambda: self._copy_row(index.row()))
        menu.addAction(row)
        export = QAction("&Export CSV…", menu)
        export.setEnabled(self.model.block is not None)
        export.triggered.connect(self._export_dialog)
        menu.addAction(export)
        menu.addSeparator()
        recenter = QAction("Re-&centre", menu)
        recenter.triggered.connect(self.recenter)
        menu.addAction(recenter)
        menu.addMenu(self.columns_menu)
        self._add_builder_actions(menu, index)
        return menu

    def _add_builder_actions(self, menu: QMenu, index: QModelIndex) -> None:
        contract = self.model.contract_at(index)
        if contract is None or self.context is None:  # no builder to add to outside the main window
            return
        menu.addSeparator()
        for text, ratio in (("Add to builder (&buy)", 1), ("Add to builder (&sell)", -1)):
            action = QAction(f"{text}: {contract}", menu)
            action.triggered.connect(lambda _=False, r=ratio: self.leg_added.emit(contract, r))
            menu.addAction(action)

    def _copy_row(self, row: int) -> None:
        QGuiApplication.clipboard().setText(self.table.row_text(row))

    def _export_dialog(self) -> None:
        b = self.model.block
        stamp = self.model.snapshot.time.astimezone(ET)
        name = f"{b.root.value}_{b.expiry:%Y%m%d}_{stamp:%Y%m%d_%H%M%S}.csv"
        path, _ = QFileDialog.getSaveFileName(self, "Export chain", str(Path.home() / name), "CSV files (*.csv)")
        if path:
            ok, message = self.export_csv(path)
            if not ok:  # the header line is rewritten on the next tick: say it where it stays
                QMessageBox.warning(self, "Export chain", message)

    def export_csv(self, path: str | Path) -> tuple[bool, str]:
        """Write the shown chain (strike window, visible columns) to ``path``: (ok, one-line outcome)."""
        b = self.model.block
        if b is None:
            return False, "export: no chain shown yet; wait for market data"
        lo, hi = self.model.window()
        try:
            write_csv(path, csv_header(self.model.columns), csv_rows(b, self.model.columns, lo, hi))
        except OSError as exc:
            message = f"export failed: cannot write {path} ({exc.strerror or exc}); choose another folder"
        else:
            message = f"exported {hi - lo} strikes of {b.root.value} {b.expiry} to {path}"
        self.status_message(message)
        return message.startswith("exported"), message

    # --- LivePanel hooks ---------------------------------------------------------------------------
    @classmethod
    def create(cls, context: AppContext) -> ChainPanel:
        return cls(strike_window=context.settings.strike_window, fields=context.settings.chain_fields)

    def bind(self, context: AppContext) -> None:
        super().bind(context)
        self.contract_selected.connect(context.select_contract)
        self.computed.connect(self._publish_expiry)
        self.strike_window_changed.connect(lambda n: context.request_settings(strike_window=n))
        self.columns_changed.connect(lambda names: context.request_settings(chain_columns=tuple(names)))
        context.settings_changed.connect(self._follow_settings)
        self._bind_builder(context)

    def _bind_builder(self, context: AppContext) -> None:
        from app.models.builder_model import toggled, with_leg

        self.leg_toggled.connect(lambda c, r: context.set_legs(toggled(context.legs, c, r)))
        self.leg_added.connect(lambda c, r: context.set_legs(with_leg(context.legs, c, r)))
        context.legs_changed.connect(self.table.set_marked_legs)
        self.table.set_marked_legs(context.legs)

    def _publish_expiry(self) -> None:
        if self._key is not None and self.context is not None:
            self.context.select_expiry(self._key)  # the expiry actually shown, once its chain is on screen

    def _follow_settings(self, settings: AppSettings) -> None:
        self.set_strike_window(settings.strike_window)
        self.set_visible_fields(settings.chain_fields)

    def menu_actions(self) -> list[QAction]:
        recenter = QAction("&Re-centre chain", self)
        recenter.setShortcut("Ctrl+R")
        recenter.triggered.connect(self.recenter)
        return [recenter]

    def on_tick(self) -> None:
        self.model.advance_flash()

    def job(self, batch: QuoteBatch) -> Job | None:
        primary, batch = batch, batch.for_underlying(self._underlying)
        if batch is None:
            self.status_message(f"{self._underlying}: this source lists no {self._underlying} options "
                                f"(the simulator does); choose {primary.snapshot.underlying}")
            return None
        # a companion's changed rows are not coalesced across batches: re-read its rows
        changed: np.ndarray | None = batch.changed if batch is primary else None
        if primary.layout_changed or batch.layout_changed or self.expiry_combo.count() == 0:
            self._refresh_expiries(batch.snapshot)
            changed = None  # re-read everything
        if self._key is None:
            return None
        previous = self._served if self._served is not None and self._served.key == self._key else None
        reference = primary.snapshot if batch is not primary else None
        return Job(compute_expiry_chain, (batch.snapshot, self._key, changed, previous, reference))

    def underlying(self) -> str:
        return self._underlying

    @Slot(str)
    def set_underlying(self, name: str) -> None:
        """Show the chain of ``name`` ("SPX" or "SPY"); its expiries replace the selector's."""
        if name not in UNDERLYINGS:
            raise ValueError(f"underlying {name!r} is not one of {UNDERLYINGS}")
        if name != self.underlying_combo.currentText():
            self.underlying_combo.setCurrentText(name)  # re-enters through currentTextChanged
            return
        if name == self._underlying:
            return
        self._underlying, self._key, self._served = name, None, None
        self.expiry_combo.blockSignals(True)
        self.expiry_combo.clear()
        self.expiry_combo.blockSignals(False)
        self.refresh(full=True)

    def status_message(self, text: str) -> None:
        self.info_label.setText(text)

    def set_source_note(self, text: str) -> None:
        """What the source streams, beside the selectors ("" hides it: sources that list every contract)."""
        if text != self.source_label.text():
            self.source_label.setText(text)
        self.source_label.setVisible(bool(text))

    def show_result(self, result: _ChainResult | None) -> None:
        if result is None or result.key != self._key or result.snapshot.underlying != self._underlying:
            return
        self._served = result.served
        self.model.set_chain(result.snapshot, result.served, changed=result.changed)
        self.table.fit_columns(grow_only=True)
        self._update_info()
        self._relabel_today(result.snapshot.time)

    def _refresh_expiries(self, snapshot: ChainSnapshot) -> None:
        slices = snapshot.expiries()
        now = snapshot.time
        today = now.astimezone(ET).date()
        keys = [(s.root, s.expiry) for s in slices]
        current = self._key if self._key is not None else _parse_key(_settings().value(EXPIRY_SETTING))
        self.expiry_combo.blockSignals(True)
        self.expiry_combo.clear()
        for s in slices:
            self.expiry_combo.addItem(expiry_label(s, now), ((s.root, s.expiry), s))
        self._today_items = [i for i, s in enumerate(slices) if s.expiry == today]
        if current not in keys:
            later = [i for i, s in enumerate(slices) if (s.expiry - today).days >= 1]
            current = keys[later[0] if later else 0] if keys else None
        if current is not None:
            self.expiry_combo.setCurrentIndex(keys.index(current))
        self.expiry_combo.blockSignals(False)
        self._key = current

    def _relabel_today(self, now: datetime) -> None:
        """Same-day expiries show the time left as h:mm: keep it current."""
        for i in self._today_items:
            data = self.expiry_combo.itemData(i)
            if data is not None:
                self.expiry_combo.setItemText(i, expiry_label(data[1], now))

    def _on_expiry_chosen(self, i: int) -> None:
        data = self.expiry_combo.itemData(i)
        if data is None or data[0] == self._key:
            return
        self._key = data[0]
        _settings().setValue(EXPIRY_SETTING, _key_text(self._key))
        self.refresh(full=True)

    def _update_info(self) -> None:
        b = self.model.block
        if b is None:
            return
        iv = self.model.atm_iv()
        stamp = self.model.snapshot.time.astimezone(ET)
        move, move_frac = b.expected_move()
        t_text = f"{time_left(b.t)} left" if b.t * 365.0 < 1.0 else f"{b.t * 365.0:.2f} d"
        style = "   American" if b.root.value == "SPY" else ""
        self.info_label.setText(
            f"{self.model.snapshot.underlying} {b.underlying:,.2f}{style}   Fwd {b.forward:,.2f}   ATM IV {_num(iv * 100, '.2f', '%')}   "
            f"EM ±{_num(move, ',.2f')} ({_num(move_frac * 100, '.2f', '%')})   T {t_text}   DF {b.discount:.5f}   "
            f"{stamp:%H:%M:%S} ET")
        call_vol, put_vol = b.side_totals(ChainField.VOLUME)
        call_oi, put_oi = b.side_totals(ChainField.OI)
        ratio = f"{put_vol / call_vol:.2f}" if call_vol > 0 else "–"
        self.totals_label.setText(f"Volume  C {call_vol:,.0f} / P {put_vol:,.0f}  (P/C {ratio})     "
                                  f"Open interest  C {call_oi:,.0f} / P {put_oi:,.0f}     (whole expiry)")

    # --- user actions -----------------------------------------------------------------------------
    def recenter(self) -> None:
        """Centre the strike window on the ATM strike and scroll the ATM row to the middle of the view."""
        self.model.recenter()  # a reset: the table scrolls to the ATM row after it

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

    def _trade_cell(self, index: QModelIndex) -> None:
        """Double-click: the contract to the order ticket, sold on its bid, bought on any other cell."""
        contract = self.model.contract_at(index)
        if contract is None or self.context is None:
            return
        if QGuiApplication.keyboardModifiers() & Qt.KeyboardModifier.ControlModifier:
            return  # a fast Ctrl-click pair edits the builder's legs, it is not a trade
        field = self.model.columns[index.column()][1]
        self.context.trade_contract(contract, "sell" if field == ChainField.BID else "buy")

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        contract = self.model.contract_at(current)
        if contract is not None:
            self.contract_selected.emit(contract)

    def selected_expiry(self) -> tuple[Root, date] | None:
        return self._key

    def select_expiry(self, key: tuple[Root, date]) -> None:
        for i in range(self.expiry_combo.count()):
            data = self.expiry_combo.itemData(i)
            if data is not None and data[0] == key:
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


def _settings():
    from app.settings import qsettings  # the app's INI file beside the database

    return qsettings()
