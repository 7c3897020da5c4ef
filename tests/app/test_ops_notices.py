"""Automation notices and the stored daily summary on a real session (paper broker, simulated market, SQLite file):
an auto preset's entry is an INFO alert listed in the Alerts panel and POSTed to a local webhook receiver when the
least severity sent is info; skips can be muted, refusals cannot; the day's summary is stored at the close and kept
over the day change, and "Export CSV…" writes every stored day."""

from __future__ import annotations

import re
from datetime import date, datetime

import keyring
import pytest

from app.context import AppContext
from app.ops_session import OpsSession
from app.panels.alerts_panel import AlertsPanel
from app.panels.automation_panel import AutomationPanel, SummaryScope
from app.settings import AppSettings
from spx_core.automation.summary import daily_summary, summaries_from_csv
from spx_core.domain import ET
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.portfolio.decisions import TradeDecision
from spx_core.risk.alerts import Severity
from spx_core.storage.summary_repo import SummaryRepository
from tests.app.test_alerts_panel import FakeDesktop
from tests.app.test_ops_session import STRATEGY, FakeNotifier, _run_until
from tests.app.trading_factory import drive, session_on
from tests.risk.test_delivery import MemoryKeyring, Receiver

DAY, NEXT = date(2024, 3, 13), date(2024, 3, 14)  # a Wednesday and the Thursday after
BEFORE_ENTRY = datetime(2024, 3, 13, 9, 59, 50, tzinfo=ET)  # ten seconds before the 10:00 entry


@pytest.fixture
def hook():
    before = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())  # the notifier looks for a webhook token in the keychain
    receiver = Receiver()
    yield receiver
    receiver.stop()
    keyring.set_keyring(before)


@pytest.fixture
def live(qapp, tmp_path):
    market = SimulatedMarket(SimulatorConfig(seed=5, start=BEFORE_ENTRY))
    session, store = session_on(tmp_path / "notices.sqlite", fill_model="mid")
    drive(session, market)
    desktop = FakeDesktop()
    ops = OpsSession(session, store, AppSettings(), stage=lambda _request: None, desktop=desktop)
    yield ops, market, store
    ops.close()
    session.close()
    store.close()


def _bound(qtbot, panel, ops):
    context = AppContext(AppSettings())
    panel.bind(context)
    qtbot.addWidget(panel)
    panel.resize(1100, 500)
    panel.show()
    context.set_trading(ops.trading)
    context.set_ops(ops)
    return panel


def _automation_alerts(ops):
    return [a for a in ops.recent() if a.key.startswith("automation:")]


def test_an_auto_entry_is_an_info_alert_in_the_panel_and_at_the_webhook(qtbot, live, hook):
    ops, market, _store = live
    ops.apply_settings(AppSettings(alert_webhook_url=hook.url, alert_min_severity="info"))
    panel = _bound(qtbot, AlertsPanel(), ops)
    try:
        ops.automation.set_enabled(STRATEGY, True)
        ops.automation.set_mode(STRATEGY, "auto")
        _run_until(qtbot, ops, market, lambda: any(a.rule == "automation_entry" for a in _automation_alerts(ops)))
        (entry,) = [d for d in ops.automation.decisions() if d.traded]
        (alert,) = [a for a in _automation_alerts(ops) if a.rule == "automation_entry"]
        assert alert.severity is Severity.INFO and re.fullmatch(r"automation:\d+", alert.key)
        assert alert.message.startswith(f"{STRATEGY}: ") and alert.message.endswith("(10:00 slot)")
        assert " SPXW " in alert.message and " for a credit of " in alert.message and "\n" not in alert.message
        assert alert.first_ns == entry.time_ns  # raised at the decision's market time
        # listed in the panel
        qtbot.waitUntil(lambda: panel.model.row_of(alert.id) >= 0, timeout=5_000)
        row = panel.model.row_of(alert.id)
        assert [panel.model.index(row, c).data() for c in (2, 3)] == ["automation_entry", alert.message]
        # and POSTed to the local receiver (min severity info)
        qtbot.waitUntil(lambda: any(b["key"] == alert.key for b in hook.bodies), timeout=10_000)
        body = next(b for b in hook.bodies if b["key"] == alert.key)
        assert (body["severity"], body["message"]) == ("info", alert.message)
        # one decision, one alert: more steps on the same slot add none
        _run_until(qtbot, ops, market, lambda: ops.automation.steps >= 3, seconds=10)
        assert len([a for a in _automation_alerts(ops) if a.rule == "automation_entry"]) == 1
    finally:
        panel.shutdown()


