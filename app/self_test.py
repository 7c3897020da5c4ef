"""``--self-test``: drive the real window with the live feed and check that it works end to end.

Checks the window, the feed, every registered panel on screen (its ``self_test_status``; a closed
panel computes nothing and is reported as not checked) and that no error was reported.

Then it trades on paper as a user would (:mod:`app.self_test_trading`): a 1-lot SPXW put credit vertical at
the natural price placed through the window's TradingSession, filled, seen in the blotter and as a trade in
the positions panel, closed, and seen flat. Last, alerts and automation (:mod:`app.self_test_ops`): a refused order
raises an alert that is listed, and a preset strategy in manual mode decides on the current snapshot.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.logs import ErrorReporter
    from app.main_window import MainWindow

__all__ = ["run_self_test"]

#: Seconds the paper round trip (place, fill, see, close, see flat) may take beyond the panels' wait.
TRADING_SECONDS = 20.0
#: Seconds the alert (a refused order raised, listed) and automation (a decision stored, shown) checks may take.
OPS_SECONDS = 20.0


async def run_self_test(window: MainWindow, seconds: float, reporter: ErrorReporter) -> int:
    """Wait (up to ``seconds``) for the feed and every panel to populate; print each check.

    Returns 0 when every check passed, else 1 (the failing checks are printed with FAIL).
    """
    from spx_core.marketdata.source import SourceKind

    deadline = time.monotonic() + seconds
    checks: dict[str, tuple[bool, str]] = {}
    while True:
        checks = _checks(window, reporter)
        src = window.feed.source
        if src is not None and src.kind is SourceKind.REPLAY and window.feed.batches and src.speed == 1.0:
            # 1x keeps real time (minute data: a minute per snapshot); check the flow at 60x
            window.toolbar.speed_requested.emit(60.0)
        finished = src is not None and src.status.state.value == "finished"
        # on a live feed every panel must show at least two results (its refresh loop works); a
        # finished replay cannot
        refreshed = all(panel.results >= 2 for panel in window.panels.values() if panel.on_screen())
        done = all(ok for ok, _ in checks.values()) and (refreshed or finished)
        if done or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.25)
    from app.self_test_trading import run_trading_check

    checks.update(await run_trading_check(window, TRADING_SECONDS))
    from app.self_test_ops import run_ops_checks

    checks.update(await run_ops_checks(window, OPS_SECONDS))
    from app.self_test_backtest import run_backtest_check

    checks.update(await run_backtest_check(window, OPS_SECONDS))
    for name, (ok, message) in checks.items():
        print(f"{'PASS' if ok else 'FAIL'} {name}: {message}", flush=True)
    failed = [name for name, (ok, _) in checks.items() if not ok]
    print(f"self-test {'passed' if not failed else 'FAILED: ' + ', '.join(failed)} "
          f"after {seconds - max(deadline - time.monotonic(), 0):.1f}s", flush=True)
    return 1 if failed else 0


def _checks(window: MainWindow, reporter: ErrorReporter) -> dict[str, tuple[bool, str]]:
    from spx_core.marketdata.source import SourceState

    feed = window.feed
    src = feed.source
    state = src.status if src is not None else None
    running = state is not None and state.state in (SourceState.RUNNING, SourceState.FINISHED)
    snap = feed.last_batch.snapshot if feed.last_batch is not None else None
    checks = {
        "window": (window.isVisible(), f"visible {window.width()}x{window.height()}"),
        # a one-snapshot replay (e.g. an imported end-of-day file) finishes after its only batch
        "feed": (running and (feed.batches >= 2 or (state.state is SourceState.FINISHED and feed.batches >= 1)),
                 f"{state.source if state else '-'} {state.state.value if state else 'not started'}, "
                 f"{feed.batches} batches" + (f", {len(snap)} quotes, S={snap.underlying_price:.2f}" if snap else "")),
    }
    for key, panel in window.panels.items():
        # a panel the user closed (saved layout) computes nothing by design: not a failure
        shown = panel.on_screen() or panel.results > 0 or panel.last_error
        checks[key] = panel.self_test_status() if shown else (True, f"{key}: not shown, not checked")
    checks["errors"] = (not reporter.errors,
                        "no unhandled errors" if not reporter.errors else "; ".join(reporter.errors[:3]))
    return checks
