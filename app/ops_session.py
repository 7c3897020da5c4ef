"""OpsSession: the window's alerts and automation on the live market, next to its TradingSession.

The main window builds one with each trading session (:meth:`app.main_window.MainWindow.start_trading`) and
publishes it with ``AppContext.set_ops``; the Alerts and Automation panels and the status bar follow it.

Alerts: on every portfolio refresh (``TradingSession.portfolio_changed``, coalesced by the session) the
:class:`~spx_core.risk.alert_rules.AlertEngine` reads :class:`AlertInputs` built here: the guard's limit usage and
breaker trip (``risk_changed``), the open trades, spots, the time of the last data, the broker link, the orders
rejected since the last look (``order_changed``) and the exits the automation found due. Each draft is raised into
the :class:`~spx_core.storage.alerts_repo.AlertRepository` (a repeat of an open alert bumps its count); a new one is
delivered: ``alert_delivered`` (panel, status bar), a tray balloon and a beep (settings), and the webhook / e-mail
through the :class:`~spx_core.risk.delivery.Notifier` (its own thread: never blocks the GUI).

Times: every decision reads the market clock (``trading.market.now_ns()``), never the wall clock. The one
exception is data silence: a feed that stopped sending has no market clock moving, so a slow timer measures the
wall seconds since the last batch (monotonic) and evaluates the alerts at the last data time plus that.

Automation: :class:`app.ops_automation.OpsAutomation` (the runner in a worker, orders placed on the GUI thread).
Every decision it records is notified the same way (:func:`spx_core.automation.notices.decision_notice`: entries,
exits and hedges INFO, a refused order WARNING, skips INFO unless ``alert_skip_notices`` is off; key
``"automation:<decision id>"``). The broker's positions differing from the book (``positions_checked``, after
every IB (re)connect and every ``position_check_interval`` while connected) raise one WARNING naming each
differing contract (key ``"ib_positions:<account>"``: a repeat while unacknowledged updates it). After each
refresh its daily summary is stored at the market close and on a new market day
(:meth:`OpsAutomation.tick_summaries`).

Events (Qt signals):
    alerts_changed(tuple[Alert, ...]): the recent alerts, newest first (after a raise or an acknowledgement).
    alert_delivered(Alert): a new alert was raised (not a repeat of an open one).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

from app.alert_settings_form import CLOSE_WAIT_S
from app.notify import DesktopNotifier
from app.ops_automation import OpsAutomation
from spx_core.execution.orders import OrderState, OrderStatus
from spx_core.risk.alerts import Alert, AlertDraft, Severity
from spx_core.storage.alerts_repo import AlertRepository

if TYPE_CHECKING:
    from app.settings import AppSettings
    from app.shared_fits import SharedFits
    from app.trading import TradingSession
    from spx_core.storage import Store

__all__ = ["RECENT", "STALE_CHECK_MS", "OpsSession"]

log = logging.getLogger(__name__)

#: Alerts the panel lists (newest first).
RECENT = 200
#: How often (wall ms) data silence is looked for between batches.
STALE_CHECK_MS = 5_000


class OpsSession(QObject):
    """See the module docstring."""

    alerts_changed = Signal(object)
    alert_delivered = Signal(object)

    def __init__(self, trading: TradingSession, store: Store, settings: AppSettings, *,
                 fits: SharedFits | None = None, stage: Callable[[Any], None] | None = None,
                 market_state: Callable[[], Any] | None = None, desktop: DesktopNotifier | None = None,
                 notifier_factory: Callable[[Any], Any] | None = None,
                 expects_data: Callable[[], bool] | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.trading = trading
        self.store = store
        self.alerts = AlertRepository(store)
        self.engine = _alert_engine()
        self.desktop = desktop if desktop is not None else DesktopNotifier()
        self._notifier_factory = notifier_factory or _notifier
        self._notifier: Any = None
        self._delivery: Any = None
        self.settings = settings
        self._rejected: list[OrderState] = []
        self._seen_rejected: set[str] = set()
        self._guard: Any = None  # the last GuardStatus (guard branch), None before any
        self._last_batch_wall: float | None = None
        self._pending = False  # an after-refresh pass is scheduled
        #: silence means trouble only for a live source that says it runs (not a paused sim, not a replay)
        self._expects_data = expects_data or (lambda: True)
        self._closed = False
        #: None when it could not start (e.g. an unreadable strategy in the store): alerts still run, and say so
        self.automation: OpsAutomation | None = None
        self.automation_error = ""
        try:
            self.automation = OpsAutomation(trading, store, fits=fits, stage=stage, market_state=market_state,
                                            parent=self)
            self.automation.failed.connect(self._on_automation_failed)
            self.automation.decided.connect(self._on_decision)
        except Exception as exc:
            log.exception("automation unavailable")
            self.automation_error = f"automation unavailable: {type(exc).__name__}: {exc}"
        self.apply_settings(settings)
        trading.portfolio_changed.connect(self.on_portfolio)
        trading.order_changed.connect(self._on_order)
        if hasattr(trading, "risk_changed"):
            trading.risk_changed.connect(self._on_risk)
        if hasattr(trading, "positions_checked"):
            trading.positions_checked.connect(self._on_positions_checked)
        self._stale_timer = QTimer(self)
        self._stale_timer.setInterval(STALE_CHECK_MS)
        self._stale_timer.timeout.connect(self._check_silence)
        self._stale_timer.start()

    # --- settings -------------------------------------------------------------------------------------------
    def apply_settings(self, settings: AppSettings) -> None:
        """Follow new settings: the notifier is rebuilt when where alerts go changed."""
        from app.alert_settings_form import delivery_settings

        self.settings = settings
        wanted = delivery_settings(settings) if (settings.alert_webhook_url or settings.alert_smtp_host) else None
        if wanted == self._delivery:
            return
        if self._notifier is not None:
            self._notifier.close(timeout=CLOSE_WAIT_S)
            self._notifier = None
        self._delivery = wanted
        if wanted is not None:
            try:
                self._notifier = self._notifier_factory(wanted)
            except Exception as exc:  # the panel and the status bar still show every alert
                log.warning("alerts: webhook / e-mail delivery unavailable: %s", exc)

    # --- inputs ---------------------------------------------------------------------------------------------
    def on_batch(self, _batch: Any) -> None:
        """The feed's batch (the main window connects it): data is arriving (for the silence check)."""
        self._last_batch_wall = time.monotonic()

    def _on_order(self, state: OrderState) -> None:
        if state.status is OrderStatus.REJECTED and state.ref not in self._seen_rejected:
            self._seen_rejected.add(state.ref)
            self._rejected.append(state)

    def _on_risk(self, status: Any) -> None:
        self._guard = status

    def on_portfolio(self, _portfolio: Any) -> None:
        """After each portfolio refresh: alerts, then the automation's step, once the guard has updated too (its
        ``risk_changed`` follows ``portfolio_changed`` in the same refresh: the next turn of the event loop)."""
        if not self._closed and not self._pending:
            self._pending = True
            QTimer.singleShot(0, self, self._after_refresh)

    def _after_refresh(self) -> None:
        self._pending = False
        portfolio = self.trading.portfolio
        now = self.trading.market.now_ns()
        if self._closed or portfolio is None or not now:
            return
        self.evaluate(now, portfolio)
        if self.automation is not None:
            self.automation.tick_summaries()
            self.automation.step(portfolio, self._guard.state if self._guard is not None else None)

    def _check_silence(self) -> None:
        # the only wall-clock read here: a silent feed does not move the market clock (see the module docstring)
        now = self.trading.market.now_ns()
        if (self._closed or not now or self._last_batch_wall is None or self.trading.portfolio is None
                or not self._expects_data()):
            return
        silent_ns = int((time.monotonic() - self._last_batch_wall) * 1e9)
        self.evaluate(now + silent_ns, self.trading.portfolio, last_data_ns=now)

    def inputs(self, now_ns: int, portfolio: Any, *, last_data_ns: int | None = None) -> Any:
        """The :class:`AlertInputs` of the book and the feed as they are now."""
        from spx_core.risk.alert_rules import AlertInputs

        market = self.trading.market
        spots = {u: float(s.underlying_price) for u, s in market.snapshots.items()}
        guard = self._guard
        account = getattr(portfolio, "account", None)
        day_pnl = float(account.day_pnl) if account is not None else math.nan
        rejected, self._rejected = tuple(self._rejected), []
        return AlertInputs(
            now_ns=now_ns, usage=tuple(guard.usage) if guard is not None else (),
            trades=tuple(portfolio.open_trades) if portfolio is not None else (), market=market, spots=spots,
            last_data_ns=last_data_ns if last_data_ns is not None else (market.now_ns() or None),
            broker_connected=bool(self.trading.broker.connected), broker_name=self.trading.broker_name,
            rejected=rejected, exits_due=self.automation.last_exits if self.automation is not None else (), day_pnl=day_pnl,
            trip=guard.trip if guard is not None else None,
            profile_name=guard.profile.name if guard is not None else "")

    # --- alerts ---------------------------------------------------------------------------------------------
    def evaluate(self, now_ns: int, portfolio: Any, *, last_data_ns: int | None = None) -> list[Alert]:
        """Run the rules on the book now; raise, store and deliver what they find. Returns the new alerts."""
        if self.engine is None:
            return []
        try:
            drafts = self.engine.evaluate(self.inputs(now_ns, portfolio, last_data_ns=last_data_ns))
        except Exception:  # one bad rule must not stop the portfolio updates
            log.exception("alerts: evaluating the rules failed")
            return []
        return self.raise_drafts(drafts, now_ns)

    def raise_drafts(self, drafts: list[AlertDraft], now_ns: int) -> list[Alert]:
        """Store each draft (a repeat of an open one bumps its count) and deliver the new ones."""
        if not drafts:
            return []
        new = []
        for draft in drafts:
            alert, fresh = self.alerts.raise_alert(draft, now_ns)
            if fresh:
                new.append(alert)
        self.publish()
        for alert in new:
            self.deliver(alert)
        return new

    def deliver(self, alert: Alert) -> None:
        """Panel and status bar (``alert_delivered``), tray balloon and sound, webhook / e-mail."""
        log.info("alert %s %s: %s", alert.severity.value, alert.rule, alert.message)
        self.alert_delivered.emit(alert)
        if self.settings.alert_desktop:
            self.desktop.notify(f"SPX Terminal: {alert.severity.value.upper()} {alert.rule}", alert.message,
                                alert.severity.value)
        if self.settings.alert_sound and alert.severity is not Severity.INFO:
            self.desktop.beep()
        least = Severity(self.settings.alert_min_severity).rank
        if self._notifier is not None and alert.severity.rank >= least:
            self._notifier.send(alert)

    def acknowledge(self, alert_id: int) -> None:
        self.alerts.acknowledge(alert_id, self._now())
        self.publish()

    def acknowledge_all(self) -> int:
        count = self.alerts.acknowledge_all(self._now())
        self.publish()
        return count

    def recent(self) -> list[Alert]:
        return self.alerts.recent(RECENT)

    def publish(self) -> None:
        self.alerts_changed.emit(tuple(self.recent()))

    def _now(self) -> int:
        return self.trading.market.now_ns()

    def _on_decision(self, decision_id: int, decision: Any) -> None:
        """A recorded decision as an alert (runs inside the runner's record call: a failure here is logged, never
        handed back to the step)."""
        from spx_core.automation.notices import decision_notice

        if self._closed:
            return
        try:
            draft = decision_notice(decision, decision_id, skips=self.settings.alert_skip_notices)
            if draft is not None:
                self.raise_drafts([draft], decision.time_ns)
        except Exception:
            log.exception("alerts: notifying decision %s failed", decision_id)

    def _on_positions_checked(self, check: Any) -> None:
        """The broker's positions differ from the book: one alert naming each contract (a clean check is logged
        by the broker and shown in the status bar's tooltip)."""
        if self._closed or check.ok:
            return
        # a check runs on connect, possibly before the first quote moves the market clock
        now = self.trading.market.now_ns() or time.time_ns()
        self.raise_drafts([AlertDraft(f"ib_positions:{check.account or 'all'}", "ib_positions", Severity.WARNING,
                                      check.message)], now)

    def _on_automation_failed(self, message: str) -> None:
        now = self.trading.market.now_ns()
        if now:
            self.raise_drafts([AlertDraft("automation:failed", "automation", Severity.CRITICAL, message)], now)

    # --- lifetime -------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop listening, the automation's worker and the notifier (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stale_timer.stop()
        for signal, slot in ((self.trading.portfolio_changed, self.on_portfolio),
                             (self.trading.order_changed, self._on_order)):
            try:
                signal.disconnect(slot)
            except (RuntimeError, TypeError):  # the session was deleted first
                pass
        if self.automation is not None:
            self.automation.shutdown()
        if self._notifier is not None:
            self._notifier.close(timeout=CLOSE_WAIT_S)
            self._notifier = None
        self.desktop.close()


def _alert_engine() -> Any:
    from spx_core.risk.alert_rules import AlertEngine, AlertSettings

    return AlertEngine(AlertSettings())


def _notifier(settings: Any) -> Any:
    from spx_core.risk.delivery import Notifier

    return Notifier(settings)