def test_info_notices_stay_off_the_webhook_at_warning_skips_can_be_muted_refusals_cannot(qtbot, live):
    ops, _market, _store = live
    made: list[FakeNotifier] = []
    ops._notifier_factory = lambda settings: made.append(FakeNotifier(settings)) or made[-1]
    ops.apply_settings(AppSettings(alert_webhook_url="https://hooks.example.com/x"))  # least severity: warning
    (notifier,) = made
    now = ops.trading.market.now_ns()
    ops.automation._record(TradeDecision(now, STRATEGY, "SKIP", ("iv rank 12 below 30", "slot: 10:00 ET")))
    (skip,) = _automation_alerts(ops)
    assert (skip.rule, skip.severity) == ("automation_skip", Severity.INFO)
    assert skip.message == f"{STRATEGY}: skipped at 10:00 — iv rank 12 below 30"
    assert notifier.sent == [] and ops.desktop.shown[-1][1] == skip.message  # the tray shows it, the hook not

    ops.apply_settings(AppSettings(alert_webhook_url="https://hooks.example.com/x", alert_skip_notices=False))
    ops.automation._record(TradeDecision(now, STRATEGY, "SKIP", ("scan: no candidate", "slot: 11:00 ET")))
    assert len(_automation_alerts(ops)) == 1  # muted
    ops.automation._record(TradeDecision(now, STRATEGY, "SKIP", (
        "order refused: refused by limits: max_open_trades 1: post-trade 2",
        "entry: SELL 1 SPXW 2024-03-20 5600/5575 put credit vertical (25 wide) for a credit of 1.45 (mid)",
        "slot: 11:00 ET")))
    refused = _automation_alerts(ops)[0]
    assert (refused.rule, refused.severity) == ("automation_refused", Severity.WARNING)
    assert refused.message.endswith("refused (11:00 slot) — refused by limits: max_open_trades 1: post-trade 2")
    assert [a.key for a in notifier.sent] == [refused.key]


def test_the_days_summary_is_stored_at_the_close_kept_over_the_day_change_and_exported(qtbot, live, tmp_path):
    ops, market, store = live
    summaries = SummaryRepository(store)
    ops.automation.set_enabled(STRATEGY, True)
    ops.automation.set_mode(STRATEGY, "auto")
    _run_until(qtbot, ops, market, lambda: any(d.traded for d in ops.automation.decisions()))
    # the entry may rest a while: the test moves the market a second per batch while the app decides and sends, so
    # a loaded machine sends later at a moved mid (whether one 8-hour jump would then fill it is luck)
    _run_until(qtbot, ops, market, lambda: bool(ops.trading.repo.trades()), seconds=30 * 60)
    qtbot.wait(50)
    assert summaries.list() == []  # no view open and not the close yet: nothing stored

    drive(ops.trading, market, seconds=8 * 3600)  # to the close (the simulator stops there)
    qtbot.waitUntil(lambda: bool(summaries.list()), timeout=10_000)
    closing = summaries.list()
    assert {r.day for r in closing} == {DAY} and [r.strategy for r in closing] == ["", STRATEGY]
    assert closing[1].trades_opened == 1 and closing[0].trades_opened == 1

    drive(ops.trading, market)  # the next session opens: a new market day
    qtbot.waitUntil(lambda: ops.automation.summaries.day == NEXT, timeout=10_000)
    # the 14th's first decision (an exit of the 13th's trade after the overnight move, or the 10:00 entry)
    _run_until(qtbot, ops, market, lambda: any(d.strategy == STRATEGY for d in ops.automation.decisions()),
               seconds=40 * 60)
    panel = _bound(qtbot, AutomationPanel(), ops)
    try:
        target = tmp_path / "history.csv"
        panel.ask_csv_path = lambda scope: str(target) if scope is SummaryScope.HISTORY else ""
        assert panel.export_csv(SummaryScope.HISTORY) == str(target)
        rows = summaries_from_csv(target.read_text(encoding="utf-8"))
        assert {r.day for r in rows} == {DAY, NEXT}
        assert [r for r in rows if r.day == DAY] == closing  # the past day remains as stored at its close
        assert rows == summaries.list() and "2 days" in panel.status_label.text()
        # the 14th's row of the strategy owns the trade it entered on the 13th (its entry decision is read too)
        (own,) = [r for r in rows if r.day == NEXT and r.strategy == STRATEGY]
        repo = ops.trading.repo
        assert own == daily_summary(NEXT, repo.trades(), repo.decisions(), STRATEGY)
        today = tmp_path / "today.csv"
        panel.ask_csv_path = lambda scope: str(today) if scope is SummaryScope.TODAY else ""
        qtbot.waitUntil(lambda: panel.summary_model.rowCount() > 0, timeout=10_000)
        assert panel.export_csv(SummaryScope.TODAY) == str(today)
        assert {r.day for r in summaries_from_csv(today.read_text(encoding="utf-8"))} == {NEXT}
    finally:
        panel.shutdown()
