"""The settings dialog's "Alerts" group: sound and desktop notification, webhook, e-mail (SMTP) and the least
severity sent out, with a "Send test alert" button.

The SMTP password is never part of :class:`~app.settings.AppSettings`: the field writes it to the system keyring
(``spx_core.risk.delivery.store_secret``) when the dialog is accepted; left empty, the stored one is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from app.settings import ALERT_SEVERITIES, AppSettings, SettingsError
from app.widgets.row_views import line_label

__all__ = ["SMTP_SECRET", "AlertSettingsForm", "delivery_settings"]

log = logging.getLogger(__name__)

#: The keyring entry of the SMTP password (service "spx-terminal"; ``spx_core.risk.delivery.SMTP_SECRET``).
SMTP_SECRET = "smtp_password"
#: Seconds closing a notifier may wait for its last deliveries (on the GUI thread: short).
CLOSE_WAIT_S = 1.0
#: How long the test button waits for the notifier's answer (ms) before saying it is still trying.
TEST_WAIT_MS = 15_000


def delivery_settings(settings: AppSettings) -> Any:
    """The notifier's :class:`~spx_core.risk.delivery.DeliverySettings` from the app settings."""
    from spx_core.risk.delivery import DeliverySettings

    return DeliverySettings(webhook_url=settings.alert_webhook_url.strip(), smtp_host=settings.alert_smtp_host.strip(),
                            smtp_port=settings.alert_smtp_port, smtp_user=settings.alert_smtp_user.strip(),
                            smtp_from=settings.alert_smtp_from.strip(), smtp_to=settings.alert_smtp_to.strip(),
                            smtp_tls=settings.alert_smtp_tls, min_severity=settings.alert_min_severity)


