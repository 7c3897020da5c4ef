"""The self-test's alerts and automation checks, on the window's OpsSession (the self-test's own database).

alerts: an order the gate must refuse (an off-tick limit) is placed through the session, as a mistyped ticket
would; the rules raise "order_rejected" on the next portfolio refresh, the alert is stored, listed in the Alerts
panel and counted in the status bar; then it is acknowledged.

automation: a preset strategy in manual mode decides on the current snapshot (the "Decide now" path of the
Automation panel: scan, filters, sizing on the window's shared fit); the decision is stored and shown in the
panel's decisions; a TRADE opens the ticket with its order, which is not sent.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from app.self_test_trading import wait_until

if TYPE_CHECKING:
    from app.main_window import MainWindow

__all__ = ["run_ops_checks"]

Checks = dict[str, tuple[bool, str]]


async def run_ops_checks(window: MainWindow, seconds: float) -> Checks:
    ops = window.context.ops
    if ops is None:
        return {"alerts: raised": (False, "no alerts service: the order service did not start (see the log)")}
    deadline = time.monotonic() + seconds
    # (the panels' own checks are "alerts" and "automation")
    checks = {"alerts: raised": await _alert_check(window, ops, deadline)}
    checks["automation: decided"] = await _automation_check(window, ops, deadline)
    return checks


async def _alert_check(window: MainWindow, ops: Any, deadline: float) -> tuple[bool, str]:
    from app.self_test_trading import SelfTestOrderError, sample_vertical

    session = ops.trading
    try:
        request = sample_vertical(session.market, broker=session.broker_name)
    except SelfTestOrderError as exc:
        return False, str(exc)
    bad = dataclasses.replace(request, limit=round(request.limit + 0.01, 2), name="self-test off-tick order")
    before = {a.id for a in ops.recent()}
    result = session.place(bad)
    if result.verdict.ok:
        session.cancel(bad.ref)
        return False, f"the gate accepted an off-tick limit {bad.limit:.2f}; no rejection to raise"
    session.refresh_portfolio()  # the rules run on the portfolio refresh (the feed would do it in 250 ms)

    def raised() -> Any:
        return next((a for a in ops.recent() if a.id not in before and a.rule == "order_rejected"), None)

    alert = await wait_until(raised, deadline)
    if alert is None:
        return False, f"order {bad.ref} was rejected ({result.verdict.message}) but no alert was raised"
    panel = window.panels.get("alerts")
    listed = panel is None or await wait_until(lambda: panel.model.row_of(alert.id) >= 0, deadline)
    counted = "alert" in window.status.alert_label.text()
    ops.acknowledge(alert.id)
    ok = bool(listed) and counted
    return ok, (f"{alert.severity.value} {alert.rule}: {alert.message} (stored #{alert.id}"
                f"{', listed' if listed else ', NOT in the Alerts panel'}"
                f"{', in the status bar' if counted else ', NOT in the status bar'}; acknowledged)")


async def _automation_check(window: MainWindow, ops: Any, deadline: float) -> tuple[bool, str]:
    automation = ops.automation
    if automation is None:
        return False, ops.automation_error or "automation did not start"
    stored = next((s for s in automation.strategies if str(s.mode) == "manual"), None)
    if stored is None:
        return False, "no strategy in manual mode to decide with (the presets are seeded on first run)"
    name = stored.config.name
    before = len(automation.decisions())
    if not automation.decide_now(name):
        return False, f"{name}: could not start a decision (the automation is busy or there is no chain yet)"
    decision = await wait_until(lambda: automation.decisions()[before:] or None, deadline)
    if not decision:
        return False, f"{name}: no decision within the self-test's time"
    decision = decision[-1]
    stored_again = any(d.time_ns == decision.time_ns and d.strategy == name
                       for d in ops.trading.repo.decisions(since_ns=decision.time_ns))
    panel = window.panels.get("automation")
    shown = panel is None or await wait_until(lambda: decision in panel.decisions_model.rows, deadline)
    why = "; ".join(decision.reasons[:2])
    return stored_again and bool(shown), (f"{name} (manual): {decision.action} - {why}"
                                          f"{'' if stored_again else ' (NOT stored)'}"
                                          f"{'' if shown else ' (NOT shown in the Automation panel)'}")
