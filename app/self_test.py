"""``--self-test``: drive the real window with the live feed and check that it works end to end.

Checks the window, the feed, every registered panel (its ``self_test_status``) and that no error
was reported.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.logs import ErrorReporter
    from app.main_window import MainWindow

__all__ = ["run_self_test"]


async def run_self_test(window: MainWindow, seconds: float, reporter: ErrorReporter) -> int:
    """Wait (up to ``seconds``) for the feed and every panel to populate; print each check.

    Returns 0 when every check passed, else 1 (the failing checks are printed with FAIL).
    """
    deadline = time.monotonic() + seconds
    checks: dict[str, tuple[bool, str]] = {}
    while True:
        checks = _checks(window, reporter)
        src = window.feed.source
        finished = src is not None and src.status.state.value == "finished"
        # on a live feed every panel must show at least two results (its refresh loop works); a
        # finished replay cannot
        refreshed = all(panel.results >= 2 for panel in window.panels.values())
        done = all(ok for ok, _ in checks.values()) and (refreshed or finished)
        if done or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.25)
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
    checks.update((key, panel.self_test_status()) for key, panel in window.panels.items())
    checks["errors"] = (not reporter.errors,
                        "no unhandled errors" if not reporter.errors else "; ".join(reporter.errors[:3]))
    return checks
