"""Chain panel refresh cost on the GUI thread, simulated full SPX chain ticking at 10 Hz (offscreen Qt).

One refresh = what the GUI thread does per 100 ms timer tick: take the latest batch, apply the
worker's IV/greeks result to the model (change detection + one dataChanged per changed range),
advance the flash fade, and let the view repaint what changed. The IV/greeks of the selected expiry
are computed in the worker thread and reported separately. Reference: the same update done the naive
way, a full model reset per refresh (the view re-reads and repaints every cell).
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import datetime

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

GROUP = "chain panel"
TICKS = 60


def _measure(app, panel, results, batches, *, reset: bool) -> tuple[list[float], list[float]]:
    """(GUI-thread CPU seconds, wall seconds) per refresh."""
    model, view = panel.model, panel.table.viewport()
    times, walls = [], []
    for batch, result in zip(batches, results, strict=True):
        c0, t0 = time.thread_time(), time.perf_counter()
        panel.on_batch(batch)
        panel.show_result(result)  # what the GUI thread does with a result: model, column check, header
        if reset:
            model.beginResetModel()
            model.endResetModel()
        model.advance_flash()
        app.processEvents()  # delivers the update requests: the view repaints the dirty region
        times.append(time.thread_time() - c0)
        walls.append(time.perf_counter() - t0)
        view.update()
        app.processEvents()  # settle outside the timed region
    return times, walls


def run(report) -> None:
    from PySide6.QtWidgets import QApplication

    from app.models.chain_data import ChainField
    from app.panels.chain_panel import ChainPanel, compute_expiry_chain
    from spx_core.domain import ET
    from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig

    app = QApplication.instance() or QApplication([])
    market = SimulatedMarket(SimulatorConfig(seed=1, start=datetime(2024, 3, 13, 10, 30, tzinfo=ET)))
    batches = [market.advance(0.1) for _ in range(TICKS + 1)]
    n_quotes = len(batches[-1].snapshot)
    # timer effectively off: we drive refreshes. The columns of the original default (9 per side), so
    # figures compare across versions; the current default adds sizes and theta to the close.
    fields = [ChainField.BID, ChainField.ASK, ChainField.IV, ChainField.DELTA, ChainField.GAMMA, ChainField.THETA,
              ChainField.VEGA, ChainField.VOLUME, ChainField.OI]
    panel = ChainPanel(strike_window=40, refresh_hz=0.001, fields=fields)
    panel.resize(1600, 900)
    panel.show()
    panel.on_batch(batches[0])
    panel._refresh_expiries(batches[0].snapshot)
    slices = batches[0].snapshot.expiries()
    key = next((s.root, s.expiry) for s in slices if (s.expiry - slices[0].expiry).days >= 20)
    panel.select_expiry(key)
    first = compute_expiry_chain(batches[0].snapshot, key, None)
    panel.model.set_chain(first.snapshot, first.served)
    app.processEvents()
    t0 = time.perf_counter()
    results, previous = [], first.served
    for b in batches[1:]:  # as the panel does: each job lends the last result's slice fit
        results.append(compute_expiry_chain(b.snapshot, key, b.changed, previous))
        previous = results[-1].served
    worker_ms = (time.perf_counter() - t0) / TICKS * 1e3
    visible = panel.table.rowAt(panel.table.viewport().height() - 1)
    cells = (visible if visible >= 0 else panel.model.rowCount()) * panel.model.columnCount()

    ref, _ = _measure(app, panel, results, batches[1:], reset=True)
    live, live_wall = _measure(app, panel, results, batches[1:], reset=False)
    note = f"{n_quotes} quotes, {len(slices)} expiries, ~{cells} visible cells, median of {TICKS} ticks, CPU time"
    ref_name = "refresh, full model reset (reference)"
    report.add(GROUP, ref_name, statistics.median(ref) * 1e3, "ms", note=note)
    report.add(GROUP, "refresh, ranged dataChanged (GUI thread)", statistics.median(live) * 1e3, "ms", target=5.0,
               reference=ref_name, note=note)
    report.add(GROUP, "refresh p95 (GUI thread)", sorted(live)[int(0.95 * len(live))] * 1e3, "ms",
               note="95th percentile of the same ticks, CPU time")
    report.add(GROUP, "refresh wall time (GUI thread)", statistics.median(live_wall) * 1e3, "ms",
               note="median wall clock: includes waiting for a core on a loaded machine")
    report.add(GROUP, "expiry IV + greeks (worker thread)", worker_ms, "ms",
               note="forwards of the whole snapshot + served IVs/greeks of the shown expiry (slice refit "
                    "every 2 s), off the GUI thread")
    panel.shutdown()
    panel.close()


if __name__ == "__main__":
    from tests.benchmarks.report import Report

    rep = Report()
    run(rep)
    print(rep.table())
