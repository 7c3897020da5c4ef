"""Alerts on a real session (paper broker, simulated market, SQLite file): a rejected order raises an alert that is
stored, delivered once and listed; repeats fold into one row; acknowledge one / all; the status bar indicator;
the sound and desktop toggles persist; the settings' delivery fields."""

from __future__ import annotations

import dataclasses

import pytest

from app.context import AppContext
from app.models.alerts_model import ALERT_COLUMNS
from app.ops_session import OpsSession
from app.panels.alerts_panel import AlertsPanel
from app.self_test_trading import sample_vertical
from app.settings import AppSettings, SettingsError, load_settings, save_settings
from app.status_bar import TerminalStatusBar
from spx_core.risk.alerts import AlertDraft, Severity
from tests.app.trading_factory import drive, session_on, sim_market


class FakeDesktop:
    """Records what would pop up (offscreen has no tray); the real one is tested in test_ops_session."""

    def __init__(self) -> None:
        self.shown: list[tuple[str, str, str]] = []
        self.beeps = 0

    def notify(self, title: str, message: str, severity: str = "info") -> bool:
        self.shown.append((title, message, severity))
        return True

    def beep(self) -> None:
        self.beeps += 1

    def close(self) -> None:
        pass


@pytest.fixture
def ops(qapp, tmp_path):
    market = sim_market()
    session, store = session_on(tmp_path / "ops.sqlite")
    drive(session, market)
    ops = OpsSession(session, store, AppSettings(), desktop=FakeDesktop())
    ops.market = market
    yield ops
    ops.close()
    session.close()
    store.close()


@pytest.fixture
def panel(qtbot, ops):
    panel = AlertsPanel()
    context = AppContext(AppSettings())
    panel.bind(context)
    qtbot.addWidget(panel)
    panel.resize(1000, 400)
    panel.show()
    context.set_ops(ops)
    yield panel
    panel.shutdown()


def _reject(ops: OpsSession) -> str:
    """Place an off-tick order: the gate refuses it (stored REJECTED, order_changed emitted)."""
    request = sample_vertical(ops.trading.market)
    bad = dataclasses.replace(request, limit=round(request.limit + 0.01, 2))
    result = ops.trading.place(bad)
    assert not result.verdict.ok
    return bad.ref


def test_a_rejected_order_raises_a_stored_alert_delivered_once_and_listed(qtbot, ops, panel):
    delivered = []
    ops.alert_delivered.connect(delivered.append)
    ref = _reject(ops)
    portfolio = ops.trading.refresh_portfolio()  # the session's refresh drives the rules
    qtbot.waitUntil(lambda: len(delivered) == 1, timeout=3000)
    (alert,) = delivered
    assert alert.rule == "order_rejected" and ref in alert.key + alert.message
    assert [a.id for a in ops.alerts.open_alerts()] == [alert.id]  # stored
    assert panel.model.rowCount() == 1 and panel.model.row_of(alert.id) == 0
    row = [panel.model.index(0, c).data() for c in range(len(ALERT_COLUMNS))]
    assert row[0].endswith(alert.severity.value.upper()) and row[0][0] in "✖▲●"  # a symbol and a word
    assert row[2] == "order_rejected" and row[4] == "1" and row[5] == "open"
    assert ops.desktop.shown and ops.desktop.shown[0][2] == alert.severity.value
    ops.evaluate(ops.trading.market.now_ns(), portfolio)  # nothing new rejected: nothing re-raised
    assert len(delivered) == 1 and panel.model.rowCount() == 1


def test_a_repeat_of_an_open_alert_bumps_its_count_instead_of_a_new_row(qtbot, ops, panel):
    delivered = []
    ops.alert_delivered.connect(delivered.append)
    draft = AlertDraft("limit_breach:max_delta", "limit_breach", Severity.CRITICAL, "portfolio delta 120% of limit")
    now = ops.trading.market.now_ns()
    ops.raise_drafts([draft], now)
    ops.raise_drafts([draft], now + 1_000_000_000)
    assert len(delivered) == 1  # the repeat is not delivered again
    assert panel.model.rowCount() == 1
    assert panel.model.index(0, 4).data() == "2"
    assert panel.status_label.text().startswith("1 open, worst critical")


def test_acknowledge_selected_then_all(qtbot, ops, panel):
    now = ops.trading.market.now_ns()
    first, second = (AlertDraft(f"stale_data:{u}", "stale_data", Severity.WARNING, f"{u} quotes stale")
                     for u in ("SPX", "SPY"))
    ops.raise_drafts([first, second], now)
    assert panel.model.rowCount() == 2 and not panel.ack_button.isEnabled()
    target = panel.model.alert_at(1)
    assert panel.select_alert(target.id) and panel.ack_button.isEnabled()
    assert panel.detail_label.text().endswith(f"1x: {target.message}")  # the whole message, not cut
    qtbot.mouseClick(panel.ack_button, qtbot_left())
    assert panel.model.alert_at(panel.model.row_of(target.id)).acknowledged_ns == now
    assert len(ops.alerts.open_alerts()) == 1
    assert panel.ack_all_button.isEnabled()
    qtbot.mouseClick(panel.ack_all_button, qtbot_left())
    assert ops.alerts.open_alerts() == [] and not panel.ack_all_button.isEnabled()
    assert all(panel.model.index(r, 5).data() != "open" for r in range(2))
    ops.raise_drafts([first], now + 5)  # acknowledged: the same condition is a new alert
    assert panel.model.rowCount() == 3


