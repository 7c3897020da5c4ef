"""The Backtest panel's config form: strategy preset and exits, the stored data to run over, fills, bad quotes,
costs, risk profile and starting cash; :meth:`BacktestForm.request` turns it into a :class:`BacktestRequest`.

The data choices come from the store (:func:`app.backtest_worker.data_range`): each stored session with its
snapshot count and dates, or a date range inside the stored span (its snapshot count is shown as the dates move).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from PySide6.QtCore import QDate, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QWidget,
)

from app.backtest_worker import (
    DEFAULT_FEES_PER_CONTRACT,
    BacktestRequest,
    StoredData,
    fees_per_contract,
    session_text,
)
from spx_core.automation.presets import PRESETS
from spx_core.backtest.marks import BadQuote
from spx_core.domain.calendar import ET
from spx_core.execution.fees import DEFAULT_FEES, FeeSchedule
from spx_core.execution.fill_model import FillMode, FillModel
from spx_core.risk.profiles import PROFILES

__all__ = ["DATE_RANGE", "NO_PROFILE", "BacktestForm"]

DATE_RANGE = "Date range (below)"
NO_PROFILE = "none (no limits)"
_FILLS = (("mid", FillMode.MID), ("mid ± fraction of the spread", FillMode.MID_OFFSET), ("natural", FillMode.NATURAL))
_BAD_QUOTES = (("skip the mark", BadQuote.SKIP, "a held leg with an untrustworthy quote keeps its last good mark"),
               ("mark from the fitted surface", BadQuote.SURFACE, "price the leg off the fitted volatility surface"),
               ("use the raw mid", BadQuote.RAW, "take the mid as quoted, even 0 x 10 (fiction on bad days)"))


def _spin(lo: float, hi: float, step: float, value: float, decimals: int = 2, suffix: str = "") -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    box.setValue(value)
    if suffix:
        box.setSuffix(suffix)
    return box


class BacktestForm(QWidget):
    """See the module docstring.

    Events (Qt signals):
        dates_changed(date, date): the date range moved (the panel counts the snapshots in it).
    """

    dates_changed = Signal(object, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("backtest_form")
        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.take_profit = _spin(0.0, 1000.0, 5.0, 50.0, 1, " % of credit")
        self.stop_loss = _spin(0.0, 1000.0, 25.0, 100.0, 1, " % of credit")
        for box in (self.take_profit, self.stop_loss):
            box.setSpecialValueText("none")  # 0 turns the exit off
        self.data = QComboBox()
        self.data.setObjectName("backtest_data")
        self.start = QDateEdit()
        self.end = QDateEdit()
        for edit in (self.start, self.end):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.dateChanged.connect(self._on_dates)
        self.data_info = QLabel("")
        self.data_info.setWordWrap(True)
        self.data_info.setObjectName("backtest_data_info")
        self.fill = QComboBox()
        for text, mode in _FILLS:
            self.fill.addItem(text, mode)
        self.fill.setCurrentIndex(1)
        self.spread_fraction = _spin(0.0, 0.5, 0.05, 0.30, 2, " × spread")
        self.bad_quote = QComboBox()
        for i, (text, choice, tip) in enumerate(_BAD_QUOTES):
            self.bad_quote.addItem(text, choice.value)
            self.bad_quote.setItemData(i, tip, 3)  # Qt.ToolTipRole
        self.commission = _spin(0.0, 10.0, 0.05, DEFAULT_FEES.commission, 2, " $/contract")
        self.fees = _spin(0.0, 10.0, 0.01, DEFAULT_FEES_PER_CONTRACT, 4, " $/contract")
        self.fees.setToolTip("exchange + clearing + regulatory fees per contract (the [costs] fees_per_contract)")
        self._costs = (self.commission.value(), self.fees.value())  # the schedule's, as last shown
        self.profile = QComboBox()
        self.profile.addItems([*PROFILES, NO_PROFILE])
        self.starting_cash = _spin(1_000.0, 1e9, 10_000.0, 100_000.0, 0, " $")
        self.starting_cash.setGroupSeparatorShown(True)
        self.name = QLineEdit()
        self.name.setPlaceholderText("preset · data (default)")
        for combo in (self.preset, self.data, self.fill, self.bad_quote, self.profile):
            # a long preset or session name must not widen the form past its column (the tooltip has it whole)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)
        self._build()
        self.preset.currentTextChanged.connect(self._on_preset)
        self.fill.currentIndexChanged.connect(self._on_fill)
        self.data.currentIndexChanged.connect(self._on_data)
        self._range = StoredData((), 0, None, None)
        self._on_preset(self.preset.currentText())
        self.set_data_range(self._range)

    def _build(self) -> None:
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Strategy preset", self.preset)
        form.addRow("Take profit", self.take_profit)
        form.addRow("Stop loss", self.stop_loss)
        form.addRow("Data", self.data)
        form.addRow("From (ET)", self.start)
        form.addRow("To (ET)", self.end)
        form.addRow(self.data_info)
        form.addRow("Fills", self.fill)
        form.addRow("Spread fraction", self.spread_fraction)
        form.addRow("Bad quotes", self.bad_quote)
        form.addRow("Commission", self.commission)
        form.addRow("Fees", self.fees)
        form.addRow("Risk profile", self.profile)
        form.addRow("Starting cash", self.starting_cash)
        form.addRow("Run name", self.name)

    # --- the store's data ----------------------------------------------------------------------------------
    def set_data_range(self, data: StoredData) -> None:
        """Offer ``data``'s sessions and bound the dates by its span (keeps the user's choice when still there)."""
        self._range = data
        kept = self.data.currentData()
        self.data.blockSignals(True)
        self.data.clear()
        self.data.addItem(DATE_RANGE, None)
        for s in data.sessions:
            self.data.addItem(f"{s.name} ({s.n_snapshots:,})", s.name)
            self.data.setItemData(self.data.count() - 1, session_text(s), 3)  # Qt.ToolTipRole
        index = self.data.findData(kept) if kept is not None else -1
        # by default the latest session: what a user just recorded is what they want to run
        self.data.setCurrentIndex(index if index >= 0 else self.data.count() - 1)
        self.data.blockSignals(False)
        if not data.empty:
            lo, hi = (QDate(d.astimezone(ET).date()) for d in (data.first, data.last))
            for edit in (self.start, self.end):
                edit.blockSignals(True)
                edit.setDateRange(lo, hi)
                edit.blockSignals(False)
            self.start.setDate(lo)
            self.end.setDate(hi)
        self._on_data()

    def set_range_count(self, text: str) -> None:
        self.data_info.setText(text)

    def _on_data(self, *_: Any) -> None:
        by_dates = self.data.currentData() is None
        self.start.setEnabled(by_dates and not self._range.empty)
        self.end.setEnabled(by_dates and not self._range.empty)
        if by_dates:
            self._on_dates()
        else:
            chosen = next(s for s in self._range.sessions if s.name == self.data.currentData())
            self.data_info.setText(session_text(chosen))

    def _on_dates(self, *_: Any) -> None:
        if self.data.currentData() is None and not self._range.empty:
            self.dates_changed.emit(self.start.date().toPython(), self.end.date().toPython())
        elif self._range.empty:
            self.data_info.setText(self._range.text())

    def _on_preset(self, name: str) -> None:
        config = PRESETS.get(name)
        if config is None:
            return
        self.take_profit.setValue(config.exits.take_profit_pct or 0.0)
        self.stop_loss.setValue(config.exits.stop_loss_pct or 0.0)
        if config.limit_profile in PROFILES:
            self.profile.setCurrentText(config.limit_profile)

    def _on_fill(self, *_: Any) -> None:
        self.spread_fraction.setEnabled(self.fill.currentData() is FillMode.MID_OFFSET)

    def set_costs(self, schedule: FeeSchedule) -> None:
        """Default the commission and fees to ``schedule`` (the paper broker's, from Settings > Costs) when it
        changed since the last call: a settings change that leaves the costs alone keeps the user's edits here."""
        costs = (schedule.commission, fees_per_contract(schedule))
        if costs != self._costs:
            self._costs = costs
            self.commission.setValue(costs[0])
            self.fees.setValue(costs[1])

    # --- the request ---------------------------------------------------------------------------------------
    def select_session(self, name: str) -> bool:
        index = self.data.findData(name)
        if index >= 0:
            self.data.setCurrentIndex(index)
        return index >= 0

    def set_fill(self, mode: FillMode) -> None:
        self.fill.setCurrentIndex(self.fill.findData(mode))

    def request(self, db_path: str) -> BacktestRequest:
        """The run the form describes (``ValueError``, one line, when it cannot be run)."""
        if self._range.empty:
            raise ValueError(self._range.text())
        session = self.data.currentData()
        start: date | None = self.start.date().toPython() if session is None else None
        end: date | None = self.end.date().toPython() if session is None else None
        mode = self.fill.currentData()
        offset = self.spread_fraction.value() if mode is FillMode.MID_OFFSET else FillModel().offset
        profile = self.profile.currentText()
        return BacktestRequest(
            db_path=db_path, preset=self.preset.currentText(), take_profit_pct=self.take_profit.value(),
            stop_loss_pct=self.stop_loss.value(), session=session, start=start, end=end,
            fill=FillModel(mode=mode, offset=offset), commission=self.commission.value(),
            fees=self.fees.value(), profile=None if profile == NO_PROFILE else profile,
            bad_quote=self.bad_quote.currentData(), starting_cash=self.starting_cash.value(),
            name=self.name.text().strip())