class AlertSettingsForm(QGroupBox):
    """Edits the ``alert_*`` settings; :meth:`changes` returns them for ``AppSettings.with_changes``."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__("Alerts", parent)
        self.setObjectName("alert_settings")
        form = QFormLayout(self)
        self.sound_check = QCheckBox("Sound on a new alert")
        self.sound_check.setChecked(settings.alert_sound)
        self.desktop_check = QCheckBox("Desktop notification")
        self.desktop_check.setChecked(settings.alert_desktop)
        self.skips_check = QCheckBox("Skipped entries")
        self.skips_check.setChecked(settings.alert_skip_notices)
        self.skips_check.setToolTip("an INFO alert for each entry the automation skips (entries, exits, hedges and "
                                    "refused orders are always notified)")
        row = QHBoxLayout()
        row.addWidget(self.sound_check)
        row.addWidget(self.desktop_check)
        row.addWidget(self.skips_check)
        form.addRow("On screen", row)
        self.webhook_edit = QLineEdit(settings.alert_webhook_url)
        self.webhook_edit.setPlaceholderText("https://... (empty: no webhook)")
        form.addRow("Webhook URL", self.webhook_edit)
        self.smtp_host_edit = QLineEdit(settings.alert_smtp_host)
        self.smtp_host_edit.setPlaceholderText("smtp.example.com (empty: no e-mail)")
        self.smtp_port_spin = QSpinBox()
        self.smtp_port_spin.setRange(1, 65535)
        self.smtp_port_spin.setValue(settings.alert_smtp_port)
        host_row = QHBoxLayout()
        host_row.addWidget(self.smtp_host_edit, 1)
        host_row.addWidget(self.smtp_port_spin)
        form.addRow("SMTP host, port", host_row)
        self.smtp_user_edit = QLineEdit(settings.alert_smtp_user)
        form.addRow("SMTP user", self.smtp_user_edit)
        self.smtp_password_edit = QLineEdit()
        self.smtp_password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.smtp_password_edit.setPlaceholderText("kept in the system keyring; empty keeps the stored one")
        form.addRow("SMTP password", self.smtp_password_edit)
        self.smtp_from_edit = QLineEdit(settings.alert_smtp_from)
        form.addRow("From", self.smtp_from_edit)
        self.smtp_to_edit = QLineEdit(settings.alert_smtp_to)
        self.smtp_to_edit.setPlaceholderText("you@example.com, desk@example.com")
        form.addRow("To", self.smtp_to_edit)
        self.smtp_tls_check = QCheckBox("STARTTLS")
        self.smtp_tls_check.setChecked(settings.alert_smtp_tls)
        self.severity_combo = QComboBox()
        self.severity_combo.addItems(ALERT_SEVERITIES)
        self.severity_combo.setCurrentText(settings.alert_min_severity)
        self.severity_combo.setToolTip("the least severity sent by webhook and e-mail (the panel lists every alert)")
        sev_row = QHBoxLayout()
        sev_row.addWidget(self.smtp_tls_check)
        sev_row.addWidget(line_label("send from"))
        sev_row.addWidget(self.severity_combo)
        form.addRow("TLS, severity", sev_row)
        self.test_button = QPushButton("Send test alert")
        self.test_button.setToolTip("send one INFO-level test alert to the webhook and e-mail above now")
        self.test_button.clicked.connect(self.send_test)
        self.test_label = line_label()
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.test_label, 1)
        form.addRow(test_row)
        self._original = settings
        self._notifier: Any = None
        self._poll = QTimer(self)
        self._poll.setInterval(200)
        self._poll.timeout.connect(self._test_outcome)
        self._waited = 0
        #: builds the notifier of the test (tests replace it); called with DeliverySettings
        self.make_notifier: Callable[[Any], Any] = _notifier

    def changes(self) -> dict[str, object]:
        return {"alert_sound": self.sound_check.isChecked(), "alert_desktop": self.desktop_check.isChecked(),
                "alert_skip_notices": self.skips_check.isChecked(),
                "alert_webhook_url": self.webhook_edit.text().strip(),
                "alert_smtp_host": self.smtp_host_edit.text().strip(), "alert_smtp_port": self.smtp_port_spin.value(),
                "alert_smtp_user": self.smtp_user_edit.text().strip(),
                "alert_smtp_from": self.smtp_from_edit.text().strip(), "alert_smtp_to": self.smtp_to_edit.text().strip(),
                "alert_smtp_tls": self.smtp_tls_check.isChecked(),
                "alert_min_severity": self.severity_combo.currentText()}

    def store_password(self) -> None:
        """Write a typed SMTP password to the keyring (on accept); an empty field keeps the stored one."""
        password = self.smtp_password_edit.text()
        if password:
            from spx_core.risk.delivery import store_secret

            store_secret(SMTP_SECRET, password)
            self.smtp_password_edit.clear()

    def send_test(self) -> None:
        """Send one test alert with the settings as typed (the password too, stored first)."""
        try:
            settings = self._original.with_changes(**self.changes())
        except SettingsError as exc:
            self.test_label.setText(str(exc))
            return
        if not (settings.alert_webhook_url or settings.alert_smtp_host):
            self.test_label.setText("nothing to send to: fill in a webhook URL or an SMTP host")
            return
        try:
            self.store_password()
            self._close_notifier()
            self._notifier = self.make_notifier(delivery_settings(settings.with_changes(alert_min_severity="info")))
            self._notifier.send(_test_alert())
        except Exception as exc:  # a keyring or settings problem: one line, the dialog stays usable
            log.exception("test alert not sent")
            self.test_label.setText(f"test alert not sent: {exc}")
            return
        self.test_label.setText("sending the test alert...")
        self._waited = 0
        self._poll.start()

    def _test_outcome(self) -> None:
        self._waited += self._poll.interval()
        results = list(getattr(self._notifier, "results", ()) or ())
        if results:
            self._poll.stop()
            self.test_label.setText("; ".join(_result_text(r) for r in results))
        elif self._waited >= TEST_WAIT_MS:
            self._poll.stop()
            self.test_label.setText("no answer yet from the webhook / mail server (still retrying; see the log)")

    def _close_notifier(self) -> None:
        if self._notifier is not None:
            self._notifier.close(timeout=CLOSE_WAIT_S)
            self._notifier = None

    def close_notifier(self) -> None:
        """Stop the test's notifier (the dialog closes)."""
        self._poll.stop()
        self._close_notifier()


def _notifier(settings: Any) -> Any:
    from spx_core.risk.delivery import Notifier

    return Notifier(settings)


def _test_alert() -> Any:
    from spx_core.risk.alerts import Alert, Severity

    return Alert(id=0, key="test", rule="test", severity=Severity.INFO,
                 message="SPX Terminal test alert: delivery works", first_ns=0, last_ns=0, count=1,
                 acknowledged_ns=None)


def _result_text(result: Any) -> str:
    """"webhook: delivered", "email: failed after 3 tries: ..." (a ``DeliveryResult``)."""
    if result.ok:
        return f"{result.channel}: delivered"
    return f"{result.channel}: failed after {result.attempts} tries: {result.error}"