def qtbot_left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_status_bar_counts_open_alerts_coloured_and_named_by_the_worst(qtbot, ops):
    bar = TerminalStatusBar()
    qtbot.addWidget(bar)
    ops.alerts_changed.connect(bar.set_alerts)
    bar.set_alerts(ops.recent())
    assert bar.alert_label.text() == "Alerts: none open"
    now = ops.trading.market.now_ns()
    ops.raise_drafts([AlertDraft("pnl:day", "day_pnl", Severity.WARNING, "day P&L -$2,100")], now)
    assert bar.alert_label.text() == "1 alert ▲ WARNING" and bar.alert_label.property("severity") == "warning"
    ops.raise_drafts([AlertDraft("breaker:day", "breaker", Severity.CRITICAL, "circuit breaker tripped")], now)
    assert bar.alert_label.text() == "2 alerts ✖ CRITICAL"
    assert "#ff453a" in bar.alert_label.styleSheet()
    ops.acknowledge_all()
    assert bar.alert_label.text() == "Alerts: none open" and bar.alert_label.property("severity") == ""
    bar.set_alerts(None)
    assert bar.alert_label.text() == "Alerts: -"


def test_sound_and_desktop_toggles_go_to_the_settings_and_persist(qtbot, panel):
    asked = []
    panel.context.settings_requested.connect(asked.append)
    assert panel.sound_check.isChecked() and panel.desktop_check.isChecked()
    panel.sound_check.click()
    assert asked[-1].alert_sound is False and asked[-1].alert_desktop is True
    save_settings(asked[-1])  # what the main window does with a request
    assert load_settings().alert_sound is False
    panel.context.set_settings(asked[-1].with_changes(alert_desktop=False))
    assert not panel.desktop_check.isChecked() and not panel.sound_check.isChecked()


def test_delivery_settings_are_validated_and_saved_without_a_password():
    with pytest.raises(SettingsError, match="https://"):
        AppSettings(alert_webhook_url="ftp://hooks.example.com")
    with pytest.raises(SettingsError, match="recipient"):
        AppSettings(alert_smtp_host="smtp.example.com", alert_smtp_user="me")
    with pytest.raises(SettingsError, match="one of"):
        AppSettings(alert_min_severity="loud")
    settings = AppSettings(alert_smtp_host="smtp.example.com", alert_smtp_user="me", alert_smtp_to="a@b.c",
                           alert_smtp_port=2525, alert_smtp_tls=False, alert_min_severity="critical")
    save_settings(settings)
    back = load_settings()
    assert (back.alert_smtp_host, back.alert_smtp_port, back.alert_smtp_tls, back.alert_min_severity) == (
        "smtp.example.com", 2525, False, "critical")
    from app.settings import qsettings

    assert not [k for k in qsettings().allKeys() if "password" in k.lower()]


class _Result:
    def __init__(self, channel: str, ok: bool, attempts: int, error: str = "") -> None:
        self.channel, self.ok, self.attempts, self.error = channel, ok, attempts, error


def test_settings_dialog_alert_fields_password_to_the_keyring_and_test_alert(qtbot, monkeypatch):
    from app.settings_dialog import SettingsDialog
    from spx_core.risk import delivery

    secrets: dict[str, str] = {}
    monkeypatch.setattr(delivery, "store_secret", lambda name, value: secrets.__setitem__(name, value))
    dialog = SettingsDialog(AppSettings())
    qtbot.addWidget(dialog)
    form = dialog.alerts
    form.send_test()
    assert "nothing to send to" in form.test_label.text()
    form.webhook_edit.setText("https://hooks.example.com/spx")
    form.smtp_host_edit.setText("smtp.example.com")
    form.smtp_user_edit.setText("trader")
    form.smtp_to_edit.setText("desk@example.com")
    form.smtp_password_edit.setText("s3cret")
    form.severity_combo.setCurrentText("critical")
    sent = []

    class Notifier:
        def __init__(self, settings) -> None:
            self.settings, self.results = settings, []

        def send(self, alert) -> bool:
            sent.append((self.settings, alert))
            self.results = [_Result("webhook", True, 1), _Result("email", False, 3, "connection refused")]
            return True

        def close(self, timeout: float = 30.0) -> None:
            pass

    form.make_notifier = Notifier
    form.send_test()
    (settings, alert), = sent
    assert settings.webhook_url == "https://hooks.example.com/spx" and settings.smtp_to == ("desk@example.com",)
    assert settings.min_severity.value == "info" and alert.severity is Severity.INFO  # a test always goes out
    assert secrets == {"smtp_password": "s3cret"} and form.smtp_password_edit.text() == ""
    qtbot.waitUntil(lambda: "delivered" in form.test_label.text(), timeout=3000)
    assert form.test_label.text() == "webhook: delivered; email: failed after 3 tries: connection refused"
    result = dialog.result_settings()
    assert (result.alert_webhook_url, result.alert_smtp_user, result.alert_min_severity) == (
        "https://hooks.example.com/spx", "trader", "critical")
    assert "s3cret" not in repr(result)  # the password is not a setting
    form.smtp_to_edit.setText("")
    dialog.accept()
    assert "recipient" in dialog.error_label.text() and dialog.result() == 0


def test_clicking_the_alert_count_brings_the_alerts_panel_forward(qtbot, window):
    from PySide6.QtCore import Qt

    alerts = window.panels["alerts"]
    assert window.panels["chain"].on_screen() and not alerts.on_screen()  # a tab behind the chain
    qtbot.mouseClick(window.status.alert_label, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(alerts.on_screen, timeout=3000)
    assert not window.show_dock("no such panel")
