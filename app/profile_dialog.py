"""Limit profiles dialog (Risk > Limit profiles...): list the profiles, edit every field, save, revert a shipped
profile to its default, make one active.

Every :class:`~spx_core.risk.profiles.LimitProfile` field has an entry; a blank entry means "no limit" (the
profile's ``None``). Saving validates through the profile itself: a bad value shows as one red line naming the
field, and nothing is stored. The active profile is marked in the list; "Make active" switches the trading
session's guard (so every later order and decision uses it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from spx_core.risk.profiles import PROFILES, LimitProfile

__all__ = ["ProfileDialog", "open_profile_dialog"]

log = logging.getLogger(__name__)

_INTS = {"max_open_positions", "max_open_trades", "max_new_trades_per_day", "min_entry_dte",
         "concentration_min_positions"}
#: field -> the unit shown beside its entry
_UNITS = {"max_trade_delta": "$ / SPX pt", "max_trade_vega": "$ / vol pt", "max_delta": "$ / SPX pt",
          "max_gamma": "$ per 1% move", "max_vega": "$ / vol pt", "max_theta": "$ / day",
          "max_expiry_concentration_pct": "% of risk", "max_strike_concentration_pct": "% of risk",
          "concentration_min_positions": "positions", "max_open_positions": "positions", "max_open_trades": "trades",
          "max_new_trades_per_day": "trades", "max_daily_loss": "$", "max_daily_loss_pct": "% of net liq",
          "max_daily_drawdown_pct": "% of net liq", "max_leverage": "x net liq",
          "max_margin_utilisation_pct": "% of net liq", "max_position_size_pct": "% of net liq", "min_entry_dte": "days"}
ACTIVE_MARK = " (active)"


class ProfileDialog(QDialog):
    """Edits the profiles of a :class:`~spx_core.storage.risk_repo.RiskRepository`.

    ``on_activate(name)``: makes a profile active (the session's ``set_profile``; default: stored directly);
    ``on_saved(profile)``: told after a save or revert (the guard re-reads the active profile).
    """

    def __init__(self, risk: Any, *, on_activate: Callable[[str], None] | None = None,
                 on_saved: Callable[[LimitProfile], None] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Limit profiles")
        self.setObjectName("profile_dialog")
        self.risk = risk
        self._on_activate = on_activate or (lambda name: risk.set_active_profile(name, time.time_ns()))
        self._on_saved = on_saved or (lambda _profile: None)
        self.profile_list = QListWidget()
        self.profile_list.currentRowChanged.connect(self._show_current)
        form = QFormLayout()
        self.edits: dict[str, QLineEdit] = {}
        for f in fields(LimitProfile):
            if f.name in ("name", "stop_after_stop_loss"):
                continue
            edit = QLineEdit()
            edit.setObjectName(f.name)
            edit.setPlaceholderText("no limit" if f.name != "concentration_min_positions" else "required")
            self.edits[f.name] = edit
            form.addRow(f"{f.name.replace('_', ' ')} ({_UNITS[f.name]})", edit)
        self.stop_check = QCheckBox("stop for the day after a stop loss")
        form.addRow("stop after stop loss", self.stop_check)
        self.error_label = QLabel()
        self.error_label.setObjectName("profile_error")
        self.error_label.setStyleSheet("color: #ff6b6b")
        self.save_button = QPushButton("Save")
        self.revert_button = QPushButton("Revert to default")
        self.activate_button = QPushButton("Make active")
        close = QPushButton("Close")
        self.save_button.clicked.connect(self.save)
        self.revert_button.clicked.connect(self.revert)
        self.activate_button.clicked.connect(self.make_active)
        close.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        for b in (self.save_button, self.revert_button, self.activate_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)
        body = QHBoxLayout()
        body.addWidget(self.profile_list, 1)
        body.addLayout(form, 3)
        layout = QVBoxLayout(self)
        layout.addLayout(body)
        layout.addWidget(self.error_label)
        layout.addLayout(buttons)
        self._profiles: dict[str, LimitProfile] = {}
        self.reload()

    # --- reading ------------------------------------------------------------------------------------------
    def reload(self, select: str | None = None) -> None:
        """Re-read the profiles and the active one; keep (or move to) ``select``."""
        select = select or self.current_name()
        self._profiles = self.risk.profiles()
        active = self.risk.active_profile().name
        self.profile_list.blockSignals(True)
        self.profile_list.clear()
        for name in self._profiles:
            self.profile_list.addItem(name + (ACTIVE_MARK if name == active else ""))
        self.profile_list.blockSignals(False)
        names = list(self._profiles)
        self.profile_list.setCurrentRow(names.index(select) if select in names else names.index(active))
        self._show_current(self.profile_list.currentRow())

    def current_name(self) -> str | None:
        item = self.profile_list.currentItem()
        return item.text().removesuffix(ACTIVE_MARK) if item is not None else None

    def _show_current(self, _row: int) -> None:
        name = self.current_name()
        if name is None:
            return
        profile = self._profiles[name]
        for field_name, edit in self.edits.items():
            value = getattr(profile, field_name)
            edit.setText("" if value is None else f"{value:g}")
        self.stop_check.setChecked(profile.stop_after_stop_loss)
        self.revert_button.setEnabled(name in PROFILES and profile != PROFILES[name])
        self.error_label.clear()

    def edited_profile(self) -> LimitProfile:
        """The profile the entries describe; raises ValueError (one line naming the field)."""
        values: dict[str, Any] = {}
        for name, edit in self.edits.items():
            text = edit.text().strip().replace(",", "")
            if not text:
                values[name] = None
                continue
            try:
                values[name] = int(text) if name in _INTS else float(text)
            except ValueError:
                kind = "a whole number" if name in _INTS else "a number"
                raise ValueError(f"{name}: {edit.text().strip()!r} is not {kind}; leave it blank for no limit") \
                    from None
        return LimitProfile(self.current_name() or "", stop_after_stop_loss=self.stop_check.isChecked(), **values)

    # --- actions ------------------------------------------------------------------------------------------
    def save(self) -> bool:
        try:
            profile = self.edited_profile()
        except ValueError as exc:
            self.error_label.setText(str(exc))
            return False
        self.risk.save_profile(profile, time.time_ns())
        log.info("risk: limit profile %r saved", profile.name)
        self._on_saved(profile)
        self.reload(profile.name)
        return True

    def revert(self) -> None:
        name = self.current_name()
        if name is None:
            return
        self.risk.delete_profile(name)
        self._on_saved(PROFILES.get(name, self._profiles[name]))
        self.reload(name)

    def make_active(self) -> None:
        name = self.current_name()
        if name is None:
            return
        try:
            self._on_activate(name)
        except ValueError as exc:
            self.error_label.setText(str(exc))
            return
        self.reload(name)


def open_profile_dialog(session: Any | None, parent: QWidget | None = None) -> ProfileDialog | None:
    """The dialog on the trading session's guard (modal); one line instead when no order service runs."""
    guard = getattr(session, "guard", None)
    if guard is None:
        QMessageBox.information(parent, "Limit profiles", "Limit profiles live in the trading database: open a "
                                                          "database (File > Settings) so the order service starts.")
        return None
    dialog = ProfileDialog(guard.risk_repo, on_activate=session.set_profile,
                           on_saved=lambda _p: (guard.reload(), session.refresh_portfolio()), parent=parent)
    dialog.exec()
    return dialog
