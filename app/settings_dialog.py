"""Settings dialog: database, simulator seed and speed, strike window, visible chain columns, theme, and where
orders go (broker; the paper account's cash, fill model and latency; TWS / IB Gateway and the live switch), and
where alerts go (:class:`~app.alert_settings_form.AlertSettingsForm`, beside the rest) and what orders cost on the
paper broker (:class:`~app.settings_costs.CostSettingsForm`, under the alerts)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.alert_settings_form import AlertSettingsForm
from app.models.chain_data import VISIBLE_FIELDS
from app.settings import (
    BROKERS,
    FILL_MODELS,
    SPEEDS,
    THEMES,
    AppSettings,
    SettingsError,
)
from app.settings_costs import CostSettingsForm

__all__ = ["SettingsDialog"]


class SettingsDialog(QDialog):
    """Edits an :class:`AppSettings`; :meth:`result_settings` returns the validated new value."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setObjectName("settings_dialog")
        self._original = settings
        form = QFormLayout()
        self.db_edit = QLineEdit(settings.db_path)
        self.db_edit.setPlaceholderText("default: spx_terminal.sqlite in the user data folder")
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.db_edit, 1)
        row.addWidget(browse)
        form.addRow("Database", row)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setValue(settings.seed)
        form.addRow("Simulator seed", self.seed_spin)
        self.speed_combo = QComboBox()
        for s in SPEEDS:
            self.speed_combo.addItem(f"{s:g}x", s)
        self.speed_combo.setCurrentIndex(self.speed_combo.findData(settings.speed))
        form.addRow("Simulator speed", self.speed_combo)
        self.window_spin = QSpinBox()
        self.window_spin.setRange(4, 400)
        self.window_spin.setValue(settings.strike_window)
        self.window_spin.setSuffix(" strikes")
        form.addRow("Strike window", self.window_spin)
        grid = QGridLayout()
        self.column_checks: dict[str, QCheckBox] = {}
        for i, f in enumerate(VISIBLE_FIELDS):
            box = QCheckBox(f.name.title() if f.name not in ("IV", "OI") else f.name)
            box.setChecked(f.name in settings.chain_columns)
            self.column_checks[f.name] = box
            grid.addWidget(box, i // 5, i % 5)
        form.addRow("Chain columns", grid)
        self.theme_combo = QComboBox()
        self.theme_combo.addItems(THEMES)
        self.theme_combo.setCurrentText(settings.theme)
        form.addRow("Theme", self.theme_combo)
        self._trading_rows(form, settings)
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #ff6b6b")
        self.note = QLabel("Database and seed changes take effect when the source restarts.")
        self.note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        self.alerts = AlertSettingsForm(settings)
        self.costs = CostSettingsForm(settings)
        right = QVBoxLayout()
        right.addWidget(self.alerts)
        right.addWidget(self.costs)
        right.addStretch(1)
        columns = QHBoxLayout()  # side by side: one column of every row would not fit a 720 px screen
        columns.addLayout(form, 3)
        columns.addLayout(right, 2)
        layout.addLayout(columns)
        layout.addWidget(self.note)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)

    def _trading_rows(self, form: QFormLayout, settings: AppSettings) -> None:
        self.broker_combo = QComboBox()
        self.broker_combo.addItems(BROKERS)
        self.broker_combo.setCurrentText(settings.broker)
        self.broker_combo.setToolTip("paper: the in-process paper broker on the market shown; ib: Interactive "
                                     "Brokers through TWS or IB Gateway (below)")
        form.addRow("Broker", self.broker_combo)
        self.cash_spin = QDoubleSpinBox()
        self.cash_spin.setRange(1.0, 1e9)
        self.cash_spin.setDecimals(0)
        self.cash_spin.setPrefix("$")
        self.cash_spin.setValue(settings.starting_cash)
        form.addRow("Paper starting cash", self.cash_spin)
        self.fill_combo = QComboBox()
        self.fill_combo.addItems(FILL_MODELS)
        self.fill_combo.setCurrentText(settings.fill_model)
        form.addRow("Paper fill model", self.fill_combo)
        self.offset_spin = QDoubleSpinBox()
        self.offset_spin.setRange(0.0, 0.5)
        self.offset_spin.setSingleStep(0.05)
        self.offset_spin.setValue(settings.fill_offset)
        self.offset_spin.setToolTip("mid_offset: the fraction of each leg's spread paid beyond mid (0.5 = natural)")
        form.addRow("Mid offset (of the spread)", self.offset_spin)
        self.latency_spin = QSpinBox()
        self.latency_spin.setRange(0, 60_000)
        self.latency_spin.setSuffix(" ms")
        self.latency_spin.setValue(settings.latency_ms)
        form.addRow("Paper latency", self.latency_spin)
        self.ib_host_edit = QLineEdit(settings.ib_host)
        self.ib_port_spin = QSpinBox()
        self.ib_port_spin.setRange(1, 65535)
        self.ib_port_spin.setValue(settings.ib_port)
        self.ib_port_spin.setToolTip("TWS paper 7497, IB Gateway paper 4002 (live: 7496 / 4001)")
        self.ib_client_spin = QSpinBox()
        self.ib_client_spin.setRange(0, 2**31 - 1)
        self.ib_client_spin.setValue(settings.ib_client_id)
        ib_row = QHBoxLayout()
        for label, widget in (("host", self.ib_host_edit), ("port", self.ib_port_spin),
                              ("client id", self.ib_client_spin)):
            ib_row.addWidget(QLabel(label))
            ib_row.addWidget(widget)
        form.addRow("IB (TWS / Gateway)", ib_row)
        self.ib_account_edit = QLineEdit(settings.ib_account)
        self.ib_account_edit.setPlaceholderText("the account TWS manages")
        form.addRow("IB account", self.ib_account_edit)
        self.live_check = QCheckBox("Enable live trading (real money)")
        self.live_check.setChecked(settings.ib_live_enabled)
        self.live_edit = QLineEdit(settings.ib_live_confirmation)
        from spx_core.execution.ib.settings import (
            LIVE_CONFIRMATION,  # (no IB client library is loaded by it)
        )

        self.live_edit.setPlaceholderText(f"type {LIVE_CONFIRMATION} to confirm")
        live_row = QHBoxLayout()
        live_row.addWidget(self.live_check)
        live_row.addWidget(self.live_edit, 1)
        form.addRow("IB live", live_row)
        self.close_all_check = QCheckBox("Close all positions when the breaker trips")
        self.close_all_check.setChecked(settings.close_all_on_breaker)
        self.close_all_check.setToolTip("the circuit breaker (daily loss limit of the active profile) always cancels "
                                        "working orders; this also sends closing orders for every open trade")
        form.addRow("Circuit breaker", self.close_all_check)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Database file", self.db_edit.text(),
                                              "SQLite (*.sqlite *.db);;All files (*)",
                                              options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.db_edit.setText(path)

    def result_settings(self) -> AppSettings:
        """The edited settings; raises SettingsError naming the bad field."""
        # from the original: a field this dialog does not edit keeps its value
        return self._original.with_changes(
            db_path=self.db_edit.text().strip(), seed=self.seed_spin.value(),
            speed=float(self.speed_combo.currentData()), strike_window=self.window_spin.value(),
            chain_columns=tuple(name for name, box in self.column_checks.items() if box.isChecked()),
            theme=self.theme_combo.currentText(), broker=self.broker_combo.currentText(),
            starting_cash=float(self.cash_spin.value()), fill_model=self.fill_combo.currentText(),
            fill_offset=round(float(self.offset_spin.value()), 4), latency_ms=self.latency_spin.value(),
            ib_host=self.ib_host_edit.text().strip(), ib_port=self.ib_port_spin.value(),
            ib_client_id=self.ib_client_spin.value(), ib_account=self.ib_account_edit.text().strip(),
            ib_live_enabled=self.live_check.isChecked(), ib_live_confirmation=self.live_edit.text(),
            **self.alerts.changes(), **self.costs.changes(),
            close_all_on_breaker=self.close_all_check.isChecked())

    def accept(self) -> None:
        try:
            self.result_settings()
        except SettingsError as exc:
            self.error_label.setText(str(exc))
            return
        try:
            self.alerts.store_password()
        except Exception as exc:  # no usable keyring: say so; the other settings are not applied either
            self.error_label.setText(f"SMTP password not stored: {exc}; clear the field or set up a keyring")
            return
        self.alerts.close_notifier()
        super().accept()

    def reject(self) -> None:
        self.alerts.close_notifier()
        super().reject()
