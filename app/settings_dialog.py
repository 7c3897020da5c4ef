"""Settings dialog: database, simulator seed and speed, strike window, visible chain columns, theme, and where
TWS / IB Gateway listens for the IB market-data source."""

from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QGridLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout,
                               QWidget)

from app.models.chain_data import VISIBLE_FIELDS
from app.settings import SPEEDS, THEMES, AppSettings, SettingsError

__all__ = ["SettingsDialog"]


class SettingsDialog(QDialog):
    """Edits an :class:`AppSettings`; :meth:`result_settings` returns the validated new value."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setObjectName("settings_dialog")
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
        self.ib_host_edit = QLineEdit(settings.ib_host)
        self.ib_port_spin = QSpinBox()
        self.ib_port_spin.setRange(1, 65535)
        self.ib_port_spin.setValue(settings.ib_port)
        self.ib_port_spin.setToolTip("TWS paper 7497, IB Gateway paper 4002 (live ports are refused)")
        self.ib_client_spin = QSpinBox()
        self.ib_client_spin.setRange(0, 2**31 - 1)
        self.ib_client_spin.setValue(settings.ib_client_id)
        self.ib_client_spin.setToolTip("API client id of the market-data connection: unique among TWS's clients")
        ib_row = QHBoxLayout()
        for label, widget in (("host", self.ib_host_edit), ("port", self.ib_port_spin),
                              ("client id", self.ib_client_spin)):
            ib_row.addWidget(QLabel(label))
            ib_row.addWidget(widget, 1 if widget is self.ib_host_edit else 0)
        form.addRow("IB (TWS / Gateway)", ib_row)
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #ff6b6b")
        self.note = QLabel("Database and seed changes take effect when the source restarts.")
        self.note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self._original = settings

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Database file", self.db_edit.text(),
                                              "SQLite (*.sqlite *.db);;All files (*)",
                                              options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.db_edit.setText(path)

    def result_settings(self) -> AppSettings:
        """The edited settings; raises SettingsError naming the bad field."""
        return self._original.with_changes(  # settings this dialog does not show are kept as they were
            db_path=self.db_edit.text().strip(), seed=self.seed_spin.value(),
            speed=float(self.speed_combo.currentData()), strike_window=self.window_spin.value(),
            chain_columns=tuple(name for name, box in self.column_checks.items() if box.isChecked()),
            theme=self.theme_combo.currentText(), ib_host=self.ib_host_edit.text().strip(),
            ib_port=self.ib_port_spin.value(), ib_client_id=self.ib_client_spin.value())

    def accept(self) -> None:
        try:
            self.result_settings()
        except SettingsError as exc:
            self.error_label.setText(str(exc))
            return
        super().accept()
