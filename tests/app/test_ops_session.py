"""OpsSession on a real session (paper broker, simulated market, SQLite file): an auto preset trades on paper by
itself at its entry time with the decision recorded; manual mode stages instead of sending; alert delivery goes
to the notifier from the least severity on; a desktop without a tray degrades to one log line; data silence."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest

from app.notify import DesktopNotifier
from app.ops_session import OpsSession
from app.settings import AppSettings
from spx_core.domain import ET
from spx_core.execution.orders import OrderStatus
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.risk.alerts import AlertDraft, Severity
from tests.app.test_alerts_panel import FakeDesktop
from tests.app.trading_factory import drive, session_on

STRATEGY = "credit verticals 3/5/7 DTE"  # entries at 10:00, 11:00, 12:00 ET
#: a Wednesday, ten seconds before the 10:00 entry
BEFORE_ENTRY = datetime(2024, 3, 13, 9, 59, 50, tzinfo=ET)


@pytest.fixture
def live(qapp, tmp_path):
    market = SimulatedMarket(SimulatorConfig(seed=5, start=BEFORE_ENTRY))
    # the presets price at mid: the paper broker fills a mid limit with the "mid" fill model
    session, store = session_on(tmp_path / "auto.sqlite", fill_model="mid")
    drive(session, market)
    staged: list = []
    ops = OpsSession(session, store, AppSettings(), stage=staged.append, desktop=FakeDesktop())
    yield ops, market, staged
    ops.close()
    session.close()
    store.close()


def _run_until(qtbot, ops, market, done, *, seconds: float = 60.0) -> None:
    """Feed a batch per simulated second and let the event loop run (refresh -> step -> place) until ``done``."""
    for _ in range(int(seconds)):
        drive(ops.trading, market)
        qtbot.wait(30)
        if done():
            return
    qtbot.waitUntil(done, timeout=30_000)


def test_an_auto_preset_trades_on_paper_by_itself_at_its_entry_time(qtbot, live):
    ops, market, staged = live
    automation = ops.automation
    automation.set_enabled(STRATEGY, True)
    automation.set_mode(STRATEGY, "auto")

    def traded():
        return [d for d in automation.decisions() if d.strategy == STRATEGY and d.traded]

    _run_until(qtbot, ops, market, traded)
    (decision,) = traded()
    assert decision.reasons[0].startswith("entry: ")
    entry = datetime(2024, 3, 13, 10, 0, tzinfo=ET).timestamp() * 1e9
    assert entry <= decision.time_ns <= entry + 60e9  # at the 10:00 slot, by the market clock
    assert ops.trading.repo.decisions()[-1] == decision  # recorded in the store
    order = next(s for s in ops.trading.orders() if s.ref == decision.order_ref)
    assert order.request.source == "automation" and staged == []

    def filled():
        return any(s.ref == decision.order_ref and s.status is OrderStatus.FILLED for s in ops.trading.orders())

    _run_until(qtbot, ops, market, filled, seconds=20)
    portfolio = ops.trading.refresh_portfolio()
    assert any(decision.order_ref in t.order_refs for t in portfolio.open_trades)
    _run_until(qtbot, ops, market, lambda: automation.steps >= 3, seconds=20)
    assert len(traded()) == 1  # the 10:00 slot trades once, not on every step after it


def test_manual_mode_stages_the_order_in_the_ticket_and_sends_nothing(qtbot, live):
    ops, market, staged = live
    ops.automation.set_enabled(STRATEGY, True)
    # the runner stages, then records the decision (both hop to the GUI thread from the worker)
    _run_until(qtbot, ops, market, lambda: bool(staged) and any(d.traded for d in ops.automation.decisions()))
    (request,) = staged
    (decision,) = [d for d in ops.automation.decisions() if d.traded]
    assert decision.order_ref == request.ref and request.source == "automation"
    assert ops.trading.orders() == []


class FakeNotifier:
    def __init__(self, settings) -> None:
        self.settings = settings
        self.sent: list = []
        self.closed = False

    def send(self, alert) -> bool:
        self.sent.append(alert)
        return True

    def close(self, timeout: float = 30.0) -> None:
        self.closed = True


def test_webhook_gets_alerts_from_the_least_severity_on(qtbot, live):
    ops, _market, _staged = live
    made: list[FakeNotifier] = []

    def factory(settings):
        made.append(FakeNotifier(settings))
        return made[-1]

    ops._notifier_factory = factory
    ops.apply_settings(AppSettings(alert_webhook_url="https://hooks.example.com/x", alert_min_severity="critical"))
    (notifier,) = made
    assert notifier.settings.webhook_url == "https://hooks.example.com/x"
    now = ops.trading.market.now_ns()
    ops.raise_drafts([AlertDraft("a:1", "limit_warning", Severity.WARNING, "delta at 85% of its limit")], now)
    ops.raise_drafts([AlertDraft("b:1", "breaker", Severity.CRITICAL, "circuit breaker tripped")], now)
    assert [a.rule for a in notifier.sent] == ["breaker"]
    ops.apply_settings(AppSettings())  # webhook cleared: the notifier is closed, none built
    assert notifier.closed and len(made) == 1


def test_a_desktop_without_a_tray_degrades_to_one_log_line(qapp, caplog):
    desktop = DesktopNotifier()
    assert not desktop.available  # offscreen: no system tray
    with caplog.at_level(logging.INFO, logger="app.notify"):
        assert not desktop.notify("SPX Terminal", "order rejected", "warning")
        assert not desktop.notify("SPX Terminal", "again", "critical")
    assert len([r for r in caplog.records if "no system tray" in r.message]) == 1
    desktop.close()


def test_data_silence_is_measured_from_the_last_batch(qtbot, live, monkeypatch):
    ops, _market, _staged = live
    seen = []
    monkeypatch.setattr(ops, "evaluate", lambda now, portfolio, last_data_ns=None: seen.append((now, last_data_ns)))
    ops.trading.refresh_portfolio()
    ops.on_batch(None)
    import app.ops_session as module

    t0 = module.time.monotonic()
    monkeypatch.setattr(module.time, "monotonic", lambda: t0 + 40.0)
    ops._check_silence()
    market_now = ops.trading.market.now_ns()
    (now, last) = seen[-1]
    assert last == market_now and now == pytest.approx(market_now + 40e9, abs=1e8)
    ops._expects_data = lambda: False  # a paused simulator or a replay: silence is not an alarm
    ops._check_silence()
    assert len(seen) == 1


def test_the_runner_sees_the_entry_decision_of_a_trade_opened_days_ago(live):
    from types import SimpleNamespace

    from spx_core.portfolio.decisions import TradeDecision

    ops, _market, _staged = live
    now = ops.trading.market.now_ns()
    two_days_ago = now - 2 * 86_400 * 10**9
    old = TradeDecision(two_days_ago, STRATEGY, "TRADE", ("entry: SELL 1 ...",), order_ref="spx-old")
    ops.trading.repo.record_decision(old)
    automation = ops.automation
    assert automation.decisions() == []  # the panel lists today's
    held = SimpleNamespace(status="open", opened_ns=two_days_ago + 1, order_refs=("spx-old",))
    assert automation.book_decisions((held,)) == [old]  # the runner gets the entry that owns the trade
    assert automation._owns_open((held,))  # so a disabled strategy's old trade keeps its exits
    today = TradeDecision(now, STRATEGY, "SKIP", ("iv rank 10 below 30",))
    automation._record(today)
    assert automation.decisions() == [today] and automation.book_decisions((held,)) == [old, today]


def test_an_exit_due_the_monitor_could_not_send_raises_an_alert(qtbot, live):
    from spx_core.automation.monitor import ExitRule, SkippedExit

    ops, _market, _staged = live
    ops.automation.last_exits = (SkippedExit(7, STRATEGY, "dte: 1 day to expiry, closes at 2 (DTE rule); the "
                                             "short leg has no quote", (ExitRule.DTE,)),)
    new = ops.evaluate(ops.trading.market.now_ns(), ops.trading.refresh_portfolio())
    (alert,) = [a for a in new if a.rule == "exit_due"]
    assert "trade 7" in alert.message and STRATEGY in alert.message and alert.key == "exit_due:7:dte"
