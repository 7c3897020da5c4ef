"""Order ticket benchmark (issue 9 §6): ticket open -> order acknowledged by the paper broker.

One iteration is what a trader's two actions cost on the GUI thread: the scanner's "Trade" opens the ticket on a
put credit vertical (``AppContext.request_trade``: legs quoted, limit on the tick grid, the gate's preview, the
paper broker's what-if, the dock raised), then Send (the gate's check, the order and its events written to
SQLite one transaction each, the paper broker's fill at the natural price, the status line). The paper broker
answers inside ``place`` (latency 0), so the order is acknowledged (submitted, then filled) when Send returns.

Figures, best and median of ``ROUNDS`` orders, each on a fresh market second (the gate's rate limit and the
quotes move with the clock): wall milliseconds and GUI-thread CPU milliseconds (``time.thread_time``: the
ticket's valuation worker runs off the GUI thread and is not counted; it is drained between rounds). Reference,
same process and store: the same order placed straight through ``TradingSession.place`` (gate, store, broker:
no ticket), so the ratio is what the ticket adds on top of the order path itself. Target: <= 100 ms wall
(a click that answers within a tenth of a second feels immediate). Each part runs on a database of its own: every
order opens a trade, and the default risk profile refuses a 26th open trade (issue 10's ``max_open_trades``), which
the two parts together would reach.

``python -m tests.benchmarks --only ticket``
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from tests.benchmarks.report import Report

GROUP = "ticket"
ROUNDS = 15
TARGET_MS = 100.0
REF = "reference: TradingSession.place alone (gate, store, paper broker)"


def _rounds(step, before) -> tuple[list[float], list[float]]:
    """Wall and GUI-thread CPU seconds of ``step()`` over ``ROUNDS`` rounds (``before()`` untimed each round)."""
    wall, cpu = [], []
    for _ in range(ROUNDS):
        before()
        t0, c0 = time.perf_counter(), time.thread_time()
        step()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    return wall, cpu


def _add(report: Report, name: str, wall: list[float], cpu: list[float], *, reference: str | None = None,
         target: float | None = None) -> None:
    report.add(GROUP, f"{name}: wall", min(wall) * 1e3, "ms", target=target, reference=reference,
               note=f"median {statistics.median(wall) * 1e3:.1f} ms over {len(wall)} orders")
    report.add(GROUP, f"{name}: GUI thread CPU", min(cpu) * 1e3, "ms",
               note=f"median {statistics.median(cpu) * 1e3:.1f} ms")


def run(report: Report) -> None:
    from PySide6.QtWidgets import QApplication

    from app.context import AppContext
    from app.models.ticket_model import PriceMode
    from app.panels.ticket_panel import TicketPanel
    from app.settings import AppSettings
    from spx_core.execution.orders import OrderStatus
    from tests.app.test_ticket_panel import put_vertical
    from tests.app.trading_factory import session_on, sim_market

    app = QApplication.instance() or QApplication([])
    market = sim_market()
    with tempfile.TemporaryDirectory(prefix="spx_bench_ticket_") as tmp:
        context = AppContext(AppSettings(seed=3))
        panel = TicketPanel()
        panel.bind(context)
        panel.resize(560, 640)
        panel.show()
        acknowledged: list[bool] = []
        current: list = []  # the session of the part being measured

        def next_second() -> None:
            session = current[0]
            batch = market.advance(1.0)
            session.on_batch(batch)
            panel.on_batch(batch)
            deadline = time.monotonic() + 10.0
            while (panel._runner.busy or session._timer.isActive()) and time.monotonic() < deadline:
                app.processEvents()  # the valuation worker and the portfolio refresh, outside the timing
            app.processEvents()

        def open_and_send() -> None:
            context.request_trade(put_vertical(current[0].market.snapshot("SPX")))
            panel.set_mode(PriceMode.NATURAL)
            state = panel.send()
            acknowledged.append(state is not None and state.status is not OrderStatus.PENDING)

        def place_only() -> None:
            panel.update_order()
            request = panel._request()[0]
            state = current[0].place(request).state
            panel._ref = request.ref + "x"  # (the next round's request gets a ref of its own)
            acknowledged.append(state.status is not OrderStatus.PENDING)

        def measure(name: str, step) -> tuple[list[float], list[float]]:
            """``_rounds(step)`` on a session (and SQLite file) of its own, the ticket bound to it."""
            session, store = session_on(Path(tmp) / f"{name}.sqlite")
            current[:] = [session]
            try:
                context.set_trading(session)
                next_second()
                context.request_trade(put_vertical(session.market.snapshot("SPX")))  # warm-up: first quote
                panel.set_mode(PriceMode.NATURAL)
                next_second()
                return _rounds(step, next_second)
            finally:
                context.set_trading(None)
                session.close()
                store.close()

        try:
            ref_wall, ref_cpu = measure("reference", place_only)
            _add(report, REF, ref_wall, ref_cpu)
            wall, cpu = measure("ticket", open_and_send)
            _add(report, "ticket open -> order acknowledged (paper)", wall, cpu, reference=f"{REF}: wall",
                 target=TARGET_MS)
            if not all(acknowledged):
                raise RuntimeError(f"{acknowledged.count(False)} of {len(acknowledged)} orders were not "
                                   f"acknowledged by the paper broker: {panel.form.status_label.text()}")
        finally:
            panel.shutdown()
